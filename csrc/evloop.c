/* evloop.c: the libev (epoll) backend of the loop, the default. We create the
 * ev_loop and hand it to lws as a foreign loop; lws 4.1.6 then services
 * its suls and forced work only from an ev_idle watcher (starved while any
 * fd is busy) and its own hrtimer (not re-armed by lws_sul_schedule), so
 * one ev_prepare of ours does that work before every poll and arms our
 * own ev_timer for the next sul (see README, "The loop and timers"). */
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "core.h"

struct evloop {
	struct ev_loop *loop;
	void *foreign[1];             /* info.foreign_loops: one per service thread */
	lws_dll2_owner_t *suls;       /* lws's per-thread sul lists (LWS_COUNT_PT_SUL_OWNERS) */
	lws_sorted_usec_list_t probe;
	struct ctx *x;
	ev_prepare prepare;           /* before each poll: forced service, ripe suls */
	ev_timer timer;               /* wakes the poll when the earliest sul is due */
	ev_idle spin;                 /* active = the poll must not block */
};

static void
evloop_probe_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul;
}

/* What lws's idle watcher would do, every turn, whatever the fds do. */
static void
evloop_turn(struct evloop *e)
{
	struct lws_context *c = e->x->lws;
	lws_usec_t us;

	if (!c || e->x->destroying)
		return;
	/* buffered rx (TLS, rx flow re-enabled, extensions) is not an fd event */
	if (!lws_service_adjust_timeout(c, 1, 0))
		_lws_plat_service_forced_tsi(c, 0);
	us = __lws_sul_service_ripe(e->suls, LWS_COUNT_PT_SUL_OWNERS, lws_now_usecs());
	e->x->run_turn(e->x);   /* what the fd events and suls queued */
	if (us) {
		e->timer.repeat = (ev_tstamp)us / 1e6;
		ev_timer_again(e->loop, &e->timer);
	} else {
		ev_timer_stop(e->loop, &e->timer);
	}
	/* epoll sleeps at least 1 ms: a sul due sooner, or forced work still
	 * pending, is served by polling without waiting (as lws's poll loop) */
	if ((us && us < 1000) || !lws_service_adjust_timeout(c, 1, 0))
		ev_idle_start(e->loop, &e->spin);
	else
		ev_idle_stop(e->loop, &e->spin);
}

static void
evloop_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	evloop_turn(w->data);
}

static void
evloop_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	/* run the due suls now, so run("once") woken by a timer fires it */
	evloop_turn(w->data);
}

static void
evloop_spin_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;   /* only there to make the poll not block */
}

/* Before lws_create_context: our loop, and the options that make lws use it. */
int
evloop_new(struct ctx *x, struct lws_context_creation_info *info)
{
	struct evloop *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	e->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
	if (!e->loop) {
		free(e);
		return -1;
	}
	e->x = x;
	e->foreign[0] = e->loop;
	info->options |= LWS_SERVER_OPTION_LIBEV;
	info->foreign_loops = e->foreign;
	x->ev = e;
	return 0;
}

/* After lws_create_context succeeded; -1 if lws's timer list is not where
 * a scheduled sul says it is (then this lws is not the 4.1 we know). */
int
evloop_attach(struct evloop *e)
{
	struct ctx *x = e->x;

	/* lws does not export its per-thread sul lists, but every scheduled
	 * sul points at the list it is on: ours finds it for us */
	memset(&e->probe, 0, sizeof(e->probe));
	lws_sul_schedule(x->lws, 0, &e->probe, evloop_probe_cb, LWS_US_PER_SEC);
	e->suls = e->probe.list.owner;
	lws_sul_cancel(&e->probe);
	if (!e->suls)
		return -1;

	ev_prepare_init(&e->prepare, evloop_prepare_cb);
	e->prepare.data = e;
	ev_prepare_start(e->loop, &e->prepare);
	ev_init(&e->timer, evloop_timer_cb);
	e->timer.data = e;
	ev_idle_init(&e->spin, evloop_spin_cb);
	e->spin.data = e;
	return 0;
}

/* One loop turn: blocks until something happens, or not at all (nowait). */
void
evloop_run(struct evloop *e, int nowait)
{
	ev_run(e->loop, nowait ? EVRUN_NOWAIT : EVRUN_ONCE);
}

/* After lws_context_destroy (or a failed lws_create_context): lws has
 * stopped every watcher it started, so the loop can go. */
void
evloop_free(struct ctx *x)
{
	struct evloop *e = x->ev;

	if (!e)
		return;
	ev_prepare_stop(e->loop, &e->prepare);
	ev_timer_stop(e->loop, &e->timer);
	ev_idle_stop(e->loop, &e->spin);
	ev_loop_destroy(e->loop);
	free(e);
	x->ev = NULL;
}
