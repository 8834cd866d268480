/* conn_private.h: struct conn, and what the files of a connection share
 * (csrc/conn.c: the object and its lifetime; conn_read.c; conn_write.c;
 * conn_lua.c: its Lua methods). No other file includes it: owners use
 * csrc/conn.h. */
#ifndef LWS_LUA_CONN_PRIVATE_H
#define LWS_LUA_CONN_PRIVATE_H

#include "core.h"
#include "conn.h"

#pragma GCC visibility push(hidden)

#define FRAG_SIZE 65536          /* bigger messages leave in fragments */
#define WRITE_BUDGET (256 * 1024) /* bytes per WRITEABLE before yielding */
#define RBUF_KEEP 65536          /* keep a reassembly buffer this big */
#define BATCH_MAX 16384          /* messages this small are batched... */
#define BATCH_BUF 65536          /* ...into one send of up to this much */

/* conn.fail: closing because of an error, dropping the queue (DROP) or
 * after what was queued before the error (DRAIN, own framing) */
enum { FAIL_DROP = 1, FAIL_DRAIN = 2 };

/* permessage-deflate of one connection: lws_lua's deflater and inflater
 * (csrc/deflate.c) and the message being compressed or inflated; on the
 * heap only for a connection that negotiated the extension */
struct conn_z {
	struct pmd *pmd;
	unsigned char *tx;            /* the compressed message being written */
	size_t tx_len, tx_off;
	uint8_t first, binary;        /* the inflated message being read */
};

struct sendq_entry {
	struct msgbuf *m;
	size_t off;                   /* bytes of m already handed to lws */
};

struct conn {
	int kind;                     /* KIND_CONN */
	int self_ref;                 /* pins the userdata while wsi lives */
	struct lws *wsi;              /* NULL once lws has closed it */
	struct ctx *ctx;
	void *owner;                  /* struct conn_owner's data (csrc/conn.h) */
	void (*gone)(struct conn *c); /* the owner's: the connection is closed */
	struct conn *prev, *next;     /* the owner's list (conn_list_add) */
	struct conn *flush_prev, *flush_next;   /* ctx's list to write before the poll */
	uint8_t state;
	uint8_t is_client;
	uint8_t rx_binary;
	uint8_t rx_failed;            /* stop accumulating, we are failing */
	uint8_t fail;                 /* closing because of an error: FAIL_* */
	uint8_t close_sent;
	uint8_t got_peer_close;
	uint8_t ping_pending;         /* Pings queued in pings (at most CONN_PINGS_MAX) */
	uint8_t linked : 1;           /* on its owner's list */
	uint8_t close_on_full : 1;    /* slow_consumer = "close" */
	uint8_t flush_listed : 1;     /* on ctx->flush_head's list */
	uint8_t homed : 1;            /* struct conn_owner's */
	uint8_t own;                  /* this connection's frames are ours */
	uint8_t raw;                  /* lws moved its wsi to the raw role */
	uint8_t pong_pending;         /* Pongs owed in pongs */
	uint8_t close_reason_len, peer_reason_len;
	uint16_t close_code;          /* what we send / report for our close */
	uint16_t peer_code;
	uint16_t close_timeout;       /* seconds, 1..3600 */
	uint32_t utf8_state;
	size_t max_message;
	size_t max_queue;
	/* one slot, two uses that never overlap: the header lines for the 101
	 * while CONNECTING (conn_set_reply_headers), the message being
	 * reassembled once open. Freed as rbuf. */
	union {
		char *rbuf;
		char *extra_headers;
	};
	size_t rlen, rcap;
	struct sendq_entry *q;        /* ring */
	uint32_t qhead, qcount, qcap;
	uint32_t q_droppable;         /* droppable messages in q: make_room scans only if any */
	size_t qbytes;                /* bufferedAmount */
	char *protocol;               /* negotiated subprotocol, or NULL */
	/* heap copies, NULL until there is one (an idle connection carries
	 * no close reason): conn_reason_set */
	char *close_reason, *peer_reason;
	/* ping() calls not yet written, and answers owed to the peer's
	 * Pings, in order; no tail pointers: each list holds at most 16 */
	struct conn_ping *pings, *pongs;
	/* own framing (server connections): we parse and write the frames
	 * ourselves over lws's byte stream (csrc/frame.c) */
	struct frame_rx fr;
	struct conn_z *z;             /* permessage-deflate, or NULL */
	struct tls_client *tls;       /* wss:// client: our TLS over the raw socket */
	/* own_drain's retry before the raw role: on the heap while armed
	 * (rare: the peer reads slower than the 101 and first frames leave) */
	lws_sorted_usec_list_t *sul_drain;
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
	lws_usec_t last_rx;           /* anything from the peer (heartbeat) */
	uint64_t drops;               /* messages refused or evicted (queue full) */
};


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


/* conn_write.c: *dst = a NUL-terminated copy of p[0..n) (n <= 123), or NULL
 * when n is 0 or memory is short; returns the length kept */
uint8_t conn_reason_set(char **dst, const void *p, size_t n);
/* conn.c: conn_check's fast test needs the metatable, once (conn_lua.c) */
void conn_mt_remember(lua_State *L);
/* conn_write.c: append p to the list at *head */
void conn_ping_append(struct conn_ping **head, struct conn_ping *p);
/* conn_write.c: free the connection's deflate state */
void conn_z_free(struct conn *c);
/* conn_write.c: disarm and free own_drain's retry timer */
void conn_drain_cancel(struct conn *c);
/* conn_write.c */
void conn_fail(struct conn *c, uint16_t code, const char *reason);
int conn_queue(struct conn *c, struct msgbuf *m);
int conn_offer(struct conn *c, struct msgbuf *m);
void conn_flush_all(struct ctx *x);
void conn_abort(struct conn *c);
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
