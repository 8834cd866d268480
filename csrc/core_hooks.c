/* core_hooks.c: what runs around lws's callbacks rather than inside one.
 * Deferred work (the next loop turn, outside the current callback), the
 * hooks the types register when they are opened (per turn, after the lws
 * context is destroyed, per lws log line) and the Lua log hook, and
 * waking the loop so that run() sees what a callback changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "core_private.h"

static struct ctx *log_ctx;   /* lws_set_log_level is process-wide: one hook */

struct deferred {
	struct deferred *next;
	deferred_fn fn;
	void *arg;
	int arg_ref;
};

void
core_wake(struct ctx *x)
{
	/* a flag set inside a callback is only seen after lws_service
	 * returns, which may be never without this (docs/libwebsockets-4.1.md §1.4) */
	if (x->lws)
		lws_cancel_service(x->lws);
}

/* ---- the log hook ---------------------------------------------------- */

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

/* lws's log lines for levels go to x's log hooks and its Lua log hook;
 * errors always do (the types' log hooks read them) */
void
core_log_to(struct ctx *x, int levels)
{
	log_ctx = x;
	lws_set_log_level(levels | LLL_ERR, log_emit);
}

/* x is going: lws logs nowhere */
void
core_log_release(struct ctx *x)
{
	if (log_ctx == x) {
		lws_set_log_level(0, NULL);
		log_ctx = NULL;
	}
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

/* After the lws context is gone: deferred work that never ran still holds
 * refs and memory, and the suls belonged to the old context */
void
core_drop_deferred(struct ctx *x)
{
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
hooks_run(struct ctx *x, core_hook_fn *list, int n)
{
	int i;

	for (i = 0; i < n; i++)
		list[i](x);
}

void
core_run_turn(struct ctx *x)
{
	hooks_run(x, x->turn_hooks, x->n_turn_hooks);
}

void
core_run_destroy_hooks(struct ctx *x)
{
	hooks_run(x, x->destroy_hooks, x->n_destroy_hooks);
}

static void
flush_run(lws_sorted_usec_list_t *sul)
{
	core_run_turn(lws_container_of(sul, struct ctx, sul_flush));
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
