/* conn.c: lws.conn, one WebSocket connection (server or client side).
 * Owns message reassembly with max_message_size and UTF-8 checks, the
 * send queue (written just before the next poll, or in WRITEABLE when the
 * socket is full; large messages leave as fragments, control frames go
 * first), close codes in both directions, and the
 * lifetime rule: the userdata is pinned while its wsi lives, and once
 * lws closes it every method answers nil, "connection is closed".
 * Every connection reads and writes its own frames (csrc/frame.c,
 * csrc/deflate.c) over lws's raw role: lws keeps the sockets, TLS (but a
 * wss:// client's, csrc/tls_client.c), HTTP and the loop
 * (docs/websocket-framing.md). */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "tls_client.h"

#define FRAG_SIZE 65536          /* bigger messages leave in fragments */
#define WRITE_BUDGET (256 * 1024) /* bytes per WRITEABLE before yielding */
#define RBUF_KEEP 65536          /* keep a reassembly buffer this big */
#define BATCH_MAX 16384          /* messages this small are batched... */
#define BATCH_BUF 65536          /* ...into one send of up to this much */

static const char *const state_names[] = { "CONNECTING", "OPEN", "CLOSING", "CLOSED" };

struct conn *
conn_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, CONN_MT);
}

struct conn *
conn_new(lua_State *L, struct ctx *x)
{
	/* user values: 1 the fields table, 2 the message handler (below) */
	struct conn *c = lua_newuserdatauv(L, sizeof(*c), 2);

	memset(c, 0, sizeof(*c));
	c->kind = KIND_CONN;
	c->ctx = x;
	c->self_ref = LUA_NOREF;
	c->state = CONN_CONNECTING;
	c->max_message = CONN_MAX_MESSAGE_DEFAULT;
	c->max_queue = CONN_MAX_QUEUE_DEFAULT;
	c->close_timeout = CONN_CLOSE_TIMEOUT_DEFAULT;
	luaL_setmetatable(L, CONN_MT);
	return c;
}

void
conn_attach(struct conn *c, struct lws *wsi)
{
	lua_State *L = c->ctx->L;

	c->wsi = wsi;
	lws_set_opaque_user_data(wsi, c);
	if (c->self_ref == LUA_NOREF) {
		c->self_ref = core_ref_self(L, -1);
		c->ctx->n_conns++;
	}
}

static int conn_writeable(struct conn *c);

/* ---- pings ----------------------------------------------------------- */

/* Each ping() leaves as its own Ping frame, in order, ahead of data (as
 * Node's ws does); a few may wait for the socket at once, then ping()
 * says "busy". Heap-allocated: an idle connection carries no buffer. */
#define CONN_PINGS_MAX 16

struct conn_ping {
	struct conn_ping *next;
	uint8_t len;
	unsigned char buf[LWS_PRE + 125];
};

static void
pings_clear(struct conn *c)
{
	while (c->pings) {
		struct conn_ping *p = c->pings;

		c->pings = p->next;
		free(p);
	}
	c->pings_tail = NULL;
	c->ping_pending = 0;
	while (c->pongs) {
		struct conn_ping *p = c->pongs;

		c->pongs = p->next;
		free(p);
	}
	c->pongs_tail = NULL;
	c->pong_pending = 0;
}

/* ---- send queue ------------------------------------------------------ */

static void
sendq_clear(struct conn *c)
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
}

static void flush_list(struct conn *c);

/* Our frames before the client's first bytes: lws keeps the wsi in its
 * h1 keep-alive state, where it calls no WRITEABLE (nor drains what it
 * buffered) until the next request would begin (roles/h1/ops-h1.c
 * try_pollout needs hdr_parsing_completed). We write from the pre-poll
 * flush instead (own_writeable). */
static int
own_before_raw(const struct conn *c)
{
	return c->own && !c->raw;
}

static void
ask_writable(struct conn *c)
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

static void
flush_unlist(struct conn *c)
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

static void
want_write(struct conn *c)
{
	if (!flush_direct_ok(c))
		ask_writable(c);
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
			ask_writable(c);
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
	if (c->qcount == 1)
		want_write(c);
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
			msgbuf_unref(e->m);
			e->m = m;
			return 1;
		}
	}
	return 0;
}

/* Evict the oldest droppable, not yet started messages until m fits. */
static int
make_room(struct conn *c, size_t need)
{
	uint32_t i = 0;

	while (c->qbytes && c->qbytes + need > c->max_queue && i < c->qcount) {
		struct sendq_entry *e = &c->q[(c->qhead + i) % c->qcap];
		uint32_t j;

		if (e->off || !e->m->droppable) {
			i++;
			continue;
		}
		c->qbytes -= e->m->len;
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

static void
set_close(struct conn *c, uint16_t code, const char *reason, size_t rlen)
{
	if (rlen > 123)
		rlen = 123;
	c->close_code = code;
	memcpy(c->close_reason, reason, rlen);
	c->close_reason[rlen] = '\0';
	c->close_reason_len = (uint8_t)rlen;
}

static void
arm_backstop(struct conn *c)
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
	set_close(c, code, reason, rlen);
	arm_backstop(c);
	ask_writable(c);
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
	set_close(c, code, reason, strlen(reason));
	if (c->wsi) {
		/* reading goes on, dropping data, for the peer's Close */
		arm_backstop(c);
		ask_writable(c);
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

/* ---- events into Lua ------------------------------------------------- */

/* Calls dispatch(conn, event, <nargs pushed by push>); a Lua error fails
 * this connection with 1011 and nothing else. */
static int
conn_emit_ok(struct conn *c, int nargs)
{
	if (core_call(c->ctx, 2 + nargs, 0)) {
		conn_fail(c, 1011, "internal error");
		return -1;
	}
	return 0;
}

int
conn_established(struct conn *c)
{
	struct ctx *x = c->ctx;

	c->state = CONN_OPEN;
	c->last_rx = lws_now_usecs();
	if (core_dispatch_prepare(x, c->self_ref, "open"))
		return 0;
	conn_emit_ok(c, 0);
	return 0;
}

static void
deliver(struct conn *c, const char *p, size_t len)
{
	struct ctx *x = c->ctx;
	lua_State *L = x->L;
	int top;

	c->msgs_in++;
	c->bytes_in += len;
	if (x->finalizing)
		return;
	/* fast path: the Lua layer names the one "message" handler of a
	 * server connection (conn_message_handler); call it directly */
	if (!lua_checkstack(L, 8))
		return;
	top = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
	if (lua_getiuservalue(L, top + 1, 2) == LUA_TFUNCTION) {
		lua_replace(L, top + 1);
		lua_pushlstring(L, p, len);
		lua_pushboolean(L, c->rx_binary);
		if (core_call(x, 2, 0))
			conn_fail(c, 1011, "internal error");
		return;
	}
	lua_settop(L, top);
	if (core_dispatch_prepare(x, c->self_ref, "message"))
		return;
	lua_pushlstring(L, p, len);
	lua_pushboolean(L, c->rx_binary);
	conn_emit_ok(c, 2);
}

/* The peer broke the protocol: an "error" event (as Node ws emits one),
 * then the connection is failed with code. */
static void
protocol_error(struct conn *c, uint16_t code, const char *msg)
{
	struct ctx *x = c->ctx;

	conn_fail(c, code, msg);
	/* our own frames: what was queued before the bad frame arrived (the
	 * echoes of the messages before it) still leaves ahead of the Close,
	 * as it would from Node's ws, which writes at once */
	if (c->own && c->fail == FAIL_DROP)
		c->fail = FAIL_DRAIN;
	if (core_dispatch_prepare(x, c->self_ref, "error") == 0) {
		lua_pushstring(x->L, msg);
		lua_pushinteger(x->L, code);
		core_call(x, 4, 0);
	}
}

/* A piece of a data message: first/final are about the whole message;
 * remain is what the frame still announces (0 when unknown) */
static int
rx_data(struct conn *c, const void *in, size_t len, int first, int final, int binary,
	uint64_t remain)
{
	if (c->state != CONN_OPEN || c->rx_failed)
		return 0;   /* closing: what still arrives is dropped */
	if (first) {
		c->rlen = 0;
		c->rx_binary = (uint8_t)!!binary;
		c->utf8_state = UTF8_ACCEPT;
	}
	/* refuse before buffering the excess; a frame announcing 2^63 bytes
	 * fails on its first chunk */
	if (len > c->max_message - c->rlen || remain > c->max_message - c->rlen - len) {
		protocol_error(c, 1009, "message too big");
		return 0;
	}
	if (!c->rx_binary && proto_utf8_step(&c->utf8_state, in, len)) {
		protocol_error(c, 1007, "invalid UTF-8");
		return 0;
	}
	if (final && !c->rx_binary && c->utf8_state != UTF8_ACCEPT) {
		protocol_error(c, 1007, "invalid UTF-8 (truncated)");
		return 0;
	}
	if (final && c->rlen == 0) {
		deliver(c, in, len);   /* whole message in one chunk: no copy */
		return 0;
	}
	if (c->rlen + len > c->rcap) {
		size_t ncap = c->rcap ? c->rcap : 4096;
		char *nb;

		while (ncap < c->rlen + len)
			ncap *= 2;
		if (ncap > c->max_message)
			ncap = c->max_message;
		nb = realloc(c->rbuf, ncap);
		if (!nb) {
			conn_fail(c, 1011, "out of memory");
			return 0;
		}
		c->rbuf = nb;
		c->rcap = ncap;
	}
	memcpy(c->rbuf + c->rlen, in, len);
	c->rlen += len;
	if (final) {
		size_t n = c->rlen;

		c->rlen = 0;
		deliver(c, c->rbuf, n);
		if (c->rcap > RBUF_KEEP) {   /* idle connections stay small */
			free(c->rbuf);
			c->rbuf = NULL;
			c->rcap = 0;
		}
	}
	return 0;
}

static void
conn_pong(struct conn *c, const void *in, size_t len)
{
	struct ctx *x = c->ctx;

	c->last_rx = lws_now_usecs();
	if (c->state != CONN_OPEN && c->state != CONN_CLOSING)
		return;
	if (core_dispatch_prepare(x, c->self_ref, "pong"))
		return;
	lua_pushlstring(x->L, in ? in : "", len);
	conn_emit_ok(c, 1);
}

/* ---- own framing: reading ------------------------------------------------ */

/* Server connections read their frames with csrc/frame.c from the byte
 * stream of lws's raw role (docs/websocket-framing.md): every Ping gets
 * its Pong ahead of data, close codes arrive as sent, and a Close is
 * answered after what was queued before it. */
#define CONN_PONGS_MAX 16   /* Pongs owed at once; past it the oldest goes (RFC 6455 5.5.3) */

/* what the inflater makes of a compressed message, 16 KiB at a time:
 * max_message_size counts these bytes, not the compressed ones */
static int
own_inflated(void *ud, const unsigned char *p, size_t n)
{
	struct conn *c = ud;

	rx_data(c, p, n, c->z_first, 0, c->z_binary, 0);
	c->z_first = 0;
	return c->rx_failed || c->state != CONN_OPEN;
}

static int
own_data(void *ud, unsigned char *p, size_t n, int first, int final, int binary,
	 int compressed, uint64_t remain)
{
	struct conn *c = ud;
	int rc;

	if (!compressed)
		return rx_data(c, p, n, first, final, binary, remain) ? 1 : 0;
	if (c->state != CONN_OPEN || c->rx_failed)
		return 0;
	if (first) {
		c->z_first = 1;
		c->z_binary = (uint8_t)!!binary;
	}
	rc = pmd_inflate(c->z, p, n, final, own_inflated, c);
	if (rc == PMD_BAD)
		protocol_error(c, 1007, "invalid compressed data");
	else if (rc == PMD_NOMEM)
		conn_fail(c, 1011, "out of memory");
	else if (final && rc == 0)
		rx_data(c, "", 0, c->z_first, 1, c->z_binary, 0);
	return 0;
}

static void
own_pong_owed(struct conn *c, const unsigned char *p, size_t n)
{
	struct conn_ping *pong;

	if (c->pong_pending >= CONN_PONGS_MAX) {
		pong = c->pongs;   /* reuse the oldest: the newest Pings are answered */
		c->pongs = pong->next;
		if (!c->pongs)
			c->pongs_tail = NULL;
		c->pong_pending--;
	} else if (!(pong = malloc(sizeof(*pong)))) {
		conn_fail(c, 1011, "out of memory");
		return;
	}
	pong->next = NULL;
	pong->len = (uint8_t)n;
	memcpy(pong->buf + LWS_PRE, p, n);
	if (c->pongs_tail)
		c->pongs_tail->next = pong;
	else
		c->pongs = pong;
	c->pongs_tail = pong;
	c->pong_pending++;
	want_write(c);
}

static int
own_control(void *ud, unsigned opcode, unsigned char *p, size_t n)
{
	struct conn *c = ud;
	uint16_t code = 1005;
	int bad;

	switch (opcode) {
	case 9:   /* Ping: answered unless our Close is on its way */
		if (c->state == CONN_OPEN || (c->state == CONN_CLOSING && !c->fail))
			own_pong_owed(c, p, n);
		return 0;
	case 10:
		conn_pong(c, p, n);
		return 0;
	default:   /* 8, Close: nothing after it counts */
		bad = proto_close_payload(p, n, &code);
		if (bad) {
			protocol_error(c, (uint16_t)bad, bad == 1007 ? "invalid UTF-8 in close reason" :
				       "invalid close frame");
			c->fr.state = FRAME_DEAD;   /* no answer to wait for */
			return 1;
		}
		c->got_peer_close = 1;
		c->peer_code = code;
		c->peer_reason_len = (uint8_t)(n > 2 ? n - 2 : 0);
		memcpy(c->peer_reason, p + 2, c->peer_reason_len);
		c->peer_reason[c->peer_reason_len] = '\0';
		if (c->state == CONN_OPEN) {
			/* answer with the same code once what was queued has left */
			c->state = CONN_CLOSING;
			if (code != 1005)
				set_close(c, code, c->peer_reason, c->peer_reason_len);
			else
				c->close_code = 1005;
			arm_backstop(c);
		}
		ask_writable(c);
		return 1;
	}
}

static void
own_error(void *ud, uint16_t code, const char *msg)
{
	protocol_error(ud, code, msg);
}

static const struct frame_sink own_sink = { own_data, own_control, own_error };

/* bytes from lws's raw role (or the h1 role's fallback to it) */
int
conn_own_rx(struct conn *c, unsigned char *in, size_t len)
{
	c->last_rx = lws_now_usecs();
	if (c->state == CONN_CLOSED || c->got_peer_close || c->fr.state == FRAME_DEAD)
		return 0;   /* after the peer's Close or a broken frame: nothing counts */
	frame_parse(&c->fr, in, len, &own_sink, c);
	/* we had sent our Close and this is the answer: the handshake is
	 * complete, and the server closes the TCP connection (RFC 6455 7.1.1) */
	if (c->got_peer_close && c->close_sent)
		return -1;
	return 0;
}

/* After our 101, lws takes the request as answered and gives the wsi its
 * HTTP keep-alive timeout (lws_http_transaction_completed): on the next
 * turn, a connection waiting for its first frame has no timeout but ours */
static void
own_settle(struct ctx *x, void *arg, int arg_ref)
{
	struct conn *c = arg;

	(void)x;
	(void)arg_ref;   /* kept the userdata alive until now */
	if (!c->wsi || c->raw)
		return;
	if (c->state == CONN_CLOSING)
		arm_backstop(c);
	else
		lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
}

/* The upgrade was answered with our own 101 (from the upgrade request's
 * LWS_CALLBACK_HTTP): from now on the frames are ours. The wsi stays in lws's h1 role until
 * the client's first bytes, which are not HTTP, make lws hand it to the
 * raw role (LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG, set
 * on our server vhosts by csrc/server.c) */
void
conn_own_framing(struct conn *c)
{
	lua_State *L = c->ctx->L;

	c->own = 1;
	frame_rx_init(&c->fr, !c->is_client, c->z != NULL);
	if (c->is_client)
		return;   /* a raw socket from the start (csrc/client.c) */
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
	core_defer(c->ctx, own_settle, c, luaL_ref(L, LUA_REGISTRYINDEX));
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
		c->qbytes -= m->len;
		c->bytes_out += m->len;
		c->msgs_out++;
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qcount--;
		msgbuf_unref(m);
		count++;
	}
	if (count && lws_write(c->wsi, out, used, LWS_WRITE_RAW) < (int)used)
		return -1;
	return count;
}

static int own_writeable(struct conn *c);

static int
conn_writeable(struct conn *c)
{
	return own_writeable(c);
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
	size_t hl = frame_header(out, fin, rsv1, opcode, n), i;
	unsigned char key[4];

	if (!c->is_client) {
		memcpy(out + hl, p, n);
		return hl + n;
	}
	out[1] |= 0x80;
	mask_key(c, key);
	memcpy(out + hl, key, 4);
	hl += 4;
	for (i = 0; i < n; i++)
		out[hl + i] = p[i] ^ key[i & 3];
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
			if (!c->pongs)
				c->pongs_tail = NULL;
			c->pong_pending--;
		} else {
			c->pings = p->next;
			if (!c->pings)
				c->pings_tail = NULL;
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

	if (!c->ztx) {
		if (pmd_compress(c->z, m->data + LWS_PRE, m->len, FRAME_HEADER_MAX, &c->ztx,
				 &c->ztx_len))
			return -1;
		c->ztx_off = 0;
		e->off = 1;
	}
	chunk = c->ztx_len - c->ztx_off;
	if (chunk > FRAG_SIZE)
		chunk = FRAG_SIZE;
	first = c->ztx_off == 0;
	last = c->ztx_off + chunk == c->ztx_len;
	p = c->ztx + FRAME_HEADER_MAX + c->ztx_off;
	{
		unsigned char hdr[FRAME_HEADER_MAX];

		/* the bytes before p have left already (or are the headroom) */
		hl = frame_header(hdr, last, first, first ? (m->binary ? 2u : 1u) : 0u, chunk);
		memcpy(p - hl, hdr, hl);
	}
	if (lws_write(c->wsi, p - hl, chunk + hl, LWS_WRITE_RAW) < (int)(chunk + hl))
		return -1;
	c->ztx_off += chunk;
	if (last) {
		free(c->ztx);
		c->ztx = NULL;
		c->qbytes -= m->len;
		c->bytes_out += m->len;
		c->msgs_out++;
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qcount--;
		msgbuf_unref(m);
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

static void
own_drain_retry(lws_sorted_usec_list_t *sul)
{
	struct conn *c = lws_container_of(sul, struct conn, sul_drain);

	if (c->wsi)
		flush_list(c);
}

static int
own_drain(struct conn *c)
{
	int i;

	if (c->raw) {
		ask_writable(c);
		return 1;
	}
	for (i = 0; i < 64 && lws_partial_buffered(c->wsi); i++)
		if (lws_write(c->wsi, NULL, 0, LWS_WRITE_RAW) < 0)
			return 1;
	if (!lws_partial_buffered(c->wsi))
		return 0;
	lws_sul_schedule(lws_get_context(c->wsi), 0, &c->sul_drain, own_drain_retry,
			 OWN_DRAIN_RETRY_US);
	return 1;
}

/* The writer of a connection whose frames are ours: Pongs and Pings,
 * then data (not when failing), then our Close; after it, the TCP
 * connection closes once the peer's Close is in (or at once if it came
 * first, or the stream is broken). Returns -1 to close. */
static int
own_writeable(struct conn *c)
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
		c->qbytes -= chunk;
		c->bytes_out += chunk;
		if (last) {
			c->msgs_out++;
			c->qhead = (c->qhead + 1) % c->qcap;
			c->qcount--;
			msgbuf_unref(m);
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
		ask_writable(c);
	return 0;
}

/* the wsi whose request headers are still readable: a server connection
 * between its upgrade request and ESTABLISHED (the verify hook), else NULL */
struct lws *
conn_handshake_wsi(struct conn *c)
{
	return c->state == CONN_CONNECTING ? c->wsi : NULL;
}

int
conn_callback(struct conn *c, enum lws_callback_reasons reason, void *in, size_t len)
{
	if (!c->own || c->hs)
		return CONN_NOT_HANDLED;   /* the handshake is its owner's */
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:   /* a server's client sent its first bytes: now raw */
		c->raw = 1;
		if (c->state == CONN_CLOSING)
			arm_backstop(c);   /* lws cleared the wsi's timeout */
		return 0;
	case LWS_CALLBACK_RAW_RX:   /* a wss:// client's bytes are csrc/client.c's to decrypt */
		return c->tls ? CONN_NOT_HANDLED : conn_own_rx(c, in, len);
	case LWS_CALLBACK_RAW_WRITEABLE:
	case LWS_CALLBACK_HTTP_WRITEABLE:   /* before the first bytes */
		return own_writeable(c);
	case LWS_CALLBACK_RAW_CLOSE:
	case LWS_CALLBACK_CLOSED_HTTP:
		conn_finalize(c, NULL);
		return 0;
	case LWS_CALLBACK_HTTP:
		/* the upgrade request itself, for its owner to answer
		 * (csrc/server.c server_switch); any later one is HTTP after
		 * the upgrade: not a WebSocket peer */
		return c->state == CONN_CONNECTING ? CONN_NOT_HANDLED : -1;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return -1;
	default:
		return CONN_NOT_HANDLED;
	}
}

/* ---- the end ------------------------------------------------------------- */

/* CLOSED / CLIENT_CLOSED / CONNECTION_ERROR / WSI_DESTROY: idempotent.
 * Reports close(code, reason, was_clean) once and unpins the userdata. */
void
conn_finalize(struct conn *c, const char *why)
{
	struct ctx *x = c->ctx;
	lua_State *L = x->L;
	uint16_t code;
	const char *reason;
	int clean = 0, ref = c->self_ref;

	flush_unlist(c);
	lws_sul_cancel(&c->sul_drain);   /* a node of the context's timer list */
	pmd_free(c->z);
	c->z = NULL;
	tls_client_free(c->tls);
	c->tls = NULL;
	free(c->ztx);
	c->ztx = NULL;
	if (c->state == CONN_CLOSED && !c->wsi)
		return;
	/* a server-side wsi stays homed at its server until WSI_DESTROY */
	if (c->wsi)
		lws_set_opaque_user_data(c->wsi, c->srv);
	c->wsi = NULL;
	if (c->got_peer_close) {
		code = c->peer_code;
		reason = c->peer_reason;
		clean = 1;
	} else if (c->close_sent) {
		code = c->close_code;
		reason = c->close_reason;
		clean = !c->fail;
	} else {
		code = 1006;
		reason = why ? why : "";
		if (c->close_code == 1006 && c->close_reason_len)
			reason = c->close_reason;
	}
	{
		int was_open = c->state != CONN_CONNECTING;

		c->state = CONN_CLOSED;
		sendq_clear(c);
		pings_clear(c);
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = c->rlen = 0;
		if (c->gone)
			c->gone(c);
		if (was_open && core_dispatch_prepare(x, ref, "close") == 0) {
			lua_pushinteger(L, code);
			lua_pushstring(L, reason);
			lua_pushboolean(L, clean);
			core_call(x, 5, 0);
		}
	}
	if (c->self_ref != LUA_NOREF) {
		x->n_conns--;
		if (!x->finalizing)
			core_unref(L, &c->self_ref);
		c->self_ref = LUA_NOREF;
	}
}

/* An upgrade we refused, or one lws failed before ESTABLISHED. */
void
conn_release_unopened(struct conn *c)
{
	c->state = CONN_CLOSED;
	conn_finalize(c, NULL);
}

/* ---- Lua methods --------------------------------------------------------- */

static int
closed_error(lua_State *L, struct conn *c)
{
	return core_push_error(L, c->state == CONN_CLOSING ? "connection is closing" :
			       c->state == CONN_CONNECTING ? "connection is not open yet" :
			       "connection is closed", "closed");
}

/* send(data[, binary[, key]]) -> true | nil, err, code
 * key: a conflation key; a queued message with the same key that has not
 * started to leave is replaced by this one (latest value wins) */
static int
conn_send(lua_State *L)
{
	struct conn *c = conn_check(L, 1);
	size_t len, klen = 0;
	const char *p = luaL_checklstring(L, 2, &len);
	int binary = lua_toboolean(L, 3), rc;
	const char *key = luaL_optlstring(L, 4, NULL, &klen);
	size_t queued = c->qbytes;
	struct msgbuf *m;

	if (c->state != CONN_OPEN || !c->wsi)
		return closed_error(L, c);
	m = msgbuf_new(p, len, binary);
	if (!m || (key && msgbuf_set_key(m, key, klen))) {
		msgbuf_unref(m);
		return core_push_error(L, "out of memory", "nomem");
	}
	rc = conn_offer(c, m);
	if (rc) {
		msgbuf_unref(m);
		if (rc < 0)
			return core_push_error(L, "out of memory", "nomem");
		lua_pushnil(L);
		lua_pushfstring(L, "send queue full (%I bytes queued, limit %I)",
				(lua_Integer)queued, (lua_Integer)c->max_queue);
		lua_pushliteral(L, "full");
		return 3;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* send_many(set, data[, binary[, except[, opts]]]) -> queued, refused
 * Queues ONE shared buffer to every open connection that is a key of set
 * (broadcast and topics: encoded once, no per-recipient copy).
 * opts: { key = conflation key, droppable = bool } */
static int
l_send_many(lua_State *L)
{
	size_t len, klen = 0;
	const char *p, *key = NULL;
	int binary, droppable = 0;
	struct conn *except = NULL;
	struct msgbuf *m;
	lua_Integer queued = 0, refused = 0;

	luaL_checktype(L, 1, LUA_TTABLE);
	p = luaL_checklstring(L, 2, &len);
	binary = lua_toboolean(L, 3);
	if (!lua_isnoneornil(L, 4))
		except = conn_check(L, 4);
	if (!lua_isnoneornil(L, 5)) {
		luaL_checktype(L, 5, LUA_TTABLE);
		key = core_opt_str_field(L, 5, "key", NULL);
		if (key)
			klen = strlen(key);
		droppable = core_opt_bool_field(L, 5, "droppable", 0);
	}
	m = msgbuf_new(p, len, binary);
	if (!m || (key && msgbuf_set_key(m, key, klen))) {
		msgbuf_unref(m);
		return luaL_error(L, "out of memory");
	}
	m->droppable = (uint8_t)droppable;
	m->refs = 0;   /* one per queue it joins */
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		struct conn *c = luaL_testudata(L, -2, CONN_MT);

		lua_pop(L, 1);
		if (!c || c == except || c->state != CONN_OPEN || !c->wsi)
			continue;
		m->refs++;
		if (conn_offer(c, m)) {
			m->refs--;
			refused++;
		} else {
			queued++;
		}
	}
	if (m->refs == 0) {
		m->refs = 1;
		msgbuf_unref(m);
	}
	lua_pushinteger(L, queued);
	lua_pushinteger(L, refused);
	return 2;
}

/* ping([payload]) -> true | nil, err, code; payload <= 125 bytes */
static int
conn_ping(lua_State *L)
{
	struct conn *c = conn_check(L, 1);
	size_t len = 0;
	const char *p = luaL_optlstring(L, 2, "", &len);

	luaL_argcheck(L, len <= 125, 2, "ping payload longer than 125 bytes");
	struct conn_ping *ping;

	if (c->state != CONN_OPEN || !c->wsi)
		return closed_error(L, c);
	if (c->ping_pending >= CONN_PINGS_MAX)
		return core_push_error(L, "too many pings waiting to be sent", "busy");
	ping = malloc(sizeof(*ping));
	if (!ping)
		return core_push_error(L, "out of memory", "nomem");
	ping->next = NULL;
	ping->len = (uint8_t)len;
	memcpy(ping->buf + LWS_PRE, p, len);
	if (c->pings_tail)
		c->pings_tail->next = ping;
	else
		c->pings = ping;
	c->pings_tail = ping;
	c->ping_pending++;
	if (c->own)
		want_write(c);
	else
		ask_writable(c);
	lua_pushboolean(L, 1);
	return 1;
}

static void
check_close_args(lua_State *L, int *code, const char **reason, size_t *rlen)
{
	lua_Integer v = luaL_optinteger(L, 2, 1000);

	*reason = luaL_optlstring(L, 3, "", rlen);
	*code = v >= 0 && v <= 65535 ? (int)v : 0;   /* range first: no wrap-around */
	luaL_argcheck(L, proto_close_code_sendable((unsigned)*code), 2,
		      "close code must be 1000-1003, 1007-1014 or 3000-4999");
	luaL_argcheck(L, *rlen <= 123, 3, "close reason longer than 123 bytes");
	luaL_argcheck(L, proto_utf8_valid((const unsigned char *)*reason, *rlen), 3,
		      "close reason is not valid UTF-8");
}

/* close([code[, reason]]) -> true | nil, err, "closed": graceful; true
 * again while the close is under way, the closed error once it is done */
static int
conn_close(lua_State *L)
{
	struct conn *c = conn_check(L, 1);
	const char *reason;
	size_t rlen;
	int code;

	check_close_args(L, &code, &reason, &rlen);
	if (c->state == CONN_CLOSED || !c->wsi)
		return closed_error(L, c);
	if (c->state == CONN_OPEN)
		conn_request_close(c, (uint16_t)code, reason, rlen);
	lua_pushboolean(L, 1);
	return 1;
}

/* terminate([reason]): drop the TCP connection now; reported as 1006 */
static int
conn_terminate(lua_State *L)
{
	struct conn *c = conn_check(L, 1);
	size_t rlen = 0;
	const char *reason = luaL_optlstring(L, 2, "", &rlen);

	if (c->state < CONN_CLOSED && c->wsi) {
		conn_abort(c);
		set_close(c, 1006, reason, rlen);
	}
	return 0;
}

/* pause() / resume(): stop and restart reading from the peer (TCP
 * backpressure does the rest) */
static int
conn_pause(lua_State *L)
{
	struct conn *c = conn_check(L, 1);

	if (c->wsi && c->state == CONN_OPEN)
		lws_rx_flow_control(c->wsi, 0);
	return 0;
}

static int
conn_resume(lua_State *L)
{
	struct conn *c = conn_check(L, 1);

	if (c->wsi && c->state == CONN_OPEN && !c->rx_failed)
		lws_rx_flow_control(c->wsi, 1);
	return 0;
}

/* set_limits{ max_message_size = , max_queue_bytes = , close_timeout = } */
static int
conn_set_limits(lua_State *L)
{
	static const char *const fields[] = { "max_message_size", "max_queue_bytes",
					      "close_timeout", NULL };
	struct conn *c = conn_check(L, 1);

	luaL_checktype(L, 2, LUA_TTABLE);
	core_check_fields(L, 2, fields);
	c->max_message = (size_t)core_opt_int_field(L, 2, "max_message_size",
						    (lua_Integer)c->max_message, 0, (lua_Integer)1 << 40);
	c->max_queue = (size_t)core_opt_int_field(L, 2, "max_queue_bytes",
						  (lua_Integer)c->max_queue, 0, (lua_Integer)1 << 40);
	c->close_timeout = (int)core_opt_int_field(L, 2, "close_timeout", c->close_timeout, 1,
						   3600);
	return 0;
}

/* stats() -> { messages_in, messages_out, bytes_in, bytes_out } */
static int
conn_stats(lua_State *L)
{
	struct conn *c = conn_check(L, 1);

	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)c->msgs_in);
	lua_setfield(L, -2, "messages_in");
	lua_pushinteger(L, (lua_Integer)c->msgs_out);
	lua_setfield(L, -2, "messages_out");
	lua_pushinteger(L, (lua_Integer)c->bytes_in);
	lua_setfield(L, -2, "bytes_in");
	lua_pushinteger(L, (lua_Integer)c->bytes_out);
	lua_setfield(L, -2, "bytes_out");
	lua_pushinteger(L, (lua_Integer)c->drops);
	lua_setfield(L, -2, "dropped");
	return 1;
}

/* fields() -> the per-connection Lua table (handlers, user data) */
static int
conn_fields(lua_State *L)
{
	conn_check(L, 1);
	core_push_fields(L, 1);
	return 1;
}

static int
push_prop(lua_State *L, struct conn *c, const char *k)
{
	if (!strcmp(k, "readyState")) {
		lua_pushinteger(L, c->state);
	} else if (!strcmp(k, "bufferedAmount")) {
		lua_pushinteger(L, (lua_Integer)c->qbytes);
	} else if (!strcmp(k, "protocol")) {
		lua_pushstring(L, c->protocol ? c->protocol : "");
	} else if (!strcmp(k, "extensions")) {
		lua_pushstring(L, c->pmd ? "permessage-deflate" : "");
	} else if (!strcmp(k, "state")) {
		lua_pushstring(L, state_names[c->state]);
	} else if (!strcmp(k, "last_activity")) {
		/* when the peer last sent anything, in lws.now() milliseconds */
		lua_pushnumber(L, (lua_Number)c->last_rx / 1000.0);
	} else if (!strcmp(k, "is_client")) {
		lua_pushboolean(L, c->is_client);
	} else if (!strcmp(k, "remote_address")) {
		char buf[64];

		if (!c->wsi || !lws_get_peer_simple(c->wsi, buf, sizeof(buf)))
			return 0;
		lua_pushstring(L, buf);
	} else {
		return 0;
	}
	return 1;
}

static int
conn_index(lua_State *L)
{
	struct conn *c = lua_touserdata(L, 1);

	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	if (lua_type(L, 2) == LUA_TSTRING && push_prop(L, c, lua_tostring(L, 2)))
		return 1;
	if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE)
		return 0;
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

static int
conn_newindex(lua_State *L)
{
	struct conn *c = lua_touserdata(L, 1);

	if (lua_type(L, 2) == LUA_TSTRING && push_prop(L, c, lua_tostring(L, 2)))
		luaL_error(L, "'%s' is read-only", lua_tostring(L, 2));
	return core_fields_newindex(L);
}

static int
conn_tostring(lua_State *L)
{
	struct conn *c = conn_check(L, 1);

	lua_pushfstring(L, "lws.conn (%s%s, %p)", c->is_client ? "client, " : "",
			state_names[c->state], c);
	return 1;
}

static int
conn_gc(lua_State *L)
{
	struct conn *c = lua_touserdata(L, 1);

	flush_unlist(c);
	if (c->wsi) {
		/* only at lua_close (we are pinned otherwise) */
		core_finalize_from_gc(c->ctx);
		if (c->wsi)
			lws_set_opaque_user_data(c->wsi, NULL);
		c->wsi = NULL;
	}
	sendq_clear(c);
	pings_clear(c);
	free(c->rbuf);
	c->rbuf = NULL;
	free(c->protocol);
	c->protocol = NULL;
	free(c->extra_headers);
	c->extra_headers = NULL;
	return 0;
}

static const luaL_Reg conn_methods[] = {
	{ "send", conn_send },
	{ "ping", conn_ping },
	{ "close", conn_close },
	{ "terminate", conn_terminate },
	{ "pause", conn_pause },
	{ "resume", conn_resume },
	{ "set_limits", conn_set_limits },
	{ "stats", conn_stats },
	{ "fields", conn_fields },
	{ NULL, NULL }
};

/* conn_message_handler(conn, fn | nil): the one handler "message" calls
 * without the generic dispatch. The Lua layer (lua/lws/server.lua) sets it
 * whenever the connection's "message" handlers change; nil: dispatch. */
static int
l_conn_message_handler(lua_State *L)
{
	conn_check(L, 1);
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	lua_setiuservalue(L, 1, 2);
	return 0;
}

int
conn_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__newindex", conn_newindex }, { "__gc", conn_gc },
		{ "__tostring", conn_tostring }, { NULL, NULL }
	};

	core_new_type(L, CONN_MT, conn_methods, conn_index, meta, "conn_methods");
	core_on_turn(core_state(L), conn_flush_all);   /* writes leave before each poll */
	lua_pushcfunction(L, l_send_many);
	lua_setfield(L, -2, "send_many");
	lua_pushcfunction(L, l_conn_message_handler);
	lua_setfield(L, -2, "conn_message_handler");
	return 0;
}
