/* conn.h: a WebSocket connection (csrc/conn.c) as its owners see it: a
 * server (csrc/server_upgrade.c, server.c) or a client (csrc/client.c).
 * struct conn is csrc/conn_private.h's, read by conn.c, conn_read.c and
 * conn_write.c alone: an owner says what it needs through these calls. */
#ifndef LWS_LUA_CONN_H
#define LWS_LUA_CONN_H

#include "core.h"

#pragma GCC visibility push(hidden)

struct tls_client;   /* csrc/tls_client.h */

/* A connection's limits unless its server or client says otherwise (the
 * README's option tables name the same numbers) */
#define CONN_MAX_MESSAGE_DEFAULT (16 << 20)   /* max_message_size */
#define CONN_MAX_QUEUE_DEFAULT (16 << 20)     /* max_queue_bytes */
#define CONN_CLOSE_TIMEOUT_DEFAULT 10         /* close_timeout, seconds */
#define CONN_LIMIT_MAX ((lua_Integer)1 << 40) /* the largest byte limit taken */

enum conn_state { CONN_CONNECTING = 0, CONN_OPEN = 1, CONN_CLOSING = 2, CONN_CLOSED = 3 };

/* Who owns a connection, and its limits: given once, to conn_new */
struct conn_owner {
	void *data;                   /* the owner's: conn_owner_data() */
	uint8_t homed;                /* once the connection is done, the wsi's opaque
				       * pointer is data (a server's wsi stays homed at
				       * its server until WSI_DESTROY), else NULL */
	void (*gone)(struct conn *c); /* the connection is closed: called once */
	size_t max_message;
	size_t max_queue;
	int close_timeout;            /* seconds */
	uint8_t close_on_full;        /* slow_consumer = "close" */
	uint8_t is_client;            /* masks its frames, expects unmasked ones */
};

/* The counters a server adds up (server:stats()) */
struct conn_counts {
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out, drops, queued;
};

/* ---- life ---- */
struct conn *conn_new(lua_State *L, struct ctx *x, const struct conn_owner *o);   /* pushes it */
struct conn *conn_check(lua_State *L, int idx);
void *conn_owner_data(const struct conn *c);         /* NULL after the close event */
int conn_is_client(const struct conn *c);
void conn_attach(struct conn *c, struct lws *wsi);    /* pin + opaque pointer */
void conn_pin(struct conn *c);                        /* the userdata on top of the stack */
struct lws **conn_wsi_slot(struct conn *c);           /* lws_client_connect_info.pwsi */
struct lws *conn_wsi(const struct conn *c);           /* NULL once lws has closed it */
enum conn_state conn_state(const struct conn *c);
int conn_was_established(const struct conn *c);
/* the wsi whose request headers are still readable: a server connection
 * between its upgrade request and ESTABLISHED, else NULL */
struct lws *conn_handshake_wsi(struct conn *c);
void conn_counts_add(const struct conn *c, struct conn_counts *t);

/* ---- the handshake, the owner's ---- */
/* from now on conn_callback takes the wsi's closing events (a server's
 * upgrade the hook accepted, its 101 still to be written) */
void conn_take_events(struct conn *c);
void conn_set_protocol(struct conn *c, char *protocol);      /* takes it */
/* header lines for the 101 the owner writes later (takes them), and
 * taking them back */
void conn_set_reply_headers(struct conn *c, char *lines);
char *conn_take_reply_headers(struct conn *c);
const char *conn_protocol(const struct conn *c);
void conn_set_deflate(struct conn *c, struct pmd *z);        /* takes it */
int conn_has_deflate(const struct conn *c);
void conn_set_tls(struct conn *c, struct tls_client *t);     /* takes it */
struct tls_client *conn_tls(const struct conn *c);
void conn_set_raw(struct conn *c);                           /* lws gave it the raw role */
/* the upgrade was answered with our own 101 (server), or a client's
 * handshake is over: our frames from now on */
void conn_own_framing(struct conn *c);
int conn_established(struct conn *c);
/* the peer's bytes once the handshake is over (a client's first frames
 * may come in the same read as the server's 101) */
int conn_own_rx(struct conn *c, unsigned char *in, size_t len);
/* our bytes to the peer in one write (encrypted first on a wss:// client);
 * 0 or -1 */
int conn_send_raw(struct conn *c, const void *p, size_t n);

/* ---- events ---- */
/* The WebSocket events of a connection, server or client side alike:
 * what the lws callback returns, or CONN_NOT_HANDLED for any other reason */
#define CONN_NOT_HANDLED 2
int conn_callback(struct conn *c, enum lws_callback_reasons reason, void *in, size_t len);
/* prepares a call of the connection's handler for event (core_dispatch_prepare) */
int conn_event(struct conn *c, const char *event);
/* fn(x, c, ref) on the next loop turn, the userdata kept alive till then */
void conn_defer(struct conn *c, deferred_fn fn);

/* ---- the end ---- */
void conn_finalize(struct conn *c, const char *why);
void conn_release_unopened(struct conn *c);
void conn_request_close(struct conn *c, uint16_t code, const char *reason, size_t rlen);
/* open and closing at once, with no "open" event (a server that is
 * closing while an upgrade completes) */
void conn_close_unannounced(struct conn *c, uint16_t code, const char *reason, size_t rlen);
/* terminate() while connecting: its reason, else NULL */
const char *conn_aborted(const struct conn *c);
/* A connection that failed before it opened: its wsi forgotten, no more
 * events. 0: the owner reports it on a later turn (conn_defer, then
 * conn_report_failed); 1: nothing to report (closed already, or the
 * context is going) */
int conn_fail_unopened(struct conn *c, const char *detail);
/* ... and its close(1006, detail) */
void conn_report_failed(struct conn *c, const char *detail);

/* ---- one message to many connections ---- */
struct conn_many {
	struct conn *except;
	lua_Integer queued, refused;
};
/* the message from the Lua arguments (data, binary, except, opts) at idx
 * (raises on bad arguments: call it before touching any connection) */
struct msgbuf *conn_many_begin(lua_State *L, int idx, struct conn **except);
void conn_many_offer(struct conn *c, struct msgbuf *m, struct conn_many *n);
int conn_many_end(lua_State *L, struct msgbuf *m, const struct conn_many *n);  /* pushes 2 */
/* pushes the connection's userdata (it is pinned while on a list) */
void conn_push(struct conn *c);

/* ---- a list of connections, their owner's (a server's) ---- */
void conn_list_add(struct conn **head, struct conn *c);
int conn_list_remove(struct conn **head, struct conn *c);     /* 1 if it was on it */
struct conn *conn_list_next(const struct conn *c);
int conn_listed(const struct conn *c);

#pragma GCC visibility pop

#endif
