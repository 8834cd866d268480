/* files.c: the file helpers static files need, as lws.core functions:
 * stat (size, mtime, type), realpath (every symlink resolved, so a mount
 * can refuse what leaves its directory) and gzip (RFC 1952, for
 * Content-Encoding). Used by lua/lws/http.lua. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core.h"

/* stat(path) -> { size, mtime, type = "file"|"directory"|"other" } | nil, err, code
 * (static files need sizes and times; follows symlinks) */
static int
l_stat(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;

	if (stat(path, &st)) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, strerror(errno));
		lua_pushstring(L, errno == ENOENT || errno == ENOTDIR ? "notfound" : "io");
		return 3;
	}
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, (lua_Integer)st.st_size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, (lua_Integer)st.st_mtime);
	lua_setfield(L, -2, "mtime");
	lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
	lua_setfield(L, -2, "type");
	return 1;
}

/* gzip(data[, level]) -> the gzip member (RFC 1952) of data, for HTTP
 * Content-Encoding: gzip (Engine.IO polling answers, static files).
 * One deflate() into a buffer of deflateBound's size: no loop needed. */
static int
l_gzip(lua_State *L)
{
	size_t len;
	const char *data = luaL_checklstring(L, 1, &len);
	int level = (int)luaL_optinteger(L, 2, 6);
	z_stream z;
	luaL_Buffer b;
	uLong bound;
	char *out;
	int rc;

	luaL_argcheck(L, level >= 1 && level <= 9, 2, "level must be 1..9");
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return luaL_error(L, "gzip: cannot initialise zlib");
	bound = deflateBound(&z, (uLong)len);
	out = luaL_buffinitsize(L, &b, (size_t)bound);
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)bound;
	rc = deflate(&z, Z_FINISH);
	len = (size_t)z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END)
		return luaL_error(L, "gzip: deflate failed (%d)", rc);
	luaL_pushresultsize(&b, len);
	return 1;
}

/* realpath(path) -> absolute path with every symlink resolved | nil, err */
static int
l_realpath(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char *r = realpath(path, NULL);

	if (!r) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, strerror(errno));
		lua_pushstring(L, errno == ENOENT || errno == ENOTDIR ? "notfound" : "io");
		return 3;
	}
	lua_pushstring(L, r);
	free(r);
	return 1;
}

int
files_open(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "stat", l_stat }, { "gzip", l_gzip }, { "realpath", l_realpath }, { NULL, NULL }
	};

	luaL_setfuncs(L, funcs, 0);
	return 0;
}
