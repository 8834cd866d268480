/* conn_read.c: a connection's reading side: the peer's bytes through the
 * frame parser (csrc/frame.c), inflated when compressed (csrc/deflate.c),
 * reassembled under max_message_size with UTF-8 checked, delivered to
 * Lua (the message fast path included); Pings owed a Pong, the peer's
 * Close, protocol errors; and the events a connection sends into Lua. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "conn_private.h"

/* ---- events into Lua ------------------------------------------------- */

/* Calls dispatch(conn, event, <nargs pushed by push>); a Lua error fails
 * this connection with 1011 and nothing else. */
int
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
	 * server connection (conn_message_handler); call it directly, as
	 * handler(data, is_binary, ws) like lua/lws/server.lua's emit */
	if (!lua_checkstack(L, 8))
		return;
	top = lua_gettop(L);
	core_push_msgh(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
	if (lua_getiuservalue(L, top + 2, 2) == LUA_TFUNCTION) {
		/* msgh, ws, fn, data, is_binary, ws: pushed in calling order,
		 * no rotation of the stack (a message's hottest path) */
		lua_pushlstring(L, p, len);
		lua_pushboolean(L, c->rx_binary);
		lua_pushvalue(L, top + 2);
		if (core_call_at(x, 3, top + 1))
			conn_fail(c, 1011, "internal error");
		lua_settop(L, top);
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

	rx_data(c, p, n, c->z->first, 0, c->z->binary, 0);
	c->z->first = 0;
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
		c->z->first = 1;
		c->z->binary = (uint8_t)!!binary;
	}
	rc = pmd_inflate(c->z->pmd, p, n, final, own_inflated, c);
	if (rc == PMD_BAD)
		protocol_error(c, 1007, "invalid compressed data");
	else if (rc == PMD_NOMEM)
		conn_fail(c, 1011, "out of memory");
	else if (final && rc == 0)
		rx_data(c, "", 0, c->z->first, 1, c->z->binary, 0);
	return 0;
}

static void
own_pong_owed(struct conn *c, const unsigned char *p, size_t n)
{
	struct conn_ping *pong;

	if (c->pong_pending >= CONN_PONGS_MAX) {
		pong = c->pongs;   /* reuse the oldest: the newest Pings are answered */
		c->pongs = pong->next;
		c->pong_pending--;
	} else if (!(pong = malloc(sizeof(*pong)))) {
		conn_fail(c, 1011, "out of memory");
		return;
	}
	pong->len = (uint8_t)n;
	memcpy(pong->buf + LWS_PRE, p, n);
	conn_ping_append(&c->pongs, pong);
	c->pong_pending++;
	conn_want_write(c);
}

static int
own_control(void *ud, unsigned opcode, const unsigned char *p, size_t n)
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
		c->peer_reason_len = conn_reason_set(&c->peer_reason, p + 2, n > 2 ? n - 2 : 0);
		if (c->state == CONN_OPEN) {
			/* answer with the same code once what was queued has left */
			c->state = CONN_CLOSING;
			if (code != 1005)
				conn_set_close(c, code, c->peer_reason, c->peer_reason_len);
			else
				c->close_code = 1005;
			conn_arm_backstop(c);
		}
		conn_ask_writable(c);
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

