/* core_private.h: what the core's own files (core.c, core_call.c,
 * core_hooks.c) share and no type needs: core.c runs the hooks and clears
 * what the old lws context left behind. */
#ifndef LWS_LUA_CORE_PRIVATE_H
#define LWS_LUA_CORE_PRIVATE_H

#include "core.h"

#pragma GCC visibility push(hidden)

void core_run_turn(struct ctx *x);            /* the turn hooks; also ctx->run_turn */
void core_run_destroy_hooks(struct ctx *x);
void core_drop_deferred(struct ctx *x);
void core_log_to(struct ctx *x, int levels);  /* lws_set_log_level, to x's hooks */
void core_log_release(struct ctx *x);

#pragma GCC visibility pop

#endif
