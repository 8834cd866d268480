/* luatype.c: what makes a C struct a Lua type here, for every userdata
 * file: a metatable with its methods (exported to the Lua layer if asked),
 * a field table per object (user value 1) for handlers and user fields,
 * and option tables checked by name and type (luaposix's checkfieldnames). */
#include <stdio.h>
#include <string.h>

#include "core.h"

/* ---- userdata types ----------------------------------------------------- */

/* Registers metatable `name` (for the core table on top of the stack):
 * methods become __index, or the upvalue of the index closure; meta adds
 * metamethods; with export the methods table is also core[export], where
 * the Lua layer adds its methods. */
void
core_new_type(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction index,
	      const luaL_Reg *meta, const char *export)
{
	luaL_newmetatable(L, name);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	if (export) {
		lua_pushvalue(L, -1);
		lua_setfield(L, -4, export);
	}
	if (index)
		lua_pushcclosure(L, index, 1);
	lua_setfield(L, -2, "__index");
	luaL_setfuncs(L, meta, 0);
	lua_pop(L, 1);
}

/* Pushes the Lua field table of the userdata at idx (user value 1),
 * creating it on first use: handlers and user fields live there. */
void
core_push_fields(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	if (lua_getiuservalue(L, idx, 1) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, idx, 1);
	}
}

/* __index: methods (upvalue 1), then the field table */
int
core_fields_index(lua_State *L)
{
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	return core_fields_get(L);
}

/* the key (index 2) in the object's (index 1) field table: its user value 1 */
int
core_fields_get(lua_State *L)
{
	if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE)
		return 0;
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

/* __newindex: any field can be set on the object */
int
core_fields_newindex(lua_State *L)
{
	core_push_fields(L, 1);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	return 0;
}

/* ---- option tables (luaposix checkfieldnames) ----------------------- */

/* Raises "option 'k' must be <want>, got <the value>" for the value on top
 * of the stack, at the line of the Lua code that called the C function
 * (lua/lws/options.lua words its errors the same way) */
static int
opt_error(lua_State *L, const char *k, const char *want)
{
	char got[64];
	int t = lua_type(L, -1);

	if (t == LUA_TSTRING) {
		size_t n;
		const char *v = lua_tolstring(L, -1, &n);

		snprintf(got, sizeof(got), n > 40 ? "string \"%.37s...\"" : "string \"%s\"", v);
	} else if (t == LUA_TNUMBER || t == LUA_TBOOLEAN) {
		snprintf(got, sizeof(got), "%s %s", lua_typename(L, t), luaL_tolstring(L, -1, NULL));
	} else {
		snprintf(got, sizeof(got), "%s", lua_typename(L, t));
	}
	luaL_where(L, 1);
	lua_pushfstring(L, "option '%s' must be %s, got %s", k, want, got);
	lua_concat(L, 2);
	return lua_error(L);
}

void
core_check_fields(lua_State *L, int idx, const char *const *allowed)
{
	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *const *a;
		int ok = 0;

		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING)
			for (a = allowed; *a; a++)
				if (!strcmp(*a, lua_tostring(L, -1))) {
					ok = 1;
					break;
				}
		if (!ok) {
			lua_pushvalue(L, -1);
			luaL_error(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL));
		}
	}
}

lua_Integer
core_opt_int_field(lua_State *L, int idx, const char *k, lua_Integer def,
		   lua_Integer min, lua_Integer max)
{
	lua_Integer v;
	int isint;

	lua_getfield(L, idx, k);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return def;
	}
	v = lua_tointegerx(L, -1, &isint);
	if (lua_type(L, -1) != LUA_TNUMBER || !isint || v < min || v > max) {   /* no "10" */
		char want[80];

		snprintf(want, sizeof(want), "an integer in %lld..%lld", (long long)min, (long long)max);
		opt_error(L, k, want);
	}
	lua_pop(L, 1);
	return v;
}

const char *
core_opt_str_field(lua_State *L, int idx, const char *k, const char *def)
{
	const char *s;

	lua_getfield(L, idx, k);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return def;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		opt_error(L, k, "a string");
	s = lua_tostring(L, -1);
	lua_pop(L, 1);   /* still referenced by the option table */
	return s;
}

int
core_opt_bool_field(lua_State *L, int idx, const char *k, int def)
{
	int v;

	lua_getfield(L, idx, k);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return def;
	}
	if (!lua_isboolean(L, -1))
		opt_error(L, k, "a boolean");
	v = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

