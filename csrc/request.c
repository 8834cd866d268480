/* request.c: lws.request, one HTTP transaction on a server's port (the
 * "res" a route handler answers). Owns reading the body under a size
 * limit, the deadline of a deferred answer (lws would kill it at 5 s, or a
 * POST never: notes 1.2), and writing status, headers and body from
 * HTTP_WRITEABLE, in 64 KiB pieces, before completing the transaction. */
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
		/* answered later: our deadline replaces lws's 5 s */
		if (r->timeout_s > 0)
			lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, r->timeout_s);
		else
			lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
	}
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
		size_t hl = r->hdrs ? strlen(r->hdrs) : 0, cap = LWS_PRE + 1024 + hl;
		unsigned char *buf = malloc(cap), *start = buf + LWS_PRE, *p = start,
			      *end = buf + cap - 1;
		int n;

		if (!buf)
			return -1;
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
	server_http_reply(wsi, status, "connection: close\r\n", msg, strlen(msg));
	return -1;
}

/* LWS_CALLBACK_HTTP: a request whose headers are complete */
int
request_start(struct server *s, struct lws *wsi, void (*push_req)(lua_State *, struct lws *,
								     const char *))
{
	struct ctx *x = s->ctx;
	lua_State *L = x->L;
	char *uri = NULL, cl[32];
	int ulen = 0, m = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	lua_Integer clen = -1;
	struct request *r;

	if (m < 0 || m == LWSHUMETH_CONNECT)
		return reply_now(wsi, 405, "method not allowed");
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
		char *end;

		clen = strtoll(cl, &end, 10);
		if (*end || clen < 0)
			return reply_now(wsi, 400, "invalid Content-Length");
	}
	if (m == LWSHUMETH_POST || m == LWSHUMETH_PUT || m == LWSHUMETH_PATCH) {
		/* lws reads only Content-Length bodies; without one it would
		 * take the next pipelined request for a body */
		if (clen < 0)
			return reply_now(wsi, 411, "Content-Length required");
	}
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
	if (clen > 0) {
		char expect[32];

		/* curl waits 1 s for this before sending a body (notes 1.2) */
		if (lws_hdr_copy(wsi, expect, sizeof(expect), WSI_TOKEN_HTTP_EXPECT) > 0 &&
		    !strcasecmp(expect, "100-continue")) {
			static unsigned char cont[LWS_PRE + 32];
			static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";

			memcpy(cont + LWS_PRE, msg, sizeof(msg) - 1);
			lws_write(wsi, cont + LWS_PRE, sizeof(msg) - 1, LWS_WRITE_HTTP_HEADERS);
		}
		r->state = REQ_BODY;
		return 0;   /* HTTP_BODY chunks follow */
	}
	request_dispatch(r);
	return r->state == REQ_CLOSED ? -1 : 0;
}

int
request_body(struct request *r, const void *in, size_t len)
{
	if (r->state != REQ_BODY)
		return 0;
	if (len > r->max_body - r->rbody_len) {
		/* a lying Content-Length: refuse while reading */
		r->state = REQ_WAITING;
		r->close_after = 1;
		request_respond(r, 413, NULL, "request body too large", 22);
		return 0;
	}
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
	memcpy(r->rbody + r->rbody_len, in, len);
	r->rbody_len += len;
	return 0;
}

int
request_body_done(struct request *r)
{
	if (r->state != REQ_BODY)
		return 0;
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

int
request_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__gc", req_gc }, { "__tostring", req_tostring }, { NULL, NULL }
	};

	core_new_type(L, REQUEST_MT, req_methods, req_index, meta, "request_methods");
	return 0;
}
