/* watch.c: lws.watch, a foreign file descriptor watched by the loop for
 * readability (an lws raw-file wsi with its own protocol; our listening
 * sockets and Redis sockets have theirs, in csrc/server.c and
 * csrc/redis.c). lws closes the fd it watches, so we watch a dup() and
 * leave the caller's fd alone. */
#include <string.h>
#include <unistd.h>

#include "core.h"

#define WATCH_MT "lws.watch"

struct watch {
	int kind;                /* KIND_WATCH */
	struct ctx *ctx;
	struct lws *wsi;
	int self_ref;
	int fn_ref;
	int fd;                  /* our dup, owned by lws once adopted */
	int counted;             /* in n_watches (unref() takes it out) */
};

static struct watch *
watch_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, WATCH_MT);
}

static void
watch_detach(struct watch *w)
{
	struct ctx *x = w->ctx;

	if (w->self_ref == LUA_NOREF)
		return;
	w->wsi = NULL;
	w->fd = -1;
	if (w->counted)
		x->n_watches--;
	w->counted = 0;
	if (!x->finalizing) {
		core_unref(x->L, &w->fn_ref);
		core_unref(x->L, &w->self_ref);
	}
	w->self_ref = LUA_NOREF;
}

static int
watch_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
	       size_t len)
{
	struct watch *w = core_opaque(wsi, KIND_WATCH);

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (w && w->self_ref != LUA_NOREF) {
			struct ctx *x = w->ctx;

			lua_rawgeti(x->L, LUA_REGISTRYINDEX, w->fn_ref);
			lua_rawgeti(x->L, LUA_REGISTRYINDEX, w->self_ref);
			core_call(x, 1, 0);
		}
		return 0;

	case LWS_CALLBACK_RAW_CLOSE_FILE:
		lws_set_opaque_user_data(wsi, NULL);
		if (w)
			watch_detach(w);
		return 0;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* on the internal vhost (csrc/lws_core.c lists it there) */
const struct lws_protocols watch_protocol = {
	.name = "lws-lua-watch", .callback = watch_callback,
};

/* watch(fd, fn) -> watch: fn(watch) runs whenever fd is readable */
static int
l_watch(lua_State *L)
{
	struct ctx *x = core_ctx(L);
	int fd = (int)luaL_checkinteger(L, 1);
	lws_adopt_desc_t ad;
	struct watch *w;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	w = lua_newuserdatauv(L, sizeof(*w), 0);
	memset(w, 0, sizeof(*w));
	w->kind = KIND_WATCH;
	w->ctx = x;
	w->self_ref = w->fn_ref = LUA_NOREF;
	luaL_setmetatable(L, WATCH_MT);
	w->fd = dup(fd);
	if (w->fd < 0)
		return core_push_error(L, "cannot watch: bad file descriptor", "badf");
	memset(&ad, 0, sizeof(ad));
	ad.vh = x->internal;
	ad.type = LWS_ADOPT_RAW_FILE_DESC;
	ad.fd.filefd = w->fd;
	ad.vh_prot_name = "lws-lua-watch";
	ad.opaque = w;
	w->wsi = lws_adopt_descriptor_vhost_via_info(&ad);
	if (!w->wsi)   /* lws closed our dup */
		return core_push_error(L, "cannot watch this descriptor", "watch");
	w->self_ref = core_ref_self(L, -1);
	lua_pushvalue(L, 2);
	w->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	w->counted = 1;
	x->n_watches++;
	return 1;
}

/* unref(): this watch no longer keeps run() alive nor counts as live */
static int
watch_unref(lua_State *L)
{
	struct watch *w = watch_check(L, 1);

	if (w->counted) {
		w->counted = 0;
		w->ctx->n_watches--;
	}
	return 0;
}

static int
watch_close(lua_State *L)
{
	struct watch *w = watch_check(L, 1);

	if (w->wsi) {
		lws_set_opaque_user_data(w->wsi, NULL);
		lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		watch_detach(w);
	}
	return 0;
}

static int
watch_gc(lua_State *L)
{
	struct watch *w = lua_touserdata(L, 1);

	if (w->wsi)   /* only at lua_close */
		core_finalize_from_gc(w->ctx);
	return 0;
}

static const luaL_Reg watch_methods[] = {
	{ "close", watch_close },
	{ "unref", watch_unref },
	{ NULL, NULL }
};

int
watch_open(lua_State *L)
{
	static const luaL_Reg meta[] = { { "__gc", watch_gc }, { NULL, NULL } };

	core_new_type(L, WATCH_MT, watch_methods, NULL, meta, NULL);
	lua_pushcfunction(L, l_watch);
	lua_setfield(L, -2, "watch");
	return 0;
}
