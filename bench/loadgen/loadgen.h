/*
 * bench/loadgen/loadgen.h: what loadgen's files share, private to
 * bench/loadgen/: the limits, the modes, phases and connection states,
 * struct conn, the options O and the run's state G (both defined in main.c),
 * and each file's functions that the others call. Every file includes it
 * first, as it defines _GNU_SOURCE.
 */
#ifndef LOADGEN_H
#define LOADGEN_H

#define _GNU_SOURCE
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FRAME (64u << 20)      /* refuse absurd frame lengths */
#define MAX_HEADER 8192            /* HTTP response header limit */
#define READ_CHUNK (256 * 1024)
#define TIMER_TAG UINT64_MAX
#define MAX_REPORTS 10             /* mismatch lines printed in full */
#define BC_RING (1u << 20)         /* broadcast messages tracked at once */
#define BC_HDR 34                  /* "%016x %016x " */
#define PATLEN 4093                /* prime, so payloads of nearby seqs differ */
#define MAX_CORES 64
#define MAX_PIDS 8

enum mode { M_ECHO, M_LATENCY, M_BROADCAST, M_CONNECT, M_IDLE, M_SIO, M_SELFTEST };
extern const char *const mode_names[];

enum phase {
	PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_HOLD, PH_CHECK,
	PH_CLOSE, PH_DONE
};

enum state { ST_NEW, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DONE };

/* sio-broadcast: a WebSocket that is open speaks Engine.IO 4 and Socket.IO 5
 * on top: it waits for the open packet "0{…}", sends the CONNECT "40", and
 * takes part in broadcasts once "40{…}" came back */
enum sio_state { SIO_NONE, SIO_WAIT_OPEN, SIO_WAIT_CONNECT, SIO_READY };

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
	uint8_t sio;                /* sio-broadcast: enum sio_state */
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
	int port2;                  /* sio-broadcast: the second node (0: none) */
	int conns, inflight, size, concurrency, src_ips, keep, window, verbose;
	double duration, warmup, drain, hold, rate, deadline, connect_timeout;
	long server_pid;
	long cpu_pids[MAX_PIDS];    /* --cpu-pids: CPU share of each in the window */
	int ncpu_pids;
};

/* log-linear histogram of nanoseconds: exact below 1024, then 512
 * sub-buckets per power of two (<0.2% error) */
#define H_SUB 512
#define H_N (1024 + 54 * H_SUB)

struct hist {
	uint64_t b[H_N], count, max;
};

extern struct opts O;

struct run {
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
	/* sio-broadcast: sessions not yet connected / connected, pings answered,
	 * deliveries to receivers on the second node */
	uint32_t sio_pending, sio_ready;
	uint64_t sio_pings, deliveries2;
	/* histogram (sio-broadcast: h2 has the second node's receivers too) */
	struct hist h, h2;
	long rss_before, rss_after, rss_end;
	double cpu_ms, cpu_me, scpu_ms, scpu_me;   /* CPU seconds at window edges */
	double all_ms, all_me;                     /* all CPUs, busy seconds */
	double core_ms[MAX_CORES], core_me[MAX_CORES];  /* per CPU, incl. softirq */
	double pid_ms[MAX_PIDS], pid_me[MAX_PIDS];      /* --cpu-pids, seconds */
	int ncores;
	/* selftest sink */
	struct buf st_msgs;
	uint32_t st_count;
};
extern struct run G;

extern unsigned char *scratch;      /* scratch_get()'s buffer */
extern uint64_t rng_state;

/* util.c */
void die(const char *fmt, ...) __attribute__((noreturn));
uint64_t now_ns(void);
uint64_t s_to_ns(double s);
uint64_t rng(void);
void *xrealloc(void *p, size_t n);
unsigned char *scratch_get(size_t n);
unsigned char *buf_reserve(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *src, size_t n);
void buf_free(struct buf *b);
void buf_trim(struct buf *b);
void pat_init(void);
void fill_pat(unsigned char *d, size_t n, uint64_t off);

static inline size_t buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* ws.c */
void ws_accept_for(const char *key, char out[29]);
void mask_copy(unsigned char *dst, const unsigned char *src, size_t n,
	       const unsigned char key[4]);
void ws_send(struct conn *c, int op, const unsigned char *d, size_t n);
void ws_close(struct conn *c, unsigned code);
size_t parse_frames(struct conn *c, const unsigned char *p, size_t n, uint64_t now);
void handshake_input(struct conn *c, uint64_t now);
void send_handshake(struct conn *c);

/* conn.c */
void set_state(struct conn *c, enum state s);
void conn_release(struct conn *c);
void conn_abandon(struct conn *c);
void conn_fail(struct conn *c, uint64_t *counter, const char *fmt, ...);
void conn_mark(struct conn *c);
void conn_want(struct conn *c, uint32_t ev);
void conn_flush(struct conn *c);
void flush_dirty(void);
void conn_input(struct conn *c, const unsigned char *d, size_t n, uint64_t now);
void conn_event(struct conn *c, uint32_t ev, uint64_t now);
void start_conn(struct conn *c, uint64_t now);

/* echo.c */
void send_echo(struct conn *c, uint64_t t_sched);
void report_mismatch(struct conn *c, uint64_t seq, int op,
		     const unsigned char *got, size_t n,
		     const unsigned char *want, size_t wn);
void echo_message(struct conn *c, int op, const unsigned char *d, size_t n,
		  uint64_t now);

/* broadcast.c */
void bcast_payload(uint64_t seq, uint64_t ts, size_t size, unsigned char *d);
void bcast_forget(struct conn *c);
void bcast_send(uint64_t ts);
void bcast_fill_window(uint64_t now);
void bcast_message(struct conn *c, int op, const unsigned char *d, size_t n,
		   uint64_t now);
uint64_t bcast_missing(void);

/* sio.c */
void sio_open(struct conn *c);
void sio_leave(struct conn *c);
void sio_send(struct conn *c, const unsigned char *payload, size_t n);
void sio_message(struct conn *c, int op, const unsigned char *d, size_t n,
		 uint64_t now);
int sio_port(const struct conn *c);

/* stats.c */
void h_add(struct hist *h, uint64_t ns);
long read_rss_kib(long pid);
double self_cpu_s(void);
double pid_cpu_s(long pid);
double server_cpu_s(void);
int read_proc_stat(double *all, double *core);
double window_s(void);
void report(void);

/* run.c */
void on_message(struct conn *c, int op, const unsigned char *d, size_t n,
		uint64_t now);
void on_open(struct conn *c, uint64_t now);
void on_signal(int sig);
void on_alarm(int sig);
void run(void);

/* broadcast and sio-broadcast share the sequence, window and checks */
static inline int is_bcast(void)
{
	return O.mode == M_BROADCAST || O.mode == M_SIO;
}

/* the workload sends only while warming up or measuring, and not once stopped */
static inline int traffic_on(void)
{
	return (G.phase == PH_WARMUP || G.phase == PH_MEASURE) && !G.stop;
}

#endif
