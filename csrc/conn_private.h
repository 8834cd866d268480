/* conn_private.h: what the three files of a connection share
 * (csrc/conn.c: the object and its lifetime; conn_read.c; conn_write.c) */
#ifndef LWS_LUA_CONN_PRIVATE_H
#define LWS_LUA_CONN_PRIVATE_H

#include "core.h"

#pragma GCC visibility push(hidden)

#define FRAG_SIZE 65536          /* bigger messages leave in fragments */
#define WRITE_BUDGET (256 * 1024) /* bytes per WRITEABLE before yielding */
#define RBUF_KEEP 65536          /* keep a reassembly buffer this big */
#define BATCH_MAX 16384          /* messages this small are batched... */
#define BATCH_BUF 65536          /* ...into one send of up to this much */

/* ---- pings ----------------------------------------------------------- */

/* Each ping() leaves as its own Ping frame, in order, ahead of data (as
 * Node's ws does); a few may wait for the socket at once, then ping()
 * says "busy". Heap-allocated: an idle connection carries no buffer. */
#define CONN_PINGS_MAX 16

struct conn_ping {
	struct conn_ping *next;
	uint8_t len;
	unsigned char buf[LWS_PRE + 125];
};


/* conn_write.c */
void conn_pings_clear(struct conn *c);
void conn_sendq_clear(struct conn *c);
void conn_ask_writable(struct conn *c);
void conn_want_write(struct conn *c);
void conn_flush_unlist(struct conn *c);
int conn_own_writeable(struct conn *c);
void conn_set_close(struct conn *c, uint16_t code, const char *reason, size_t rlen);
void conn_arm_backstop(struct conn *c);

/* conn_read.c */
int conn_emit_ok(struct conn *c, int nargs);

#pragma GCC visibility pop

#endif
