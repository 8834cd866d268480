/*
 * loadgen: WebSocket load generator for the lws benchmarks.
 * One thread, one epoll loop, libc only: its own HTTP upgrade, SHA-1,
 * masked client frames and a frame parser that copes with partial reads,
 * partial writes and fragmented server messages.
 * Targets are limited to 127.0.0.0/8 and every run has a hard deadline.
 *
 * bench/loadgen/main.c owns the entry: the options O and the run's state G,
 * the command line, and the self test of the codec. The other files:
 * util.c (errors, clock, memory, buffers, payload pattern), ws.c (upgrade
 * and frames), conn.c (a connection's socket and states), echo.c and
 * broadcast.c (the workloads), run.c (phases and the event loop), stats.c
 * (histogram, /proc, the RESULT line); loadgen.h is what they share.
 */
#include "loadgen.h"

#include <arpa/inet.h>
#include <sys/random.h>
#include <unistd.h>

const char *const mode_names[] = {
	"echo", "latency", "broadcast", "connect", "idle", "sio-broadcast", "selftest"
};

struct opts O = {
	.mode = M_ECHO, .port = 0, .path = "/", .conns = 100, .inflight = 1,
	.size = 32, .concurrency = 256, .src_ips = 1, .window = 32,
	.duration = 10, .warmup = 1, .drain = 5, .hold = 2, .rate = 0,
	.deadline = 0, .connect_timeout = 60, .server_pid = 0,
};

struct run G;

/* ---- self test: codec checks without a server ---- */

static int selftest(void)
{
	static const unsigned char frames[] = {
		0x01, 0x03, 'a', 'b', 'c',          /* text, no FIN */
		0x89, 0x02, 'h', 'i',               /* ping between fragments */
		0x80, 0x02, 'd', 'e',               /* continuation, FIN */
		0x81, 0x7e, 0x00, 0x7e,             /* 126-byte text, 16-bit length */
	};
	unsigned char in[sizeof(frames) + 126], key[4] = { 1, 2, 3, 4 }, m[13], u[13];
	char acc[29];
	struct conn c = { .fd = -1, .state = ST_OPEN };
	size_t i, fails = 0;

	ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", acc);
	if (strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
		fprintf(stderr, "selftest: accept %s\n", acc);
		fails++;
	}
	mask_copy(m, (const unsigned char *)"Hello, world!", 13, key);
	mask_copy(u, m, 13, key);
	if (memcmp(u, "Hello, world!", 13)) {
		fprintf(stderr, "selftest: mask round trip\n");
		fails++;
	}
	memcpy(in, frames, sizeof(frames));
	memset(in + sizeof(frames), 'x', 126);
	G.dirty = calloc(1, sizeof(*G.dirty));
	/* feed one byte at a time: every frame boundary becomes a partial read */
	for (i = 0; i < sizeof(in); i++)
		conn_input(&c, in + i, 1, 0);
	if (G.st_count != 2 || G.st_msgs.len != 6 + 127 ||
	    memcmp(G.st_msgs.p, "abcde|", 6) || c.out.len != 8 ||
	    c.out.p[0] != 0x8a || c.state != ST_OPEN) {
		fprintf(stderr, "selftest: reassembly (msgs %u, bytes %zu, out %zu)\n",
			G.st_count, G.st_msgs.len, c.out.len);
		fails++;
	}
	conn_release(&c);
	buf_free(&G.st_msgs);
	free(G.dirty);
	printf("selftest: %s\n", fails ? "FAILED" : "ok");
	return fails ? 1 : 0;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fputs("usage: loadgen MODE [options]\n"
	      "modes:\n"
	      "  echo       N conns, D messages in flight each; round trips/s, verified\n"
	      "  latency    N conns, open-loop total rate R; round-trip percentiles\n"
	      "  broadcast  1 sender + N receivers; deliveries/s, latency, ordering\n"
	      "  connect    open N conns (full handshake); connections/s\n"
	      "  idle       hold N conns, server RSS per connection, then echo check\n"
	      "  sio-broadcast  broadcast over Socket.IO 5 / Engine.IO 4 websockets:\n"
	      "             conn 0 emits \"pub\" to --port, the server io.emit()s it as\n"
	      "             \"b\"; receivers alternate between --port and --port2\n"
	      "  selftest   codec checks, no network\n"
	      "options:\n"
	      "  --host A             target IPv4 in 127.0.0.0/8 (default 127.0.0.1)\n"
	      "  --port P             target port (required)\n"
	      "  --port2 P            sio-broadcast: second node's port (default --port)\n"
	      "  --path /P            request path (default /; sio-broadcast:\n"
	      "                       /socket.io/?EIO=4&transport=websocket)\n"
	      "  --conns N            connections (broadcast: receivers) (100)\n"
	      "  --inflight D         echo: messages in flight per connection (1)\n"
	      "  --size B             payload bytes, ASCII text (32; broadcast >= 40)\n"
	      "  --rate R             latency: total msgs/s; broadcast: msgs/s, 0 = window\n"
	      "  --window W           broadcast: messages not yet fully delivered (32)\n"
	      "  --duration S         measured seconds (10)\n"
	      "  --warmup S           unmeasured seconds before (1)\n"
	      "  --drain S            wait for outstanding replies (5)\n"
	      "  --hold S             idle/connect: hold connections open (2)\n"
	      "  --concurrency K      handshakes in progress at once (256)\n"
	      "  --connect-timeout S  for opening all connections (60)\n"
	      "  --keep               connect: keep connections until all are open\n"
	      "  --src-ips K          spread sources over 127.0.0.1..K (1)\n"
	      "  --server-pid PID     read the server's VmRSS from /proc\n"
	      "  --cpu-pids P,P…      CPU share of each in the window (pid_cpu=)\n"
	      "  --deadline S         hard limit for the whole run (derived)\n"
	      "output: one 'RESULT mode=… key=value…' line on stdout, details on stderr\n",
	      f);
}

static double num_arg(const char *opt, const char *v, double lo, double hi)
{
	char *end;
	double d;

	if (!v)
		die("%s needs a value", opt);
	d = strtod(v, &end);
	if (*end || end == v || d < lo || d > hi)
		die("bad value for %s: %s", opt, v);
	return d;
}

static void parse_pids(const char *opt, const char *v)
{
	char *end;

	if (!v || !*v)
		die("%s needs a value", opt);
	for (;;) {
		long pid = strtol(v, &end, 10);

		if (end == v || pid <= 0 || O.ncpu_pids == MAX_PIDS)
			die("bad value for %s (at most %d pids)", opt, MAX_PIDS);
		O.cpu_pids[O.ncpu_pids++] = pid;
		if (!*end)
			return;
		if (*end != ',')
			die("bad value for %s", opt);
		v = end + 1;
	}
}

static void parse_args(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int i, m, got_port = 0, got_size = 0, got_path = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		exit(argc < 2 ? 2 : 0);
	}
	for (m = 0; m <= M_SELFTEST; m++)
		if (!strcmp(argv[1], mode_names[m]))
			break;
	if (m > M_SELFTEST)
		die("unknown mode '%s' (try --help)", argv[1]);
	O.mode = (enum mode)m;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--keep")) {
			O.keep = 1;
			continue;
		}
		if (!strcmp(a, "--verbose")) {
			O.verbose = 1;
			continue;
		}
		i++;
		if (!strcmp(a, "--host"))
			host = v ? v : "";
		else if (!strcmp(a, "--port"))
			O.port = (int)num_arg(a, v, 1, 65535), got_port = 1;
		else if (!strcmp(a, "--port2"))
			O.port2 = (int)num_arg(a, v, 1, 65535);
		else if (!strcmp(a, "--path"))
			O.path = v ? v : "/", got_path = 1;
		else if (!strcmp(a, "--cpu-pids"))
			parse_pids(a, v);
		else if (!strcmp(a, "--conns"))
			O.conns = (int)num_arg(a, v, 1, 1000000);
		else if (!strcmp(a, "--inflight"))
			O.inflight = (int)num_arg(a, v, 1, 65536);
		else if (!strcmp(a, "--size"))
			O.size = (int)num_arg(a, v, 1, 16 << 20), got_size = 1;
		else if (!strcmp(a, "--rate"))
			O.rate = num_arg(a, v, 0, 1e8);
		else if (!strcmp(a, "--window"))
			O.window = (int)num_arg(a, v, 1, BC_RING / 2);
		else if (!strcmp(a, "--duration"))
			O.duration = num_arg(a, v, 0.1, 3600);
		else if (!strcmp(a, "--warmup"))
			O.warmup = num_arg(a, v, 0, 600);
		else if (!strcmp(a, "--drain"))
			O.drain = num_arg(a, v, 0, 600);
		else if (!strcmp(a, "--hold"))
			O.hold = num_arg(a, v, 0, 3600);
		else if (!strcmp(a, "--concurrency"))
			O.concurrency = (int)num_arg(a, v, 1, 1000000);
		else if (!strcmp(a, "--connect-timeout"))
			O.connect_timeout = num_arg(a, v, 0.1, 3600);
		else if (!strcmp(a, "--src-ips"))
			O.src_ips = (int)num_arg(a, v, 1, 254);
		else if (!strcmp(a, "--server-pid"))
			O.server_pid = (long)num_arg(a, v, 1, 1e9);
		else if (!strcmp(a, "--deadline"))
			O.deadline = num_arg(a, v, 1, 7200);
		else
			die("unknown option '%s' (try --help)", a);
	}
	if (O.mode == M_SELFTEST)
		return;
	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &O.host) != 1)
		die("--host must be an IPv4 address in 127.0.0.0/8, got '%s'", host);
	/* load only ever goes to this machine's loopback */
	if ((ntohl(O.host.s_addr) >> 24) != 127)
		die("refusing target %s: only 127.0.0.0/8 is allowed", host);
	if (!got_port)
		die("--port is required");
	if (is_bcast() && !got_size)
		O.size = 64;
	if (is_bcast() && O.size < 40)
		die("broadcast needs --size >= 40 (sequence number and timestamp)");
	if (O.mode == M_SIO && !got_path)
		O.path = "/socket.io/?EIO=4&transport=websocket";
	if (O.mode == M_SIO && !O.port2)
		O.port2 = O.port;
	if (O.mode != M_SIO && O.port2)
		die("--port2 is for sio-broadcast");
	if (O.mode == M_LATENCY && O.rate <= 0)
		die("latency needs --rate > 0");
	if (O.mode == M_IDLE && O.server_pid <= 0)
		die("idle needs --server-pid");
	if (O.path[0] != '/' || strpbrk(O.path, " \r\n"))
		die("bad --path");
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t seed;

	parse_args(argc, argv);
	pat_init();
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = now_ns() ^ (uint64_t)getpid() << 32;
	rng_state = seed | 1;
	if (O.mode == M_SELFTEST)
		return selftest();

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);

	run();
	report();

	for (uint32_t i = 0; i < G.total; i++) {
		conn_release(&G.c[i]);
		free(G.c[i].gaps);
	}
	free(G.c);
	free(G.dirty);
	free(G.left);
	free(scratch);
	close(G.ep);
	close(G.tfd);
	return G.aborted ? 3 : 0;
}
