/*
 * bench/loadgen/stats.c: what a run measures and prints: the latency
 * histogram, CPU and memory readings from /proc and getrusage, and the
 * RESULT line (stdout) with its summary (stderr).
 */
#include "loadgen.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- histogram ---- */

static int h_index(uint64_t v)
{
	int e, shift;

	if (v < 1024)
		return (int)v;
	e = 63 - __builtin_clzll(v);
	shift = e - 9;
	return 1024 + (e - 10) * H_SUB + (int)((v >> shift) - H_SUB);
}

static uint64_t h_value(int i)
{
	int e, shift;
	uint64_t lo;

	if (i < 1024)
		return (uint64_t)i;
	e = (i - 1024) / H_SUB + 10;
	shift = e - 9;
	lo = ((uint64_t)((i - 1024) % H_SUB) + H_SUB) << shift;
	return lo + ((1ull << shift) >> 1);    /* bucket midpoint */
}

void h_add(struct hist *h, uint64_t ns)
{
	int i = h_index(ns);

	if (i >= H_N)
		i = H_N - 1;
	h->b[i]++;
	h->count++;
	if (ns > h->max)
		h->max = ns;
}

static double h_pct(const struct hist *h, double q)
{
	uint64_t want, acc = 0;
	int i;

	if (!h->count)
		return 0;
	want = (uint64_t)(q * (double)h->count);
	if ((double)want < q * (double)h->count)
		want++;
	if (want < 1)
		want = 1;
	for (i = 0; i < H_N; i++) {
		acc += h->b[i];
		if (acc >= want) {
			uint64_t v = h_value(i);

			return (double)(v > h->max ? h->max : v) / 1000.0;
		}
	}
	return (double)h->max / 1000.0;
}

static double h_pct_us(double q)
{
	return h_pct(&G.h, q);
}

long read_rss_kib(long pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6)) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of a process, in seconds (-1: unknown) */
double pid_cpu_s(long pid)
{
	char path[64], line[1024], *p;
	unsigned long ut, st;
	FILE *f;
	int ok;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (!p || !(p = strrchr(line, ')')))
		return -1;
	/* fields after the command: state is 3rd, utime 14th, stime 15th */
	ok = sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		    &ut, &st) == 2;
	return ok ? (double)(ut + st) / (double)sysconf(_SC_CLK_TCK) : -1;
}

/* the server's, to show which side was the bottleneck */
double server_cpu_s(void)
{
	return pid_cpu_s(O.server_pid);
}

/*
 * /proc/stat, in seconds: *all = busy time of the machine without softirq
 * (processes' times exclude it too, so what neither we nor the server used
 * was someone else's load: on two cores that matters); core[i] = busy time
 * of CPU i including softirq, where loopback TCP does much of its work.
 */
int read_proc_stat(double *all, double *core)
{
	unsigned long long v[8];
	double hz = (double)sysconf(_SC_CLK_TCK);
	char line[512];
	int n = 0, id;
	FILE *f = fopen("/proc/stat", "r");

	*all = -1;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f) && !strncmp(line, "cpu", 3)) {
		/* user nice system idle iowait irq softirq steal */
		if (line[3] != ' ' && sscanf(line + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu", &id,
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 9) {
			if (id >= 0 && id < MAX_CORES) {
				core[id] = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
				if (id + 1 > n)
					n = id + 1;
			}
		} else if (sscanf(line + 3, " %llu %llu %llu %llu %llu %llu %llu %llu",
				  &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
				  &v[7]) == 8) {
			*all = (double)(v[0] + v[1] + v[2] + v[5] + v[7]) / hz;
		}
	}
	fclose(f);
	return n;
}

/* ---- reporting ---- */

double window_s(void)
{
	if (!G.t_ms || !G.t_me || G.t_me <= G.t_ms)
		return 0;
	return (double)(G.t_me - G.t_ms) / 1e9;
}

static double per_s(uint64_t n)
{
	double w = window_s();

	return w > 0 ? (double)n / w : 0;
}

void report(void)
{
	uint64_t errors;
	char lat[256];

	if (O.mode == M_ECHO || O.mode == M_LATENCY || O.mode == M_IDLE)
		G.lost += G.outstanding;
	if (is_bcast())
		G.missing = bcast_missing();
	errors = G.mismatches + G.lost + G.closed_errors + G.conn_errors +
		 G.proto_errors + G.unexpected + G.missing + G.dup + G.ooo;
	if (O.mode == M_IDLE && G.total - G.conn_errors > G.echo_ok + errors)
		errors = G.total - G.conn_errors - G.echo_ok;   /* silent non-echoers */
	snprintf(lat, sizeof(lat), "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f "
		 "max_us=%.1f samples=%" PRIu64, h_pct_us(0.50), h_pct_us(0.90),
		 h_pct_us(0.99), h_pct_us(0.999), (double)G.h.max / 1000.0, G.h.count);

	printf("RESULT mode=%s", mode_names[O.mode]);
	switch (O.mode) {
	case M_ECHO:
		printf(" conns=%d inflight=%d size=%d duration_s=%.2f msgs=%" PRIu64
		       " msgs_per_s=%.0f %s", O.conns, O.inflight, O.size, window_s(),
		       G.completed, per_s(G.completed), lat);
		break;
	case M_LATENCY:
		printf(" conns=%d rate=%.0f size=%d duration_s=%.2f sent_per_s=%.0f"
		       " recv_per_s=%.0f %s skipped=%" PRIu64, O.conns, O.rate, O.size,
		       window_s(), per_s(G.sent_in_window), per_s(G.recv_in_window), lat,
		       G.skipped);
		break;
	case M_BROADCAST:
		printf(" receivers=%d size=%d rate=%.0f window=%d duration_s=%.2f"
		       " sent=%" PRIu64 " msgs_per_s=%.0f deliveries=%" PRIu64
		       " deliveries_per_s=%.0f total_deliveries=%" PRIu64 " %s"
		       " missing=%" PRIu64 " dup=%" PRIu64 " ooo=%" PRIu64 " skipped=%" PRIu64,
		       O.conns, O.size, O.rate, O.rate > 0 ? 0 : O.window, window_s(),
		       G.next_seq, per_s(G.sent_in_window), G.deliveries,
		       per_s(G.deliveries), G.total_deliveries, lat, G.missing, G.dup,
		       G.ooo, G.skipped);
		break;
	case M_SIO:
		/* "2" = the receivers on --port2, reached through the adapter */
		printf(" receivers=%d port=%d port2=%d size=%d rate=%.0f window=%d"
		       " duration_s=%.2f sent=%" PRIu64 " msgs_per_s=%.0f deliveries=%" PRIu64
		       " deliveries_per_s=%.0f total_deliveries=%" PRIu64 " %s"
		       " deliveries2=%" PRIu64 " p50_us2=%.1f p99_us2=%.1f"
		       " missing=%" PRIu64 " dup=%" PRIu64 " ooo=%" PRIu64 " skipped=%" PRIu64
		       " pings=%" PRIu64, O.conns, O.port, O.port2, O.size, O.rate,
		       O.rate > 0 ? 0 : O.window, window_s(), G.next_seq,
		       per_s(G.sent_in_window), G.deliveries, per_s(G.deliveries),
		       G.total_deliveries, lat, G.deliveries2, h_pct(&G.h2, 0.5),
		       h_pct(&G.h2, 0.99), G.missing, G.dup, G.ooo, G.skipped, G.sio_pings);
		break;
	case M_CONNECT: {
		double el = G.t_last_open > G.t_first_connect ?
			    (double)(G.t_last_open - G.t_first_connect) / 1e9 : 0;
		uint32_t ok = G.total - (uint32_t)G.conn_errors;

		printf(" conns=%d concurrency=%d keep=%d opened=%u elapsed_s=%.3f"
		       " conns_per_s=%.0f", O.conns, O.concurrency, O.keep, ok, el,
		       el > 0 ? ok / el : 0);
		break;
	}
	case M_IDLE: {
		uint32_t ok = G.total - (uint32_t)G.conn_errors;
		double per = G.rss_before >= 0 && G.rss_after >= 0 && ok ?
			     (double)(G.rss_after - G.rss_before) / ok : -1;

		printf(" conns=%d opened=%u rss_before_kib=%ld rss_after_kib=%ld"
		       " kib_per_conn=%.2f echo_ok=%" PRIu64, O.conns, ok, G.rss_before,
		       G.rss_after, per, G.echo_ok);
		break;
	}
	case M_SELFTEST:
		break;
	}
	if (O.mode == M_ECHO || O.mode == M_LATENCY || O.mode == M_IDLE)
		printf(" sent_total=%" PRIu64 " recv_total=%" PRIu64, G.sent_total,
		       G.recv_total);
	if (window_s() > 0) {
		double self = G.cpu_me - G.cpu_ms, srv = G.scpu_me - G.scpu_ms;
		int have = G.scpu_ms >= 0 && G.scpu_me >= 0;

		printf(" loadgen_cpu=%.2f server_cpu=%.2f other_cpu=%.2f",
		       self / window_s(), have ? srv / window_s() : -1.0,
		       have && G.all_ms >= 0 ? (G.all_me - G.all_ms - self - srv) /
		       window_s() : -1.0);
		for (int i = 0; i < G.ncores; i++)
			printf("%s%.2f", i ? "," : " core_busy=",
			       (G.core_me[i] - G.core_ms[i]) / window_s());
		for (int i = 0; i < O.ncpu_pids; i++)
			printf("%s%.2f", i ? "," : " pid_cpu=",
			       G.pid_ms[i] >= 0 && G.pid_me[i] >= 0 ?
			       (G.pid_me[i] - G.pid_ms[i]) / window_s() : -1.0);
	}
	printf(" errors=%" PRIu64 " mismatches=%" PRIu64 " lost=%" PRIu64
	       " closed_errors=%" PRIu64 " conn_errors=%" PRIu64 " proto_errors=%" PRIu64
	       " unclean_close=%" PRIu64 " fragmented=%" PRIu64 " server_rss_kib=%ld"
	       " aborted=%d interrupted=%d\n", errors, G.mismatches, G.lost,
	       G.closed_errors, G.conn_errors, G.proto_errors, G.unclean_close,
	       G.fragmented, G.rss_end, G.aborted, G.interrupted);
	fflush(stdout);

	fprintf(stderr, "%s: %u connections to %s:%d", mode_names[O.mode], G.total,
		inet_ntoa(O.host), O.port);
	if (window_s() > 0)
		fprintf(stderr, ", measured %.2f s", window_s());
	fputc('\n', stderr);
	if (O.mode == M_ECHO)
		fprintf(stderr, "  %.0f round trips/s (%d in flight, %d B)\n",
			per_s(G.completed), O.inflight, O.size);
	if (is_bcast())
		fprintf(stderr, "  %" PRIu64 " messages sent, %.0f deliveries/s to %d receivers\n",
			G.next_seq, per_s(G.deliveries), O.conns);
	if (G.h.count)
		fprintf(stderr, "  latency µs: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
			h_pct_us(0.5), h_pct_us(0.9), h_pct_us(0.99), h_pct_us(0.999),
			(double)G.h.max / 1000.0);
	if (G.h2.count)
		fprintf(stderr, "  second node's receivers: %" PRIu64 " deliveries, p50 %.1f  p99 %.1f µs\n",
			G.deliveries2, h_pct(&G.h2, 0.5), h_pct(&G.h2, 0.99));
	if (O.mode == M_IDLE)
		fprintf(stderr, "  server RSS %ld -> %ld KiB, echo ok on %" PRIu64 "\n",
			G.rss_before, G.rss_after, G.echo_ok);
	fprintf(stderr, "  errors %" PRIu64 "%s\n", errors,
		G.aborted ? " (aborted at deadline)" : "");
}
