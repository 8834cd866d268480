/* redis.c: lws.redis.conn, one hiredis async connection driven by the lws
 * loop. hiredis owns its socket; lws watches a dup() of it as a raw file
 * (lws closes what it watches). Our event adapter maps addWrite onto
 * lws_callback_on_writable and readability onto redisAsyncHandleRead.
 * Replies reach Lua by command id through dispatch. Reconnects, AUTH/SELECT,
 * health pings and subscriptions are policy, in lua/lws/redis.lua.
 *
 * A subscription connection is opened "raw": hiredis 0.14's async layer
 * knows (P)(UN)SUBSCRIBE only, so an SSUBSCRIBE reply or an "smessage" it
 * cannot match to a callback trips its assert (redisProcessCallbacks).
 * A raw connection still uses hiredis for the connect, the output buffer
 * (redisAppendCommandArgv + redisAsyncHandleWrite) and the context's
 * lifetime, but never calls redisAsyncHandleRead: redis_raw_read reads
 * with redisBufferRead/redisGetReplyFromReader (public hiredis.h API) and
 * sorts each reply itself: pub/sub arrays ("message", "smessage",
 * "ssubscribe", ...) are "push" events, anything else answers the oldest
 * command still waiting (ids in a FIFO here, hiredis's callback lists stay
 * empty). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "core.h"

#define REDIS_MT "lws.redis.conn"
#define REDIS_MAX_ARGS 1000000
#define REDIS_MAX_DEPTH 32

struct redis_conn {
	int kind;                     /* KIND_REDIS */
	struct ctx *ctx;
	redisAsyncContext *ac;        /* NULL once hiredis has freed it */
	struct lws *wsi;              /* raw-file watcher of our dup, NULL once gone */
	int self_ref;                 /* pinned while ac lives */
	uint8_t connected;
	uint8_t closing;              /* close() asked: no new commands */
	uint8_t draining;             /* close(true): goes once the replies are in */
	uint8_t want_write;           /* hiredis has output waiting */
	uint8_t in_writeable;         /* inside RAW_WRITEABLE_FILE (see redis_writeable) */
	uint8_t rearm_pending;
	uint8_t counted;              /* in n_watches */
	uint8_t raw;                  /* replies sorted here (see the top) */
	uint8_t in_read;              /* inside redis_raw_read */
	uint32_t pending;             /* commands whose reply is still to come */
	uint64_t sent, received;
	char host[64];
	int port;
	char err[192];                /* why it ended; the first reason wins */
	lua_Integer *fifo;            /* raw: ids of the commands waiting, oldest at fifo_head */
	uint32_t fifo_head, fifo_len, fifo_cap;
};

static struct redis_conn *
redis_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, REDIS_MT);
}

static void
redis_set_err(struct redis_conn *rc, const char *msg)
{
	if (!rc->err[0] && msg && *msg)
		snprintf(rc->err, sizeof(rc->err), "%s", msg);
}

/* Lua must not run while lws tears the context down or Lua is closing */
static int
redis_quiet(struct redis_conn *rc)
{
	return rc->ctx->destroying || rc->ctx->finalizing || !rc->ctx->lws;
}

/* ---- replies to Lua ------------------------------------------------ */

static void
redis_push_reply(lua_State *L, const redisReply *r, int depth)
{
	size_t i;

	switch (r->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
		lua_pushlstring(L, r->str, r->len);
		break;
	case REDIS_REPLY_INTEGER:
		lua_pushinteger(L, (lua_Integer)r->integer);
		break;
	case REDIS_REPLY_ERROR:   /* inside an array (EXEC): { err = message } */
		lua_createtable(L, 0, 1);
		lua_pushlstring(L, r->str, r->len);
		lua_setfield(L, -2, "err");
		break;
	case REDIS_REPLY_ARRAY:
		if (depth >= REDIS_MAX_DEPTH || !lua_checkstack(L, 4)) {
			lua_pushboolean(L, 0);
			break;
		}
		lua_createtable(L, r->elements > INT32_MAX ? 0 : (int)r->elements, 0);
		for (i = 0; i < r->elements; i++) {
			redis_push_reply(L, r->element[i], depth + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	default:   /* REDIS_REPLY_NIL: a hole in an array is lws.redis.null */
		lua_pushlightuserdata(L, NULL);
		break;
	}
}

/* "reply"(id, value) | "reply"(id, nil, message, code) */
static void
redis_on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct redis_conn *rc = ac->data;
	const redisReply *reply = r;
	lua_Integer id = (lua_Integer)(intptr_t)priv;
	struct ctx *x = rc->ctx;
	lua_State *L = x->L;

	if (rc->pending)
		rc->pending--;
	if (reply)
		rc->received++;
	/* id 0: nobody waits for this reply, only its failure is news */
	if ((!id && (!reply || reply->type != REDIS_REPLY_ERROR)) || redis_quiet(rc) ||
	    core_dispatch_prepare(x, rc->self_ref, "reply"))
		return;
	lua_pushinteger(L, id);
	if (!reply) {
		lua_pushnil(L);
		lua_pushstring(L, ac->err ? ac->errstr : "connection closed");
		lua_pushliteral(L, "closed");
		core_call(x, 6, 0);
	} else if (reply->type == REDIS_REPLY_ERROR) {
		lua_pushnil(L);
		lua_pushlstring(L, reply->str, reply->len);
		lua_pushliteral(L, "redis");
		core_call(x, 6, 0);
	} else if (reply->type == REDIS_REPLY_NIL) {
		core_call(x, 3, 0);
	} else {
		redis_push_reply(L, reply, 0);
		core_call(x, 4, 0);
	}
}

/* Subscription traffic: "push"(kind, name, payload_or_count[, payload])
 * for ["message", channel, payload], ["subscribe", channel, n], … */
static void
redis_on_push(redisAsyncContext *ac, void *r, void *priv)
{
	struct redis_conn *rc = ac->data;
	const redisReply *reply = r;
	struct ctx *x = rc->ctx;
	size_t i, n;

	(void)priv;
	if (!reply)   /* the context is going: "close" tells Lua */
		return;
	rc->received++;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING || redis_quiet(rc) ||
	    core_dispatch_prepare(x, rc->self_ref, "push"))
		return;
	n = reply->elements > 4 ? 4 : reply->elements;
	for (i = 0; i < n; i++)
		redis_push_reply(x->L, reply->element[i], 1);
	core_call(x, 2 + (int)n, 0);
}

/* ---- raw connections (see the top) ---------------------------------- */

static int
redis_fifo_push(struct redis_conn *rc, lua_Integer id)
{
	if (rc->fifo_len == rc->fifo_cap) {
		uint32_t cap = rc->fifo_cap ? rc->fifo_cap * 2 : 8, i;
		lua_Integer *n;

		if (cap < rc->fifo_cap)
			return -1;
		n = malloc(cap * sizeof(*n));
		if (!n)
			return -1;
		for (i = 0; i < rc->fifo_len; i++)
			n[i] = rc->fifo[(rc->fifo_head + i) % rc->fifo_cap];
		free(rc->fifo);
		rc->fifo = n;
		rc->fifo_cap = cap;
		rc->fifo_head = 0;
	}
	rc->fifo[(rc->fifo_head + rc->fifo_len) % rc->fifo_cap] = id;
	rc->fifo_len++;
	return 0;
}

/* the oldest waiting id; 0 when none waits (an error reply to a
 * subscription command: reported as a fire-and-forget failure) */
static lua_Integer
redis_fifo_pop(struct redis_conn *rc)
{
	lua_Integer id;

	if (!rc->fifo_len)
		return 0;
	id = rc->fifo[rc->fifo_head];
	rc->fifo_head = (rc->fifo_head + 1) % rc->fifo_cap;
	rc->fifo_len--;
	return id;
}

static void
redis_fifo_free(struct redis_conn *rc)
{
	free(rc->fifo);
	rc->fifo = NULL;
	rc->fifo_head = rc->fifo_len = rc->fifo_cap = 0;
}

/* a RESP2 pub/sub array: [kind, name, ...] with 3 or 4 elements */
static int
redis_is_push(const redisReply *r)
{
	static const char *const kinds[] = {
		"message", "pmessage", "smessage", "subscribe", "psubscribe", "ssubscribe",
		"unsubscribe", "punsubscribe", "sunsubscribe", NULL
	};
	const redisReply *k;
	int i;

	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->elements > 4)
		return 0;
	k = r->element[0];
	if (k->type != REDIS_REPLY_STRING)
		return 0;
	for (i = 0; kinds[i]; i++)
		if (strlen(kinds[i]) == k->len && !strncasecmp(kinds[i], k->str, k->len))
			return 1;
	return 0;
}

/* a read or protocol error: hiredis frees the context, "close" follows */
static void
redis_raw_fail(struct redis_conn *rc)
{
	if (!rc->ac)
		return;
	redis_set_err(rc, rc->ac->c.err ? rc->ac->c.errstr : "connection lost");
	redisAsyncFree(rc->ac);
}

/* Lua runs inside (dispatch): it may end the context, so rc->ac is read
 * again after each reply */
static void
redis_raw_read(struct redis_conn *rc)
{
	void *reply;

	if (!rc->ac || rc->in_read)
		return;
	if (!(rc->ac->c.flags & REDIS_CONNECTED)) {
		/* the connect is still under way: nothing was sent, so nothing
		 * can be read; hiredis completes (or fails) the connect here */
		redisAsyncHandleWrite(rc->ac);
		return;
	}
	if (redisBufferRead(&rc->ac->c) != REDIS_OK)
		return redis_raw_fail(rc);
	rc->in_read = 1;
	while (rc->ac) {
		if (redisGetReplyFromReader(&rc->ac->c, &reply) != REDIS_OK) {
			rc->in_read = 0;
			return redis_raw_fail(rc);
		}
		if (!reply)
			break;
		if (redis_is_push(reply))
			redis_on_push(rc->ac, reply, NULL);
		else
			redis_on_reply(rc->ac, reply, (void *)(intptr_t)redis_fifo_pop(rc));
		freeReplyObject(reply);
	}
	rc->in_read = 0;
}

/* ---- lifetime -------------------------------------------------------- */

/* next turn: tell Lua the connection is gone, then unpin (core_defer drops
 * the ref it was handed) */
static void
redis_closed_job(struct ctx *x, void *arg, int arg_ref)
{
	struct redis_conn *rc = arg;

	if (core_dispatch_prepare(x, arg_ref, "close"))
		return;
	if (rc->err[0])
		lua_pushstring(x->L, rc->err);
	else
		lua_pushnil(x->L);
	core_call(x, 3, 0);
}

/* hiredis is freeing the context (its ev.cleanup hook): drop our watcher */
static void
redis_ev_cleanup(void *p)
{
	struct redis_conn *rc = p;
	struct ctx *x = rc->ctx;
	int ref = rc->self_ref;

	if (rc->ac && rc->ac->err)
		redis_set_err(rc, rc->ac->errstr);
	rc->ac = NULL;
	rc->connected = 0;
	rc->want_write = 0;
	redis_fifo_free(rc);   /* Lua answers what waited when "close" comes */
	if (rc->wsi) {
		/* we may be inside this wsi's own callback: kill it from the loop */
		lws_set_opaque_user_data(rc->wsi, NULL);
		lws_set_timeout(rc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		rc->wsi = NULL;
	}
	if (rc->counted) {
		rc->counted = 0;
		x->n_watches--;
	}
	rc->self_ref = LUA_NOREF;
	if (ref == LUA_NOREF)
		return;
	if (redis_quiet(rc)) {
		if (!x->finalizing)
			luaL_unref(x->L, LUA_REGISTRYINDEX, ref);
		return;
	}
	core_defer(x, redis_closed_job, rc, ref);   /* the pin moves to the job */
}

static void
redis_ev_add_write(void *p)
{
	struct redis_conn *rc = p;

	rc->want_write = 1;
	if (rc->wsi && !rc->in_writeable)
		lws_callback_on_writable(rc->wsi);
}

static void
redis_ev_del_write(void *p)
{
	((struct redis_conn *)p)->want_write = 0;
}

/* lws polls a raw file for POLLIN all the time: nothing to switch */
static void
redis_ev_nop(void *p)
{
	(void)p;
}

static void
redis_on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_conn *rc = ac->data;
	struct ctx *x = rc->ctx;

	if (status != REDIS_OK) {
		redis_set_err(rc, ac->errstr);   /* "close" follows from cleanup */
		return;
	}
	rc->connected = 1;
	if (!redis_quiet(rc) && !core_dispatch_prepare(x, rc->self_ref, "connect"))
		core_call(x, 2, 0);
}

static void
redis_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis_conn *rc = ac->data;

	if (status != REDIS_OK)
		redis_set_err(rc, ac->errstr);
}

static void
redis_rearm_job(struct ctx *x, void *arg, int arg_ref)
{
	struct redis_conn *rc = arg;

	(void)x;
	(void)arg_ref;
	rc->rearm_pending = 0;
	if (rc->ac && rc->wsi && rc->want_write)
		lws_callback_on_writable(rc->wsi);
}

static void
redis_close_job(struct ctx *x, void *arg, int arg_ref)
{
	struct redis_conn *rc = arg;

	(void)x;
	(void)arg_ref;
	rc->draining = 0;
	if (rc->ac)
		redisAsyncFree(rc->ac);   /* pending callbacks get "connection closed" */
}

/* runs fn(rc) on the next turn, the userdata pinned until then (L: the
 * running thread, which may be a coroutine when Lua calls us) */
static void
redis_defer(lua_State *L, struct redis_conn *rc, deferred_fn fn)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, rc->self_ref);
	core_defer(rc->ctx, fn, rc, luaL_ref(L, LUA_REGISTRYINDEX));
}

static void
redis_writeable(struct redis_conn *rc)
{
	if (!rc->ac || !rc->want_write)
		return;
	rc->want_write = 0;
	rc->in_writeable = 1;
	redisAsyncHandleWrite(rc->ac);
	rc->in_writeable = 0;
	/* lws clears POLLOUT after this callback returns, so a request made
	 * now (socket full, or commands sent from the "connect" event) would
	 * be lost: ask again on the next turn */
	if (rc->ac && rc->want_write && !rc->rearm_pending && !redis_quiet(rc)) {
		rc->rearm_pending = 1;
		redis_defer(rc->ctx->L, rc, redis_rearm_job);
	}
}

/* lws closed our watcher (POLLHUP, or the context is going): hiredis
 * still holds its own fd, so let it find out why, then free it */
static void
redis_watcher_closed(struct redis_conn *rc)
{
	redisAsyncContext *ac = rc->ac;

	rc->wsi = NULL;
	if (!ac)
		return;
	if (!redis_quiet(rc) && !rc->in_read) {
		if (rc->raw)
			redis_raw_read(rc);
		else if (ac->c.flags & REDIS_CONNECTED)
			redisAsyncHandleRead(ac);
		else
			redisAsyncHandleWrite(ac);
	}
	if (rc->ac) {
		redis_set_err(rc, "connection lost");
		redisAsyncFree(rc->ac);
	}
}

/* hiredis's socket, watched as a raw file on the internal vhost
 * (csrc/lws_core.c lists this protocol there) */
static int
redis_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
	       size_t len)
{
	struct redis_conn *rc = core_opaque(wsi, KIND_REDIS);

	(void)user;
	(void)in;
	(void)len;
	if (!rc)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (rc->raw)
			redis_raw_read(rc);
		else if (rc->ac)
			redisAsyncHandleRead(rc->ac);   /* also notices a finished connect */
		break;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		redis_writeable(rc);
		break;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		lws_set_opaque_user_data(wsi, NULL);
		redis_watcher_closed(rc);
		break;
	default:
		break;
	}
	return 0;
}

const struct lws_protocols redis_protocol = {
	.name = "lws-lua-redis", .callback = redis_callback,
};

/* ---- Lua API --------------------------------------------------------- */

/* redis_connect(host, port[, raw]) -> conn | nil, err, code. Non-blocking:
 * "connect" or "close"(err) follows. A host name is resolved by hiredis
 * (blocking getaddrinfo): give an address where that matters. raw: replies
 * sorted here, for a subscription connection (see the top). */
static int
l_redis_connect(lua_State *L)
{
	struct ctx *x = core_ctx(L);
	const char *host = luaL_checkstring(L, 1);
	lua_Integer port = luaL_checkinteger(L, 2);
	struct redis_conn *rc;
	redisAsyncContext *ac;
	lws_adopt_desc_t ad;
	int fd;

	int raw = lua_toboolean(L, 3);

	luaL_argcheck(L, port > 0 && port < 65536, 2, "port out of range");
	rc = lua_newuserdatauv(L, sizeof(*rc), 0);
	memset(rc, 0, sizeof(*rc));
	rc->kind = KIND_REDIS;
	rc->raw = (uint8_t)raw;
	rc->ctx = x;
	rc->self_ref = LUA_NOREF;
	rc->port = (int)port;
	snprintf(rc->host, sizeof(rc->host), "%s", host);
	luaL_setmetatable(L, REDIS_MT);

	ac = redisAsyncConnect(host, (int)port);
	if (!ac)
		return core_push_error(L, "out of memory", "nomem");
	if (ac->err) {
		lua_pushnil(L);
		lua_pushfstring(L, "redis %s:%d: %s", host, (int)port, ac->errstr);
		lua_pushliteral(L, "connect");
		redisAsyncFree(ac);   /* no hooks yet: nothing calls back */
		return 3;
	}
	fd = dup(ac->c.fd);
	if (fd < 0) {
		redisAsyncFree(ac);
		return core_push_error(L, "cannot watch the redis socket", "watch");
	}
	memset(&ad, 0, sizeof(ad));
	ad.vh = x->internal;
	ad.type = LWS_ADOPT_RAW_FILE_DESC;
	ad.fd.filefd = fd;
	ad.vh_prot_name = "lws-lua-redis";
	ad.opaque = rc;
	rc->wsi = lws_adopt_descriptor_vhost_via_info(&ad);
	if (!rc->wsi) {   /* lws closed our dup */
		redisAsyncFree(ac);
		return core_push_error(L, "cannot watch the redis socket", "watch");
	}
	rc->ac = ac;
	rc->self_ref = core_ref_self(L, -1);
	rc->counted = 1;
	x->n_watches++;
	ac->data = rc;
	ac->ev.data = rc;
	ac->ev.addRead = redis_ev_nop;
	ac->ev.delRead = redis_ev_nop;
	ac->ev.addWrite = redis_ev_add_write;
	ac->ev.delWrite = redis_ev_del_write;
	ac->ev.cleanup = redis_ev_cleanup;
	redisEnableKeepAlive(&ac->c);
	redisAsyncSetDisconnectCallback(ac, redis_on_disconnect);
	/* asks for writability: the first writable event completes the connect */
	redisAsyncSetConnectCallback(ac, redis_on_connect);
	return 1;
}

/* 1 for (P)SUBSCRIBE, 2 for (P)UNSUBSCRIBE, 3 for SSUBSCRIBE or
 * SUNSUBSCRIBE, 0 for anything else */
static int
redis_sub_command(const char *s, size_t n)
{
	int sharded = 0;

	if (n && (*s == 'p' || *s == 'P' || *s == 's' || *s == 'S')) {
		sharded = *s == 's' || *s == 'S';
		s++;
		n--;
	}
	if (n == 9 && !strncasecmp(s, "subscribe", 9))
		return sharded ? 3 : 1;
	if (n == 11 && !strncasecmp(s, "unsubscribe", 11))
		return sharded ? 3 : 2;
	return 0;
}

/* a raw connection's command: into hiredis's output buffer, its id (when
 * a reply is to come: not for subscription commands) into our FIFO */
static int
redis_raw_command(struct redis_conn *rc, lua_Integer id, int sub, int argc, const char **argv,
		  const size_t *lens)
{
	if (rc->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))
		return REDIS_ERR;
	if (!sub && redis_fifo_push(rc, id))
		return REDIS_ERR;
	if (redisAppendCommandArgv(&rc->ac->c, argc, argv, lens) != REDIS_OK) {
		if (!sub)   /* undo the push: it is the newest */
			rc->fifo_len--;
		return REDIS_ERR;
	}
	redis_ev_add_write(rc);
	return REDIS_OK;
}

/* conn:command(id, argv) -> true | nil, err, code. argv is a table of
 * strings (binary-safe) or numbers. Id 0: no "reply" event unless Redis
 * answers with an error. (P)(UN)SUBSCRIBE answer with "push" events. */
static int
redis_command(lua_State *L)
{
	struct redis_conn *rc = redis_check(L, 1);
	lua_Integer id = luaL_checkinteger(L, 2);
	lua_Integer argc, i;
	const char **argv;
	size_t *lens;
	int top, sub, rv;

	luaL_argcheck(L, id >= 0 && id <= INTPTR_MAX, 2, "id out of range");
	luaL_checktype(L, 3, LUA_TTABLE);
	argc = luaL_len(L, 3);
	luaL_argcheck(L, argc >= 1 && argc <= REDIS_MAX_ARGS, 3, "1 to 1000000 arguments expected");
	if (!rc->ac || rc->closing)
		return core_push_error(L, "redis connection is closed", "closed");
	luaL_checkstack(L, (int)argc + 4, "too many arguments");
	top = lua_gettop(L);
	/* scratch memory the GC owns, so an error below cannot leak it */
	argv = lua_newuserdatauv(L, (size_t)argc * (sizeof(*argv) + sizeof(*lens)), 0);
	lens = (size_t *)(argv + argc);
	for (i = 1; i <= argc; i++) {
		int t = lua_geti(L, 3, i);

		if (t != LUA_TSTRING && t != LUA_TNUMBER)
			return luaL_error(L, "bad argument #3 to 'command' (argument %I is a %s, "
					  "string expected)", i, luaL_typename(L, -1));
		argv[i - 1] = lua_tolstring(L, -1, &lens[i - 1]);   /* stays on the stack */
	}
	sub = redis_sub_command(argv[0], lens[0]);
	if (rc->raw) {
		rv = redis_raw_command(rc, id, sub, (int)argc, argv, lens);
	} else if (sub == 3) {
		return luaL_error(L, "bad argument #3 to 'command' (sharded pub/sub needs a raw "
				  "connection)");
	} else if (sub == 2 && !(rc->ac->c.flags & REDIS_SUBSCRIBED)) {
		lua_settop(L, top);   /* hiredis refuses UNSUBSCRIBE when nothing is subscribed */
		lua_pushboolean(L, 1);
		return 1;
	} else {
		rv = redisAsyncCommandArgv(rc->ac, sub ? redis_on_push : redis_on_reply,
					   (void *)(intptr_t)id, (int)argc, argv, lens);
	}
	lua_settop(L, top);
	if (rv != REDIS_OK)
		return core_push_error(L, "redis connection is closing", "closed");
	if (!sub)
		rc->pending++;
	rc->sent++;
	lua_pushboolean(L, 1);
	return 1;
}

static void
redis_drain_job(struct ctx *x, void *arg, int arg_ref)
{
	struct redis_conn *rc = arg;

	(void)x;
	(void)arg_ref;
	if (rc->ac && rc->draining)
		redisAsyncDisconnect(rc->ac);   /* once every reply is in */
}

/* close([drain]): from the next turn no new commands. Without drain the
 * connection goes then, and commands still waiting get "reply"(id, nil,
 * "connection closed", "closed"); with drain it goes once their replies
 * are in (close() again cuts that short). Then "close"(nil). */
static int
redis_close(lua_State *L)
{
	struct redis_conn *rc = redis_check(L, 1);
	int drain = lua_toboolean(L, 2);

	if (!rc->ac || (rc->closing && (drain || !rc->draining)))
		return 0;
	rc->closing = 1;
	rc->draining = (uint8_t)drain;
	redis_defer(L, rc, drain ? redis_drain_job : redis_close_job);
	return 0;
}

static int
redis_pending(lua_State *L)
{
	lua_pushinteger(L, redis_check(L, 1)->pending);
	return 1;
}

static const char *
redis_state(const struct redis_conn *rc)
{
	return !rc->ac ? "closed" : rc->closing ? "closing" : rc->connected ? "connected"
							     : "connecting";
}

static int
redis_stats(lua_State *L)
{
	struct redis_conn *rc = redis_check(L, 1);

	lua_createtable(L, 0, 5);
	lua_pushstring(L, redis_state(rc));
	lua_setfield(L, -2, "state");
	lua_pushinteger(L, rc->pending);
	lua_setfield(L, -2, "pending");
	lua_pushinteger(L, (lua_Integer)rc->sent);
	lua_setfield(L, -2, "sent");
	lua_pushinteger(L, (lua_Integer)rc->received);
	lua_setfield(L, -2, "received");
	lua_pushinteger(L, rc->ac ? (lua_Integer)sdslen(rc->ac->c.obuf) : 0);
	lua_setfield(L, -2, "unsent_bytes");
	return 1;
}

static int
redis_tostring(lua_State *L)
{
	struct redis_conn *rc = redis_check(L, 1);

	lua_pushfstring(L, "lws.redis.conn (%s:%d, %s, %p)", rc->host, rc->port,
			redis_state(rc), rc);
	return 1;
}

static int
redis_gc(lua_State *L)
{
	struct redis_conn *rc = lua_touserdata(L, 1);

	if (rc->ac) {   /* only at lua_close: pinned otherwise */
		core_finalize_from_gc(rc->ctx);   /* lws lets go of our watcher… */
		if (rc->ac)
			redisAsyncFree(rc->ac);   /* …and hiredis of its socket */
	}
	return 0;
}

static const luaL_Reg redis_methods[] = {
	{ "command", redis_command },
	{ "close", redis_close },
	{ "pending", redis_pending },
	{ "stats", redis_stats },
	{ NULL, NULL }
};

int
redis_open(lua_State *L)
{
	luaL_newmetatable(L, REDIS_MT);
	luaL_newlib(L, redis_methods);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, redis_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, redis_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
	lua_pushcfunction(L, l_redis_connect);
	lua_setfield(L, -2, "redis_connect");
	lua_pushlightuserdata(L, NULL);   /* == cjson.null */
	lua_setfield(L, -2, "redis_null");
	lua_pushfstring(L, "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
	lua_setfield(L, -2, "hiredis_version");
	return 0;
}
