/* timer.c: lws.timer, a Lua callback on an lws_sul embedded in the
 * userdata. One-shot or repeating; repeats are scheduled from the
 * intended due time so they do not drift (docs/libwebsockets-4.1.md §1.4). The userdata is
 * pinned while scheduled, so GC cannot free a sul lws still holds. */
#include <string.h>

#include "core.h"

#define TIMER_MT "lws.timer"

struct timer {
	lws_sorted_usec_list_t sul;
	struct ctx *ctx;
	int self_ref;
	int fn_ref;
	int scheduled;
	int counted;             /* in n_timers (unref() takes it out) */
	int weak;                /* unref(): does not keep run() alive */
	lws_usec_t due;
	lws_usec_t interval;     /* 0 = one-shot */
	uint64_t fired;
};

static struct timer *
timer_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, TIMER_MT);
}

static void
timer_unschedule(struct timer *t)
{
	if (!t->scheduled)
		return;
	t->scheduled = 0;
	if (t->ctx->lws)
		lws_sul_cancel(&t->sul);
	if (t->counted) {
		t->counted = 0;
		t->ctx->n_timers--;
	}
	core_unref(t->ctx->L, &t->self_ref);
}

static void
timer_fire(lws_sorted_usec_list_t *sul)
{
	struct timer *t = lws_container_of(sul, struct timer, sul);
	struct ctx *x = t->ctx;
	lua_State *L = x->L;
	int pin;

	if (!t->scheduled || x->finalizing)
		return;
	t->fired++;
	/* keep the userdata alive across the call even if it stops itself */
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
	pin = luaL_ref(L, LUA_REGISTRYINDEX);
	if (t->interval) {
		lws_usec_t now = lws_now_usecs();

		t->due += t->interval;
		if (t->due < now)   /* we fell behind: skip, don't burst */
			t->due = now + (t->interval - (now - t->due) % t->interval);
		lws_sul_schedule(x->lws, 0, &t->sul, timer_fire, t->due - now);
	} else {
		t->scheduled = 0;
		if (t->counted) {
			t->counted = 0;
			x->n_timers--;
		}
		core_unref(L, &t->self_ref);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
	lua_rawgeti(L, LUA_REGISTRYINDEX, pin);
	core_call(x, 1, 0);   /* errors are reported; the timer goes on */
	luaL_unref(L, LUA_REGISTRYINDEX, pin);
	core_wake(x);  /* the callback may have called stop() */
}

static void
timer_schedule(lua_State *L, struct timer *t, int idx, lua_Integer delay_ms)
{
	struct ctx *x = t->ctx;

	if (!t->scheduled) {
		t->self_ref = core_ref_self(L, idx);
		t->scheduled = 1;
		if (!t->weak) {
			t->counted = 1;
			x->n_timers++;
		}
	}
	t->due = lws_now_usecs() + (lws_usec_t)delay_ms * 1000;
	/* a 0 delay still goes through the loop: never run the callback inline */
	lws_sul_schedule(x->lws, 0, &t->sul, timer_fire,
			 delay_ms > 0 ? (lws_usec_t)delay_ms * 1000 : 1);
	core_wake(x);
}

/* timer(delay_ms, repeat_ms, fn) -> timer; repeat_ms 0 = one-shot */
static int
l_timer(lua_State *L)
{
	struct ctx *x = core_ctx(L);
	lua_Number delay = luaL_checknumber(L, 1);
	lua_Number rep = luaL_optnumber(L, 2, 0);
	struct timer *t;

	luaL_argcheck(L, delay >= 0 && delay < 1e12, 1, "delay must be >= 0 ms");
	luaL_argcheck(L, rep >= 0 && rep < 1e12, 2, "interval must be >= 0 ms");
	if (!lua_isfunction(L, 3) && !luaL_getmetafield(L, 3, "__call"))
		luaL_typeerror(L, 3, "callable");
	lua_settop(L, 3);
	t = lua_newuserdatauv(L, sizeof(*t), 0);
	memset(t, 0, sizeof(*t));
	t->ctx = x;
	t->self_ref = LUA_NOREF;
	lua_pushvalue(L, 3);
	t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	t->interval = (lws_usec_t)(rep * 1000);
	luaL_setmetatable(L, TIMER_MT);
	timer_schedule(L, t, -1, (lua_Integer)delay);
	return 1;
}

static int
timer_stop(lua_State *L)
{
	timer_unschedule(timer_check(L, 1));
	return 0;
}

/* again([delay_ms]): reschedule (after stop, or to push the deadline back) */
static int
timer_again(lua_State *L)
{
	struct timer *t = timer_check(L, 1);
	lua_Number d = luaL_optnumber(L, 2, t->interval ? (lua_Number)t->interval / 1000 : 0);

	luaL_argcheck(L, d >= 0 && d < 1e12, 2, "delay must be >= 0 ms");
	if (!t->ctx->lws)
		luaL_error(L, "timer belongs to a destroyed loop");
	timer_schedule(L, t, 1, (lua_Integer)d);
	return 0;
}

/* unref(): this timer no longer keeps run() alive nor counts as live
 * (luv's uv_unref), e.g. a background interval or a test deadline */
static int
timer_unref(lua_State *L)
{
	struct timer *t = timer_check(L, 1);

	t->weak = 1;
	if (t->counted) {
		t->counted = 0;
		t->ctx->n_timers--;
	}
	return 0;
}

static int
timer_active(lua_State *L)
{
	lua_pushboolean(L, timer_check(L, 1)->scheduled);
	return 1;
}

static int
timer_tostring(lua_State *L)
{
	struct timer *t = timer_check(L, 1);

	lua_pushfstring(L, "lws.timer (%s, %p)", t->scheduled ? "active" : "stopped", t);
	return 1;
}

static int
timer_gc(lua_State *L)
{
	struct timer *t = timer_check(L, 1);

	/* only reachable while scheduled at lua_close */
	if (t->scheduled) {
		core_finalize_from_gc(t->ctx);
		t->scheduled = 0;
	}
	if (!t->ctx->finalizing)
		core_unref(L, &t->fn_ref);
	return 0;
}

static const luaL_Reg timer_methods[] = {
	{ "stop", timer_stop },
	{ "again", timer_again },
	{ "active", timer_active },
	{ "unref", timer_unref },
	{ NULL, NULL }
};

int
timer_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__gc", timer_gc }, { "__tostring", timer_tostring }, { NULL, NULL }
	};

	core_new_type(L, TIMER_MT, timer_methods, NULL, meta, NULL);
	lua_pushcfunction(L, l_timer);
	lua_setfield(L, -2, "timer");
	return 0;
}
