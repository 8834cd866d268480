/* server_private.h: struct server and struct server_vhost, and what the
 * files of a server share: csrc/server.c (the object's lifetime, its
 * callbacks), server_lua.c (its Lua API), server_upgrade.c (the upgrade),
 * server_vhost.c (its vhosts) */
#ifndef LWS_LUA_SERVER_PRIVATE_H
#define LWS_LUA_SERVER_PRIVATE_H

#include "core.h"
#include "conn.h"

#pragma GCC visibility push(hidden)

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
	int close_timeout;
	uint8_t close_on_full;
	uint8_t pmd;                  /* permessage-deflate offered by clients is accepted */
	uint8_t pmd_no_context;       /* reset our deflater after every message */
	int8_t pmd_level, pmd_mem_level;
	char *iface;
	lws_sorted_usec_list_t sul_force;
	lws_sorted_usec_list_t sul_accept;   /* accepting again after EMFILE (csrc/server.c) */
	uint8_t accept_paused;        /* in an out-of-descriptors episode */
	/* counters for server:stats() */
	uint64_t n_accepted, n_refused, n_http;
	int n_h2_requests;            /* requests in flight on h2 streams (csrc/http2.c) */
	struct conn_counts closed;    /* of the connections that have gone */
	struct request_owner http;    /* what its HTTP requests see of it */
};


/* server.c: the object's lifetime: a closing server is finished once
 * its listener and every wsi are gone (try_finish); sweep runs our
 * LWS_CALLBACK_USER over its wsi (force: drop them all, else the idle
 * ones); server_force_close is the grace period's end; h2_requests_done its
 * requests' owner call; header_overflow the log hook (core_on_log) */
void server_try_finish(struct server *s);
void server_sweep(struct server *s, int force);
void server_force_close(lws_sorted_usec_list_t *sul);
void server_h2_requests_done(void *home);
void server_header_overflow(struct ctx *x, int level, const char *line);
/* server.c: lws's callback for every wsi of our server vhosts */
int server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len);

/* server_vhost.c: the vhost for this configuration (NULLs: plain),
 * created on first use; takes the strings. NULL if lws refuses it */
struct server_vhost *server_vhost_for(struct ctx *x, char *cert, char *key, char *ca,
				      int hs_timeout, int ka_timeout, int rx_size, int http2);
void server_vhosts_free(struct ctx *x);   /* the context is gone */
/* why lws refused a TLS vhost: the file and the step that fails */
void server_tls_diagnose(const char *cert, const char *key, char *out, size_t outlen);

/* server_upgrade.c: LWS_CALLBACK_HTTP_CONFIRM_UPGRADE for "websocket" (upgrade: the header
 * value, blanked in place when we answer it ourselves) */
int server_confirm_upgrade(struct server *s, struct lws *wsi, char *upgrade);
/* LWS_CALLBACK_HTTP of an accepted upgrade: our 101, the connection open */
int server_switch(struct server *s, struct conn *c, struct lws *wsi);
/* the Lua request table of a plain HTTP request (csrc/request.c calls it) */
void server_push_http_request(lua_State *L, struct lws *wsi, const char *method);

#pragma GCC visibility pop

#endif
