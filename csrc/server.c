/* server.c: lws.server, one listening socket whose accepted sockets are
 * adopted into a (shared) lws vhost. We create the listening socket
 * ourselves (precise bind errors, SO_REUSEPORT, and a close that takes
 * effect now, not at lws's 30 s deferred-free tick) and watch it as a raw
 * fd. Every wsi carries its server in its opaque pointer. Owns the
 * server's lifetime (its vhosts: csrc/server_vhost.c), lws's callbacks for its wsi
 * (HTTP requests to csrc/request.c, upgrades to csrc/server_upgrade.c,
 * connections to csrc/conn.c), h2c offers turned down so the request is
 * served over HTTP/1.1. Its Lua API is csrc/server_lua.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "conn.h"
#include "http2.h"
#include "server_private.h"

#define KILL_ARG ((void *)"kill")   /* argp of our LWS_CALLBACK_USER sweep */


/* the server a wsi was accepted by (its vhost may be another one) */
static struct server *
home_server(struct lws *wsi)
{
	int *o = lws_get_opaque_user_data(wsi);

	if (!o && http2_stream(wsi))
		/* an h2 stream: its connection's (csrc/request.c) */
		o = lws_get_opaque_user_data(lws_get_network_wsi(wsi));
	if (!o)
		return NULL;
	if (*o == KIND_SERVER)
		return (struct server *)o;
	if (*o == KIND_CONN)
		return conn_owner_data((struct conn *)o);   /* a server's are its own */
	if (*o == KIND_REQUEST)
		return request_home((struct request *)o);
	return NULL;
}

/* Out of descriptors (EMFILE/ENFILE, max_fds reached): the pending
 * connection stays queued and the listener readable, so accepting on
 * would spin the loop and the log. As nginx does, the listener is not
 * watched for ACCEPT_PAUSE, then tried again; said once per episode. */
#define ACCEPT_PAUSE ((lws_usec_t)250 * LWS_US_PER_MS)

static void
accept_resume(lws_sorted_usec_list_t *sul)
{
	struct server *s = lws_container_of(sul, struct server, sul_accept);

	if (s->listen_wsi && s->fd >= 0 && !s->closing)
		lws_rx_flow_control(s->listen_wsi, 1);
}

static void
accept_pause(struct server *s)
{
	if (!s->accept_paused)
		core_report(s->ctx, "accept: out of file descriptors (lws.configure{ max_fds }, "
			    "ulimit -n): new connections wait in the backlog until some close");
	s->accept_paused = 1;
	if (s->listen_wsi && s->ctx->lws) {
		lws_rx_flow_control(s->listen_wsi, 0);
		lws_sul_schedule(s->ctx->lws, 0, &s->sul_accept, accept_resume, ACCEPT_PAUSE);
	}
}

/* The listener is readable: accept what is pending and hand each socket
 * to lws. Bounded per turn so a connection storm cannot starve others. */
static void
server_accept(struct server *s)
{
	lws_adopt_desc_t ad;
	int i;

	for (i = 0; i < 256 && s->fd >= 0; i++) {
		int one = 1, fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_pause(s);
			break;   /* EAGAIN, or a transient error: poll tells us again */
		}
		s->accept_paused = 0;
		if (s->closing) {
			close(fd);
			continue;
		}
		/* small frames go out now (lws does the same on its own listeners) */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* WSI_CREATE runs inside the adoption (before lws stores the
		 * opaque pointer): it counts the wsi as s's */
		memset(&ad, 0, sizeof(ad));
		ad.vh = s->sv->vh;
		ad.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | LWS_ADOPT_ALLOW_SSL;
		ad.fd.sockfd = fd;
		ad.opaque = s;
		s->ctx->adopting = s;
		lws_adopt_descriptor_vhost_via_info(&ad);   /* on failure lws closes fd */
		s->ctx->adopting = NULL;
	}
}


static void
server_listener_closed(struct server *s)
{
	s->fd = -1;
	s->listen_wsi = NULL;
	s->closing = 1;
	server_try_finish(s);
}

/* The listening socket, watched as a raw file on the internal vhost
 * (csrc/lws_core.c lists this protocol there) */
static int
listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		size_t len)
{
	struct server *s = core_opaque(wsi, KIND_SERVER);

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (s)
			server_accept(s);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		lws_set_opaque_user_data(wsi, NULL);
		if (s)
			server_listener_closed(s);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols listen_protocol = {
	.name = "lws-lua-listen", .callback = listen_callback,
};

/* lws drops a request whose headers do not fit max_http_header_data
 * without a word; core.c's log hook sees "Ran out of header data space"
 * while that wsi is being parsed and calls this. The wsi is one of ours
 * with a request line and no request object yet; if exactly one wsi looks
 * like that we answer it 431 now, before lws shuts the socket down. */
static struct lws *overflow_candidate;
static int overflow_candidates;

static int
mid_headers(struct lws *wsi)
{
	static const enum lws_token_indexes uris[] = {
		WSI_TOKEN_GET_URI, WSI_TOKEN_POST_URI, WSI_TOKEN_OPTIONS_URI, WSI_TOKEN_PUT_URI,
		WSI_TOKEN_PATCH_URI, WSI_TOKEN_DELETE_URI, WSI_TOKEN_HEAD_URI
	};
	size_t i;

	for (i = 0; i < sizeof(uris) / sizeof(uris[0]); i++)
		if (lws_hdr_total_length(wsi, uris[i]) > 0)
			return 1;
	return 0;
}

/* lws closes a request whose headers overflow without answering; we
 * learn it only from this line, logged while that wsi is parsed (a log
 * hook, registered in server_open) */
void
server_header_overflow(struct ctx *x, int level, const char *line)
{
	char msg[256];
	struct server_vhost *sv;
	int fd, n;

	if (level != LLL_ERR || !strstr(line, "Ran out of header data space"))
		return;

	overflow_candidate = NULL;
	overflow_candidates = 0;
	for (sv = x->server_vhosts; sv; sv = sv->next)
		lws_callback_all_protocol_vhost_args(sv->vh, NULL, LWS_CALLBACK_USER,
						     (void *)&overflow_candidate, 0);
	if (overflow_candidates != 1)
		return;
	n = snprintf(msg, sizeof(msg), "HTTP/1.1 431 Request Header Fields Too Large\r\n"
		     "content-type: text/plain\r\ncontent-length: 31\r\n%s"
		     "connection: close\r\n\r\nrequest header fields too large",
		     http_date_line(NULL));
	fd = lws_get_socket_fd(overflow_candidate);
	if (fd >= 0 && send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return;   /* best effort: the connection is going anyway */
}

/* ---- lifetime ----------------------------------------------------------- */

static void
server_finished(struct server *s)
{
	struct ctx *x = s->ctx;

	s->finish_scheduled = 0;
	if (s->finished || s->n_wsi || s->fd >= 0)
		return;
	s->finished = 1;
	if (x->lws) {
		lws_sul_cancel(&s->sul_force);
		lws_sul_cancel(&s->sul_accept);
	}
	if (s->self_ref != LUA_NOREF) {
		if (core_dispatch_prepare(x, s->self_ref, "close") == 0)
			core_call(x, 2, 0);
		x->n_servers--;
		if (!x->finalizing)
			core_unref(x->L, &s->self_ref);
		s->self_ref = LUA_NOREF;
	}
}

static void
finish_deferred(struct ctx *x, void *arg, int arg_ref)
{
	(void)x;
	(void)arg_ref;   /* keeps the userdata alive until now */
	server_finished(arg);
}

/* Once closing and nothing is left, the server is done: on the next turn
 * (never inside a callback of one of its own wsi), or now if the whole
 * context is going away. */
void
server_try_finish(struct server *s)
{
	struct ctx *x = s->ctx;

	if (!s->closing || s->finished || s->finish_scheduled || s->n_wsi || s->fd >= 0)
		return;
	if (x->destroying || x->finalizing || !x->lws || s->self_ref == LUA_NOREF) {
		server_finished(s);
		return;
	}
	s->finish_scheduled = 1;
	lua_rawgeti(x->L, LUA_REGISTRYINDEX, s->self_ref);
	core_defer(x, finish_deferred, s, luaL_ref(x->L, LUA_REGISTRYINDEX));
}

/* Runs LWS_CALLBACK_USER on every wsi of our vhosts; the callback acts on
 * those homed at s (force: drop them all, else only what is not a ws
 * connection, which closes gracefully by itself). */
void
server_sweep(struct server *s, int force)
{
	struct server_vhost *sv;

	for (sv = s->ctx->server_vhosts; sv; sv = sv->next)
		lws_callback_all_protocol_vhost_args(sv->vh, NULL, LWS_CALLBACK_USER, s,
						     (size_t)force);
}

/* The last request in flight on an h2 stream is done (csrc/request.c):
 * a closing server can now drop the connections the sweep spared */
void
server_h2_requests_done(void *home)
{
	struct server *s = home;
	struct ctx *x = s->ctx;

	if (s->closing && !s->finished && x->lws && !x->destroying && !x->finalizing)
		server_sweep(s, 0);
}

void
server_force_close(lws_sorted_usec_list_t *sul)
{
	struct server *s = lws_container_of(sul, struct server, sul_force);

	/* the grace period is over: drop whatever is still connected */
	server_sweep(s, 1);
	core_wake(s->ctx);
}

/* ---- the protocol callback --------------------------------------------- */

int
server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		size_t len)
{
	struct conn *c = core_opaque(wsi, KIND_CONN);
	struct request *r = core_opaque(wsi, KIND_REQUEST);
	struct server *s = home_server(wsi);
	int handled;

	/* what every established connection does, client or server */
	if (c && (handled = conn_callback(c, reason, in, len)) != CONN_NOT_HANDLED)
		return handled;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* user = this vhost's SSL_CTX. lws's SNI callback would move the
		 * connection to "the first vhost on the same port", and all our
		 * vhosts share CONTEXT_PORT_NO_LISTEN_SERVER: every wss:// server
		 * would present the first one's certificate. Each listener keeps
		 * its own SSL_CTX instead. */
		if (user)
			SSL_CTX_set_tlsext_servername_callback((SSL_CTX *)user, NULL);
		return 0;

	case LWS_CALLBACK_WSI_CREATE:
		s = core_ctx_of(wsi)->adopting;
		if (s) {
			s->n_wsi++;
			lws_set_opaque_user_data(wsi, s);
		}
		break;

	case LWS_CALLBACK_WSI_DESTROY: {
		/* counted in WSI_CREATE: a wsi we adopted, whose opaque pointer
		 * stays set until here. Not an h2 stream: its opaque pointer is
		 * NULL or its request's (csrc/request.c request_home), and its
		 * parent may already be gone (no http2_stream here). */
		int counted = lws_get_opaque_user_data(wsi) && !(r && request_on_h2(r));

		if (c) {
			conn_finalize(c, NULL);
			s = home_server(wsi);
		}
		if (r)
			request_closed(r);
		lws_set_opaque_user_data(wsi, NULL);
		if (s && counted) {
			s->n_wsi--;
			server_try_finish(s);
		}
		break;
	}

	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if (!s || !in)
			return -1;
		if (lws_hdr_total_length(wsi, WSI_TOKEN_UPGRADE) <= 0)
			/* An Upgrade other than websocket or h2c: lws 4.1.6
			 * (lws_handshake_server) has already written its own
			 * HTML 403 and completed the transaction, which on a
			 * keep-alive connection detaches and frees the header
			 * table `in` points into (or resets it, when more
			 * bytes are buffered), then calls us anyway. The table
			 * is gone or empty then: never read `in` (ASan:
			 * heap-use-after-free). No earlier callback lets us
			 * answer it ourselves (docs/libwebsockets-4.1.md §6
			 * item 18). Hang up: lws never framed that request's
			 * body, so reading on could take the body for a
			 * request. */
			return -1;
		if (!strcasecmp(in, "h2c")) {
			/* curl --http2 offers h2c on plain http://; we speak
			 * HTTP/1.1 only, and RFC 9110 7.8 lets a server ignore
			 * Upgrade. Returning 0 would make lws switch to h2, and
			 * returning 1 skips lws_http_action (no body, no
			 * keep-alive, an HTTP/1.0 status line). lws 4.1.6
			 * (roles/http/server/server.c, lws_handshake_server)
			 * compares the same header string `in` with "websocket"
			 * and "h2c" again after this callback returns 0 and,
			 * when neither matches, serves the request as plain HTTP:
			 * blank it in place (the request's headers show
			 * upgrade = ""). */
			*(char *)in = '\0';
			return 0;
		}
		if (strcasecmp(in, "websocket"))
			/* the same 403 case with the table still attached
			 * (lws deferred its transaction completion behind a
			 * partly written 403): no second answer */
			return -1;
		return server_confirm_upgrade(s, wsi, in);

	case LWS_CALLBACK_ESTABLISHED:
		/* only lws's own ws upgrade gets here (ours are decided in
		 * HTTP_CONFIRM_UPGRADE and never enter lws's ws role): an
		 * extended CONNECT on an h2 stream, refused (csrc/http2.c) */
		return http2_refuse_ws(wsi);

	case LWS_CALLBACK_RAW_ADOPT:
	case LWS_CALLBACK_RAW_RX:
		/* lws's fallback to its raw role (a CONNECT, or bytes that are
		 * not HTTP) on a wsi that is not one of our upgraded
		 * connections (those conn_callback took): hang up */
		return -1;

	case LWS_CALLBACK_HTTP:
		if (!s)
			return -1;
		if (c)   /* conn_callback passed it on: ours to answer */
			return server_switch(s, c, wsi);
		if (s->closing) {
			http_reply(wsi, 503, "connection: close\r\n", "server is shutting down", 23);
			return -1;
		}
		s->n_http++;
		return request_start(&s->http, wsi);

	case LWS_CALLBACK_HTTP_BODY:
		if (r)
			return request_body(r, in, len);
		return 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (r)
			return request_body_done(r);
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (r)
			return request_writeable(r);
		return 0;

	case LWS_CALLBACK_TIMER:
		/* lws_set_timer_usecs: a deferred answer's deadline */
		if (r)
			return request_deadline(r);
		return 0;

	case LWS_CALLBACK_CLOSED_HTTP:
		if (r)
			request_closed(r);
		break;


	case LWS_CALLBACK_USER:
		if (in == (void *)&overflow_candidate) {
			if (s && !c && !r && mid_headers(wsi)) {
				overflow_candidate = wsi;
				overflow_candidates++;
			}
			return 0;
		}
		/* server_sweep: in is the server closing, len 1 = force */
		if (!s || (void *)s != in)
			return 0;
		if ((c || r) && len == 0)
			return 0;   /* ws connections and in-flight requests finish first */
		if (len == 0 && s->n_h2_requests && lws_is_ssl(wsi))
			/* maybe an h2 connection whose streams are in-flight
			 * requests (nothing public tells its streams):
			 * server_h2_requests_done sweeps again */
			return 0;
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return 0;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
