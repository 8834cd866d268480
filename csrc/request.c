/* request.c: lws.request, one HTTP transaction on a server's port (the
 * "res" a route handler answers). Owns the request's framing (RFC 9112 6:
 * Content-Length, Transfer-Encoding: chunked decoded here, the smuggling
 * refusals), reading the body under a size limit, the deadline of a
 * deferred answer (lws would kill it silently at 5 s, or a POST never:
 * we answer 503 instead), and writing status, headers and body from
 * HTTP_WRITEABLE, in 64 KiB pieces, before completing the transaction.
 *
 * What lws 4.1.6 does with a request body (roles/http/server/server.c
 * lws_http_action, roles/h1/ops-h1.c lws_read_h1): with Content-Length it
 * passes exactly that many bytes to HTTP_BODY, then HTTP_BODY_COMPLETION.
 * It never looks at Transfer-Encoding: a POST, PUT or PATCH without
 * Content-Length is taken to have a 100 MiB body, so every later byte on
 * the connection (chunk framing, trailers, the next pipelined request)
 * arrives raw through HTTP_BODY, and other methods get no body at all (the
 * bytes would be parsed as the next request). So a chunked body is decoded
 * here from HTTP_BODY, and such a connection cannot carry another request:
 * its answer says "connection: close". */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"

#define BODY_PIECE 65536

enum req_state { REQ_BODY, REQ_WAITING, REQ_RESPONDING, REQ_DONE, REQ_CLOSED };

static const char *const method_names[] = {
	"GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD", "GET"
};

static struct request *
request_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, REQUEST_MT);
}

struct server *
request_server(struct request *r)
{
	return r->srv;
}

/* Detach from the wsi (the wsi goes back to being its server's) and unpin. */
static void
request_release(struct request *r)
{
	struct ctx *x = r->ctx;

	if (r->wsi) {
		lws_set_timer_usecs(r->wsi, LWS_SET_TIMER_USEC_CANCEL);
		lws_set_opaque_user_data(r->wsi, r->srv);
		r->wsi = NULL;
	}
	free(r->rbody);
	r->rbody = NULL;
	r->rbody_len = r->rbody_cap = 0;
	if (r->self_ref != LUA_NOREF) {
		x->n_requests--;
		if (!x->finalizing) {
			core_unref(x->L, &r->req_ref);
			core_unref(x->L, &r->self_ref);
		}
		r->self_ref = LUA_NOREF;
	}
}

static void
request_dispatch(struct request *r)
{
	struct ctx *x = r->ctx;
	lua_State *L = x->L;
	struct server *s = r->srv;

	if (r->rbody) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, r->req_ref);
		lua_pushlstring(L, r->rbody, r->rbody_len);
		lua_setfield(L, -2, "body");
		lua_pop(L, 1);
		free(r->rbody);
		r->rbody = NULL;
		r->rbody_len = r->rbody_cap = 0;
	}
	r->state = REQ_WAITING;
	if (!s || core_dispatch_prepare(x, s->self_ref, "request")) {
		request_respond(r, 503, NULL, "server is not ready", 19);
		return;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->self_ref);
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->req_ref);
	if (core_call(x, 4, 0)) {
		/* the handler failed: 500, unless it already answered */
		if (r->state == REQ_WAITING)
			request_respond(r, 500, NULL, "internal server error", 21);
		return;
	}
	if (r->state == REQ_WAITING && r->wsi) {
		/* answered later: our deadline (a 503, LWS_CALLBACK_TIMER)
		 * replaces lws's 5 s, which would close without a word */
		lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
		if (r->timeout_s > 0)
			lws_set_timer_usecs(r->wsi, (lws_usec_t)r->timeout_s * LWS_USEC_PER_SEC);
	}
}

/* Deferred: lws re-arms its 5 s body timeout (PENDING_TIMEOUT_HTTP_CONTENT)
 * after every HTTP_BODY of a body it thinks is still coming, which a
 * decoded chunked body is: put ours back once the callback has returned. */
static void
request_fix_timeout(struct ctx *x, void *arg, int arg_ref)
{
	struct request *r = arg;

	(void)x;
	(void)arg_ref;
	r->fix_pending = 0;
	if (!r->wsi)
		return;
	if (r->state == REQ_WAITING)
		lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
	else if (r->state == REQ_RESPONDING)
		lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, 30);
}

static void
request_fix_timeout_soon(struct request *r)
{
	lua_State *L = r->ctx->L;

	if (r->fix_pending || !r->wsi || r->self_ref == LUA_NOREF)
		return;
	r->fix_pending = 1;
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->self_ref);
	core_defer(r->ctx, request_fix_timeout, r, luaL_ref(L, LUA_REGISTRYINDEX));
}

/* LWS_CALLBACK_TIMER: the deferred answer's deadline. "timeout" lets the
 * handler answer; otherwise 503 and close (the handler may still be
 * holding res: its later send() says "response already sent"). */
int
request_deadline(struct request *r)
{
	struct ctx *x = r->ctx;

	if (r->state != REQ_WAITING || !r->wsi)
		return 0;
	if (core_dispatch_prepare(x, r->self_ref, "timeout") == 0)
		core_call(x, 2, 0);
	if (r->state != REQ_WAITING || !r->wsi)
		return 0;
	r->close_after = 1;
	if (request_respond(r, 503, NULL, "request timed out", 17))
		return -1;
	return 0;
}

/* Queue the answer; it is written from HTTP_WRITEABLE. Copies body. */
int
request_respond(struct request *r, int status, const char *headers, const char *body,
		size_t blen)
{
	if (r->state != REQ_WAITING || !r->wsi)
		return -1;
	r->status = status;
	free(r->hdrs);
	r->hdrs = headers ? strdup(headers) : NULL;
	r->body = malloc(LWS_PRE + blen + 1);
	if (!r->body)
		return -1;
	memcpy(r->body + LWS_PRE, body, blen);
	r->body_len = blen;
	r->body_off = 0;
	r->state = REQ_RESPONDING;
	lws_set_timer_usecs(r->wsi, LWS_SET_TIMER_USEC_CANCEL);
	lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, 30);   /* to write it */
	lws_callback_on_writable(r->wsi);
	return 0;
}

static int
has_header(const char *hdrs, const char *name)
{
	size_t n = strlen(name);
	const char *p = hdrs;

	while (p && *p) {
		if (!strncasecmp(p, name, n) && p[n] == ':')
			return 1;
		p = strstr(p, "\r\n");
		if (p)
			p += 2;
	}
	return 0;
}

/* HTTP_WRITEABLE: headers first, then the body in pieces. Returns -1 to
 * close the connection. */
int
request_writeable(struct request *r)
{
	struct lws *wsi = r->wsi;

	if (r->state != REQ_RESPONDING || !wsi)
		return 0;
	if (!r->headers_sent) {
		size_t hl = r->hdrs ? strlen(r->hdrs) : 0, cap = LWS_PRE + 1024 + hl, dl;
		const char *date = http_date_line(&dl);
		unsigned char *buf = malloc(cap), *start, *p, *end;
		int n;

		if (!buf)
			return -1;
		start = p = buf + LWS_PRE;
		end = buf + cap - 1;
		if (lws_add_http_header_status(wsi, (unsigned)r->status, &p, end) ||
		    (!has_header(r->hdrs, "content-type") &&
		     lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
						  (unsigned char *)"text/plain; charset=utf-8", 25,
						  &p, end)) ||
		    (r->status != 304 && r->status >= 200 &&
		     lws_add_http_header_content_length(wsi, r->body_len, &p, end))) {
			free(buf);
			return -1;
		}
		if (!has_header(r->hdrs, "date")) {
			memcpy(p, date, dl);   /* RFC 9110 6.6.1: every response */
			p += dl;
		}
		if (hl) {
			memcpy(p, r->hdrs, hl);
			p += hl;
		}
		if (r->close_after) {
			static const char cc[] = "connection: close\r\n";

			memcpy(p, cc, sizeof(cc) - 1);
			p += sizeof(cc) - 1;
		}
		if (lws_finalize_http_header(wsi, &p, end)) {
			free(buf);
			return -1;
		}
		n = lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS);
		free(buf);
		if (n < 0)
			return -1;
		r->headers_sent = 1;
		if (r->head || !r->body_len || r->status == 304) {
			r->body_len = 0;
		} else {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	if (r->body_off < r->body_len) {
		size_t n = r->body_len - r->body_off;
		int final;

		if (n > BODY_PIECE)
			n = BODY_PIECE;
		final = r->body_off + n == r->body_len;
		/* lws_write needs LWS_PRE writable bytes before what it sends: for
		 * a later piece those are the tail of the previous one, already
		 * written, so they may be overwritten */
		if (lws_write(wsi, (unsigned char *)r->body + LWS_PRE + r->body_off, n,
			      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
			return -1;
		r->body_off += n;
		if (!final) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	/* done: the wsi is its server's again (keep-alive) */
	r->state = REQ_DONE;
	free(r->body);
	r->body = NULL;
	{
		/* a closing server lets in-flight requests finish, then hangs up */
		int close_after = r->close_after || (r->srv && r->srv->closing);

		request_release(r);
		if (close_after)
			return -1;
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		if (lws_http_transaction_completed(wsi))
			return -1;
	}
	return 0;
}

/* CLOSED_HTTP / WSI_DESTROY while the request is live */
void
request_closed(struct request *r)
{
	struct ctx *x = r->ctx;
	int was_waiting = r->state == REQ_WAITING || r->state == REQ_RESPONDING;

	if (r->state == REQ_CLOSED || r->state == REQ_DONE)
		return;
	r->state = REQ_CLOSED;
	if (r->wsi)
		lws_set_opaque_user_data(r->wsi, r->srv);
	r->wsi = NULL;
	free(r->body);
	r->body = NULL;
	if (was_waiting && core_dispatch_prepare(x, r->self_ref, "abort") == 0)
		core_call(x, 2, 0);
	request_release(r);
}

/* ---- from server_callback ------------------------------------------------ */

static int
reply_now(struct lws *wsi, int status, const char *msg)
{
	/* too early for a request object: answer and drop the connection */
	http_reply(wsi, status, "connection: close\r\n", msg, strlen(msg));
	return -1;
}

/* Is the header there at all (an empty value counts)? */
static int
hdr_present(struct lws *wsi, enum lws_token_indexes t)
{
	char one[2];

	return lws_hdr_total_length(wsi, t) > 0 ||
	       lws_hdr_copy_fragment(wsi, one, sizeof(one), t, 0) >= 0;
}

/* A copy of a header (all its lines, joined by ","), NUL-terminated. */
static char *
hdr_copy(struct lws *wsi, enum lws_token_indexes t, int *plen)
{
	int n = lws_hdr_total_length(wsi, t);
	char *b = malloc((size_t)n + 8);   /* lws adds a "," per extra line */

	if (!b)
		return NULL;
	n = lws_hdr_copy(wsi, b, n + 8, t);
	if (n < 0) {
		free(b);
		return NULL;
	}
	b[n] = '\0';
	*plen = (int)strlen(b);
	return b;
}

/* Methods whose body lws reads without a Content-Length (see the top). */
static int
takes_chunked(int m)
{
#if defined(LWS_WITH_HTTP_UNCOMMON_HEADERS)
	return m == LWSHUMETH_POST || m == LWSHUMETH_PUT || m == LWSHUMETH_PATCH;
#else
	return m == LWSHUMETH_POST;
#endif
}

/* lws stores a header name it does not recognise as a custom header:
 * "Transfer-Encoding : chunked" or a folded " Transfer-Encoding: chunked"
 * never reach the token lws frames by, but a proxy in front may take them
 * for the real thing. RFC 9112 5.1 and 5.2: 400. (lws 4.1.6 has no way to
 * walk its custom headers: these are the spellings request smuggling
 * scanners try.) */
static int
framing_name_disguised(struct lws *wsi)
{
	static const char *const names[] = {
		"transfer-encoding :", "transfer-encoding\t:", " transfer-encoding:",
		"\ttransfer-encoding:", "transfer-encoding  :", "content-length :",
		"content-length\t:", " content-length:", "\tcontent-length:", NULL
	};
	int i;

	for (i = 0; names[i]; i++)
		if (lws_hdr_custom_length(wsi, names[i], (int)strlen(names[i])) >= 0)
			return 1;
	return 0;
}

/* The request's framing, before anything is read (RFC 9112 6.1, 6.3).
 * Returns 0 with *clen (-1: none) and *chunked, or answers and returns -1.
 * A request framed two ways is refused, never guessed at: a proxy in
 * front may have framed it the other way and hidden a second request in
 * its body. */
static int
request_framing(struct lws *wsi, int m, lua_Integer *clen, int *chunked)
{
	char ver[16];
	int has_te = hdr_present(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
	int has_cl = hdr_present(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);

	*clen = -1;
	*chunked = 0;
	/* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host */
	if (lws_hdr_copy(wsi, ver, sizeof(ver), WSI_TOKEN_HTTP) > 0 && !strcmp(ver, "HTTP/1.1")) {
		char one[2];

		if (!hdr_present(wsi, WSI_TOKEN_HOST))
			return reply_now(wsi, 400, "missing Host header");
		if (lws_hdr_copy_fragment(wsi, one, sizeof(one), WSI_TOKEN_HOST, 1) >= 0 ||
		    lws_hdr_fragment_length(wsi, WSI_TOKEN_HOST, 1) > 0)
			return reply_now(wsi, 400, "more than one Host header");
	}
	if (has_te && has_cl)
		return reply_now(wsi, 400, "both Content-Length and Transfer-Encoding");
	if (framing_name_disguised(wsi))
		return reply_now(wsi, 400, "whitespace in a Transfer-Encoding or "
			       "Content-Length field name");
	if (has_cl) {
		uint64_t v;
		int n;
		char *cl = hdr_copy(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, &n);

		if (!cl)
			return reply_now(wsi, 400, "invalid Content-Length");
		n = proto_content_length(cl, (size_t)n, &v);
		free(cl);
		if (n)   /* not digits, or "5, 6" */
			return reply_now(wsi, 400, "invalid Content-Length");
		*clen = (lua_Integer)v;
	}
	if (has_te) {
		int n;
		char *te = hdr_copy(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, &n);

		n = te ? proto_transfer_encoding(te, (size_t)n) : PROTO_TE_BAD;
		free(te);
		if (n == PROTO_TE_UNSUPPORTED)
			return reply_now(wsi, 501, "unsupported Transfer-Encoding (only chunked is)");
		if (n != PROTO_TE_CHUNKED)
			return reply_now(wsi, 400, "invalid Transfer-Encoding");
		if (!takes_chunked(m))
			return reply_now(wsi, 411, "a chunked body needs POST, PUT or PATCH; "
				       "send Content-Length");
		*chunked = 1;
	}
	return 0;
}

/* LWS_CALLBACK_HTTP: a request whose headers are complete */
int
request_start(struct server *s, struct lws *wsi, void (*push_req)(lua_State *, struct lws *,
								     const char *))
{
	struct ctx *x = s->ctx;
	lua_State *L = x->L;
	char *uri = NULL;
	int ulen = 0, m = lws_http_get_uri_and_method(wsi, &uri, &ulen), chunked;
	lua_Integer clen;
	struct request *r;

	if (m < 0 || m == LWSHUMETH_CONNECT)
		return reply_now(wsi, 405, "method not allowed");
	if (request_framing(wsi, m, &clen, &chunked))
		return -1;
	if (clen > (lua_Integer)s->max_body)
		return reply_now(wsi, 413, "request body too large");

	r = lua_newuserdatauv(L, sizeof(*r), 0);
	memset(r, 0, sizeof(*r));
	luaL_setmetatable(L, REQUEST_MT);
	r->kind = KIND_REQUEST;
	r->ctx = x;
	r->srv = s;
	r->wsi = wsi;
	r->head = m == LWSHUMETH_HEAD;
	r->max_body = s->max_body;
	r->timeout_s = s->request_timeout;
	r->self_ref = core_ref_self(L, -1);
	lua_pop(L, 1);
	x->n_requests++;
	lws_set_opaque_user_data(wsi, r);
	push_req(L, wsi, method_names[m]);
	r->req_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	if (takes_chunked(m) && clen < 0)
		/* lws now reads everything after these headers as this
		 * request's body (see the top): no next request here */
		r->close_after = 1;
	if (clen > 0 || chunked) {
		char expect[32];

		/* curl waits 1 s for this before sending a body (docs/libwebsockets-4.1.md §1.2) */
		if (lws_hdr_copy(wsi, expect, sizeof(expect), WSI_TOKEN_HTTP_EXPECT) > 0 &&
		    !strcasecmp(expect, "100-continue")) {
			static unsigned char cont[LWS_PRE + 32];
			static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";

			memcpy(cont + LWS_PRE, msg, sizeof(msg) - 1);
			lws_write(wsi, cont + LWS_PRE, sizeof(msg) - 1, LWS_WRITE_HTTP_HEADERS);
		}
		r->chunked = (uint8_t)chunked;
		if (chunked)
			proto_chunked_init(&r->ck);
		r->state = REQ_BODY;
		return 0;   /* HTTP_BODY chunks follow */
	}
	if (m == LWSHUMETH_POST || m == LWSHUMETH_PUT || m == LWSHUMETH_PATCH) {
		/* no body, or none announced (RFC 9112 6.3: length zero) */
		r->rbody = malloc(1);
		if (!r->rbody) {
			request_release(r);
			return reply_now(wsi, 500, "out of memory");
		}
	}
	request_dispatch(r);
	return r->state == REQ_CLOSED ? -1 : 0;
}

/* Refuses the body being read: the answer says close, the rest is not read. */
static int
body_refused(struct request *r, int status, const char *msg)
{
	r->state = REQ_WAITING;
	r->close_after = 1;
	if (request_respond(r, status, NULL, msg, strlen(msg)))
		return -1;
	return 0;
}

static int
body_room(struct request *r, size_t len)
{
	if (r->rbody_len + len > r->rbody_cap) {
		size_t ncap = r->rbody_cap ? r->rbody_cap * 2 : 4096;
		char *nb;

		while (ncap < r->rbody_len + len)
			ncap *= 2;
		nb = realloc(r->rbody, ncap);
		if (!nb)
			return -1;
		r->rbody = nb;
		r->rbody_cap = ncap;
	}
	return 0;
}

/* a chunked body's raw bytes (framing included) */
static int
request_body_chunked(struct request *r, const void *in, size_t len)
{
	size_t out_len, used;
	int rc;

	/* the decoded data is never longer than what came in */
	if (body_room(r, len ? len : 1))
		return -1;
	rc = proto_chunked_decode(&r->ck, in, len, (unsigned char *)r->rbody + r->rbody_len,
				  &out_len, &used, r->max_body);
	r->rbody_len += out_len;
	switch (rc) {
	case PROTO_CHUNKED_MORE:
		return 0;
	case PROTO_CHUNKED_TOO_BIG:
		return body_refused(r, 413, "request body too large");
	case PROTO_CHUNKED_DONE:
		/* what follows (len - used bytes) would be a next request:
		 * dropped, this connection closes after the answer */
		request_fix_timeout_soon(r);
		request_dispatch(r);
		return 0;
	default:
		return body_refused(r, 400, "malformed chunked body");
	}
}

int
request_body(struct request *r, const void *in, size_t len)
{
	if (r->state != REQ_BODY) {
		/* bytes after a chunked or absent body: lws thinks they are
		 * body, and re-arms its 5 s timeout after this callback */
		if (r->close_after && r->wsi)
			request_fix_timeout_soon(r);
		return 0;
	}
	if (r->chunked)
		return request_body_chunked(r, in, len);
	if (len > r->max_body - r->rbody_len)
		/* a lying Content-Length: refuse while reading */
		return body_refused(r, 413, "request body too large");
	if (body_room(r, len))
		return -1;
	memcpy(r->rbody + r->rbody_len, in, len);
	r->rbody_len += len;
	return 0;
}

int
request_body_done(struct request *r)
{
	if (r->state != REQ_BODY)
		return 0;
	if (r->chunked)
		/* lws's 100 MiB are over and the chunked body is not */
		return body_refused(r, 413, "request body too large");
	if (!r->rbody) {
		r->rbody = malloc(1);
		if (!r->rbody)
			return -1;
	}
	request_dispatch(r);
	return 0;
}

/* ---- Lua methods ------------------------------------------------------- */

/* respond(status, headers, body) -> true | nil, err, code
 * headers: "Name: value\r\n" lines (the Lua layer builds and checks them) */
static int
req_respond(lua_State *L)
{
	struct request *r = request_check(L, 1);
	int status = (int)luaL_checkinteger(L, 2);
	const char *headers = luaL_optstring(L, 3, NULL);
	size_t blen = 0;
	const char *body = luaL_optlstring(L, 4, "", &blen);

	luaL_argcheck(L, status >= 100 && status <= 999, 2, "HTTP status must be 100-999");
	if (r->state == REQ_RESPONDING || r->state == REQ_DONE)
		return core_push_error(L, "response already sent", "sent");
	if (r->state != REQ_WAITING || !r->wsi)
		return core_push_error(L, "request is closed", "closed");
	if (request_respond(r, status, headers, body, blen))
		return core_push_error(L, "out of memory", "nomem");
	lua_pushboolean(L, 1);
	return 1;
}

/* set_timeout(seconds): deadline of a deferred answer (0: none) */
static int
req_set_timeout(lua_State *L)
{
	struct request *r = request_check(L, 1);
	lua_Integer s = luaL_checkinteger(L, 2);

	luaL_argcheck(L, s >= 0 && s <= 86400, 2, "timeout must be 0-86400 seconds");
	r->timeout_s = (int)s;
	if (r->wsi && r->state == REQ_WAITING)
		lws_set_timeout(r->wsi, s ? PENDING_TIMEOUT_USER_OK : NO_PENDING_TIMEOUT, (int)s);
	return 0;
}

static int
req_index(lua_State *L)
{
	struct request *r = request_check(L, 1);
	const char *k = lua_tostring(L, 2);

	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	if (!k)
		return 0;
	if (!strcmp(k, "sent")) {
		lua_pushboolean(L, r->state >= REQ_RESPONDING);
	} else if (!strcmp(k, "closed")) {
		lua_pushboolean(L, r->state == REQ_CLOSED);
	} else if (!strcmp(k, "request")) {
		if (r->req_ref == LUA_NOREF)
			return 0;
		lua_rawgeti(L, LUA_REGISTRYINDEX, r->req_ref);
	} else {
		return 0;
	}
	return 1;
}

static int
req_tostring(lua_State *L)
{
	static const char *const names[] = { "reading body", "waiting", "responding", "done",
					      "closed" };
	struct request *r = request_check(L, 1);

	lua_pushfstring(L, "lws.request (%s, %p)", names[r->state], r);
	return 1;
}

static int
req_gc(lua_State *L)
{
	struct request *r = lua_touserdata(L, 1);

	if (r->wsi)   /* only at lua_close */
		core_finalize_from_gc(r->ctx);
	free(r->body);
	free(r->hdrs);
	free(r->rbody);
	r->body = r->hdrs = r->rbody = NULL;
	return 0;
}

static const luaL_Reg req_methods[] = {
	{ "respond", req_respond },
	{ "set_timeout", req_set_timeout },
	{ NULL, NULL }
};

/* custom_header(req_or_conn, name) -> value | nil: a header lws has no
 * token for (X-Token …), readable while the request's headers are still
 * held: in a route handler, or in an upgrade's verify hook */
static int
l_custom_header(lua_State *L)
{
	size_t nl;
	const char *name = luaL_checklstring(L, 2, &nl);
	struct request *r = luaL_testudata(L, 1, REQUEST_MT);
	struct conn *c = luaL_testudata(L, 1, CONN_MT);
	struct lws *wsi = r ? r->wsi : c ? conn_handshake_wsi(c) : NULL;
	char key[128], *v;
	size_t i;
	int n;

	if (!r && !c)
		luaL_typeerror(L, 1, "lws.request or lws.conn");
	if (!wsi || nl == 0 || nl + 2 > sizeof(key))
		return 0;
	for (i = 0; i < nl; i++)   /* lws stores unknown names lower-cased */
		key[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	key[nl] = ':';
	key[nl + 1] = '\0';
	n = lws_hdr_custom_length(wsi, key, (int)nl + 1);
	if (n < 0)
		return 0;
	v = malloc((size_t)n + 1);
	if (!v)
		return luaL_error(L, "out of memory");
	n = lws_hdr_custom_copy(wsi, v, n + 1, key, (int)nl + 1);
	if (n >= 0)
		lua_pushlstring(L, v, (size_t)n);
	free(v);
	return n >= 0;
}

int
request_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__gc", req_gc }, { "__tostring", req_tostring }, { NULL, NULL }
	};

	core_new_type(L, REQUEST_MT, req_methods, req_index, meta, "request_methods");
	lua_pushcfunction(L, l_custom_header);
	lua_setfield(L, -2, "custom_header");
	return 0;
}
