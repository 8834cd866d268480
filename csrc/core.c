/* core.c: the per-Lua-state context (struct ctx, in the registry) and
 * the lws_context on the chosen loop: creating and destroying it, run /
 * stop / shutdown, stats and configure, and core_open, the lws.core table
 * csrc/lws_core.c fills with the types. It knows no type: what a type
 * needs around the loop it registers (csrc/core_hooks.c); every call
 * into Lua goes through csrc/core_call.c. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core.h"
#include "core_private.h"

#define CTX_KEY "lws.core.ctx"
#define CTX_MT "lws.context"

enum { CORE_LOOP_POLL = 0, CORE_LOOP_LIBEV = 1 };   /* ctx->loop_kind, loop_names[] */

/* ---- the context ----------------------------------------------------- */

/* The context on our libev loop, or -1 with nothing left behind (no
 * evlib_ev plugin, or an lws whose internals are not the 4.1 we know). */
static int
create_on_libev(struct ctx *x, struct lws_context_creation_info *info)
{
	if (evloop_new(x, info))
		return -1;
	x->lws = lws_create_context(info);
	if (x->lws && evloop_attach(x->ev)) {
		lws_context_destroy(x->lws);
		x->lws = NULL;
	}
	if (!x->lws) {
		evloop_free(x);
		info->options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
		info->foreign_loops = NULL;
		return -1;
	}
	return 0;
}

/* The descriptor limit the lws context is created with: each connection
 * needs one, and lws sizes its fd table (lws_lookup) from RLIMIT_NOFILE.
 * But lws 4.1.6 is built with _DEBUG on Debian, and then every close of a
 * socket walks that whole table (plat/unix/unix-fds.c
 * sanity_assert_no_sockfd_traces, from __lws_close_free_wsi_final): with
 * 20,000 entries that was 45% of the server's instructions per
 * connection when connections come and go (callgrind, bench/README.md
 * "Connection rate"), and a systemd service's hard limit of 524,288
 * would make each close cost milliseconds. So the table is as big as
 * asked (configure{ max_fds }: the soft limit is set to it), else the
 * soft limit is raised to 65,536 (or the hard limit, if lower), never
 * lowered: a limit the user set with ulimit -n stays. */
#define FD_LIMIT_DEFAULT 65536

static int
set_fd_limit(struct ctx *x)
{
	struct rlimit r;
	rlim_t want = x->max_fds ? (rlim_t)x->max_fds : FD_LIMIT_DEFAULT;

	if (getrlimit(RLIMIT_NOFILE, &r))
		return 0;
	if (!x->max_fds && r.rlim_cur > want)
		want = r.rlim_cur;
	if (want > r.rlim_max)
		want = r.rlim_max;
	if (r.rlim_cur != want) {
		r.rlim_cur = want;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	return (int)want;
}

static int
ctx_create_lws(struct ctx *x)
{
	struct lws_context_creation_info info;
	struct lws_context_creation_info vinfo;
	int i;

	x->fd_limit = set_fd_limit(x);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.user = x;
	/* one read buffer for the whole loop; bigger reads mean fewer
	 * RECEIVE callbacks for big messages (see the notes, 2.) */
	info.pt_serv_buf_size = 32768;
	/* browsers with big cookies overflow lws's 4096-byte default */
	info.max_http_header_data = 16384;
	/* a new connection must send its first byte within this many seconds
	 * (then the server's handshake_timeout applies) */
	info.timeout_secs = 10;
	if (x->loop_kind == CORE_LOOP_LIBEV) {
		int failed;

		/* the default libev quietly falls back to poll (stats().loop
		 * says which); a loop asked for by name does not */
		x->quiet = !x->loop_chosen;
		failed = create_on_libev(x, &info);
		x->quiet = 0;
		if (failed && x->loop_chosen)
			return -1;
		if (failed)
			x->loop_kind = CORE_LOOP_POLL;
	}
	if (!x->lws)
		x->lws = lws_create_context(&info);
	if (!x->lws)
		return -1;

	/* lws keeps a pointer to the array: a copy in the context */
	memset(&x->internal_protocols, 0, sizeof(x->internal_protocols));
	for (i = 0; x->protocols && x->protocols[i] && i < CORE_PROTOCOLS_MAX; i++)
		x->internal_protocols[i] = *x->protocols[i];

	memset(&vinfo, 0, sizeof(vinfo));
	vinfo.port = CONTEXT_PORT_NO_LISTEN;
	vinfo.vhost_name = "lws-lua-internal";
	vinfo.protocols = x->internal_protocols;
	/* no TLS of lws's here: our clients' TLS is csrc/tls_client.c's, and
	 * with LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT lws 4.1.6 would load the
	 * system's CA store into a client SSL_CTX nobody uses (~30 ms at
	 * start, in every process: csrc/server_vhost.c) */
	vinfo.options = 0;
	x->internal = lws_create_vhost(x->lws, &vinfo);
	if (!x->internal) {
		lws_context_destroy(x->lws);
		x->lws = NULL;
		evloop_free(x);
		return -1;
	}
	return 0;
}

/* Tears the lws context down now (outside lws_service): every wsi gets
 * CLOSED/WSI_DESTROY, so every conn and server is detached. */
static void
ctx_destroy_now(struct ctx *x)
{
	struct lws_context *c = x->lws;

	if (!c)
		return;
	x->stop = 1;
	x->destroying = 1;
	lws_context_destroy(c);
	x->destroying = 0;
	x->lws = NULL;
	x->internal = NULL;
	/* with a foreign libev loop lws is done in one call: it stopped its
	 * watchers, so the loop goes after it (never before) */
	evloop_free(x);
	core_run_destroy_hooks(x);   /* the types' vhost caches */
	x->destroy_pending = 0;
	core_drop_deferred(x);
}

/* the per-state record, without creating the lws context */
struct ctx *
core_state(lua_State *L)
{
	struct ctx *x;

	lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
	x = lua_touserdata(L, -1);
	lua_pop(L, 1);
	if (!x)
		luaL_error(L, "lws.core is not initialised");
	return x;
}

struct ctx *
core_ctx(lua_State *L)
{
	struct ctx *x = core_state(L);

	if (!x->lws) {
		if (x->finalizing)
			luaL_error(L, "lws is shutting down");
		if (ctx_create_lws(x))
			luaL_error(L, x->loop_kind == CORE_LOOP_LIBEV ?
				   "cannot create the libwebsockets context on libev (is the "
				   "libwebsockets-evlib-ev package installed?)" :
				   "cannot create the libwebsockets context");
	}
	return x;
}

int
core_ctx_exists(lua_State *L)
{
	struct ctx *x;

	lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
	x = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return x && x->lws;
}

struct ctx *
core_ctx_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static int
ctx_gc(lua_State *L)
{
	struct ctx *x = lua_touserdata(L, 1);

	x->finalizing = 1;
	ctx_destroy_now(x);
	core_log_release(x);
	return 0;
}

/* Called by __gc of objects still linked into lws: only at lua_close
 * (otherwise they are pinned). Destroys the context first, while every
 * object's memory is still valid, and never calls Lua again. */
void
core_finalize_from_gc(struct ctx *x)
{
	x->finalizing = 1;
	if (!x->in_service)
		ctx_destroy_now(x);
}

/* ---- the loop --------------------------------------------------------- */

static int
loop_alive(struct ctx *x)
{
	return x->n_conns || x->n_servers || x->n_timers || x->n_watches ||
	       x->n_requests || x->n_pending;
}

static int
service(struct ctx *x, int timeout)
{
	int n;

	core_run_turn(x);   /* what Lua queued since the last turn */
	x->in_service = 1;
	if (x->ev) {
		evloop_run(x->ev, timeout < 0);
		n = 0;
	} else {
		n = lws_service(x->lws, timeout);
	}
	x->in_service = 0;
	if (x->destroy_pending)
		ctx_destroy_now(x);
	else
		core_run_turn(x);   /* what this turn's callbacks queued */
	return n;
}

/* run([mode]): "default" until stop() or nothing is left; "once" one
 * blocking turn; "nowait" one turn without waiting. Returns true if there
 * is still work (luv's convention), or nil, err on re-entry. */
static int
l_run(lua_State *L)
{
	static const char *const modes[] = { "default", "once", "nowait", NULL };
	struct ctx *x = core_ctx(L);
	int mode = luaL_checkoption(L, 1, "default", modes);

	if (x->running)
		return core_push_error(L, "loop already running", "busy");
	x->running = 1;
	x->stop = 0;
	switch (mode) {
	case 0:
		while (!x->stop && x->lws && loop_alive(x))
			if (service(x, 0) < 0)
				break;
		break;
	case 1:
		service(x, 0);
		break;
	case 2:
		service(x, -1);
		break;
	}
	x->running = 0;
	x->stop = 0;
	lua_pushboolean(L, x->lws && loop_alive(x));
	return 1;
}

static int
l_stop(lua_State *L)
{
	struct ctx *x = core_ctx(L);

	x->stop = 1;
	core_wake(x);
	return 0;
}

/* shutdown(): destroy the context (every connection and server is closed
 * without a close handshake). From inside a callback it happens when the
 * current loop turn ends. A later call to any API creates a new context. */
static int
l_shutdown(lua_State *L)
{
	struct ctx *x;

	lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
	x = lua_touserdata(L, -1);
	if (!x || !x->lws)
		return 0;
	if (x->in_service) {
		x->destroy_pending = 1;
		x->stop = 1;
		core_wake(x);
	} else {
		ctx_destroy_now(x);
	}
	return 0;
}

static int
l_set_dispatch(lua_State *L)
{
	struct ctx *x = core_state(L);

	luaL_checktype(L, 1, LUA_TFUNCTION);
	core_unref(L, &x->dispatch_ref);
	x->dispatch_ref = core_ref_self(L, 1);
	return 0;
}

static int
l_set_error_handler(lua_State *L)
{
	struct ctx *x = core_state(L);

	if (!lua_isnoneornil(L, 1))
		luaL_checktype(L, 1, LUA_TFUNCTION);
	core_unref(L, &x->error_ref);
	if (!lua_isnoneornil(L, 1))
		x->error_ref = core_ref_self(L, 1);
	return 0;
}

/* set_log(levels, fn): fn(level, line) receives lws's own log lines for
 * the level bits given (lws.LOG_ERR …); set_log(0) or set_log() silences. */
static int
l_set_log(lua_State *L)
{
	struct ctx *x = core_state(L);
	int levels = (int)luaL_optinteger(L, 1, 0);

	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TFUNCTION);
	core_unref(L, &x->log_ref);
	x->log_levels = 0;
	if (levels && !lua_isnoneornil(L, 2)) {
		x->log_ref = core_ref_self(L, 2);
		x->log_levels = levels;
	}
	core_log_to(x, x->log_levels);
	return 0;
}

/* report(msg): send a message through the error hook (used by the Lua
 * layer for errors it catches itself). */
static int
l_report(lua_State *L)
{
	struct ctx *x = core_state(L);

	core_report(x, luaL_checkstring(L, 1));
	return 0;
}

static const char *const loop_names[] = { "poll", "libev", NULL };

static int
loop_kind_of(const char *name)
{
	int i;

	for (i = 0; loop_names[i]; i++)
		if (!strcmp(name, loop_names[i]))
			return i;
	return -1;
}

static int
l_stats(lua_State *L)
{
	struct ctx *x;

	lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
	x = lua_touserdata(L, -1);
	lua_createtable(L, 0, 8);
	lua_pushinteger(L, x->n_conns);
	lua_setfield(L, -2, "connections");
	lua_pushinteger(L, x->n_servers);
	lua_setfield(L, -2, "servers");
	lua_pushinteger(L, x->n_timers);
	lua_setfield(L, -2, "timers");
	lua_pushinteger(L, x->n_watches);
	lua_setfield(L, -2, "watches");
	lua_pushinteger(L, x->n_requests);
	lua_setfield(L, -2, "requests");
	lua_pushinteger(L, x->n_pending);
	lua_setfield(L, -2, "pending");
	lua_pushinteger(L, (lua_Integer)x->callback_errors);
	lua_setfield(L, -2, "callback_errors");
	lua_pushboolean(L, x->lws != NULL);
	lua_setfield(L, -2, "context");
	lua_pushboolean(L, x->running);
	lua_setfield(L, -2, "running");
	lua_pushstring(L, loop_names[x->loop_kind]);
	lua_setfield(L, -2, "loop");
	if (x->lws) {
		lua_pushinteger(L, x->fd_limit);
		lua_setfield(L, -2, "max_fds");
	}
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	{
		/* the C heap of the whole process: what is allocated, and what
		 * malloc holds from the kernel (RSS above it is fragmentation) */
		struct mallinfo2 mi = mallinfo2();

		lua_pushinteger(L, (lua_Integer)(mi.uordblks + mi.hblkhd));
		lua_setfield(L, -2, "heap_in_use");
		lua_pushinteger(L, (lua_Integer)(mi.arena + mi.hblkhd));
		lua_setfield(L, -2, "heap_held");
	}
#endif
	return 1;
}

/* configure{ loop = "poll"|"libev" }: process-level choices that must be
 * made before the context exists (the first server, client or timer) */
static int
l_configure(lua_State *L)
{
	static const char *const fields[] = { "loop", "max_fds", NULL };
	struct ctx *x = core_state(L);
	const char *loop;
	int kind;

	luaL_checktype(L, 1, LUA_TTABLE);
	core_check_fields(L, 1, fields);
	lua_getfield(L, 1, "max_fds");
	if (!lua_isnil(L, -1)) {
		int n = (int)core_opt_int_field(L, 1, "max_fds", 0, 64, 1 << 24);

		if (x->lws && n != x->fd_limit)
			return luaL_error(L, "configure: max_fds is fixed once the context exists "
					  "(configure before the first server, client or timer, or "
					  "after lws.shutdown())");
		x->max_fds = n;
	}
	lua_pop(L, 1);
	loop = core_opt_str_field(L, 1, "loop", NULL);
	if (!loop)
		return 0;
	kind = loop_kind_of(loop);
	if (kind < 0)
		return luaL_error(L, "option 'loop' must be \"poll\" or \"libev\", got \"%s\"", loop);
	if (x->lws && kind != x->loop_kind)
		return luaL_error(L, "configure: the loop is already in use (configure before "
				  "the first server, client or timer, or after lws.shutdown())");
	x->loop_kind = kind;
	x->loop_chosen = 1;
	return 0;
}

/* now(): monotonic milliseconds (float, microsecond resolution) */
static int
l_now(lua_State *L)
{
	lua_pushnumber(L, (lua_Number)lws_now_usecs() / 1000.0);
	return 1;
}

static const luaL_Reg core_funcs[] = {
	{ "run", l_run },
	{ "stop", l_stop },
	{ "shutdown", l_shutdown },
	{ "set_dispatch", l_set_dispatch },
	{ "set_error_handler", l_set_error_handler },
	{ "set_log", l_set_log },
	{ "report", l_report },
	{ "stats", l_stats },
	{ "configure", l_configure },
	{ "now", l_now },
	{ NULL, NULL }
};

/* core_open(L, protocols): the lws.core table with the core's functions,
 * on top of the stack, and the per-state context (created once per Lua
 * state; the lws context itself comes on first use). protocols: the
 * internal vhost's, NULL-terminated (csrc/lws_core.c). */
int
core_open(lua_State *L, const struct lws_protocols *const *protocols)
{
	struct ctx *x;

	lua_newtable(L);
	luaL_setfuncs(L, core_funcs, 0);

	lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		x = lua_newuserdatauv(L, sizeof(*x), 0);
		memset(x, 0, sizeof(*x));
		lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
		x->L = lua_tothread(L, -1);
		lua_pop(L, 1);
		x->dispatch_ref = x->error_ref = x->log_ref = LUA_NOREF;
		x->protocols = protocols;
		x->run_turn = core_run_turn;
		x->loop_kind = CORE_LOOP_LIBEV;   /* see ctx_create_lws */
		if (getenv("LWS_LUA_LOOP") && *getenv("LWS_LUA_LOOP")) {
			x->loop_chosen = 1;
			x->loop_kind = loop_kind_of(getenv("LWS_LUA_LOOP"));
			if (x->loop_kind < 0) {
				x->loop_kind = CORE_LOOP_POLL;
				return luaL_error(L, "LWS_LUA_LOOP must be \"poll\" or \"libev\", got \"%s\"",
						  getenv("LWS_LUA_LOOP"));
			}
		}
		luaL_newmetatable(L, CTX_MT);
		lua_pushcfunction(L, ctx_gc);
		lua_setfield(L, -2, "__gc");
		lua_setmetatable(L, -2);
		lua_setfield(L, LUA_REGISTRYINDEX, CTX_KEY);
		/* quiet by default; errors still reach the log hooks */
		core_log_to(x, 0);
	} else {
		lua_pop(L, 1);
	}

	lua_pushinteger(L, LLL_ERR);
	lua_setfield(L, -2, "LOG_ERR");
	lua_pushinteger(L, LLL_WARN);
	lua_setfield(L, -2, "LOG_WARN");
	lua_pushinteger(L, LLL_NOTICE);
	lua_setfield(L, -2, "LOG_NOTICE");
	lua_pushinteger(L, LLL_INFO);
	lua_setfield(L, -2, "LOG_INFO");
	lua_pushinteger(L, LLL_DEBUG);
	lua_setfield(L, -2, "LOG_DEBUG");
	lua_pushinteger(L, LWS_PRE);
	lua_setfield(L, -2, "LWS_PRE");
	lua_pushstring(L, lws_get_library_version());
	lua_setfield(L, -2, "lws_version");
	return 1;
}
