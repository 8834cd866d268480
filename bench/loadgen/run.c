/*
 * bench/loadgen/run.c: one run: messages and opens handed to the mode, the
 * phases (connect, warm-up, measure, drain, hold, check, close) and their
 * deadlines, the open-loop rate schedule, signals, and the epoll loop.
 */
#include "loadgen.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* ---- modes ---- */

void on_message(struct conn *c, int op, const unsigned char *d, size_t n,
		       uint64_t now)
{
	if (c->state != ST_OPEN)
		return;
	switch (O.mode) {
	case M_ECHO:
	case M_LATENCY:
	case M_IDLE:
		echo_message(c, op, d, n, now);
		break;
	case M_BROADCAST:
		bcast_message(c, op, d, n, now);
		break;
	case M_SIO:
		sio_message(c, op, d, n, now);
		break;
	case M_SELFTEST:
		buf_append(&G.st_msgs, d, n);
		buf_append(&G.st_msgs, "|", 1);
		G.st_count++;
		break;
	case M_CONNECT:
		G.unexpected++;
		break;
	}
}

void on_open(struct conn *c, uint64_t now)
{
	G.t_last_open = now;
	c->bc_from = G.next_seq;
	c->next = G.next_seq;
	if (O.mode == M_SIO)
		sio_open(c);        /* it joins broadcasts at its CONNECT reply */
	if (O.mode == M_CONNECT && !O.keep)
		ws_close(c, 1000);
}

/* ---- phases ---- */

static void window_open(uint64_t now)
{
	if (O.mode != M_CONNECT)
		G.phase = PH_MEASURE;
	G.t_ms = now;
	G.cpu_ms = self_cpu_s();
	G.scpu_ms = server_cpu_s();
	G.ncores = read_proc_stat(&G.all_ms, G.core_ms);
	for (int i = 0; i < O.ncpu_pids; i++)
		G.pid_ms[i] = pid_cpu_s(O.cpu_pids[i]);
}

static void window_close(uint64_t now)
{
	G.t_me = now;
	G.cpu_me = self_cpu_s();
	G.scpu_me = server_cpu_s();
	read_proc_stat(&G.all_me, G.core_me);
	for (int i = 0; i < O.ncpu_pids; i++)
		G.pid_me[i] = pid_cpu_s(O.cpu_pids[i]);
	G.rss_end = read_rss_kib(O.server_pid);
}

static void enter_close(uint64_t now)
{
	uint32_t i;

	G.phase = PH_CLOSE;
	G.t_close_end = now + s_to_ns(5);
	for (i = 0; i < G.total; i++) {
		struct conn *c = &G.c[i];

		if (c->state == ST_OPEN)
			ws_close(c, 1000);
		else if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE)
			conn_fail(c, &G.conn_errors, "still connecting at close");
	}
}

static void start_traffic(uint64_t now)
{
	uint32_t i;
	int j;

	G.t0 = G.next_due = now;
	G.k = 0;
	G.t_warm_end = now + s_to_ns(O.warmup);
	G.t_me_target = G.t_warm_end + s_to_ns(O.duration);
	G.phase = PH_WARMUP;
	if (O.warmup <= 0)
		window_open(now);
	if (O.mode == M_ECHO)
		for (i = 0; i < G.total; i++)
			if (G.c[i].state == ST_OPEN)
				for (j = 0; j < O.inflight; j++)
					send_echo(&G.c[i], now);
	if (is_bcast() && O.rate <= 0)
		bcast_fill_window(now);
}

static struct conn *next_open_conn(void)
{
	uint32_t tries;

	for (tries = 0; tries < G.total; tries++) {
		struct conn *c = &G.c[G.rr++ % G.total];

		if (c->state == ST_OPEN)
			return c;
	}
	return NULL;
}

/* open-loop schedule: the k-th message is due at t0 + k/rate; latency is
 * measured from that due time, so a late sender cannot hide server stalls */
static void rate_tick(uint64_t now)
{
	while (traffic_on() && G.next_due <= now) {
		if (O.mode == M_LATENCY) {
			struct conn *c = next_open_conn();

			if (!c)
				break;
			send_echo(c, G.next_due);
		} else {
			bcast_send(G.next_due);
		}
		G.k++;
		G.next_due = G.t0 + (uint64_t)((double)G.k * 1e9 / O.rate);
	}
}

static int drained(void)
{
	if (is_bcast())
		return G.oldest == G.next_seq;
	return G.outstanding == 0;
}

static void tick(uint64_t now)
{
	uint32_t i;

	if (G.stop && G.phase < PH_CLOSE) {
		G.interrupted = 1;
		if (G.phase == PH_MEASURE)
			window_close(now);
		enter_close(now);
	}
	switch (G.phase) {
	case PH_CONNECT:
		if (O.mode == M_CONNECT && !G.t_ms)
			window_open(now);
		while (G.started < G.total && G.pending < (uint32_t)O.concurrency)
			start_conn(&G.c[G.started++], now);
		if (G.started == G.total && G.pending == 0 && G.sio_pending == 0) {
			G.t_connected = now;
			if (O.mode == M_CONNECT)
				window_close(G.t_last_open ? G.t_last_open : now);
			if (!G.open && O.mode != M_CONNECT) {
				enter_close(now);       /* nothing to measure */
			} else if (O.mode == M_CONNECT) {
				G.phase = PH_HOLD;
				G.t_hold_end = now + (O.keep ? s_to_ns(O.hold) : 0);
			} else if (O.mode == M_IDLE) {
				G.phase = PH_HOLD;
				G.t_hold_end = now + s_to_ns(O.hold);
			} else {
				start_traffic(now);
			}
		} else if (now >= G.t_connect_deadline) {
			for (i = 0; i < G.total; i++)
				if (G.c[i].state == ST_CONNECTING ||
				    G.c[i].state == ST_HANDSHAKE || G.c[i].state == ST_NEW ||
				    (G.c[i].state == ST_OPEN && G.c[i].sio != SIO_NONE &&
				     G.c[i].sio != SIO_READY))
					conn_fail(&G.c[i], &G.conn_errors, "connect timeout");
			G.started = G.total;
		}
		break;
	case PH_WARMUP:
		if (now >= G.t_warm_end)
			window_open(now);
		/* fall through */
	case PH_MEASURE:
		if (G.phase == PH_MEASURE && now >= G.t_me_target) {
			window_close(now);
			G.phase = PH_DRAIN;
			G.t_drain_end = now + s_to_ns(O.drain);
			break;
		}
		if (O.rate > 0 && (O.mode == M_LATENCY || is_bcast()))
			rate_tick(now);
		break;
	case PH_DRAIN:
		if (drained() || now >= G.t_drain_end)
			enter_close(now);
		break;
	case PH_HOLD:
		if (now < G.t_hold_end)
			break;
		G.rss_after = G.rss_end = read_rss_kib(O.server_pid);
		if (O.mode == M_IDLE) {
			G.phase = PH_CHECK;
			G.t_drain_end = now + s_to_ns(O.drain);
			for (i = 0; i < G.total; i++)
				if (G.c[i].state == ST_OPEN)
					send_echo(&G.c[i], now);
		} else {
			enter_close(now);
		}
		break;
	case PH_CHECK:
		if (G.outstanding == 0 || now >= G.t_drain_end)
			enter_close(now);
		break;
	case PH_CLOSE:
		if (G.open + G.closing == 0) {
			G.phase = PH_DONE;
		} else if (now >= G.t_close_end) {
			for (i = 0; i < G.total; i++)
				if (G.c[i].state == ST_OPEN || G.c[i].state == ST_CLOSING)
					conn_fail(&G.c[i], &G.unclean_close,
						  "no close handshake within 5 s");
			G.phase = PH_DONE;
		}
		break;
	default:
		break;
	}
}

static void arm_timer(uint64_t due)
{
	static uint64_t armed;
	struct itimerspec its = { .it_value = {
		.tv_sec = (time_t)(due / 1000000000u),
		.tv_nsec = (long)(due % 1000000000u) } };

	/* re-arming costs a syscall (and a VM exit here): only when it moved */
	if (due == armed)
		return;
	armed = due;
	timerfd_settime(G.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

void on_signal(int sig)
{
	(void)sig;
	G.stop = 1;
}

void on_alarm(int sig)
{
	static const char m[] = "loadgen: hard deadline exceeded, exiting\n";

	(void)sig;
	if (write(2, m, sizeof(m) - 1) < 0)
		_exit(3);
	_exit(3);
}

static void raise_nofile(uint32_t need)
{
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need) {
		struct rlimit want = { need, need };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
		die("need %u file descriptors, hard limit is %lu (raise it with ulimit -Hn)",
		    need, (unsigned long)rl.rlim_max);
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit: %s", strerror(errno));
}

void run(void)
{
	struct epoll_event evs[1024], te = { .events = EPOLLIN, .data.u64 = TIMER_TAG };
	uint32_t i;

	G.total = (uint32_t)O.conns + (is_bcast() ? 1 : 0);
	raise_nofile(G.total + 64);
	G.c = calloc(G.total, sizeof(*G.c));
	G.dirty = calloc(G.total, sizeof(*G.dirty));
	if (!G.c || !G.dirty)
		die("out of memory");
	for (i = 0; i < G.total; i++) {
		G.c[i].id = i;
		G.c[i].fd = -1;
	}
	if (is_bcast()) {
		G.left = calloc(BC_RING, sizeof(*G.left));
		if (!G.left)
			die("out of memory");
	}
	G.ep = epoll_create1(EPOLL_CLOEXEC);
	G.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (G.ep < 0 || G.tfd < 0 || epoll_ctl(G.ep, EPOLL_CTL_ADD, G.tfd, &te) < 0)
		die("epoll/timerfd: %s", strerror(errno));
	prctl(PR_SET_TIMERSLACK, 1000UL);  /* µs-accurate timer wake-ups */

	G.t_begin = now_ns();
	G.t_connect_deadline = G.t_begin + s_to_ns(O.connect_timeout);
	if (O.deadline <= 0)
		O.deadline = O.connect_timeout + O.warmup + O.duration + O.drain +
			     O.hold + 5 + 15;
	G.t_hard = G.t_begin + s_to_ns(O.deadline);
	alarm((unsigned)O.deadline + 11);   /* backstop if the loop wedges */
	G.rss_before = read_rss_kib(O.server_pid);
	G.phase = PH_CONNECT;

	while (G.phase != PH_DONE) {
		uint64_t now = now_ns();
		int n, timeout = 10, j;

		if (now >= G.t_hard) {
			fprintf(stderr, "loadgen: deadline of %.0f s reached, aborting\n",
				O.deadline);
			G.aborted = 1;
			if (G.phase <= PH_MEASURE && !G.t_me)
				G.t_me = now;
			for (i = 0; i < G.total; i++)
				if (G.c[i].state != ST_DONE && G.c[i].state != ST_NEW)
					conn_fail(&G.c[i], NULL, "");
			break;
		}
		tick(now);
		flush_dirty();
		if (G.phase == PH_DONE)
			break;
		if (traffic_on() && O.rate > 0 && O.mode != M_ECHO) {
			arm_timer(G.next_due);
			timeout = 20;
		}
		n = epoll_wait(G.ep, evs, 1024, timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		now = now_ns();
		for (j = 0; j < n; j++) {
			if (evs[j].data.u64 == TIMER_TAG) {
				uint64_t x;

				if (read(G.tfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
					die("timerfd: %s", strerror(errno));
				continue;
			}
			if (G.c[evs[j].data.u64].state != ST_DONE)
				conn_event(&G.c[evs[j].data.u64], evs[j].events, now);
		}
		flush_dirty();
	}
	alarm(0);
}
