/* core.h: the shared header of lws.core.
 * Declares the per-Lua-state context, the core's helpers every userdata
 * file uses (core.c, core_call.c, core_hooks.c, luatype.c), and what one
 * file offers the others (message buffers, connections, requests, HTTP
 * heads, listening sockets). A struct only its own files read lives in
 * their header (csrc/request.h, csrc/core_private.h). */
#ifndef LWS_LUA_CORE_H
#define LWS_LUA_CORE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>
#include <libwebsockets.h>

/* lws_issue_raw sends at most a protocol's tx_packet_size (else its
 * rx_buffer_size, 2 KiB on our servers) per call and keeps the rest in
 * buflist_out, one more poll round per 2 KiB. Our connections write one
 * 64 KiB fragment (conn.c FRAG_SIZE) or batch plus its header at a time:
 * let that go to the kernel in one send() */
#define CONN_TX_PACKET (65536 + 14)

/* A connection's limits unless its server or client says otherwise (the
 * README's option tables name the same numbers) */
#define CONN_MAX_MESSAGE_DEFAULT (16 << 20)   /* max_message_size */
#define CONN_MAX_QUEUE_DEFAULT (16 << 20)     /* max_queue_bytes */
#define CONN_CLOSE_TIMEOUT_DEFAULT 10         /* close_timeout, seconds */
#define CONN_LIMIT_MAX ((lua_Integer)1 << 40) /* the largest byte limit taken */

#include "proto.h"

/* Everything declared below is internal to core.so: the module exports
 * luaopen_lws_core alone (CORE_API), however it is built (the Makefile's
 * -fvisibility=hidden, or luarocks' own flags) */
#pragma GCC visibility push(hidden)

#define CORE_API __attribute__((visibility("default")))

/* metatable names (luaL_newmetatable sets __name, so argument errors read
 * "lws.conn expected, got nil"); a type that only its own file checks
 * keeps its name there (lws.timer, lws.request, …) */
#define CONN_MT "lws.conn"        /* request.c's custom_header takes one too */
#define SERVER_MT "lws.server"

struct server;
struct conn;
struct evloop;

/* Every object we hang on a wsi (lws_set_opaque_user_data) starts with
 * one of these, so a callback can tell what it was given. */
enum obj_kind { KIND_CONN = 0x636f6e6e, KIND_SERVER = 0x73727672, KIND_WATCH = 0x77746368,
		KIND_REQUEST = 0x72657175, KIND_REDIS = 0x72656473 };

static inline void *
core_opaque(struct lws *wsi, int kind)
{
	int *o = lws_get_opaque_user_data(wsi);

	return o && *o == kind ? o : NULL;
}

/* One per Lua state: the lws_context and everything the loop needs.
 * Lives in a full userdata stored in the registry, so lua_close() frees it. */
struct ctx;
typedef void (*core_hook_fn)(struct ctx *x);
typedef void (*core_log_fn)(struct ctx *x, int level, const char *line);
#define CORE_HOOKS_MAX 4
#define CORE_PROTOCOLS_MAX 6

struct ctx {
	struct lws_context *lws;
	lua_State *L;                 /* main thread: callbacks never run on a coroutine */
	struct lws_vhost *internal;   /* client connections and fd watchers */
	int dispatch_ref;             /* Lua function(obj, event, ...) */
	int error_ref;                /* Lua function(message) or LUA_NOREF */
	int log_ref;                  /* Lua function(level, line) or LUA_NOREF */
	int log_levels;               /* what the Lua log hook asked for */
	int running;                  /* inside core_run */
	int stop;                     /* core_stop asked run() to return */
	int destroy_pending;          /* shutdown() asked from inside the loop */
	int finalizing;               /* lua_close: never call into Lua again */
	int in_service;               /* inside lws_service: defer destroy */
	/* live objects, for "nothing left behind" checks and run()'s exit */
	int n_conns, n_servers, n_timers, n_watches, n_requests, n_pending;
	uint64_t callback_errors;
	struct lws_protocols internal_protocols[CORE_PROTOCOLS_MAX + 1];
	const struct lws_protocols *const *protocols;   /* csrc/lws_core.c's list */
	/* what the types registered when they were opened (core_on_*) */
	core_hook_fn turn_hooks[CORE_HOOKS_MAX], destroy_hooks[CORE_HOOKS_MAX];
	core_log_fn log_hooks[CORE_HOOKS_MAX];
	uint8_t n_turn_hooks, n_destroy_hooks, n_log_hooks;
	void (*run_turn)(struct ctx *x);     /* the turn hooks, for csrc/evloop.c */
	struct tls_client_ctx *client_tls;   /* csrc/client.c: SSL_CTXs of wss:// clients */
	struct server_vhost *server_vhosts;  /* one per distinct TLS server config */
	struct server *adopting;             /* server whose socket lws is adopting */
	int destroying;                      /* inside lws_context_destroy */
	lws_sorted_usec_list_t sul_deferred; /* runs deferred work on the next turn */
	int loop_kind;                       /* core.c's CORE_LOOP_*: chosen before the context exists */
	int loop_chosen;                     /* by LWS_LUA_LOOP or configure: no fallback */
	int quiet;                           /* drop lws's log lines (a tried loop failing) */
	struct evloop *ev;                   /* the libev backend's state, or NULL */
	struct deferred *deferred_head, *deferred_tail;
	struct conn *flush_head;             /* conns with data to write this turn */
	lws_sorted_usec_list_t sul_flush;    /* poll loop: no wait while it is non-empty */
	unsigned char batch[LWS_PRE + 65536];   /* conn.c: a batch of frames, or one masked fragment */
};

/* core.c: the context and the loop */
int core_open(lua_State *L, const struct lws_protocols *const *protocols);
struct ctx *core_state(lua_State *L);        /* the per-state context, no lws yet */
struct ctx *core_ctx(lua_State *L);          /* create the lws context on first use */
struct ctx *core_ctx_of(struct lws *wsi);
int core_ctx_exists(lua_State *L);
void core_finalize_from_gc(struct ctx *x);

/* core_hooks.c: hooks a type registers when it is opened; the core calls
 * them and knows nothing of the type: turn (before each poll, after each
 * turn), destroy (after the lws context is gone), log (each line lws logs) */
void core_on_turn(struct ctx *x, core_hook_fn fn);
void core_on_destroy(struct ctx *x, core_hook_fn fn);
void core_on_log(struct ctx *x, core_log_fn fn);
void core_wake(struct ctx *x);               /* run() sees what a callback changed */
/* A function to run on the next loop turn (outside the current lws callback). */
typedef void (*deferred_fn)(struct ctx *x, void *arg, int arg_ref);
void core_defer(struct ctx *x, deferred_fn fn, void *arg, int arg_ref);

/* core_call.c: every call into Lua */
int core_call(struct ctx *x, int nargs, int nresults); /* protected; 0 = ok */
int core_dispatch_prepare(struct ctx *x, int obj_ref, const char *event);
void core_report(struct ctx *x, const char *msg);
int core_ref_self(lua_State *L, int idx);
void core_unref(lua_State *L, int *ref);
int core_push_error(lua_State *L, const char *msg, const char *code);

/* luatype.c: metatables, field tables, option tables */
void core_check_fields(lua_State *L, int idx, const char *const *allowed);
lua_Integer core_opt_int_field(lua_State *L, int idx, const char *k, lua_Integer def,
			       lua_Integer min, lua_Integer max);
const char *core_opt_str_field(lua_State *L, int idx, const char *k, const char *def);
int core_opt_bool_field(lua_State *L, int idx, const char *k, int def);
void core_new_type(lua_State *L, const char *name, const luaL_Reg *methods,
		   lua_CFunction index, const luaL_Reg *meta, const char *export);
void core_push_fields(lua_State *L, int idx);
int core_fields_index(lua_State *L);
int core_fields_newindex(lua_State *L);

/* evloop.c: the libev backend (the default; LWS_LUA_LOOP, lws.configure) */
int evloop_new(struct ctx *x, struct lws_context_creation_info *info);
int evloop_attach(struct evloop *e);
void evloop_run(struct evloop *e, int nowait);
void evloop_free(struct ctx *x);

/* userdata files; files.c adds stat, gzip and realpath */
int files_open(lua_State *L);
int msgpack_open(lua_State *L);   /* msgpack.c: msgpack_codec */
int conn_open(lua_State *L);
int server_open(lua_State *L);
int timer_open(lua_State *L);
int watch_open(lua_State *L);
int client_open(lua_State *L);
int signal_open(lua_State *L);

/* The lws protocols of the internal vhost, one per purpose; csrc/lws_core.c
 * lists them */
extern const struct lws_protocols client_protocol;   /* client.c */
extern const struct lws_protocols watch_protocol;    /* watch.c */
extern const struct lws_protocols listen_protocol;   /* server.c: listening sockets */
extern const struct lws_protocols redis_protocol;    /* redis.c */

/* redis.c: a hiredis connection, its socket watched with redis_protocol */
int redis_open(lua_State *L);

/* msgbuf.c: one payload shared by many send queues */
struct msgbuf {
	uint32_t refs;
	uint8_t binary;
	uint8_t droppable;            /* may be evicted from a full queue */
	char *key;                    /* conflation key: newest per key wins */
	size_t len;
	unsigned char data[];         /* LWS_PRE headroom, then len bytes */
};
struct msgbuf *msgbuf_new(const void *p, size_t len, int binary);
int msgbuf_set_key(struct msgbuf *m, const char *key, size_t klen);
void msgbuf_unref(struct msgbuf *m);

/* conn.c: what server.c and client.c need of a connection */
/* conn.fail: closing because of an error, dropping the queue (DROP) or
 * after what was queued before the error (DRAIN, own framing) */
enum { FAIL_DROP = 1, FAIL_DRAIN = 2 };
enum conn_state { CONN_CONNECTING = 0, CONN_OPEN = 1, CONN_CLOSING = 2, CONN_CLOSED = 3 };

struct sendq_entry {
	struct msgbuf *m;
	size_t off;                   /* bytes of m already handed to lws */
};

struct conn {
	int kind;                     /* KIND_CONN */
	struct lws *wsi;              /* NULL once lws has closed it */
	struct ctx *ctx;
	struct server *srv;           /* NULL for client connections */
	void (*gone)(struct conn *c); /* the owner's: the connection is closed */
	struct conn *prev, *next;     /* server's list of its connections */
	struct conn *flush_prev, *flush_next;   /* ctx's list to write before the poll */
	int self_ref;                 /* pins the userdata while wsi lives */
	uint8_t state;
	uint8_t is_client;
	uint8_t rx_binary;
	uint8_t rx_failed;            /* stop accumulating, we are failing */
	uint8_t fail;                 /* closing because of an error: FAIL_* */
	uint8_t close_sent;
	uint8_t got_peer_close;
	uint8_t ping_pending;         /* Pings queued in pings (at most CONN_PINGS_MAX) */
	uint8_t pmd;                  /* permessage-deflate negotiated */
	uint8_t linked;               /* on its server's list */
	uint8_t close_on_full;        /* slow_consumer = "close" */
	uint8_t flush_listed;         /* on ctx->flush_head's list */
	uint8_t close_reason_len, peer_reason_len;
	uint16_t close_code;          /* what we send / report for our close */
	uint16_t peer_code;
	uint32_t utf8_state;
	int close_timeout;            /* seconds */
	size_t max_message;
	size_t max_queue;
	char *rbuf;                   /* message being reassembled */
	size_t rlen, rcap;
	struct sendq_entry *q;        /* ring */
	uint32_t qhead, qcount, qcap;
	size_t qbytes;                /* bufferedAmount */
	char *protocol;               /* negotiated subprotocol, or NULL */
	char *extra_headers;          /* handshake response headers from Lua */
	char close_reason[124];
	char peer_reason[124];
	struct conn_ping *pings, *pings_tail;   /* ping() calls not yet written, in order */
	/* own framing (server connections): we parse and write the frames
	 * ourselves over lws's byte stream (csrc/frame.c) */
	uint8_t own;                  /* this connection's frames are ours */
	uint8_t raw;                  /* lws moved its wsi to the raw role */
	uint8_t pong_pending;         /* Pongs owed in pongs */
	struct conn_ping *pongs, *pongs_tail;   /* answers to the peer's Pings, in order */
	struct frame_rx fr;
	struct pmd *z;                /* permessage-deflate, our own (csrc/deflate.c) */
	unsigned char *ztx;           /* the compressed message being written */
	size_t ztx_len, ztx_off;
	uint8_t z_first, z_binary;    /* the inflated message being read */
	struct client_hs *hs;         /* client.c's, until the handshake is over */
	struct tls_client *tls;       /* wss:// client: our TLS over the raw socket */
	lws_sorted_usec_list_t sul_drain;   /* own_drain's retry before the raw role */
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
	lws_usec_t last_rx;           /* anything from the peer (heartbeat) */
	uint64_t drops;               /* messages refused or evicted (queue full) */
	uint32_t retry_after;         /* client: seconds a refusing server asked us to wait */
};

struct conn *conn_new(lua_State *L, struct ctx *x);   /* pushes the userdata */
struct conn *conn_check(lua_State *L, int idx);
void conn_attach(struct conn *c, struct lws *wsi);    /* pin + opaque pointer */
int conn_established(struct conn *c);
/* The WebSocket events of a connection, server or client side alike
 * (RECEIVE, WRITEABLE, PONG, the peer's Close): what the lws callback
 * returns, or CONN_NOT_HANDLED for any other reason */
#define CONN_NOT_HANDLED 2
struct lws *conn_handshake_wsi(struct conn *c);
/* the upgrade was answered with our own 101 (server), or a client's
 * request went out on a raw socket: our frames from now on */
void conn_own_framing(struct conn *c);
/* the peer's bytes once the handshake is over (a client's first frames
 * may come in the same read as the server's 101) */
int conn_own_rx(struct conn *c, unsigned char *in, size_t len);
/* our bytes to the peer in one write (encrypted first on a wss:// client);
 * 0 or -1 */
int conn_send_raw(struct conn *c, const void *p, size_t n);
int conn_callback(struct conn *c, enum lws_callback_reasons reason, void *in, size_t len);
void conn_finalize(struct conn *c, const char *why);
void conn_fail(struct conn *c, uint16_t code, const char *reason);
void conn_request_close(struct conn *c, uint16_t code, const char *reason, size_t rlen);
void conn_release_unopened(struct conn *c);
int conn_queue(struct conn *c, struct msgbuf *m);
void conn_flush_all(struct ctx *x);
void core_flush_soon(struct ctx *x);
int conn_offer(struct conn *c, struct msgbuf *m);
void conn_abort(struct conn *c);

/* request.c: one HTTP transaction (struct request: csrc/request.h) */
struct request;

int request_start(struct server *s, struct lws *wsi,
		  void (*push_req)(lua_State *L, struct lws *wsi, const char *method));
int request_body(struct request *r, const void *in, size_t len);
int request_body_done(struct request *r);
int request_deadline(struct request *r);
int request_writeable(struct request *r);
void request_closed(struct request *r);
struct server *request_server(struct request *r);
int request_open(lua_State *L);

/* server.c */

/* http_head.c: a whole small reply with our status line and Date; "extra"
 * is "name: value\r\n" lines or NULL */
int http_reply(struct lws *wsi, int status, const char *extra, const char *body,
	       size_t blen);
/* the 101 of an accepted WebSocket upgrade, written raw */
int http_switching(struct lws *wsi, const char *key, const char *protocol,
		   const char *extensions, const char *extra);
/* "date: <IMF-fixdate>\r\n" for now (RFC 9110 6.6.1), cached per second */
const char *http_date_line(size_t *len);

/* listen.c */
int listen_socket(const char *host, int port, int backlog, int reuseport, char *err,
		  size_t errlen);
int listen_bound_port(int fd);

/* workers.c */
int workers_fork(lua_State *L, const char *host, int *port, int n, int sticky, int backlog,
		 int *listen_fd, char *err, size_t errlen);
int workers_open(lua_State *L);

/* A server vhost, shared by every lws.server with the same TLS files and
 * kept until the context goes. lws may rebind a wsi to another vhost on
 * the same (non-)port by its Host header (lws_select_vhost), so a vhost
 * must never die under a wsi, and every wsi finds its server through its
 * opaque pointer, never through the vhost. */
struct server_vhost {
	struct server_vhost *next;
	struct lws_vhost *vh;
	char *cert, *key, *ca;        /* all NULL: plain ws:// */
	int handshake_timeout;        /* seconds to send complete request headers */
	int keepalive_timeout;        /* seconds an idle keep-alive HTTP connection stays */
	int rx_buffer_size;           /* lws's per-connection receive buffer */
	uint8_t http2;                /* ALPN offers h2 (csrc/http2.c) */
	char name[32];                /* lws keeps a pointer to the vhost name */
	struct lws_protocols protocols[2];
};

struct server {
	int kind;                     /* KIND_SERVER: opaque of its listener and idle wsi */
	struct ctx *ctx;
	struct server_vhost *sv;
	int self_ref;                 /* pinned until finished */
	int fd;                       /* our listening socket, -1 once closed */
	struct lws *listen_wsi;       /* raw-file watcher of fd */
	int port;
	uint8_t closing;              /* close() called, or the listener is gone */
	uint8_t finished;
	uint8_t finish_scheduled;
	uint8_t tls;
	int n_wsi;                    /* live wsi adopted from our listener */
	struct conn *conns;           /* open and closing ws connections */
	int n_conns;
	size_t max_message;
	size_t max_queue;
	size_t max_body;              /* HTTP request bodies */
	int request_timeout;          /* seconds a deferred HTTP answer may take */
	int close_timeout;
	uint8_t close_on_full;
	uint8_t pmd;                  /* permessage-deflate offered by clients is accepted */
	uint8_t pmd_no_context;       /* reset our deflater after every message */
	int8_t pmd_level, pmd_mem_level;
	char *iface;
	lws_sorted_usec_list_t sul_force;
	/* counters for server:stats() */
	uint64_t n_accepted, n_refused, n_http;
	int n_h2_requests;            /* requests in flight on h2 streams (csrc/http2.c) */
	uint64_t t_msgs_in, t_msgs_out, t_bytes_in, t_bytes_out, t_drops;  /* closed conns */
};

#pragma GCC visibility pop

#endif
