/* conn_lua.c: lws.conn as Lua sees it: the methods (send, send_many,
 * ping, close, terminate, pause, resume, set_limits, stats), the
 * properties read from C (state, bufferedAmount, protocol, …), the
 * message fast path's handler (user value 2, set by one call from the
 * Lua layer: conn_message_handler) and the type's registration. The
 * object and its lifetime are csrc/conn.c's. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "conn.h"
#include "conn_private.h"

static const char *const state_names[] = { "CONNECTING", "OPEN", "CLOSING", "CLOSED" };

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

/* One shared buffer for many connections (broadcast and topics: encoded
 * once, no per-recipient copy): data, binary, except, opts at idx..idx+3,
 * opts = { key = conflation key, droppable = bool } */
struct msgbuf *
conn_many_begin(lua_State *L, int idx, struct conn **except)
{
	size_t len, klen = 0;
	const char *p = luaL_checklstring(L, idx, &len), *key = NULL;
	int binary = lua_toboolean(L, idx + 1), droppable = 0;
	struct msgbuf *m;

	*except = lua_isnoneornil(L, idx + 2) ? NULL : conn_check(L, idx + 2);
	if (!lua_isnoneornil(L, idx + 3)) {
		luaL_checktype(L, idx + 3, LUA_TTABLE);
		key = core_opt_str_field(L, idx + 3, "key", NULL);
		if (key)
			klen = strlen(key);
		droppable = core_opt_bool_field(L, idx + 3, "droppable", 0);
	}
	m = msgbuf_new(p, len, binary);
	if (!m || (key && msgbuf_set_key(m, key, klen))) {
		msgbuf_unref(m);
		luaL_error(L, "out of memory");
	}
	m->droppable = (uint8_t)droppable;
	m->refs = 0;   /* one per queue it joins */
	return m;
}

void
conn_many_offer(struct conn *c, struct msgbuf *m, struct conn_many *n)
{
	if (c == n->except || c->state != CONN_OPEN || !c->wsi)
		return;
	m->refs++;
	if (conn_offer(c, m)) {
		m->refs--;
		n->refused++;
	} else {
		n->queued++;
	}
}

int
conn_many_end(lua_State *L, struct msgbuf *m, const struct conn_many *n)
{
	if (m->refs == 0) {
		m->refs = 1;
		msgbuf_unref(m);
	}
	lua_pushinteger(L, n->queued);
	lua_pushinteger(L, n->refused);
	return 2;
}

/* send_many(set, data[, binary[, except[, opts]]]) -> queued, refused:
 * to every open connection that is a key of set (a topic's subscribers;
 * a server's own connections: server:send_all) */
static int
l_send_many(lua_State *L)
{
	struct conn_many n = { 0 };
	struct msgbuf *m;

	luaL_checktype(L, 1, LUA_TTABLE);
	m = conn_many_begin(L, 2, &n.except);
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		struct conn *c = luaL_testudata(L, -2, CONN_MT);

		lua_pop(L, 1);
		if (c)
			conn_many_offer(c, m, &n);
	}
	return conn_many_end(L, m, &n);
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
	ping->len = (uint8_t)len;
	memcpy(ping->buf + LWS_PRE, p, len);
	conn_ping_append(&c->pings, ping);
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
	c->close_timeout = (uint16_t)core_opt_int_field(L, 2, "close_timeout", c->close_timeout, 1,
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
		lua_pushstring(L, c->z ? "permessage-deflate" : "");
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
	return core_fields_get(L);
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
	free(c->rbuf);   /* or the 101's header lines: one slot */
	c->rbuf = NULL;
	free(c->protocol);
	c->protocol = NULL;
	conn_z_free(c);
	conn_reason_set(&c->close_reason, NULL, 0);
	conn_reason_set(&c->peer_reason, NULL, 0);
	frame_rx_free(&c->fr);
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

/* conn_sizes() -> { conn = , userdata = }: what a connection's own memory
 * is made of, for the accounting bench/README.md gives and
 * spec/memory_accounting_spec.lua keeps true. The userdata is Lua's block:
 * its header, two user values (fields, the message fast path) and ours. */
static int
l_conn_sizes(lua_State *L)
{
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, (lua_Integer)sizeof(struct conn));
	lua_setfield(L, -2, "conn");
	lua_pushinteger(L, (lua_Integer)(sizeof(struct conn) + 40 + 2 * 16));
	lua_setfield(L, -2, "userdata");
	return 1;
}

int
conn_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__newindex", conn_newindex }, { "__gc", conn_gc },
		{ "__tostring", conn_tostring }, { NULL, NULL }
	};

	core_new_type(L, CONN_MT, conn_methods, conn_index, meta, "conn_methods");
	conn_mt_remember(L);
	core_on_turn(core_state(L), conn_flush_all);   /* writes leave before each poll */
	lua_pushcfunction(L, l_send_many);
	lua_setfield(L, -2, "send_many");
	lua_pushcfunction(L, l_conn_message_handler);
	lua_setfield(L, -2, "conn_message_handler");
	lua_pushcfunction(L, l_conn_sizes);
	lua_setfield(L, -2, "conn_sizes");
	return 0;
}
