/* conn_write.c: a connection's sending side: the send queue (conflation,
 * eviction, the slow-consumer policy), the pre-poll flush and the writer
 * that puts our frames on the wire (owed Pongs and Pings first, small
 * messages batched into one send, big ones in 64 KiB fragments, a
 * client's masked, compressed ones through csrc/deflate.c, a wss://
 * client's encrypted through csrc/tls_client.c), and closing: our Close
 * after what was queued, failing, aborting, under close_timeout. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "conn_private.h"
#include "tls_client.h"

static int conn_writeable(struct conn *c);

static void
ping_list_free(struct conn_ping **head, uint8_t *count)
{
	while (*head) {
		struct conn_ping *p = *head;

		*head = p->next;
		free(p);
	}
	*count = 0;
}

void
conn_ping_append(struct conn_ping **head, struct conn_ping *p)
{
	p->next = NULL;
	while (*head)
		head = &(*head)->next;
	*head = p;
}

void
conn_z_free(struct conn *c)
{
	if (!c->z)
		return;
	pmd_free(c->z->pmd);
	free(c->z->tx);
	free(c->z);
	c->z = NULL;
}

/* what ping() queued and the Pongs still owed */
void
conn_pings_clear(struct conn *c)
{
	ping_list_free(&c->pings, &c->ping_pending);
	ping_list_free(&c->pongs, &c->pong_pending);
}

/* ---- send queue ------------------------------------------------------ */

void
conn_sendq_clear(struct conn *c)
{
	while (c->qcount) {
		msgbuf_unref(c->q[c->qhead].m);
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qcount--;
	}
	free(c->q);
	c->q = NULL;
	c->qhead = c->qcap = 0;
	c->qbytes = 0;
	c->q_droppable = 0;
}

/* the head message m has left whole: its last `counted` bytes were not
 * yet taken off qbytes / added to bytes_out */
static void
sendq_pop(struct conn *c, struct msgbuf *m, size_t counted)
{
	c->qbytes -= counted;
	c->bytes_out += counted;
	c->msgs_out++;
	c->qhead = (c->qhead + 1) % c->qcap;
	c->qcount--;
	c->q_droppable -= m->droppable;
	msgbuf_unref(m);
}

static void flush_list(struct conn *c);

/* Our frames before the client's first bytes: lws keeps the wsi in its
 * h1 keep-alive state, where it calls no WRITEABLE (nor drains what it
 * buffered) until the next request would begin (roles/h1/ops-h1.c
 * try_pollout needs hdr_parsing_completed). We write from the pre-poll
 * flush instead (conn_own_writeable). */
static int
own_before_raw(const struct conn *c)
{
	return c->own && !c->raw;
}

void
conn_ask_writable(struct conn *c)
{
	if (!c->wsi)
		return;
	if (own_before_raw(c))
		flush_list(c);
	else
		lws_callback_on_writable(c->wsi);
}

/* Data queued on an open connection is written by conn_flush_all just
 * before the loop polls again, not from a WRITEABLE callback: asking for
 * one costs a poll pass (and with epoll two epoll_ctl) per message. lws
 * then only sees a write outside WRITEABLE, which it handles for a plain
 * ws connection: what the socket does not take goes to its buflist_out
 * and it asks for POLLOUT itself. On client connections (lws's frames)
 * Pings and closing keep the WRITEABLE path. */
static int
flush_direct_ok(const struct conn *c)
{
	/* our frames: Pongs and Pings too, all in order */
	return c->wsi && c->state == CONN_OPEN && !lws_partial_buffered(c->wsi);
}

void
conn_flush_unlist(struct conn *c)
{
	struct ctx *x = c->ctx;

	if (!c->flush_listed)
		return;
	if (c->flush_prev)
		c->flush_prev->flush_next = c->flush_next;
	else
		x->flush_head = c->flush_next;
	if (c->flush_next)
		c->flush_next->flush_prev = c->flush_prev;
	c->flush_prev = c->flush_next = NULL;
	c->flush_listed = 0;
}

void
conn_want_write(struct conn *c)
{
	if (!flush_direct_ok(c))
		conn_ask_writable(c);
	else
		flush_list(c);
}

static void
flush_list(struct conn *c)
{
	struct ctx *x = c->ctx;

	if (c->flush_listed)
		return;
	c->flush_prev = NULL;
	c->flush_next = x->flush_head;
	if (x->flush_head)
		x->flush_head->flush_prev = c;
	else
		core_flush_soon(x);   /* the first one this turn */
	x->flush_head = c;
	c->flush_listed = 1;
}

/* Before every poll: each listed connection writes its queue (several
 * small messages in one send), as its WRITEABLE callback would. */
void
conn_flush_all(struct ctx *x)
{
	struct conn *c, *list;

	if (!x->lws || x->destroying)
		return;
	/* what this turn's writes list again is for the next turn */
	list = x->flush_head;
	x->flush_head = NULL;
	if (list)
		list->flush_prev = NULL;
	while ((c = list)) {
		list = c->flush_next;
		if (list)
			list->flush_prev = NULL;
		c->flush_prev = c->flush_next = NULL;
		c->flush_listed = 0;
		if (!own_before_raw(c) && !flush_direct_ok(c)) {
			conn_ask_writable(c);
			continue;
		}
		if (conn_writeable(c) >= 0)
			continue;
		if (c->own && c->wsi)   /* our Close is out, or the socket failed */
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		else
			conn_abort(c);   /* the socket failed: lws closes it (1006) */
	}
}

/* Takes over one reference of m. Returns 0, or -1 (queue full / no
 * memory) leaving the reference with the caller. */
int
conn_queue(struct conn *c, struct msgbuf *m)
{
	if (c->qbytes && c->qbytes + m->len > c->max_queue)
		return -1;
	if (c->qcount == c->qcap) {
		uint32_t ncap = c->qcap ? c->qcap * 2 : 4, i;
		struct sendq_entry *nq = malloc(ncap * sizeof(*nq));

		if (!nq)
			return -1;
		for (i = 0; i < c->qcount; i++)
			nq[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = nq;
		c->qcap = ncap;
		c->qhead = 0;
	}
	c->q[(c->qhead + c->qcount) % c->qcap].m = m;
	c->q[(c->qhead + c->qcount) % c->qcap].off = 0;
	c->qcount++;
	c->qbytes += m->len;
	c->q_droppable += m->droppable;
	if (c->qcount == 1)
		conn_want_write(c);
	return 0;
}

/* Replace a queued, not yet started message with the same conflation key
 * (latest value wins, in the old one's place). Takes m's reference. */
static int
conflate(struct conn *c, struct msgbuf *m)
{
	uint32_t i;

	for (i = 0; i < c->qcount; i++) {
		struct sendq_entry *e = &c->q[(c->qhead + i) % c->qcap];

		if (e->off == 0 && e->m->key && !strcmp(e->m->key, m->key)) {
			c->qbytes = c->qbytes - e->m->len + m->len;
			c->q_droppable = c->q_droppable - e->m->droppable + m->droppable;
			msgbuf_unref(e->m);
			e->m = m;
			return 1;
		}
	}
	return 0;
}

/* Evict the oldest droppable, not yet started messages until m fits. A
 * queue with none is not scanned: a slow reader's full queue of messages
 * that may not be dropped would make every send O(queue length). */
static int
make_room(struct conn *c, size_t need)
{
	uint32_t i = 0;

	while (c->q_droppable && c->qbytes && c->qbytes + need > c->max_queue && i < c->qcount) {
		struct sendq_entry *e = &c->q[(c->qhead + i) % c->qcap];
		uint32_t j;

		if (e->off || !e->m->droppable) {
			i++;
			continue;
		}
		c->qbytes -= e->m->len;
		c->q_droppable--;
		msgbuf_unref(e->m);
		for (j = i; j + 1 < c->qcount; j++)
			c->q[(c->qhead + j) % c->qcap] = c->q[(c->qhead + j + 1) % c->qcap];
		c->qcount--;
		c->drops++;
	}
	return !c->qbytes || c->qbytes + need <= c->max_queue;
}

/* Queue m honouring its key and droppable flag and the connection's
 * slow-consumer policy. Takes one reference on success. Returns 0 queued,
 * 1 refused (queue full; the connection may have been failed with 1008),
 * -1 no memory. */
int
conn_offer(struct conn *c, struct msgbuf *m)
{
	if (m->key && conflate(c, m))
		return 0;
	if (c->qbytes && c->qbytes + m->len > c->max_queue && !make_room(c, m->len)) {
		c->drops++;
		if (c->close_on_full)   /* slow_consumer = "close" */
			conn_fail(c, 1008, "slow consumer");
		return 1;
	}
	return conn_queue(c, m) ? -1 : 0;
}

/* ---- closing ----------------------------------------------------------- */

uint8_t
conn_reason_set(char **dst, const void *p, size_t n)
{
	free(*dst);
	*dst = NULL;
	if (!n || n > 123 || !(*dst = malloc(n + 1)))
		return 0;
	memcpy(*dst, p, n);
	(*dst)[n] = '\0';
	return (uint8_t)n;
}

void
conn_set_close(struct conn *c, uint16_t code, const char *reason, size_t rlen)
{
	if (rlen > 123)
		rlen = 123;
	c->close_code = code;
	c->close_reason_len = conn_reason_set(&c->close_reason, reason, rlen);
}

void
conn_arm_backstop(struct conn *c)
{
	/* the whole closing handshake: queued data, our Close, the peer's
	 * answer; past it lws drops the connection */
	if (c->wsi)
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, c->close_timeout);
}

/* Graceful close: queued data leaves first, then our Close frame. */
void
conn_request_close(struct conn *c, uint16_t code, const char *reason, size_t rlen)
{
	if (c->state != CONN_OPEN)
		return;
	c->state = CONN_CLOSING;
	conn_set_close(c, code, reason, rlen);
	conn_arm_backstop(c);
	conn_ask_writable(c);
}

void
conn_close_unannounced(struct conn *c, uint16_t code, const char *reason, size_t rlen)
{
	c->state = CONN_OPEN;
	conn_request_close(c, code, reason, rlen);
}

/* Failing the connection (RFC 6455 7.1.7): drop what is queued, stop
 * reading, send our Close with code from the next WRITEABLE (never by
 * returning -1 from RECEIVE: see docs/libwebsockets-4.1.md §4 on pmd). */
void
conn_fail(struct conn *c, uint16_t code, const char *reason)
{
	if (c->state >= CONN_CLOSED || c->fail)
		return;
	c->state = CONN_CLOSING;
	c->fail = 1;
	c->rx_failed = 1;
	conn_set_close(c, code, reason, strlen(reason));
	if (c->wsi) {
		/* reading goes on, dropping data, for the peer's Close */
		conn_arm_backstop(c);
		conn_ask_writable(c);
	}
}

/* terminate(): no close frame, the peer sees 1006 */
void
conn_abort(struct conn *c)
{
	if (c->state >= CONN_CLOSED || !c->wsi)
		return;
	c->state = CONN_CLOSING;
	c->fail = 1;
	c->rx_failed = 1;
	c->close_code = 1006;
	c->close_sent = 0;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* ---- WRITEABLE --------------------------------------------------------- */

/* Several small queued messages leave as one send(): we frame them
 * ourselves (server side: no mask; no pmd: no RSV1) into the context's
 * scratch buffer and hand lws the bytes raw. One system call for what a
 * read of 16 pipelined requests produced, or for a broadcast backlog.
 * Returns the number of messages written, or -1. */
static int
write_batch(struct conn *c)
{
	struct ctx *x = c->ctx;
	unsigned char *out = x->batch + LWS_PRE;
	size_t used = 0;
	int count = 0;

	while (c->qcount) {
		struct sendq_entry *e = &c->q[c->qhead];
		struct msgbuf *m = e->m;
		size_t hl = m->len < 126 ? 2 : m->len < 65536 ? 4 : 10;

		if (e->off || m->len > BATCH_MAX || used + hl + m->len > BATCH_BUF)
			break;
		out[used] = (unsigned char)(0x80 | (m->binary ? 2 : 1));   /* FIN + opcode */
		if (hl == 2) {
			out[used + 1] = (unsigned char)m->len;
		} else {
			out[used + 1] = 126;
			out[used + 2] = (unsigned char)(m->len >> 8);
			out[used + 3] = (unsigned char)m->len;
		}
		memcpy(out + used + hl, m->data + LWS_PRE, m->len);
		used += hl + m->len;
		sendq_pop(c, m, m->len);
		count++;
	}
	if (count && lws_write(c->wsi, out, used, LWS_WRITE_RAW) < (int)used)
		return -1;
	return count;
}


static int
conn_writeable(struct conn *c)
{
	return conn_own_writeable(c);
}

/* ---- own framing: writing ------------------------------------------------ */

/* Bytes of our frames (or a client's handshake) to lws, in one write (a
 * second one behind a buffered tail would read as a failure: see
 * conn_writeable); on a wss:// client encrypted first (csrc/tls_client.c) */
int
conn_send_raw(struct conn *c, const void *p, size_t n)
{
	unsigned char stack[LWS_PRE + 16384], *buf = stack;
	size_t k, cap = sizeof(stack) - LWS_PRE;
	int rc;

	if (!c->wsi)
		return -1;
	if (!c->tls)
		return lws_write(c->wsi, (unsigned char *)p, n, LWS_WRITE_RAW) < (int)n ? -1 : 0;
	if (n && tls_client_tx(c->tls, p, n))
		return -1;
	if (tls_client_pending(c->tls) > cap) {
		cap = tls_client_pending(c->tls);
		buf = malloc(LWS_PRE + cap);
		if (!buf)
			return -1;
	}
	k = tls_client_take(c->tls, buf + LWS_PRE, cap);
	rc = k && lws_write(c->wsi, buf + LWS_PRE, k, LWS_WRITE_RAW) < (int)k ? -1 : 0;
	if (buf != stack)
		free(buf);
	return rc;
}

/* A client masks every frame with a fresh unpredictable key (RFC 6455
 * 5.3): keys come from lws's random source, 1024 at a time. */
static void
mask_key(struct conn *c, unsigned char key[4])
{
	static unsigned char pool[4096];
	static size_t at = sizeof(pool);

	if (at == sizeof(pool)) {
		if (lws_get_random(lws_get_context(c->wsi), pool, sizeof(pool)) != sizeof(pool)) {
			size_t i;   /* no random source: still never a zero key */

			for (i = 0; i < sizeof(pool); i++)
				pool[i] = (unsigned char)(rand() | 1);
		}
		at = 0;
	}
	memcpy(key, pool + at, 4);
	at += 4;
}

/* One frame into out: header, then the payload, masked on a client.
 * Returns its length (at most FRAME_HEADER_MAX + 4 + n). */
static size_t
put_frame(struct conn *c, unsigned char *out, int fin, int rsv1, unsigned opcode,
	  const unsigned char *p, size_t n)
{
	size_t hl = frame_header(out, fin, rsv1, opcode, n);
	unsigned char key[4];

	if (!c->is_client) {
		memcpy(out + hl, p, n);
		return hl + n;
	}
	out[1] |= 0x80;
	mask_key(c, key);
	memcpy(out + hl, key, 4);
	hl += 4;
	memcpy(out + hl, p, n);
	frame_mask(out + hl, n, key, 0);
	return hl + n;
}

/* Owed Pongs, then ping() Pings, as one write ahead of any data */
static int
own_write_controls(struct conn *c)
{
	unsigned char *out = c->ctx->batch + LWS_PRE;
	size_t used = 0;

	while (c->pongs || (c->pings && c->state == CONN_OPEN)) {
		struct conn_ping *p = c->pongs ? c->pongs : c->pings;
		int pong = p == c->pongs;

		used += put_frame(c, out + used, 1, 0, pong ? 10 : 9, p->buf + LWS_PRE, p->len);
		if (pong) {
			c->pongs = p->next;
			c->pong_pending--;
		} else {
			c->pings = p->next;
			c->ping_pending--;
		}
		free(p);
		if (used > sizeof(c->ctx->batch) - LWS_PRE - 128)
			break;
	}
	if (used && conn_send_raw(c, out, used))
		return -1;
	return 0;
}

/* One frame of m from off: the header goes into the bytes before it (the
 * msgbuf's headroom, or the tail of the previous fragment, which other
 * queues sharing m may still need: put back) */
static int
own_write_piece(struct conn *c, struct msgbuf *m, size_t off, size_t chunk, int first, int last)
{
	unsigned char hdr[FRAME_HEADER_MAX], saved[FRAME_HEADER_MAX];
	unsigned char *p = m->data + LWS_PRE + off;
	unsigned opcode = first ? (m->binary ? 2u : 1u) : 0u;
	size_t hl;
	int n;

	if (c->is_client) {   /* masked: a copy (m may be shared), chunk <= FRAG_SIZE */
		size_t len = put_frame(c, c->ctx->batch, last, 0, opcode, p, chunk);

		return conn_send_raw(c, c->ctx->batch, len);
	}
	hl = frame_header(hdr, last, 0, opcode, chunk);
	memcpy(saved, p - hl, hl);
	memcpy(p - hl, hdr, hl);
	n = lws_write(c->wsi, p - hl, chunk + hl, LWS_WRITE_RAW);
	memcpy(p - hl, saved, hl);
	return n < (int)(chunk + hl) ? -1 : 0;
}

/* The next frame of the head message, compressed whole on its first turn
 * (RSV1 on its first frame only). The entry counts as started then, so
 * conflation leaves it alone. Returns the bytes written, or -1. */
static int
own_write_compressed(struct conn *c, struct sendq_entry *e)
{
	struct msgbuf *m = e->m;
	unsigned char *p;
	size_t chunk, hl;
	int first, last;

	struct conn_z *z = c->z;

	if (!z->tx) {
		if (pmd_compress(z->pmd, m->data + LWS_PRE, m->len, FRAME_HEADER_MAX, &z->tx,
				 &z->tx_len))
			return -1;
		z->tx_off = 0;
		e->off = 1;
	}
	chunk = z->tx_len - z->tx_off;
	if (chunk > FRAG_SIZE)
		chunk = FRAG_SIZE;
	first = z->tx_off == 0;
	last = z->tx_off + chunk == z->tx_len;
	p = z->tx + FRAME_HEADER_MAX + z->tx_off;
	{
		unsigned char hdr[FRAME_HEADER_MAX];

		/* the bytes before p have left already (or are the headroom) */
		hl = frame_header(hdr, last, first, first ? (m->binary ? 2u : 1u) : 0u, chunk);
		memcpy(p - hl, hdr, hl);
	}
	if (lws_write(c->wsi, p - hl, chunk + hl, LWS_WRITE_RAW) < (int)(chunk + hl))
		return -1;
	z->tx_off += chunk;
	if (last) {
		free(z->tx);
		z->tx = NULL;
		sendq_pop(c, m, m->len);
	}
	return (int)chunk;
}

static int
own_write_close(struct conn *c)
{
	unsigned char payload[125], *out = c->ctx->batch + LWS_PRE;
	size_t n = 0;

	if (c->close_code != 1005) {
		payload[0] = (unsigned char)(c->close_code >> 8);
		payload[1] = (unsigned char)c->close_code;
		if (c->close_reason_len)
			memcpy(payload + 2, c->close_reason, c->close_reason_len);
		n = 2 + (size_t)c->close_reason_len;
	}
	n = put_frame(c, out, 1, 0, 8, payload, n);
	c->close_sent = 1;
	return conn_send_raw(c, out, n);
}

/* Before the raw role nothing drains lws's buflist_out for us: each call
 * of lws_write(NULL, 0) sends what the socket takes of it, and a timer
 * tries again while the peer is slow to read (own_before_raw). Returns
 * nonzero while something is still held. */
#define OWN_DRAIN_RETRY_US (10 * LWS_US_PER_MS)

struct drain_timer {
	lws_sorted_usec_list_t sul;
	struct conn *c;
};

static void
own_drain_retry(lws_sorted_usec_list_t *sul)
{
	struct conn *c = ((struct drain_timer *)(void *)sul)->c;

	if (c->wsi)
		flush_list(c);
}

void
conn_drain_cancel(struct conn *c)
{
	if (!c->sul_drain)
		return;
	lws_sul_cancel(c->sul_drain);   /* a node of the context's timer list */
	free(c->sul_drain);
	c->sul_drain = NULL;
}

static int
own_drain(struct conn *c)
{
	int i;

	if (c->raw) {
		conn_ask_writable(c);
		return 1;
	}
	for (i = 0; i < 64 && lws_partial_buffered(c->wsi); i++)
		if (lws_write(c->wsi, NULL, 0, LWS_WRITE_RAW) < 0)
			return 1;
	if (!lws_partial_buffered(c->wsi))
		return 0;
	if (!c->sul_drain) {
		struct drain_timer *t = calloc(1, sizeof(*t));

		if (!t)
			return 1;   /* the next write tries again */
		t->c = c;
		c->sul_drain = &t->sul;
	}
	lws_sul_schedule(lws_get_context(c->wsi), 0, c->sul_drain, own_drain_retry,
			 OWN_DRAIN_RETRY_US);
	return 1;
}

/* The writer of a connection whose frames are ours: Pongs and Pings,
 * then data (not when failing), then our Close; after it, the TCP
 * connection closes once the peer's Close is in (or at once if it came
 * first, or the stream is broken). Returns -1 to close. */
int
conn_own_writeable(struct conn *c)
{
	struct lws *wsi = c->wsi;
	size_t budget = WRITE_BUDGET;

	if (!wsi || c->state == CONN_CLOSED)
		return 0;
	if (lws_partial_buffered(wsi) && own_drain(c))   /* see conn_writeable */
		return 0;
	if (c->close_sent)
		return c->got_peer_close || c->fr.state == FRAME_DEAD ? -1 : 0;
	if (own_write_controls(c))
		return -1;
	while (c->fail != FAIL_DROP && c->qcount && !lws_partial_buffered(wsi)) {
		struct sendq_entry *e = &c->q[c->qhead];
		struct msgbuf *m = e->m;
		size_t chunk = m->len - e->off;
		int first = e->off == 0, last;

		if (c->z && m->len) {
			int n = own_write_compressed(c, e);

			if (n < 0)
				return -1;
			if ((size_t)n >= budget)
				break;
			budget -= (size_t)n;
			if (c->pongs)
				break;
			continue;
		}
		if (c->qcount > 1 && first && m->len <= BATCH_MAX && !c->z && !c->is_client) {
			if (write_batch(c) < 0)
				return -1;
			if (budget <= BATCH_BUF)
				break;
			budget -= BATCH_BUF;
			continue;
		}
		if (chunk > FRAG_SIZE)
			chunk = FRAG_SIZE;
		last = e->off + chunk == m->len;
		if (own_write_piece(c, m, e->off, chunk, first, last))
			return -1;
		e->off += chunk;
		if (last) {
			sendq_pop(c, m, chunk);
		} else {
			c->qbytes -= chunk;
			c->bytes_out += chunk;
		}
		if (chunk >= budget)
			break;
		budget -= chunk;
		if (c->pongs)   /* a Ping came in meanwhile: its Pong goes next */
			break;
	}
	if (c->state == CONN_CLOSING && (c->fail == FAIL_DROP || !c->qcount) &&
	    !lws_partial_buffered(wsi)) {
		if (own_write_close(c))
			return -1;
		if (!lws_partial_buffered(wsi) && (c->got_peer_close || c->fr.state == FRAME_DEAD))
			return -1;
	}
	if (lws_partial_buffered(wsi) && own_drain(c))
		return 0;
	if (c->qcount || c->pongs || (c->pings && c->state == CONN_OPEN) ||
	    (c->state == CONN_CLOSING && !c->close_sent) || lws_partial_buffered(wsi))
		conn_ask_writable(c);
	return 0;
}

