/* luatype.c: what makes a C struct a Lua type here, for every userdata
 * file: a metatable with its methods (exported to the Lua layer if asked),
 * a field table per object (user value 1) for handlers and user fields,
 * and option tables checked by name and type (luaposix's checkfieldnames). */
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
	if (!isint)
		luaL_error(L, "option '%s' must be an integer, got %s", k, luaL_typename(L, -1));
	if (v < min || v > max)
		luaL_error(L, "option '%s' out of range (%I..%I)", k, min, max);
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
		luaL_error(L, "option '%s' must be a string, got %s", k, luaL_typename(L, -1));
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
		luaL_error(L, "option '%s' must be a boolean, got %s", k, luaL_typename(L, -1));
	v = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

