/*
 * loadgen: WebSocket load generator for the lws benchmarks.
 * One thread, one epoll loop, libc only: its own HTTP upgrade, SHA-1,
 * masked client frames and a frame parser that copes with partial reads,
 * partial writes and fragmented server messages.
 * Targets are limited to 127.0.0.0/8 and every run has a hard deadline.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME (64u << 20)      /* refuse absurd frame lengths */
#define MAX_HEADER 8192            /* HTTP response header limit */
#define READ_CHUNK (256 * 1024)
#define TIMER_TAG UINT64_MAX
#define MAX_REPORTS 10             /* mismatch lines printed in full */
#define BC_RING (1u << 20)         /* broadcast messages tracked at once */
#define BC_HDR 34                  /* "%016x %016x " */
#define PATLEN 4093                /* prime, so payloads of nearby seqs differ */
#define MAX_CORES 64

enum mode { M_ECHO, M_LATENCY, M_BROADCAST, M_CONNECT, M_IDLE, M_SELFTEST };
static const char *const mode_names[] = {
	"echo", "latency", "broadcast", "connect", "idle", "selftest"
};

enum phase {
	PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_HOLD, PH_CHECK,
	PH_CLOSE, PH_DONE
};

enum state { ST_NEW, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DONE };

struct buf {                        /* live bytes are p[off..len) */
	unsigned char *p;
	size_t off, len, cap;
};

struct gap {                        /* broadcast seqs [lo, hi) not yet seen */
	uint64_t lo, hi;
};

struct conn {
	int fd;
	uint32_t id;
	uint8_t state;
	uint8_t dirty;              /* queued output, in the flush list */
	uint8_t sent_close, got_close;
	uint8_t frag_op;            /* opcode of the message being reassembled */
	uint8_t abandoned;          /* its unanswered messages already counted lost */
	uint32_t events;            /* current epoll interest */
	struct buf in, out, msg;
	uint64_t send_seq, recv_seq;
	uint64_t *tq;               /* send times of messages in flight (FIFO) */
	uint32_t tq_head, tq_len, tq_cap;
	uint64_t next;              /* broadcast: next expected seq */
	uint64_t bc_from;           /* broadcast: first seq sent while it was open */
	struct gap *gaps;
	uint32_t ngaps, gapcap;
	char accept[29];            /* expected Sec-WebSocket-Accept */
};

struct opts {
	enum mode mode;
	struct in_addr host;
	int port;
	const char *path;
	int conns, inflight, size, concurrency, src_ips, keep, window, verbose;
	double duration, warmup, drain, hold, rate, deadline, connect_timeout;
	long server_pid;
};

/* log-linear histogram of nanoseconds: exact below 1024, then 512
 * sub-buckets per power of two (<0.2% error) */
#define H_SUB 512
#define H_N (1024 + 54 * H_SUB)

static struct opts O = {
	.mode = M_ECHO, .port = 0, .path = "/", .conns = 100, .inflight = 1,
	.size = 32, .concurrency = 256, .src_ips = 1, .window = 32,
	.duration = 10, .warmup = 1, .drain = 5, .hold = 2, .rate = 0,
	.deadline = 0, .connect_timeout = 60, .server_pid = 0,
};

static struct {
	int ep, tfd;
	struct conn *c;
	uint32_t total, started, pending, open, closing, done;
	uint32_t *dirty, ndirty;
	enum phase phase;
	volatile sig_atomic_t stop;
	int aborted, interrupted;
	uint64_t t_begin, t_first_connect, t_last_open, t_connected;
	uint64_t t_warm_end, t_ms, t_me_target, t_me, t_drain_end, t_hold_end;
	uint64_t t_close_end, t_connect_deadline, t_hard;
	/* traffic */
	uint64_t t0, k, next_due, rr;
	uint64_t outstanding, completed, sent_in_window, recv_in_window, skipped;
	uint64_t mismatches, lost, closed_errors, conn_errors, proto_errors;
	uint64_t unclean_close, fragmented, unexpected, reports;
	uint64_t echo_ok, sent_total, recv_total;
	/* broadcast */
	uint32_t *left;
	uint64_t next_seq, oldest, deliveries, total_deliveries, dup, ooo;
	uint64_t missing;
	/* histogram */
	uint64_t hist[H_N], hcount, hmax;
	long rss_before, rss_after, rss_end;
	double cpu_ms, cpu_me, scpu_ms, scpu_me;   /* CPU seconds at window edges */
	double all_ms, all_me;                     /* all CPUs, busy seconds */
	double core_ms[MAX_CORES], core_me[MAX_CORES];  /* per CPU, incl. softirq */
	int ncores;
	/* selftest sink */
	struct buf st_msgs;
	uint32_t st_count;
} G;

static unsigned char pat[2 * PATLEN];
static unsigned char *scratch;
static size_t scratch_cap;
static unsigned char rbuf[READ_CHUNK];
static uint64_t rng_state;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t s_to_ns(double s)
{
	return s <= 0 ? 0 : (uint64_t)(s * 1e9);
}

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p && n)
		die("out of memory");
	return p;
}

static unsigned char *scratch_get(size_t n)
{
	if (n > scratch_cap) {
		scratch_cap = n;
		scratch = xrealloc(scratch, n);
	}
	return scratch;
}

/* ---- byte buffers ---- */

static size_t buf_used(const struct buf *b)
{
	return b->len - b->off;
}

static unsigned char *buf_reserve(struct buf *b, size_t n)
{
	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap && b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	return b->p + b->len;
}

static void buf_append(struct buf *b, const void *src, size_t n)
{
	memcpy(buf_reserve(b, n), src, n);
	b->len += n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* drop big buffers once empty so 10k idle connections stay small */
static void buf_trim(struct buf *b)
{
	if (b->off == b->len) {
		b->off = b->len = 0;
		if (b->cap > 65536)
			buf_free(b);
	}
}

/* ---- SHA-1 and base64, for Sec-WebSocket-Accept ---- */

static uint32_t rol(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20])
{
	uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
			  0xC3D2E1F0 };
	size_t total = ((len + 8) / 64 + 1) * 64, o, i;
	unsigned char blk[64];
	uint32_t w[80];

	for (o = 0; o < total; o += 64) {
		uint32_t a, b, c, d, e, f, k, t;

		for (i = 0; i < 64; i++) {
			size_t j = o + i;

			blk[i] = j < len ? msg[j] : j == len ? 0x80 : 0;
		}
		if (o + 64 == total)
			for (i = 0; i < 8; i++)
				blk[56 + i] = (unsigned char)(((uint64_t)len * 8) >> (56 - 8 * i));
		for (i = 0; i < 16; i++)
			w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
			       (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
		for (i = 16; i < 80; i++)
			w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
		a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4];
		for (i = 0; i < 80; i++) {
			if (i < 20) {
				f = (b & c) | (~b & d); k = 0x5A827999;
			} else if (i < 40) {
				f = b ^ c ^ d; k = 0x6ED9EBA1;
			} else if (i < 60) {
				f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC;
			} else {
				f = b ^ c ^ d; k = 0xCA62C1D6;
			}
			t = rol(a, 5) + f + e + k + w[i];
			e = d; d = c; c = rol(b, 30); b = a; a = t;
		}
		h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
	}
	for (i = 0; i < 20; i++)
		out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = tab[(v >> 6) & 63];
		*out++ = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
	*out = '\0';
}

static void ws_accept_for(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char cat[64], dig[20];
	size_t kl = strlen(key);

	memcpy(cat, key, kl);
	memcpy(cat + kl, guid, sizeof(guid) - 1);
	sha1(cat, kl + sizeof(guid) - 1, dig);
	base64(dig, 20, out);
}

/* ---- payloads: deterministic printable ASCII, so replies verify without
 * keeping copies of what was sent ---- */

static void pat_init(void)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	int i;

	for (i = 0; i < PATLEN; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		pat[i] = (unsigned char)(0x21 + (x >> 33) % 94);
	}
	memcpy(pat + PATLEN, pat, PATLEN);
}

static void fill_pat(unsigned char *d, size_t n, uint64_t off)
{
	off %= PATLEN;
	while (n) {
		size_t k = n < PATLEN ? n : PATLEN;

		memcpy(d, pat + off, k);
		d += k;
		n -= k;
	}
}

static void echo_payload(uint32_t id, uint64_t seq, size_t size, unsigned char *d)
{
	char hex[9];

	fill_pat(d, size, (uint64_t)id * 7919 + seq * 104729);
	snprintf(hex, sizeof(hex), "%08" PRIx32, (uint32_t)seq);
	memcpy(d, hex, size < 8 ? size : 8);
}

static void bcast_payload(uint64_t seq, uint64_t ts, size_t size, unsigned char *d)
{
	char hdr[BC_HDR + 1];

	snprintf(hdr, sizeof(hdr), "%016" PRIx64 " %016" PRIx64 " ", seq, ts);
	memcpy(d, hdr, BC_HDR);
	fill_pat(d + BC_HDR, size - BC_HDR, seq * 104729);
}

static int parse_hex16(const unsigned char *p, uint64_t *v)
{
	uint64_t x = 0;
	int i;

	for (i = 0; i < 16; i++) {
		unsigned c = p[i];

		if (c >= '0' && c <= '9')
			c -= '0';
		else if (c >= 'a' && c <= 'f')
			c -= 'a' - 10;
		else
			return -1;
		x = x << 4 | c;
	}
	*v = x;
	return 0;
}

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

static void h_add(uint64_t ns)
{
	int i = h_index(ns);

	if (i >= H_N)
		i = H_N - 1;
	G.hist[i]++;
	G.hcount++;
	if (ns > G.hmax)
		G.hmax = ns;
}

static double h_pct_us(double q)
{
	uint64_t want, acc = 0;
	int i;

	if (!G.hcount)
		return 0;
	want = (uint64_t)(q * (double)G.hcount);
	if ((double)want < q * (double)G.hcount)
		want++;
	if (want < 1)
		want = 1;
	for (i = 0; i < H_N; i++) {
		acc += G.hist[i];
		if (acc >= want) {
			uint64_t v = h_value(i);

			return (double)(v > G.hmax ? G.hmax : v) / 1000.0;
		}
	}
	return (double)G.hmax / 1000.0;
}

/* ---- send-time FIFO per connection ---- */

static int tq_push(struct conn *c, uint64_t t, uint32_t limit)
{
	if (c->tq_len == c->tq_cap) {
		uint32_t cap = c->tq_cap ? c->tq_cap * 2 : 4, i;
		uint64_t *n;

		if (cap > limit)
			return -1;
		n = xrealloc(NULL, cap * sizeof(*n));
		for (i = 0; i < c->tq_len; i++)
			n[i] = c->tq[(c->tq_head + i) & (c->tq_cap - 1)];
		free(c->tq);
		c->tq = n;
		c->tq_cap = cap;
		c->tq_head = 0;
	}
	c->tq[(c->tq_head + c->tq_len) & (c->tq_cap - 1)] = t;
	c->tq_len++;
	return 0;
}

static uint64_t tq_pop(struct conn *c)
{
	uint64_t t = c->tq[c->tq_head];

	c->tq_head = (c->tq_head + 1) & (c->tq_cap - 1);
	c->tq_len--;
	return t;
}

/* ---- connection bookkeeping ---- */

static void set_state(struct conn *c, enum state s)
{
	enum state o = (enum state)c->state;

	if (o == ST_CONNECTING || o == ST_HANDSHAKE)
		G.pending--;
	else if (o == ST_OPEN)
		G.open--;
	else if (o == ST_CLOSING)
		G.closing--;
	if (s == ST_CONNECTING || s == ST_HANDSHAKE)
		G.pending++;
	else if (s == ST_OPEN)
		G.open++;
	else if (s == ST_CLOSING)
		G.closing++;
	else if (s == ST_DONE)
		G.done++;
	c->state = (uint8_t)s;
}

static void conn_release(struct conn *c)
{
	if (c->fd >= 0) {
		close(c->fd);       /* also drops it from the epoll set */
		c->fd = -1;
	}
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->msg);
	free(c->tq);
	c->tq = NULL;
	c->tq_len = c->tq_cap = c->tq_head = 0;
}

static void bcast_forget(struct conn *c);

/* a connection that dies mid-run takes its unanswered messages with it:
 * count them lost now, so drains and broadcast windows don't wait for it */
static void conn_abandon(struct conn *c)
{
	uint64_t n = c->send_seq - c->recv_seq;

	if (c->abandoned || c->state < ST_OPEN)
		return;
	c->abandoned = 1;
	G.outstanding -= n;
	G.lost += n;
	c->recv_seq = c->send_seq;
	if (O.mode == M_BROADCAST)
		bcast_forget(c);
}

static void conn_fail(struct conn *c, uint64_t *counter, const char *fmt, ...)
{
	va_list ap;

	if (c->state == ST_DONE)
		return;
	conn_abandon(c);
	if (counter)
		(*counter)++;
	if (counter && G.reports++ < MAX_REPORTS) {
		fprintf(stderr, "loadgen: conn %u: ", c->id);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	conn_release(c);
	set_state(c, ST_DONE);
}

static void conn_mark(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = 1;
		G.dirty[G.ndirty++] = c->id;
	}
}

static void conn_want(struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.u64 = c->id };

	if (ev != c->events && c->fd >= 0) {
		epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &e);
		c->events = ev;
	}
}

static void conn_flush(struct conn *c)
{
	while (c->fd >= 0 && buf_used(&c->out)) {
		ssize_t w = send(c->fd, c->out.p + c->out.off, buf_used(&c->out),
				 MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_fail(c, G.phase >= PH_CLOSE ? &G.unclean_close : &G.closed_errors,
				  "send: %s", strerror(errno));
			return;
		}
		c->out.off += (size_t)w;
	}
	if (c->fd < 0)
		return;
	buf_trim(&c->out);
	if (c->state != ST_CONNECTING)
		conn_want(c, EPOLLIN | (buf_used(&c->out) ? EPOLLOUT : 0));
}

static void flush_dirty(void)
{
	uint32_t i;

	for (i = 0; i < G.ndirty; i++) {
		struct conn *c = &G.c[G.dirty[i]];

		c->dirty = 0;
		conn_flush(c);
	}
	G.ndirty = 0;
}

/* ---- framing ---- */

static void mask_copy(unsigned char *dst, const unsigned char *src, size_t n,
		      const unsigned char key[4])
{
	uint64_t m8, v;
	size_t i = 0;
	uint32_t m4;

	memcpy(&m4, key, 4);
	m8 = (uint64_t)m4 << 32 | m4;
	for (; i + 8 <= n; i += 8) {
		memcpy(&v, src + i, 8);
		v ^= m8;
		memcpy(dst + i, &v, 8);
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ key[i & 3];
}

static void ws_send(struct conn *c, int op, const unsigned char *d, size_t n)
{
	unsigned char *h, *p, key[4];
	uint32_t r = (uint32_t)rng();
	int i;

	h = p = buf_reserve(&c->out, n + 14);
	*p++ = (unsigned char)(0x80 | op);
	if (n < 126) {
		*p++ = (unsigned char)(0x80 | n);
	} else if (n < 65536) {
		*p++ = 0x80 | 126;
		*p++ = (unsigned char)(n >> 8);
		*p++ = (unsigned char)n;
	} else {
		*p++ = 0x80 | 127;
		for (i = 7; i >= 0; i--)
			*p++ = (unsigned char)((uint64_t)n >> (8 * i));
	}
	memcpy(key, &r, 4);
	memcpy(p, key, 4);
	p += 4;
	mask_copy(p, d, n, key);
	c->out.len += (size_t)(p - h) + n;
	conn_mark(c);
}

static void ws_close(struct conn *c, unsigned code)
{
	unsigned char b[2] = { (unsigned char)(code >> 8), (unsigned char)code };

	if (c->sent_close)
		return;
	ws_send(c, 0x8, b, 2);
	c->sent_close = 1;
	if (c->state == ST_OPEN)
		set_state(c, ST_CLOSING);
}

static void on_message(struct conn *c, int op, const unsigned char *d, size_t n,
		       uint64_t now);

static void on_close_frame(struct conn *c, const unsigned char *d, size_t n)
{
	unsigned code = n >= 2 ? (unsigned)d[0] << 8 | d[1] : 1005;

	c->got_close = 1;
	if (!c->sent_close) {
		/* the server closed first: outside our close phase that is an error */
		if (G.phase < PH_CLOSE && O.mode != M_SELFTEST) {
			conn_abandon(c);
			G.closed_errors++;
			if (G.reports++ < MAX_REPORTS)
				fprintf(stderr, "loadgen: conn %u: server sent close %u\n",
					c->id, code);
		}
		ws_close(c, code == 1005 ? 1000 : code);
	}
	/* now wait for the server to close TCP, so TIME_WAIT stays on its side */
}

static void proto_error(struct conn *c, const char *what)
{
	conn_fail(c, &G.proto_errors, "protocol error: %s", what);
}

static void on_frame(struct conn *c, int fin, int op, const unsigned char *d,
		     size_t n, uint64_t now)
{
	if (op >= 0x8) {
		if (!fin || n > 125) {
			proto_error(c, "bad control frame");
			return;
		}
		if (op == 0x8)
			on_close_frame(c, d, n);
		else if (op == 0x9 && !c->sent_close)
			ws_send(c, 0xA, d, n);      /* pong echoes the ping payload */
		else if (op != 0x9 && op != 0xA)
			proto_error(c, "unknown control opcode");
		return;
	}
	if (c->got_close)
		return;
	if (op == 0x1 || op == 0x2) {
		if (c->frag_op) {
			proto_error(c, "new message inside a fragmented one");
			return;
		}
		if (fin) {
			on_message(c, op, d, n, now);
			return;
		}
		c->frag_op = (uint8_t)op;
		G.fragmented++;
		buf_append(&c->msg, d, n);
	} else if (op == 0x0) {
		if (!c->frag_op) {
			proto_error(c, "continuation without a first frame");
			return;
		}
		buf_append(&c->msg, d, n);
		if (fin) {
			int fop = c->frag_op;

			c->frag_op = 0;
			on_message(c, fop, c->msg.p, c->msg.len, now);
			c->msg.off = c->msg.len = 0;
			buf_trim(&c->msg);
		}
	} else {
		proto_error(c, "unknown data opcode");
	}
}

/* returns bytes consumed; stops at an incomplete frame */
static size_t parse_frames(struct conn *c, const unsigned char *p, size_t n,
			   uint64_t now)
{
	size_t pos = 0;

	while (n - pos >= 2 && c->state != ST_DONE) {
		const unsigned char *f = p + pos;
		size_t avail = n - pos, hl = 2;
		uint64_t len = f[1] & 0x7f;
		int i;

		if (f[0] & 0x70) {
			proto_error(c, "RSV bits set");
			break;
		}
		if (f[1] & 0x80) {
			proto_error(c, "masked frame from server");
			break;
		}
		if (len == 126) {
			if (avail < 4)
				break;
			len = (uint64_t)f[2] << 8 | f[3];
			hl = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			for (len = 0, i = 0; i < 8; i++)
				len = len << 8 | f[2 + i];
			hl = 10;
		}
		if (len > MAX_FRAME) {
			proto_error(c, "frame too long");
			break;
		}
		if (avail - hl < len)
			break;
		on_frame(c, f[0] & 0x80, f[0] & 0x0f, f + hl, (size_t)len, now);
		pos += hl + (size_t)len;
	}
	return pos;
}

static void on_open(struct conn *c, uint64_t now);

static int header_value_is(const char *h, const char *end, const char *name,
			   const char *want)
{
	size_t nl = strlen(name), wl = strlen(want);
	const char *line = h;

	while (line < end) {
		const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2), *v;

		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > nl && line[nl] == ':' &&
		    !strncasecmp(line, name, nl)) {
			v = line + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t'))
				eol--;
			return (size_t)(eol - v) == wl && !strncasecmp(v, want, wl);
		}
		line = eol + 2;
	}
	return 0;
}

static void handshake_input(struct conn *c, uint64_t now)
{
	const char *h = (const char *)c->in.p + c->in.off, *end;
	size_t used = buf_used(&c->in), hl;

	end = memmem(h, used, "\r\n\r\n", 4);
	if (!end) {
		if (used > MAX_HEADER)
			conn_fail(c, &G.conn_errors, "handshake: response header too long");
		return;
	}
	hl = (size_t)(end - h) + 4;
	if (used < 12 || memcmp(h, "HTTP/1.1 101", 12)) {
		const char *eol = memchr(h, '\r', used);

		conn_fail(c, &G.conn_errors, "handshake: %.*s",
			  (int)(eol ? eol - h : 40), h);
		return;
	}
	if (!header_value_is(h, end + 2, "Upgrade", "websocket") ||
	    !header_value_is(h, end + 2, "Sec-WebSocket-Accept", c->accept)) {
		conn_fail(c, &G.conn_errors, "handshake: bad Upgrade or Accept header");
		return;
	}
	c->in.off += hl;
	set_state(c, ST_OPEN);
	conn_want(c, EPOLLIN | (buf_used(&c->out) ? EPOLLOUT : 0));
	on_open(c, now);
	if (c->state != ST_DONE && buf_used(&c->in)) {
		/* frames that arrived with the 101 */
		size_t used = parse_frames(c, c->in.p + c->in.off, buf_used(&c->in), now);

		if (c->state == ST_DONE)
			return;
		c->in.off += used;
	}
	if (c->state != ST_DONE)
		buf_trim(&c->in);
}

static void conn_input(struct conn *c, const unsigned char *d, size_t n,
		       uint64_t now)
{
	size_t used;

	if (c->state == ST_HANDSHAKE) {
		buf_append(&c->in, d, n);
		handshake_input(c, now);
		return;
	}
	if (buf_used(&c->in)) {
		/* a partial frame is pending: append and parse from our buffer */
		buf_append(&c->in, d, n);
		used = parse_frames(c, c->in.p + c->in.off, buf_used(&c->in), now);
		if (c->state == ST_DONE)
			return;
		c->in.off += used;
		buf_trim(&c->in);
	} else {
		used = parse_frames(c, d, n, now);
		if (c->state != ST_DONE && used < n)
			buf_append(&c->in, d + used, n - used);
	}
}

static void conn_eof(struct conn *c)
{
	if (c->got_close && c->sent_close) {
		conn_release(c);    /* clean: close frames both ways, server closed TCP */
		set_state(c, ST_DONE);
	} else if (c->state < ST_OPEN) {
		conn_fail(c, &G.conn_errors, "connection closed during handshake");
	} else {
		conn_fail(c, G.phase >= PH_CLOSE ? &G.unclean_close : &G.closed_errors,
			  "connection closed without a close frame");
	}
}

static void conn_read(struct conn *c, uint64_t now)
{
	int iter;

	for (iter = 0; iter < 4 && c->state != ST_DONE; iter++) {
		ssize_t r = recv(c->fd, rbuf, sizeof(rbuf), 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				conn_fail(c, c->state < ST_OPEN ? &G.conn_errors :
					  G.phase >= PH_CLOSE ? &G.unclean_close :
					  &G.closed_errors, "recv: %s", strerror(errno));
			return;
		}
		if (r == 0) {
			conn_eof(c);
			return;
		}
		conn_input(c, rbuf, (size_t)r, now);
		if ((size_t)r < sizeof(rbuf))
			return;
	}
}

static void send_handshake(struct conn *c)
{
	unsigned char raw[16];
	char key[25], req[512];
	uint64_t a = rng(), b = rng();
	int n;

	memcpy(raw, &a, 8);
	memcpy(raw + 8, &b, 8);
	base64(raw, 16, key);
	ws_accept_for(key, c->accept);
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n\r\n",
		     O.path, inet_ntoa(O.host), O.port, key);
	buf_append(&c->out, req, (size_t)n);
	set_state(c, ST_HANDSHAKE);
	conn_want(c, EPOLLIN);
	conn_flush(c);
}

static void conn_event(struct conn *c, uint32_t ev, uint64_t now)
{
	if (c->state == ST_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err)
			conn_fail(c, &G.conn_errors, "connect: %s", strerror(err));
		else if (ev & EPOLLOUT)
			send_handshake(c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(c, now);
	if (c->state != ST_DONE && (ev & EPOLLOUT))
		conn_flush(c);
}

static void start_conn(struct conn *c, uint64_t now)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = O.host,
				  .sin_port = htons((uint16_t)O.port) };
	struct epoll_event e = { .events = EPOLLOUT, .data.u64 = c->id };
	int one = 1;

	if (!G.t_first_connect)
		G.t_first_connect = now;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(c, &G.conn_errors, "socket: %s", strerror(errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (O.src_ips > 1) {
		/* spread over 127.0.0.x sources; NO_PORT lets connect() pick the
		 * port per destination instead of reserving one at bind() */
		struct sockaddr_in src = { .sin_family = AF_INET };

		src.sin_addr.s_addr = htonl(0x7f000001u + c->id % (uint32_t)O.src_ips);
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			conn_fail(c, &G.conn_errors, "bind: %s", strerror(errno));
			return;
		}
	}
	/* ST_CONNECTING first, so a failure below is counted as pending → done */
	set_state(c, ST_CONNECTING);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		conn_fail(c, &G.conn_errors, "connect: %s", strerror(errno));
		return;
	}
	c->events = EPOLLOUT;
	if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
		conn_fail(c, &G.conn_errors, "epoll_ctl: %s", strerror(errno));
}

/* ---- modes ---- */

static int traffic_on(void)
{
	return (G.phase == PH_WARMUP || G.phase == PH_MEASURE) && !G.stop;
}

static void send_echo(struct conn *c, uint64_t t_sched)
{
	unsigned char *p = scratch_get((size_t)O.size);

	/* open loop: a full FIFO means the server is far behind; skip, count it */
	if (tq_push(c, t_sched, O.mode == M_LATENCY ? 1u << 16 : 1u << 30) < 0) {
		G.skipped++;
		return;
	}
	echo_payload(c->id, c->send_seq++, (size_t)O.size, p);
	ws_send(c, 0x1, p, (size_t)O.size);
	G.outstanding++;
	G.sent_total++;
	if (G.phase == PH_MEASURE)
		G.sent_in_window++;
}

static void report_mismatch(struct conn *c, uint64_t seq, int op,
			    const unsigned char *got, size_t n,
			    const unsigned char *want, size_t wn)
{
	size_t i = 0, j, lim = n < wn ? n : wn;
	char g[48], w[48];

	G.mismatches++;
	if (G.reports++ >= MAX_REPORTS)
		return;
	while (i < lim && got[i] == want[i])
		i++;
	for (j = 0; j < 40 && i + j < n; j++)
		g[j] = got[i + j] >= 0x20 && got[i + j] < 0x7f ? (char)got[i + j] : '.';
	g[j] = '\0';
	for (j = 0; j < 40 && i + j < wn; j++)
		w[j] = (char)want[i + j];
	w[j] = '\0';
	fprintf(stderr, "loadgen: mismatch conn=%u seq=%" PRIu64 " %s len=%zu want_len=%zu "
		"first_diff=%zu got='%s' want='%s'\n", c->id, seq,
		op == 0x1 ? "text" : "binary (want text)", n, wn, i, g, w);
}

static void echo_message(struct conn *c, int op, const unsigned char *d, size_t n,
			 uint64_t now)
{
	unsigned char *want;
	uint64_t seq, t0;
	int ok;

	if (c->recv_seq >= c->send_seq) {
		G.unexpected++;
		if (G.reports++ < MAX_REPORTS)
			fprintf(stderr, "loadgen: conn %u: unexpected message (%zu bytes)\n",
				c->id, n);
		return;
	}
	seq = c->recv_seq++;
	t0 = tq_pop(c);
	G.outstanding--;
	G.recv_total++;
	want = scratch_get((size_t)O.size);
	echo_payload(c->id, seq, (size_t)O.size, want);
	ok = op == 0x1 && n == (size_t)O.size && !memcmp(d, want, n);
	if (!ok)
		report_mismatch(c, seq, op, d, n, want, (size_t)O.size);
	if (G.phase == PH_MEASURE) {
		G.completed++;
		G.recv_in_window++;
		h_add(now - t0);
	}
	if (O.mode == M_IDLE && ok)
		G.echo_ok++;
	if (O.mode == M_ECHO && traffic_on())
		send_echo(c, now);
}

static int gap_take(struct conn *c, uint64_t seq)
{
	uint32_t i;

	for (i = 0; i < c->ngaps; i++) {
		struct gap *g = &c->gaps[i];

		if (seq < g->lo || seq >= g->hi)
			continue;
		if (seq == g->lo) {
			g->lo++;
		} else if (seq == g->hi - 1) {
			g->hi--;
		} else {
			struct gap tail = { seq + 1, g->hi };

			g->hi = seq;
			if (c->ngaps == c->gapcap) {
				c->gapcap = c->gapcap ? c->gapcap * 2 : 4;
				c->gaps = xrealloc(c->gaps, c->gapcap * sizeof(*c->gaps));
			}
			c->gaps[c->ngaps++] = tail;
			g = &c->gaps[i];
		}
		if (g->lo == g->hi)
			c->gaps[i] = c->gaps[--c->ngaps];
		return 1;
	}
	return 0;
}

static void gap_add(struct conn *c, uint64_t lo, uint64_t hi)
{
	if (c->ngaps == c->gapcap) {
		c->gapcap = c->gapcap ? c->gapcap * 2 : 4;
		c->gaps = xrealloc(c->gaps, c->gapcap * sizeof(*c->gaps));
	}
	c->gaps[c->ngaps].lo = lo;
	c->gaps[c->ngaps].hi = hi;
	c->ngaps++;
}

static int gap_has(const struct conn *c, uint64_t seq)
{
	uint32_t i;

	for (i = 0; i < c->ngaps; i++)
		if (seq >= c->gaps[i].lo && seq < c->gaps[i].hi)
			return 1;
	return 0;
}

static void bcast_done_one(uint64_t seq)
{
	if (seq >= G.oldest && G.left[seq & (BC_RING - 1)] &&
	    !--G.left[seq & (BC_RING - 1)]) {
		while (G.oldest < G.next_seq && !G.left[G.oldest & (BC_RING - 1)])
			G.oldest++;
	}
}

/* stop waiting for a dead receiver: it no longer holds back the window */
static void bcast_forget(struct conn *c)
{
	uint64_t seq = G.oldest > c->bc_from ? G.oldest : c->bc_from, end = G.next_seq;

	for (; seq < end; seq++)
		if (seq >= c->next || gap_has(c, seq))
			bcast_done_one(seq);
}

static void bcast_send(uint64_t ts)
{
	struct conn *s = &G.c[0];
	unsigned char *p;
	uint64_t seq;

	if (s->state != ST_OPEN)
		return;
	if (G.next_seq - G.oldest >= BC_RING) {
		G.skipped++;
		return;
	}
	seq = G.next_seq++;
	p = scratch_get((size_t)O.size);
	bcast_payload(seq, ts, (size_t)O.size, p);
	G.left[seq & (BC_RING - 1)] = G.open;
	ws_send(s, 0x1, p, (size_t)O.size);
	if (G.phase == PH_MEASURE)
		G.sent_in_window++;
}

static void bcast_fill_window(uint64_t now)
{
	while (traffic_on() && G.next_seq - G.oldest < (uint64_t)O.window &&
	       G.c[0].state == ST_OPEN)
		bcast_send(now);
}

static void bcast_message(struct conn *c, int op, const unsigned char *d, size_t n,
			  uint64_t now)
{
	unsigned char *want;
	uint64_t seq, ts;
	int fresh;

	if (n < BC_HDR || parse_hex16(d, &seq) || parse_hex16(d + 17, &ts) ||
	    seq >= G.next_seq) {
		G.mismatches++;
		if (G.reports++ < MAX_REPORTS)
			fprintf(stderr, "loadgen: conn %u: unparseable broadcast (%zu bytes)\n",
				c->id, n);
		return;
	}
	want = scratch_get((size_t)O.size);
	bcast_payload(seq, ts, (size_t)O.size, want);
	if (op != 0x1 || n != (size_t)O.size || memcmp(d, want, n))
		report_mismatch(c, seq, op, d, n, want, (size_t)O.size);

	if (seq == c->next) {
		c->next++;
		fresh = 1;
	} else if (seq > c->next) {
		G.ooo++;
		gap_add(c, c->next, seq);
		c->next = seq + 1;
		fresh = 1;
	} else {
		fresh = gap_take(c, seq);
		if (!fresh)
			G.dup++;
	}
	if (!fresh)
		return;
	bcast_done_one(seq);
	if (c->id != 0) {           /* conn 0 is the sender; its copy is checked only */
		G.total_deliveries++;
		if (G.phase == PH_MEASURE) {
			G.deliveries++;
			h_add(now - ts);
		}
	}
	if (O.rate <= 0)
		bcast_fill_window(now);
}

static void on_message(struct conn *c, int op, const unsigned char *d, size_t n,
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

static void on_open(struct conn *c, uint64_t now)
{
	G.t_last_open = now;
	c->bc_from = G.next_seq;
	c->next = G.next_seq;
	if (O.mode == M_CONNECT && !O.keep)
		ws_close(c, 1000);
}

/* ---- phases ---- */

static long read_rss_kib(long pid)
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

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of the server, to show which side was the bottleneck */
static double server_cpu_s(void)
{
	char path[64], line[1024], *p;
	unsigned long ut, st;
	FILE *f;
	int ok;

	if (O.server_pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", O.server_pid);
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

/*
 * /proc/stat, in seconds: *all = busy time of the machine without softirq
 * (processes' times exclude it too, so what neither we nor the server used
 * was someone else's load: on two cores that matters); core[i] = busy time
 * of CPU i including softirq, where loopback TCP does much of its work.
 */
static int read_proc_stat(double *all, double *core)
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

static void window_open(uint64_t now)
{
	if (O.mode != M_CONNECT)
		G.phase = PH_MEASURE;
	G.t_ms = now;
	G.cpu_ms = self_cpu_s();
	G.scpu_ms = server_cpu_s();
	G.ncores = read_proc_stat(&G.all_ms, G.core_ms);
}

static void window_close(uint64_t now)
{
	G.t_me = now;
	G.cpu_me = self_cpu_s();
	G.scpu_me = server_cpu_s();
	read_proc_stat(&G.all_me, G.core_me);
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
	if (O.mode == M_BROADCAST && O.rate <= 0)
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
	if (O.mode == M_BROADCAST)
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
		if (G.started == G.total && G.pending == 0) {
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
				    G.c[i].state == ST_HANDSHAKE || G.c[i].state == ST_NEW)
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
		if (O.rate > 0 && (O.mode == M_LATENCY || O.mode == M_BROADCAST))
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

static void on_signal(int sig)
{
	(void)sig;
	G.stop = 1;
}

static void on_alarm(int sig)
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

static void run(void)
{
	struct epoll_event evs[1024], te = { .events = EPOLLIN, .data.u64 = TIMER_TAG };
	uint32_t i;

	G.total = (uint32_t)O.conns + (O.mode == M_BROADCAST ? 1 : 0);
	raise_nofile(G.total + 64);
	G.c = calloc(G.total, sizeof(*G.c));
	G.dirty = calloc(G.total, sizeof(*G.dirty));
	if (!G.c || !G.dirty)
		die("out of memory");
	for (i = 0; i < G.total; i++) {
		G.c[i].id = i;
		G.c[i].fd = -1;
	}
	if (O.mode == M_BROADCAST) {
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

/* ---- reporting ---- */

static double window_s(void)
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

static uint64_t bcast_missing(void)
{
	uint64_t m = 0;
	uint32_t i, g;

	for (i = 0; i < G.total; i++) {
		struct conn *c = &G.c[i];

		for (g = 0; g < c->ngaps; g++)
			m += c->gaps[g].hi - c->gaps[g].lo;
		m += G.next_seq - c->next;
	}
	return m;
}

static void report(void)
{
	uint64_t errors;
	char lat[256];

	if (O.mode == M_ECHO || O.mode == M_LATENCY || O.mode == M_IDLE)
		G.lost += G.outstanding;
	if (O.mode == M_BROADCAST)
		G.missing = bcast_missing();
	errors = G.mismatches + G.lost + G.closed_errors + G.conn_errors +
		 G.proto_errors + G.unexpected + G.missing + G.dup + G.ooo;
	if (O.mode == M_IDLE && G.total - G.conn_errors > G.echo_ok + errors)
		errors = G.total - G.conn_errors - G.echo_ok;   /* silent non-echoers */
	snprintf(lat, sizeof(lat), "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f "
		 "max_us=%.1f samples=%" PRIu64, h_pct_us(0.50), h_pct_us(0.90),
		 h_pct_us(0.99), h_pct_us(0.999), (double)G.hmax / 1000.0, G.hcount);

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
	if (O.mode == M_BROADCAST)
		fprintf(stderr, "  %" PRIu64 " messages sent, %.0f deliveries/s to %d receivers\n",
			G.next_seq, per_s(G.deliveries), O.conns);
	if (G.hcount)
		fprintf(stderr, "  latency µs: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
			h_pct_us(0.5), h_pct_us(0.9), h_pct_us(0.99), h_pct_us(0.999),
			(double)G.hmax / 1000.0);
	if (O.mode == M_IDLE)
		fprintf(stderr, "  server RSS %ld -> %ld KiB, echo ok on %" PRIu64 "\n",
			G.rss_before, G.rss_after, G.echo_ok);
	fprintf(stderr, "  errors %" PRIu64 "%s\n", errors,
		G.aborted ? " (aborted at deadline)" : "");
}

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
	      "  selftest   codec checks, no network\n"
	      "options:\n"
	      "  --host A             target IPv4 in 127.0.0.0/8 (default 127.0.0.1)\n"
	      "  --port P             target port (required)\n"
	      "  --path /P            request path (default /)\n"
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

static void parse_args(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int i, m, got_port = 0, got_size = 0;

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
		else if (!strcmp(a, "--path"))
			O.path = v ? v : "/";
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
	if (O.mode == M_BROADCAST && !got_size)
		O.size = 64;
	if (O.mode == M_BROADCAST && O.size < 40)
		die("broadcast needs --size >= 40 (sequence number and timestamp)");
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
