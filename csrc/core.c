/* core.c: the per-Lua-state context, the lws_context and its loop
 * (run/stop/shutdown), the one protected-call path every callback into
 * Lua takes, the error and log hooks, deferred work, and the hooks the
 * types register (csrc/lws_core.c opens them). It knows no type.
 * Errors in Lua callbacks never unwind through lws frames: core_call
 * catches them, reports the traceback through the error hook, and lets
 * the caller decide what to close. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core.h"

#define CTX_KEY "lws.core.ctx"

static struct ctx *log_ctx;   /* lws_set_log_level is process-wide: one hook */

struct deferred {
	struct deferred *next;
	deferred_fn fn;
	void *arg;
	int arg_ref;
};

/* ---- protected calls ---------------------------------------------- */

/* An error thrown as a table ({ code = 1, message = "x" }) reads as its
 * first fields, as Node prints an object, instead of "(error object is a
 * table value)". Pushes the text. */
static const char *
describe_table(lua_State *L, int idx)
{
	luaL_Buffer b;
	int n = 0;

	luaL_buffinit(L, &b);
	luaL_addstring(&b, "error object { ");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (n++ == 8) {
			lua_pop(L, 2);
			luaL_addstring(&b, ", ...");
			break;
		}
		if (n > 1)
			luaL_addstring(&b, ", ");
		/* key = value, each shown as tostring would (no metamethods) */
		if (lua_type(L, -2) == LUA_TSTRING)
			lua_pushfstring(L, "%s = ", lua_tostring(L, -2));
		else
			lua_pushfstring(L, "[%s] = ", luaL_typename(L, -2));
		luaL_addvalue(&b);
		switch (lua_type(L, -1)) {
		case LUA_TSTRING:
			lua_pushfstring(L, "\"%s\"", lua_tostring(L, -1));
			break;
		case LUA_TNUMBER:   /* converts the value copy in place: fine */
			lua_pushstring(L, lua_tostring(L, -1));
			break;
		case LUA_TBOOLEAN:
			lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
			break;
		default:
			lua_pushstring(L, luaL_typename(L, -1));
		}
		lua_remove(L, -2);   /* the value; the key stays for lua_next */
		luaL_addvalue(&b);
	}
	luaL_addstring(&b, " }");
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

static int
msgh_traceback(lua_State *L)
{
	const char *msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER ?
			  lua_tostring(L, 1) : NULL;

	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else if (lua_type(L, 1) == LUA_TTABLE)
			msg = describe_table(L, 1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)",
					      luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

void
core_report(struct ctx *x, const char *msg)
{
	lua_State *L = x->L;

	if (x->finalizing || x->error_ref == LUA_NOREF || x->error_ref == LUA_REFNIL) {
		fprintf(stderr, "lws: %s\n", msg);
		return;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, x->error_ref);
	lua_pushstring(L, msg);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		fprintf(stderr, "lws: %s\nlws: (and the error hook failed: %s)\n", msg,
			lua_tostring(L, -1));
		lua_pop(L, 1);
	}
}

/* Calls the function below nargs arguments on the main thread's stack.
 * On error: reports the traceback and returns -1 with nothing pushed;
 * on success returns 0 with nresults pushed. */
int
core_call(struct ctx *x, int nargs, int nresults)
{
	lua_State *L = x->L;
	int base = lua_gettop(L) - nargs;   /* index of the function */

	lua_pushcfunction(L, msgh_traceback);
	lua_insert(L, base);
	if (lua_pcall(L, nargs, nresults, base) != LUA_OK) {
		x->callback_errors++;
		core_report(x, lua_tostring(L, -1));
		lua_pop(L, 2);   /* message, handler */
		return -1;
	}
	lua_remove(L, base);
	return 0;
}

/* Pushes dispatch, the object and the event name; returns 0 if the caller
 * may go on to push arguments and core_call(x, 2 + nargs, …). */
int
core_dispatch_prepare(struct ctx *x, int obj_ref, const char *event)
{
	lua_State *L = x->L;

	if (x->finalizing || x->dispatch_ref == LUA_NOREF || obj_ref == LUA_NOREF ||
	    obj_ref == LUA_REFNIL)
		return -1;
	if (!lua_checkstack(L, 12))
		return -1;
	lua_rawgeti(L, LUA_REGISTRYINDEX, x->dispatch_ref);
	lua_rawgeti(L, LUA_REGISTRYINDEX, obj_ref);
	lua_pushstring(L, event);
	return 0;
}

int
core_ref_self(lua_State *L, int idx)
{
	lua_pushvalue(L, idx);
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

void
core_unref(lua_State *L, int *ref)
{
	if (*ref != LUA_NOREF && *ref != LUA_REFNIL)
		luaL_unref(L, LUA_REGISTRYINDEX, *ref);
	*ref = LUA_NOREF;
}

int
core_push_error(lua_State *L, const char *msg, const char *code)
{
	lua_pushnil(L);
	lua_pushstring(L, msg);
	lua_pushstring(L, code);
	return 3;
}

/* ---- log hook ------------------------------------------------------ */

static void
log_emit(int level, const char *line)
{
	struct ctx *x = log_ctx;
	lua_State *L;

	if (!x || x->quiet)
		return;
	if (x->lws) {
		int i;

		for (i = 0; i < x->n_log_hooks; i++)
			x->log_hooks[i](x, level, line);
	}
	if (!(level & x->log_levels) || x->finalizing || x->log_ref == LUA_NOREF)
		return;
	L = x->L;
	if (!lua_checkstack(L, 4))
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, x->log_ref);
	lua_pushinteger(L, level);
	lua_pushstring(L, line);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		fprintf(stderr, "lws: log hook failed: %s\n", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
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
	log_ctx = x;
	lws_set_log_level(x->log_levels | LLL_ERR, log_emit);
	return 0;
}

/* ---- deferred work: runs on the next loop turn, outside callbacks ---- */

static void
deferred_run(lws_sorted_usec_list_t *sul)
{
	struct ctx *x = lws_container_of(sul, struct ctx, sul_deferred);
	struct deferred *d;

	while ((d = x->deferred_head)) {
		x->deferred_head = d->next;
		if (!x->deferred_head)
			x->deferred_tail = NULL;
		x->n_pending--;
		d->fn(x, d->arg, d->arg_ref);
		if (!x->finalizing)
			core_unref(x->L, &d->arg_ref);
		free(d);
	}
	core_wake(x);   /* a sul runs before lws's poll: let run() see the change */
}

void
core_defer(struct ctx *x, deferred_fn fn, void *arg, int arg_ref)
{
	struct deferred *d = calloc(1, sizeof(*d));

	if (!d) {
		core_report(x, "out of memory scheduling deferred work");
		return;
	}
	d->fn = fn;
	d->arg = arg;
	d->arg_ref = arg_ref;
	if (x->deferred_tail)
		x->deferred_tail->next = d;
	else
		x->deferred_head = d;
	x->deferred_tail = d;
	x->n_pending++;
	lws_sul_schedule(x->lws, 0, &x->sul_deferred, deferred_run, 1);
	core_wake(x);
}

/* ---- writes queued inside lws_service ---------------------------------- */

/* ---- hooks ---------------------------------------------------------- */

static void
hook_add(core_hook_fn *list, uint8_t *n, core_hook_fn fn)
{
	int i;

	for (i = 0; i < *n; i++)
		if (list[i] == fn)
			return;   /* opened again (another require of lws.core) */
	if (*n < CORE_HOOKS_MAX)
		list[(*n)++] = fn;
}

void
core_on_turn(struct ctx *x, core_hook_fn fn)
{
	hook_add(x->turn_hooks, &x->n_turn_hooks, fn);
}

void
core_on_destroy(struct ctx *x, core_hook_fn fn)
{
	hook_add(x->destroy_hooks, &x->n_destroy_hooks, fn);
}

void
core_on_log(struct ctx *x, core_log_fn fn)
{
	int i;

	for (i = 0; i < x->n_log_hooks; i++)
		if (x->log_hooks[i] == fn)
			return;
	if (x->n_log_hooks < CORE_HOOKS_MAX)
		x->log_hooks[x->n_log_hooks++] = fn;
}

static void
run_turn_hooks(struct ctx *x)
{
	int i;

	for (i = 0; i < x->n_turn_hooks; i++)
		x->turn_hooks[i](x);
}

static void
flush_run(lws_sorted_usec_list_t *sul)
{
	run_turn_hooks(lws_container_of(sul, struct ctx, sul_flush));
}

/* Data queued by a timer or timeout inside lws's poll loop runs before
 * its poll(): a sul due now makes that poll not wait, so service() writes
 * it at once. Data queued by fd events is written when lws_service
 * returns; the sul then runs as a no-op on the next turn. */
void
core_flush_soon(struct ctx *x)
{
	if (x->in_service && !x->ev && x->lws && !x->sul_flush.list.owner)
		lws_sul_schedule(x->lws, 0, &x->sul_flush, flush_run, 0);
}

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

static void
raise_fd_limit(void)
{
	struct rlimit r;

	/* 10,000 connections need 10,000 descriptors; lws sizes its fd table
	 * from this limit when the context is created */
	if (!getrlimit(RLIMIT_NOFILE, &r) && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max > 1048576 ? 1048576 : r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

static int
ctx_create_lws(struct ctx *x)
{
	struct lws_context_creation_info info;
	struct lws_context_creation_info vinfo;
	int i;

	raise_fd_limit();
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
	vinfo.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
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
	int i;

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
	for (i = 0; i < x->n_destroy_hooks; i++)
		x->destroy_hooks[i](x);   /* the types' vhost caches */
	x->destroy_pending = 0;
	/* deferred work that never ran still holds refs and memory */
	while (x->deferred_head) {
		struct deferred *d = x->deferred_head;

		x->deferred_head = d->next;
		if (!x->finalizing)
			core_unref(x->L, &d->arg_ref);
		free(d);
		x->n_pending--;
	}
	x->deferred_tail = NULL;
	memset(&x->sul_deferred, 0, sizeof(x->sul_deferred));
	memset(&x->sul_flush, 0, sizeof(x->sul_flush));
}

void
core_wake(struct ctx *x)
{
	/* a flag set inside a callback is only seen after lws_service
	 * returns, which may be never without this (docs/libwebsockets-4.1.md §1.4) */
	if (x->lws)
		lws_cancel_service(x->lws);
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
	if (log_ctx == x) {
		lws_set_log_level(0, NULL);
		log_ctx = NULL;
	}
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

	run_turn_hooks(x);   /* what Lua queued since the last turn */
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
		run_turn_hooks(x);   /* what this turn's callbacks queued */
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
	static const char *const fields[] = { "loop", NULL };
	struct ctx *x = core_state(L);
	const char *loop;
	int kind;

	luaL_checktype(L, 1, LUA_TTABLE);
	core_check_fields(L, 1, fields);
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
		x->run_turn = run_turn_hooks;
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
		/* quiet by default; errors still reach log_emit (see there) */
		log_ctx = x;
		lws_set_log_level(LLL_ERR, log_emit);
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
