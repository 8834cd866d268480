/* core_call.c: every call from C into Lua. core_call runs a function
 * protected, on the main thread, with a traceback handler; an error never
 * unwinds through an lws frame: it is reported through the error hook
 * (core_report) and the caller decides what to close. Also the dispatch
 * prelude every event takes, registry refs, and the nil, message, code
 * triple. It calls no other file. */
#include <stdio.h>

#include "core.h"

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

void
core_push_msgh(lua_State *L)
{
	lua_pushcfunction(L, msgh_traceback);
}

int
core_call_at(struct ctx *x, int nargs, int msgh)
{
	lua_State *L = x->L;

	if (lua_pcall(L, nargs, 0, msgh) != LUA_OK) {
		x->callback_errors++;
		core_report(x, lua_tostring(L, -1));
		return -1;
	}
	return 0;
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
