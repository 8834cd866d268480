/* lws_core.c: the module's entry point and its one exported symbol.
 * luaopen_lws_core opens the core (csrc/core.c: context and loop, with
 * csrc/core_hooks.c and csrc/core_call.c), then each type, which adds its
 * constructors to the table and registers the hooks it needs; and it
 * names the lws protocols of the internal vhost, one per purpose, each
 * exported by the file that handles it (as LuaSocket's luasocket.c lists
 * its modules). */
#include "core.h"

static const struct lws_protocols *const internal_protocols[] = {
	&client_protocol,   /* outgoing WebSocket connections */
	&watch_protocol,    /* lws.watch: a foreign fd */
	&listen_protocol,   /* our listening sockets */
	&redis_protocol,    /* hiredis sockets */
	NULL
};

static int (*const opens[])(lua_State *L) = {
	conn_open, server_open, timer_open, watch_open, client_open, request_open,
	signal_open, workers_open, redis_open, files_open, msgpack_open, crypt_open, NULL
};

CORE_API int luaopen_lws_core(lua_State *L);

int
luaopen_lws_core(lua_State *L)
{
	int i;

	core_open(L, internal_protocols);   /* the table, on top */
	for (i = 0; opens[i]; i++)
		opens[i](L);
	return 1;
}
