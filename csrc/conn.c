/* conn.c: lws.conn, one WebSocket connection (server or client side): the
 * object, its Lua methods and properties, lws's raw-role events for it,
 * and the lifetime rule: the userdata is pinned while its wsi lives, and
 * once lws closes it every method answers nil, "connection is closed"
 * and "close" has fired once. Every connection reads and writes its own
 * frames over lws's raw role (docs/websocket-framing.md): reading is
 * csrc/conn_read.c, the send queue, the writer and closing
 * csrc/conn_write.c; lws keeps the sockets, TLS (but a wss:// client's,
 * csrc/tls_client.c), HTTP and the loop. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "conn_private.h"
#include "tls_client.h"

static const char *const state_names[] = { "CONNECTING", "OPEN", "CLOSING", "CLOSED" };

struct conn *
conn_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, CONN_MT);
}

struct conn *
conn_new(lua_State *L, struct ctx *x)
{
	/* user values: 1 the fields table, 2 the message handler (below) */
	struct conn *c = lua_newuserdatauv(L, sizeof(*c), 2);

	memset(c, 0, sizeof(*c));
	c->kind = KIND_CONN;
	c->ctx = x;
	c->self_ref = LUA_NOREF;
	c->state = CONN_CONNECTING;
	c->max_message = CONN_MAX_MESSAGE_DEFAULT;
	c->max_queue = CONN_MAX_QUEUE_DEFAULT;
	c->close_timeout = CONN_CLOSE_TIMEOUT_DEFAULT;
	luaL_setmetatable(L, CONN_MT);
	return c;
}

void
conn_attach(struct conn *c, struct lws *wsi)
{
	lua_State *L = c->ctx->L;

	c->wsi = wsi;
	lws_set_opaque_user_data(wsi, c);
	if (c->self_ref == LUA_NOREF) {
		c->self_ref = core_ref_self(L, -1);
		c->ctx->n_conns++;
	}
}

/* After our 101, lws takes the request as answered and gives the wsi its
 * HTTP keep-alive timeout (lws_http_transaction_completed): on the next
 * turn, a connection waiting for its first frame has no timeout but ours */
static void
own_settle(struct ctx *x, void *arg, int arg_ref)
{
	struct conn *c = arg;

	(void)x;
	(void)arg_ref;   /* kept the userdata alive until now */
	if (!c->wsi || c->raw)
		return;
	if (c->state == CONN_CLOSING)
		conn_arm_backstop(c);
	else
		lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
}

/* The upgrade was answered with our own 101 (from the upgrade request's
 * LWS_CALLBACK_HTTP): from now on the frames are ours. The wsi stays in lws's h1 role until
 * the client's first bytes, which are not HTTP, make lws hand it to the
 * raw role (LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG, set
 * on our server vhosts by csrc/server.c) */
void
conn_own_framing(struct conn *c)
{
	lua_State *L = c->ctx->L;

	c->own = 1;
	frame_rx_init(&c->fr, !c->is_client, c->z != NULL);
	if (c->is_client)
		return;   /* a raw socket from the start (csrc/client.c) */
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
	core_defer(c->ctx, own_settle, c, luaL_ref(L, LUA_REGISTRYINDEX));
}

/* the wsi whose request headers are still readable: a server connection
 * between its upgrade request and ESTABLISHED (the verify hook), else NULL */
struct lws *
conn_handshake_wsi(struct conn *c)
{
	return c->state == CONN_CONNECTING ? c->wsi : NULL;
}

int
conn_callback(struct conn *c, enum lws_callback_reasons reason, void *in, size_t len)
{
	if (!c->own || c->hs)
		return CONN_NOT_HANDLED;   /* the handshake is its owner's */
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:   /* a server's client sent its first bytes: now raw */
		c->raw = 1;
		if (c->state == CONN_CLOSING)
			conn_arm_backstop(c);   /* lws cleared the wsi's timeout */
		return 0;
	case LWS_CALLBACK_RAW_RX:   /* a wss:// client's bytes are csrc/client.c's to decrypt */
		return c->tls ? CONN_NOT_HANDLED : conn_own_rx(c, in, len);
	case LWS_CALLBACK_RAW_WRITEABLE:
	case LWS_CALLBACK_HTTP_WRITEABLE:   /* before the first bytes */
		return conn_own_writeable(c);
	case LWS_CALLBACK_RAW_CLOSE:
	case LWS_CALLBACK_CLOSED_HTTP:
		conn_finalize(c, NULL);
		return 0;
	case LWS_CALLBACK_HTTP:
		/* the upgrade request itself, for its owner to answer
		 * (csrc/server.c server_switch); any later one is HTTP after
		 * the upgrade: not a WebSocket peer */
		return c->state == CONN_CONNECTING ? CONN_NOT_HANDLED : -1;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return -1;
	default:
		return CONN_NOT_HANDLED;
	}
}

/* ---- the end ------------------------------------------------------------- */

/* CLOSED / CLIENT_CLOSED / CONNECTION_ERROR / WSI_DESTROY: idempotent.
 * Reports close(code, reason, was_clean) once and unpins the userdata. */
void
conn_finalize(struct conn *c, const char *why)
{
	struct ctx *x = c->ctx;
	lua_State *L = x->L;
	uint16_t code;
	const char *reason;
	int clean = 0, ref = c->self_ref;

	conn_flush_unlist(c);
	lws_sul_cancel(&c->sul_drain);   /* a node of the context's timer list */
	pmd_free(c->z);
	c->z = NULL;
	tls_client_free(c->tls);
	c->tls = NULL;
	free(c->ztx);
	c->ztx = NULL;
	if (c->state == CONN_CLOSED && !c->wsi)
		return;
	/* a server-side wsi stays homed at its server until WSI_DESTROY */
	if (c->wsi)
		lws_set_opaque_user_data(c->wsi, c->srv);
	c->wsi = NULL;
	if (c->got_peer_close) {
		code = c->peer_code;
		reason = c->peer_reason;
		clean = 1;
	} else if (c->close_sent) {
		code = c->close_code;
		reason = c->close_reason;
		clean = !c->fail;
	} else {
		code = 1006;
		reason = why ? why : "";
		if (c->close_code == 1006 && c->close_reason_len)
			reason = c->close_reason;
	}
	{
		int was_open = c->state != CONN_CONNECTING;

		c->state = CONN_CLOSED;
		conn_sendq_clear(c);
		conn_pings_clear(c);
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = c->rlen = 0;
		if (c->gone)
			c->gone(c);
		if (was_open && core_dispatch_prepare(x, ref, "close") == 0) {
			lua_pushinteger(L, code);
			lua_pushstring(L, reason);
			lua_pushboolean(L, clean);
			core_call(x, 5, 0);
		}
	}
	if (c->self_ref != LUA_NOREF) {
		x->n_conns--;
		if (!x->finalizing)
			core_unref(L, &c->self_ref);
		c->self_ref = LUA_NOREF;
	}
}

/* An upgrade we refused, or one lws failed before ESTABLISHED. */
void
conn_release_unopened(struct conn *c)
{
	c->state = CONN_CLOSED;
	conn_finalize(c, NULL);
}

/* ---- Lua methods --------------------------------------------------------- */

static int
closed_error(lua_State *L, struct conn *c)
{
	return core_push_error(L, c->state == CONN_CLOSING ? "connection is closing" :
			       c->state == CONN_CONNECTING ? "connection is not open yet" :
			       "connection is closed", "closed");
}

/* send(data[, binary[, key]]) -> true | nil, err, code
 * key: a conflation key; a queued message with the same key that has not
 * started to leave is replaced by this one (latest value wins) */
static int
conn_send(lua_State *L)
{
	struct conn *c = conn_check(L, 1);
	size_t len, klen = 0;
	const char *p = luaL_checklstring(L, 2, &len);
	int binary = lua_toboolean(L, 3), rc;
	const char *key = luaL_optlstring(L, 4, NULL, &klen);
	size_t queued = c->qbytes;
	struct msgbuf *m;

	if (c->state != CONN_OPEN || !c->wsi)
		return closed_error(L, c);
	m = msgbuf_new(p, len, binary);
	if (!m || (key && msgbuf_set_key(m, key, klen))) {
		msgbuf_unref(m);
		return core_push_error(L, "out of memory", "nomem");
	}
	rc = conn_offer(c, m);
	if (rc) {
		msgbuf_unref(m);
		if (rc < 0)
			return core_push_error(L, "out of memory", "nomem");
		lua_pushnil(L);
		lua_pushfstring(L, "send queue full (%I bytes queued, limit %I)",
				(lua_Integer)queued, (lua_Integer)c->max_queue);
		lua_pushliteral(L, "full");
		return 3;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* send_many(set, data[, binary[, except[, opts]]]) -> queued, refused
 * Queues ONE shared buffer to every open connection that is a key of set
 * (broadcast and topics: encoded once, no per-recipient copy).
 * opts: { key = conflation key, droppable = bool } */
static int
l_send_many(lua_State *L)
{
	size_t len, klen = 0;
	const char *p, *key = NULL;
	int binary, droppable = 0;
	struct conn *except = NULL;
	struct msgbuf *m;
	lua_Integer queued = 0, refused = 0;

	luaL_checktype(L, 1, LUA_TTABLE);
	p = luaL_checklstring(L, 2, &len);
	binary = lua_toboolean(L, 3);
	if (!lua_isnoneornil(L, 4))
		except = conn_check(L, 4);
	if (!lua_isnoneornil(L, 5)) {
		luaL_checktype(L, 5, LUA_TTABLE);
		key = core_opt_str_field(L, 5, "key", NULL);
		if (key)
			klen = strlen(key);
		droppable = core_opt_bool_field(L, 5, "droppable", 0);
	}
	m = msgbuf_new(p, len, binary);
	if (!m || (key && msgbuf_set_key(m, key, klen))) {
		msgbuf_unref(m);
		return luaL_error(L, "out of memory");
	}
	m->droppable = (uint8_t)droppable;
	m->refs = 0;   /* one per queue it joins */
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		struct conn *c = luaL_testudata(L, -2, CONN_MT);

		lua_pop(L, 1);
		if (!c || c == except || c->state != CONN_OPEN || !c->wsi)
			continue;
		m->refs++;
		if (conn_offer(c, m)) {
			m->refs--;
			refused++;
		} else {
			queued++;
		}
	}
	if (m->refs == 0) {
		m->refs = 1;
		msgbuf_unref(m);
	}
	lua_pushinteger(L, queued);
	lua_pushinteger(L, refused);
	return 2;
}

/* ping([payload]) -> true | nil, err, code; payload <= 125 bytes */
static int
conn_ping(lua_State *L)
{
	struct conn *c = conn_check(L, 1);
	size_t len = 0;
	const char *p = luaL_optlstring(L, 2, "", &len);

	luaL_argcheck(L, len <= 125, 2, "ping payload longer than 125 bytes");
	struct conn_ping *ping;

	if (c->state != CONN_OPEN || !c->wsi)
		return closed_error(L, c);
	if (c->ping_pending >= CONN_PINGS_MAX)
		return core_push_error(L, "too many pings waiting to be sent", "busy");
	ping = malloc(sizeof(*ping));
	if (!ping)
		return core_push_error(L, "out of memory", "nomem");
	ping->next = NULL;
	ping->len = (uint8_t)len;
	memcpy(ping->buf + LWS_PRE, p, len);
	if (c->pings_tail)
		c->pings_tail->next = ping;
	else
		c->pings = ping;
	c->pings_tail = ping;
	c->ping_pending++;
	if (c->own)
		conn_want_write(c);
	else
		conn_ask_writable(c);
	lua_pushboolean(L, 1);
	return 1;
}

static void
check_close_args(lua_State *L, int *code, const char **reason, size_t *rlen)
{
	lua_Integer v = luaL_optinteger(L, 2, 1000);

	*reason = luaL_optlstring(L, 3, "", rlen);
	*code = v >= 0 && v <= 65535 ? (int)v : 0;   /* range first: no wrap-around */
	luaL_argcheck(L, proto_close_code_sendable((unsigned)*code), 2,
		      "close code must be 1000-1003, 1007-1014 or 3000-4999");
	luaL_argcheck(L, *rlen <= 123, 3, "close reason longer than 123 bytes");
	luaL_argcheck(L, proto_utf8_valid((const unsigned char *)*reason, *rlen), 3,
		      "close reason is not valid UTF-8");
}

/* close([code[, reason]]) -> true | nil, err, "closed": graceful; true
 * again while the close is under way, the closed error once it is done */
static int
conn_close(lua_State *L)
{
	struct conn *c = conn_check(L, 1);
	const char *reason;
	size_t rlen;
	int code;

	check_close_args(L, &code, &reason, &rlen);
	if (c->state == CONN_CLOSED || !c->wsi)
		return closed_error(L, c);
	if (c->state == CONN_OPEN)
		conn_request_close(c, (uint16_t)code, reason, rlen);
	lua_pushboolean(L, 1);
	return 1;
}

/* terminate([reason]): drop the TCP connection now; reported as 1006 */
static int
conn_terminate(lua_State *L)
{
	struct conn *c = conn_check(L, 1);
	size_t rlen = 0;
	const char *reason = luaL_optlstring(L, 2, "", &rlen);

	if (c->state < CONN_CLOSED && c->wsi) {
		conn_abort(c);
		conn_set_close(c, 1006, reason, rlen);
	}
	return 0;
}

/* pause() / resume(): stop and restart reading from the peer (TCP
 * backpressure does the rest) */
static int
conn_pause(lua_State *L)
{
	struct conn *c = conn_check(L, 1);

	if (c->wsi && c->state == CONN_OPEN)
		lws_rx_flow_control(c->wsi, 0);
	return 0;
}

static int
conn_resume(lua_State *L)
{
	struct conn *c = conn_check(L, 1);

	if (c->wsi && c->state == CONN_OPEN && !c->rx_failed)
		lws_rx_flow_control(c->wsi, 1);
	return 0;
}

/* set_limits{ max_message_size = , max_queue_bytes = , close_timeout = } */
static int
conn_set_limits(lua_State *L)
{
	static const char *const fields[] = { "max_message_size", "max_queue_bytes",
					      "close_timeout", NULL };
	struct conn *c = conn_check(L, 1);

	luaL_checktype(L, 2, LUA_TTABLE);
	core_check_fields(L, 2, fields);
	c->max_message = (size_t)core_opt_int_field(L, 2, "max_message_size",
						    (lua_Integer)c->max_message, 0, (lua_Integer)1 << 40);
	c->max_queue = (size_t)core_opt_int_field(L, 2, "max_queue_bytes",
						  (lua_Integer)c->max_queue, 0, (lua_Integer)1 << 40);
	c->close_timeout = (int)core_opt_int_field(L, 2, "close_timeout", c->close_timeout, 1,
						   3600);
	return 0;
}

/* stats() -> { messages_in, messages_out, bytes_in, bytes_out } */
static int
conn_stats(lua_State *L)
{
	struct conn *c = conn_check(L, 1);

	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)c->msgs_in);
	lua_setfield(L, -2, "messages_in");
	lua_pushinteger(L, (lua_Integer)c->msgs_out);
	lua_setfield(L, -2, "messages_out");
	lua_pushinteger(L, (lua_Integer)c->bytes_in);
	lua_setfield(L, -2, "bytes_in");
	lua_pushinteger(L, (lua_Integer)c->bytes_out);
	lua_setfield(L, -2, "bytes_out");
	lua_pushinteger(L, (lua_Integer)c->drops);
	lua_setfield(L, -2, "dropped");
	return 1;
}

/* fields() -> the per-connection Lua table (handlers, user data) */
static int
conn_fields(lua_State *L)
{
	conn_check(L, 1);
	core_push_fields(L, 1);
	return 1;
}

static int
push_prop(lua_State *L, struct conn *c, const char *k)
{
	if (!strcmp(k, "readyState")) {
		lua_pushinteger(L, c->state);
	} else if (!strcmp(k, "bufferedAmount")) {
		lua_pushinteger(L, (lua_Integer)c->qbytes);
	} else if (!strcmp(k, "protocol")) {
		lua_pushstring(L, c->protocol ? c->protocol : "");
	} else if (!strcmp(k, "extensions")) {
		lua_pushstring(L, c->pmd ? "permessage-deflate" : "");
	} else if (!strcmp(k, "state")) {
		lua_pushstring(L, state_names[c->state]);
	} else if (!strcmp(k, "last_activity")) {
		/* when the peer last sent anything, in lws.now() milliseconds */
		lua_pushnumber(L, (lua_Number)c->last_rx / 1000.0);
	} else if (!strcmp(k, "is_client")) {
		lua_pushboolean(L, c->is_client);
	} else if (!strcmp(k, "remote_address")) {
		char buf[64];

		if (!c->wsi || !lws_get_peer_simple(c->wsi, buf, sizeof(buf)))
			return 0;
		lua_pushstring(L, buf);
	} else {
		return 0;
	}
	return 1;
}

static int
conn_index(lua_State *L)
{
	struct conn *c = lua_touserdata(L, 1);

	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	if (lua_type(L, 2) == LUA_TSTRING && push_prop(L, c, lua_tostring(L, 2)))
		return 1;
	if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE)
		return 0;
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

static int
conn_newindex(lua_State *L)
{
	struct conn *c = lua_touserdata(L, 1);

	if (lua_type(L, 2) == LUA_TSTRING && push_prop(L, c, lua_tostring(L, 2)))
		luaL_error(L, "'%s' is read-only", lua_tostring(L, 2));
	return core_fields_newindex(L);
}

static int
conn_tostring(lua_State *L)
{
	struct conn *c = conn_check(L, 1);

	lua_pushfstring(L, "lws.conn (%s%s, %p)", c->is_client ? "client, " : "",
			state_names[c->state], c);
	return 1;
}

static int
conn_gc(lua_State *L)
{
	struct conn *c = lua_touserdata(L, 1);

	conn_flush_unlist(c);
	if (c->wsi) {
		/* only at lua_close (we are pinned otherwise) */
		core_finalize_from_gc(c->ctx);
		if (c->wsi)
			lws_set_opaque_user_data(c->wsi, NULL);
		c->wsi = NULL;
	}
	conn_sendq_clear(c);
	conn_pings_clear(c);
	free(c->rbuf);
	c->rbuf = NULL;
	free(c->protocol);
	c->protocol = NULL;
	free(c->extra_headers);
	c->extra_headers = NULL;
	return 0;
}

static const luaL_Reg conn_methods[] = {
	{ "send", conn_send },
	{ "ping", conn_ping },
	{ "close", conn_close },
	{ "terminate", conn_terminate },
	{ "pause", conn_pause },
	{ "resume", conn_resume },
	{ "set_limits", conn_set_limits },
	{ "stats", conn_stats },
	{ "fields", conn_fields },
	{ NULL, NULL }
};

/* conn_message_handler(conn, fn | nil): the one handler "message" calls
 * without the generic dispatch. The Lua layer (lua/lws/server.lua) sets it
 * whenever the connection's "message" handlers change; nil: dispatch. */
static int
l_conn_message_handler(lua_State *L)
{
	conn_check(L, 1);
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	lua_setiuservalue(L, 1, 2);
	return 0;
}

int
conn_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__newindex", conn_newindex }, { "__gc", conn_gc },
		{ "__tostring", conn_tostring }, { NULL, NULL }
	};

	core_new_type(L, CONN_MT, conn_methods, conn_index, meta, "conn_methods");
	core_on_turn(core_state(L), conn_flush_all);   /* writes leave before each poll */
	lua_pushcfunction(L, l_send_many);
	lua_setfield(L, -2, "send_many");
	lua_pushcfunction(L, l_conn_message_handler);
	lua_setfield(L, -2, "conn_message_handler");
	return 0;
}
