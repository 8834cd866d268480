/*
 * bench/loadgen/broadcast.c: the broadcast workload: connection 0 sends
 * sequence-numbered, timestamped messages; every receiver tracks what it has
 * seen (gaps, duplicates, reordering) and the send window waits for the
 * slowest receiver still alive.
 */
#include "loadgen.h"

#include <inttypes.h>

void bcast_payload(uint64_t seq, uint64_t ts, size_t size, unsigned char *d)
{
	char hdr[BC_HDR + 1];
	size_t i;

	snprintf(hdr, sizeof(hdr), "%016" PRIx64 " %016" PRIx64 " ", seq, ts);
	memcpy(d, hdr, BC_HDR);
	fill_pat(d + BC_HDR, size - BC_HDR, seq * 104729);
	/* sio-broadcast: the payload is a JSON string as is (no escapes) */
	if (O.mode == M_SIO)
		for (i = BC_HDR; i < size; i++)
			if (d[i] == '"' || d[i] == '\\')
				d[i] = '_';
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
void bcast_forget(struct conn *c)
{
	uint64_t seq = G.oldest > c->bc_from ? G.oldest : c->bc_from, end = G.next_seq;

	for (; seq < end; seq++)
		if (seq >= c->next || gap_has(c, seq))
			bcast_done_one(seq);
}

void bcast_send(uint64_t ts)
{
	struct conn *s = &G.c[0];
	unsigned char *p;
	uint64_t seq;

	if (s->state != ST_OPEN || (O.mode == M_SIO && s->sio != SIO_READY))
		return;
	if (G.next_seq - G.oldest >= BC_RING) {
		G.skipped++;
		return;
	}
	seq = G.next_seq++;
	p = scratch_get((size_t)O.size);
	bcast_payload(seq, ts, (size_t)O.size, p);
	if (O.mode == M_SIO) {
		G.left[seq & (BC_RING - 1)] = G.sio_ready;
		sio_send(s, p, (size_t)O.size);
	} else {
		G.left[seq & (BC_RING - 1)] = G.open;
		ws_send(s, 0x1, p, (size_t)O.size);
	}
	if (G.phase == PH_MEASURE)
		G.sent_in_window++;
}

void bcast_fill_window(uint64_t now)
{
	while (traffic_on() && G.next_seq - G.oldest < (uint64_t)O.window &&
	       G.c[0].state == ST_OPEN &&
	       (O.mode != M_SIO || G.c[0].sio == SIO_READY))
		bcast_send(now);
}

void bcast_message(struct conn *c, int op, const unsigned char *d, size_t n,
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
			h_add(&G.h, now - ts);
			if (O.mode == M_SIO && sio_port(c) == O.port2 && O.port2 != O.port) {
				G.deliveries2++;
				h_add(&G.h2, now - ts);
			}
		}
	}
	if (O.rate <= 0)
		bcast_fill_window(now);
}

uint64_t bcast_missing(void)
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
