/*
 * bench/loadgen/echo.c: the echo workload (modes echo, latency and idle's
 * final check): numbered payloads out, replies verified against what was
 * sent, round-trip times from each connection's send-time FIFO.
 */
#include "loadgen.h"

#include <inttypes.h>

static void echo_payload(uint32_t id, uint64_t seq, size_t size, unsigned char *d)
{
	char hex[9];

	fill_pat(d, size, (uint64_t)id * 7919 + seq * 104729);
	snprintf(hex, sizeof(hex), "%08" PRIx32, (uint32_t)seq);
	memcpy(d, hex, size < 8 ? size : 8);
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

void send_echo(struct conn *c, uint64_t t_sched)
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

void report_mismatch(struct conn *c, uint64_t seq, int op,
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

void echo_message(struct conn *c, int op, const unsigned char *d, size_t n,
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
		h_add(&G.h, now - t0);
	}
	if (O.mode == M_IDLE && ok)
		G.echo_ok++;
	if (O.mode == M_ECHO && traffic_on())
		send_echo(c, now);
}
