/* server_private.h: what csrc/server.c and csrc/server_upgrade.c share */
#ifndef LWS_LUA_SERVER_PRIVATE_H
#define LWS_LUA_SERVER_PRIVATE_H

#include "core.h"

#pragma GCC visibility push(hidden)

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE for "websocket" (upgrade: the header
 * value, blanked in place when we answer it ourselves) */
int server_confirm_upgrade(struct server *s, struct lws *wsi, char *upgrade);
/* LWS_CALLBACK_HTTP of an accepted upgrade: our 101, the connection open */
int server_switch(struct server *s, struct conn *c, struct lws *wsi);
/* the Lua request table of a plain HTTP request (csrc/request.c calls it) */
void server_push_http_request(lua_State *L, struct lws *wsi, const char *method);

#pragma GCC visibility pop

#endif
