/* core.h: the shared header of lws.core.
 * Declares the per-Lua-state context, the core's helpers every userdata
 * file uses (core.c, core_call.c, core_hooks.c, luatype.c), and what one
 * file offers the others (message buffers, requests, HTTP heads,
 * listening sockets). A struct only its own files read lives in their
 * header (csrc/conn_private.h, csrc/request.h, csrc/server_private.h,
 * csrc/core_private.h); a connection's owners see it through csrc/conn.h. */
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
	int max_fds;                         /* configure{ max_fds }, 0: the default */
	int fd_limit;                        /* RLIMIT_NOFILE the lws context was made with */
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
void core_flush_soon(struct ctx *x);         /* conn_flush_all before the next poll */

/* core_call.c: every call into Lua */
int core_call(struct ctx *x, int nargs, int nresults); /* protected; 0 = ok */
/* for a hot path: the caller pushes the message handler first
 * (core_push_msgh), then the function and nargs arguments; core_call_at
 * calls it with no results and no stack rotation, and the caller resets
 * the stack. 0 = ok; an error is reported as core_call does. */
void core_push_msgh(lua_State *L);
int core_call_at(struct ctx *x, int nargs, int msgh);
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
int core_fields_get(lua_State *L);
int core_fields_newindex(lua_State *L);

/* evloop.c: the libev backend (the default; LWS_LUA_LOOP, lws.configure) */
int evloop_new(struct ctx *x, struct lws_context_creation_info *info);
int evloop_attach(struct evloop *e);
void evloop_run(struct evloop *e, int nowait);
void evloop_free(struct ctx *x);

/* userdata files; files.c adds stat, gzip and realpath */
int files_open(lua_State *L);
int msgpack_open(lua_State *L);   /* msgpack.c: msgpack_codec */
int crypt_open(lua_State *L);     /* crypt.c: crypt_check */
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

/* request.c: one HTTP transaction (struct request: csrc/request.h) */
struct request;

/* What a request needs of whoever serves it (a server: csrc/server.c
 * keeps one of these for its whole life) */
struct request_owner {
	void *home;                   /* the wsi's opaque pointer once the request is done */
	const int *handler_ref;       /* the Lua object whose "request" event answers it */
	const uint8_t *closing;       /* set: hang up after this answer */
	size_t max_body;
	int timeout_s;                /* seconds a deferred answer may take, 0: no limit */
	/* the Lua request table of a plain HTTP request */
	void (*push_req)(lua_State *L, struct lws *wsi, const char *method);
	int *h2_in_flight;            /* requests on h2 streams, counted by csrc/request.c */
	void (*h2_all_done)(void *home);   /* ... and the last of them is done */
};

int request_start(const struct request_owner *o, struct lws *wsi);
int request_body(struct request *r, const void *in, size_t len);
int request_body_done(struct request *r);
int request_deadline(struct request *r);
int request_writeable(struct request *r);
void request_closed(struct request *r);
void *request_home(const struct request *r);
int request_on_h2(const struct request *r);   /* on an h2 stream (csrc/http2.c) */
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
char *http_hdr_dup(struct lws *wsi, enum lws_token_indexes t, int *plen);

/* listen.c */
int listen_socket(const char *host, int port, int backlog, int reuseport, char *err,
		  size_t errlen);
int listen_bound_port(int fd);

/* workers.c */
int workers_fork(lua_State *L, const char *host, int *port, int n, int sticky, int backlog,
		 int *listen_fd, char *err, size_t errlen);
int workers_open(lua_State *L);

#pragma GCC visibility pop

#endif
