/* request.c: lws.request, one HTTP transaction on a server's port (the
 * "res" a route handler answers), and its lifetime: created when the
 * headers are complete, handed to the Lua layer once its body is read,
 * the deadline of a deferred answer (lws would kill it silently at 5 s,
 * or a POST never: we answer 503 instead), completing the transaction or
 * closing after it, and its Lua methods. Framing and body reading are in
 * csrc/request_body.c, writing the answer in csrc/request_reply.c. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "http2.h"
#include "request.h"

#define REQUEST_MT "lws.request"

static const char *const method_names[] = {
	"GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD", "GET"
};

static struct request *
request_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, REQUEST_MT);
}

void *
request_home(const struct request *r)
{
	return r->owner->home;
}

int
request_on_h2(const struct request *r)
{
	return r->h2;
}

/* What the wsi's opaque pointer goes back to: its server for an HTTP/1.1
 * connection (keep-alive: the next request, csrc/server.c counts it);
 * nothing for an h2 stream, which carries one request and is not counted
 * (csrc/server.c finds its server through the network wsi). r->h2, not
 * http2_stream: when the stream closes lws may have unlinked it from its
 * connection already. */
static void *
wsi_home(const struct request *r)
{
	return r->h2 ? NULL : r->owner->home;
}

/* Detach from the wsi (the wsi goes back to being its server's) and unpin. */
static void
request_release(struct request *r)
{
	struct ctx *x = r->ctx;

	if (r->wsi) {
		lws_set_timer_usecs(r->wsi, LWS_SET_TIMER_USEC_CANCEL);
		lws_set_opaque_user_data(r->wsi, wsi_home(r));
		r->wsi = NULL;
	}
	free(r->rbody);
	r->rbody = NULL;
	r->rbody_len = r->rbody_cap = 0;
	if (r->h2_counted) {
		r->h2_counted = 0;
		if (--*r->owner->h2_in_flight == 0)
			r->owner->h2_all_done(r->owner->home);
	}
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
	if (core_dispatch_prepare(x, *r->owner->handler_ref, "request")) {
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

/* HTTP_WRITEABLE. Returns -1 to close the connection. */
int
request_writeable(struct request *r)
{
	struct lws *wsi = r->wsi;
	int n;

	if (r->state != REQ_RESPONDING || !wsi)
		return 0;
	n = request_write(r);
	if (n <= 0)
		return n;
	/* done: the wsi is its server's again (keep-alive) */
	r->state = REQ_DONE;
	free(r->body);
	r->body = NULL;
	{
		/* a closing server lets in-flight requests finish, then hangs
		 * up. An h2 stream is never closed under a body still coming
		 * (see request_reply_now): lws_http_transaction_completed
		 * drops the rest, then ends the stream. */
		int close_after = (r->close_after || *r->owner->closing) && !http2_stream(wsi);

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
		lws_set_opaque_user_data(r->wsi, wsi_home(r));
	r->wsi = NULL;
	free(r->body);
	r->body = NULL;
	if (was_waiting && core_dispatch_prepare(x, r->self_ref, "abort") == 0)
		core_call(x, 2, 0);
	request_release(r);
}

/* ---- from server_callback ------------------------------------------------ */

static int body_refused(struct request *r, int status, const char *msg);

/* LWS_CALLBACK_HTTP: a request whose headers are complete */
int
request_start(const struct request_owner *o, struct lws *wsi)
{
	struct ctx *x = core_ctx_of(wsi);
	lua_State *L = x->L;
	char *uri = NULL;
	int ulen = 0, m = lws_http_get_uri_and_method(wsi, &uri, &ulen), chunked;
	lua_Integer clen;
	struct request *r;
	int h2;

	if (m < 0 || m == LWSHUMETH_CONNECT)
		return request_reply_now(wsi, 405, "method not allowed");
	if (request_framing(wsi, m, &clen, &chunked))
		return -1;
	h2 = http2_stream(wsi);
	if (clen > (lua_Integer)o->max_body && !h2)
		return request_reply_now(wsi, 413, "request body too large");

	r = lua_newuserdatauv(L, sizeof(*r), 0);
	memset(r, 0, sizeof(*r));
	luaL_setmetatable(L, REQUEST_MT);
	r->kind = KIND_REQUEST;
	r->ctx = x;
	r->owner = o;
	r->wsi = wsi;
	r->head = m == LWSHUMETH_HEAD;
	r->h2 = r->h2_counted = (uint8_t)h2;
	*o->h2_in_flight += h2;
	r->max_body = o->max_body;
	r->timeout_s = o->timeout_s;
	r->self_ref = core_ref_self(L, -1);
	lua_pop(L, 1);
	x->n_requests++;
	lws_set_opaque_user_data(wsi, r);
	o->push_req(L, wsi, method_names[m]);
	r->req_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	if (request_takes_chunked(m) && clen < 0 && !h2)
		/* lws now reads everything after these headers as this
		 * request's body (see request_body.c): no next request here */
		r->close_after = 1;
	if (h2 && clen > (lua_Integer)o->max_body)
		return body_refused(r, 413, "request body too large");
	if (h2 && clen < 0 && (m == LWSHUMETH_POST || m == LWSHUMETH_PUT || m == LWSHUMETH_PATCH))
		/* lws 4.1.6 never tells the end of an h2 body without a length
		 * (its END_STREAM reaches no callback, docs/http2.md): refused
		 * rather than left waiting for request_timeout */
		return body_refused(r, 411, "a request body over HTTP/2 needs Content-Length");
	if (clen > 0 || chunked) {
		char expect[32];

		if (lws_hdr_copy(wsi, expect, sizeof(expect), WSI_TOKEN_HTTP_EXPECT) > 0 &&
		    !strcasecmp(expect, "100-continue"))
			request_continue(wsi);
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
			return request_reply_now(wsi, 500, "out of memory");
		}
	}
	request_dispatch(r);
	return r->state == REQ_CLOSED ? -1 : 0;
}

/* Refuses the body being read: the answer says close, the rest is not
 * read. On an h2 stream the answer goes out from HTTP_WRITEABLE (never
 * from the request's own callback, after which lws 4.1.6 ends the stream
 * at once) and lws then reads and drops the rest of the body before the
 * stream ends (request_writeable): lws answers DATA on a stream it has
 * closed with GOAWAY, which would end every other stream too. */
static int
body_refused(struct request *r, int status, const char *msg)
{
	r->state = REQ_WAITING;
	r->close_after = 1;
	if (request_respond(r, status, NULL, msg, strlen(msg)))
		return -1;
	return 0;
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
	switch (request_body_take(r, in, len)) {
	case BODY_MORE:
		return 0;
	case BODY_DONE:   /* a chunked body's last chunk */
		request_fix_timeout_soon(r);
		request_dispatch(r);
		return 0;
	case BODY_TOO_BIG:
		return body_refused(r, 413, "request body too large");
	case BODY_MALFORMED:
		return body_refused(r, 400, "malformed chunked body");
	default:
		return -1;
	}
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
