/* conn.c: lws.conn, one WebSocket connection (server or client side): the
 * object, what its owner may do with it (csrc/conn.h), lws's raw-role
 * events for it, and the lifetime rule: the userdata is pinned while its wsi lives, and
 * once lws closes it every method answers nil, "connection is closed"
 * and "close" has fired once. Every connection reads and writes its own
 * frames over lws's raw role (docs/websocket-framing.md): reading is
 * csrc/conn_read.c, the send queue, the writer and closing
 * csrc/conn_write.c, the Lua methods csrc/conn_lua.c; lws keeps the sockets, TLS (but a wss:// client's,
 * csrc/tls_client.c), HTTP and the loop. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "conn.h"
#include "conn_private.h"
#include "tls_client.h"

/* The connection metatable this thread saw last: a live Lua state's, or
 * NULL. conn_check runs on every method call (ws:send per message):
 * comparing the metatable's address costs a fraction of luaL_checkudata's
 * name lookup in the registry (callgrind: ~70 against ~300 instructions).
 * Only a connection has that metatable, and while its state lives no
 * other object can have its address; every state's close forgets it
 * (mt_forget), so the address is never a dead state's. */
static _Thread_local const void *conn_mt_seen;

static int
mt_forget(lua_State *L)
{
	(void)L;
	conn_mt_seen = NULL;
	return 0;
}

static void
mt_see(lua_State *L, int idx)
{
	if (lua_getmetatable(L, idx)) {
		conn_mt_seen = lua_topointer(L, -1);
		lua_pop(L, 1);
	}
}

/* after the type is made (csrc/conn_lua.c): a sentinel whose __gc runs
 * when this state closes */
void
conn_mt_remember(lua_State *L)
{
	static const char sentinel_key;

	lua_newuserdatauv(L, 1, 0);
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, mt_forget);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &sentinel_key);
	conn_mt_seen = NULL;
}

struct conn *
conn_check(lua_State *L, int idx)
{
	void *p = lua_touserdata(L, idx);

	if (p && conn_mt_seen && lua_getmetatable(L, idx)) {
		int same = lua_topointer(L, -1) == conn_mt_seen;

		lua_pop(L, 1);
		if (same)
			return p;
	}
	p = luaL_checkudata(L, idx, CONN_MT);   /* raises its usual error */
	mt_see(L, idx);
	return p;
}

struct conn *
conn_new(lua_State *L, struct ctx *x, const struct conn_owner *o)
{
	/* user values: 1 the fields table, 2 the message handler (below) */
	struct conn *c = lua_newuserdatauv(L, sizeof(*c), 2);

	memset(c, 0, sizeof(*c));
	c->kind = KIND_CONN;
	c->ctx = x;
	c->self_ref = LUA_NOREF;
	c->state = CONN_CONNECTING;
	c->owner = o->data;
	c->homed = !!o->homed;
	c->gone = o->gone;
	c->max_message = o->max_message;
	c->max_queue = o->max_queue;
	c->close_timeout = (uint16_t)o->close_timeout;   /* 1..3600: checked by the owner */
	c->close_on_full = !!o->close_on_full;
	c->is_client = o->is_client;
	luaL_setmetatable(L, CONN_MT);
	return c;
}

/* NULL once the connection's close has been reported: the owner may be
 * gone then (a client's handshake state is freed by its gone call, a
 * server may be collected while a closed connection is still held) */
void *
conn_owner_data(const struct conn *c)
{
	return c->owner;
}

int
conn_is_client(const struct conn *c)
{
	return c->is_client;
}

/* pins the userdata on top of the stack while lws may hand us its wsi */
void
conn_pin(struct conn *c)
{
	if (c->self_ref == LUA_NOREF) {
		c->self_ref = core_ref_self(c->ctx->L, -1);
		c->ctx->n_conns++;
	}
}

void
conn_attach(struct conn *c, struct lws *wsi)
{
	c->wsi = wsi;
	lws_set_opaque_user_data(wsi, c);
	conn_pin(c);
}

void
conn_push(struct conn *c)
{
	lua_rawgeti(c->ctx->L, LUA_REGISTRYINDEX, c->self_ref);
}

struct lws **
conn_wsi_slot(struct conn *c)
{
	return &c->wsi;
}

struct lws *
conn_wsi(const struct conn *c)
{
	return c->wsi;
}

enum conn_state
conn_state(const struct conn *c)
{
	return (enum conn_state)c->state;
}

/* anything came from the peer after the handshake (c->last_rx is 0 until
 * ESTABLISHED) */
int
conn_was_established(const struct conn *c)
{
	return c->last_rx != 0;
}

void
conn_counts_add(const struct conn *c, struct conn_counts *t)
{
	t->msgs_in += c->msgs_in;
	t->msgs_out += c->msgs_out;
	t->bytes_in += c->bytes_in;
	t->bytes_out += c->bytes_out;
	t->drops += c->drops;
	t->queued += c->qbytes;
}

void
conn_take_events(struct conn *c)
{
	c->own = 1;
}

void
conn_set_protocol(struct conn *c, char *protocol)
{
	free(c->protocol);
	c->protocol = protocol;
}

void
conn_set_reply_headers(struct conn *c, char *lines)
{
	free(c->extra_headers);
	c->extra_headers = lines;
}

char *
conn_take_reply_headers(struct conn *c)
{
	char *h = c->extra_headers;

	c->extra_headers = NULL;
	return h;
}

const char *
conn_protocol(const struct conn *c)
{
	return c->protocol;
}

void
conn_set_deflate(struct conn *c, struct pmd *z)
{
	conn_z_free(c);
	if (!z)
		return;
	c->z = calloc(1, sizeof(*c->z));
	if (!c->z) {
		pmd_free(z);   /* no memory: the connection goes on uncompressed */
		return;
	}
	c->z->pmd = z;
}

int
conn_has_deflate(const struct conn *c)
{
	return c->z != NULL;
}

void
conn_set_tls(struct conn *c, struct tls_client *t)
{
	tls_client_free(c->tls);
	c->tls = t;
}

struct tls_client *
conn_tls(const struct conn *c)
{
	return c->tls;
}

void
conn_set_raw(struct conn *c)
{
	c->raw = 1;
}

int
conn_event(struct conn *c, const char *event)
{
	return core_dispatch_prepare(c->ctx, c->self_ref, event);
}

void
conn_defer(struct conn *c, deferred_fn fn)
{
	lua_State *L = c->ctx->L;

	lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
	core_defer(c->ctx, fn, c, luaL_ref(L, LUA_REGISTRYINDEX));
}

void
conn_list_add(struct conn **head, struct conn *c)
{
	c->next = *head;
	c->prev = NULL;
	if (*head)
		(*head)->prev = c;
	*head = c;
	c->linked = 1;
}

int
conn_list_remove(struct conn **head, struct conn *c)
{
	if (!c->linked)
		return 0;
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->linked = 0;
	return 1;
}

struct conn *
conn_list_next(const struct conn *c)
{
	return c->next;
}

int
conn_listed(const struct conn *c)
{
	return c->linked;
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
	c->own = 1;
	frame_rx_init(&c->fr, !c->is_client, c->z != NULL);
	if (c->is_client)
		return;   /* a raw socket from the start (csrc/client.c) */
	conn_defer(c, own_settle);
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
	if (!c->own)
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
	conn_drain_cancel(c);
	conn_z_free(c);
	frame_rx_free(&c->fr);
	tls_client_free(c->tls);
	c->tls = NULL;
	if (c->state == CONN_CLOSED && !c->wsi)
		return;
	/* a server-side wsi stays homed at its server until WSI_DESTROY */
	if (c->wsi)
		lws_set_opaque_user_data(c->wsi, c->homed ? c->owner : NULL);
	c->wsi = NULL;
	if (c->got_peer_close) {
		code = c->peer_code;
		reason = c->peer_reason ? c->peer_reason : "";
		clean = 1;
	} else if (c->close_sent) {
		code = c->close_code;
		reason = c->close_reason ? c->close_reason : "";
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
		conn_reason_set(&c->close_reason, NULL, 0);
		conn_reason_set(&c->peer_reason, NULL, 0);
		c->close_reason_len = c->peer_reason_len = 0;
		c->owner = NULL;   /* conn_owner_data */
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

const char *
conn_aborted(const struct conn *c)
{
	return c->close_code == 1006 && c->close_reason_len ? c->close_reason : NULL;
}

int
conn_fail_unopened(struct conn *c, const char *detail)
{
	if (c->wsi)
		lws_set_opaque_user_data(c->wsi, NULL);
	c->wsi = NULL;
	if (c->state == CONN_CLOSED || c->self_ref == LUA_NOREF)
		return 1;
	c->fail = 1;
	if (c->ctx->finalizing) {
		conn_finalize(c, detail);   /* never opened: no events, just unpin */
		return 1;
	}
	c->state = CONN_CLOSED;   /* no more events until the owner's report */
	return 0;
}

void
conn_report_failed(struct conn *c, const char *detail)
{
	c->state = CONN_OPEN;   /* so finalize reports close(1006, detail) */
	c->close_code = 0;
	conn_finalize(c, detail);
}
