/*
 * bench/loadgen/sio.c: the sio-broadcast mode's protocol layer: Engine.IO 4
 * and Socket.IO 5 over an open WebSocket (transport=websocket from the
 * start, no polling), as docs of both protocols describe them: the server's
 * open packet "0{…}", our CONNECT "40" to the main namespace, its answer
 * "40{…}", pings "2" answered "3", events "42[…]". The broadcast workload
 * (broadcast.c) runs on top: conn 0 emits ["pub", payload], every session
 * gets ["b", payload] once (or ["b", payload, offset] with connection state
 * recovery); the payload is broadcast.c's, so the sequence,
 * ordering and latency checks are the same as in the plain mode.
 */
#include "loadgen.h"

#define EV_PUB "42[\"pub\",\""
#define EV_B "42[\"b\",\""
#define EV_END "\"]"

static void sio_fail(struct conn *c, const char *what, const unsigned char *d, size_t n)
{
	conn_fail(c, &G.proto_errors, "socket.io: %s: %.*s", what,
		  (int)(n > 60 ? 60 : n), (const char *)d);
}

/* receivers alternate between the two nodes; conn 0 (the sender) and the
 * odd ones go to --port */
int sio_port(const struct conn *c)
{
	if (O.mode == M_SIO && c->id != 0 && c->id % 2 == 0)
		return O.port2;
	return O.port;
}

void sio_open(struct conn *c)
{
	c->sio = SIO_WAIT_OPEN;
	G.sio_pending++;
}

/* the connection leaves ST_OPEN (closing, failed) */
void sio_leave(struct conn *c)
{
	if (c->sio == SIO_WAIT_OPEN || c->sio == SIO_WAIT_CONNECT)
		G.sio_pending--;
	else if (c->sio == SIO_READY)
		G.sio_ready--;
	c->sio = SIO_NONE;
}

/* the payload is in scratch_get()'s buffer: the packet is built in another */
void sio_send(struct conn *c, const unsigned char *payload, size_t n)
{
	static struct buf pkt;
	size_t hl = sizeof(EV_PUB) - 1, el = sizeof(EV_END) - 1;

	pkt.off = pkt.len = 0;
	buf_append(&pkt, EV_PUB, hl);
	buf_append(&pkt, payload, n);
	buf_append(&pkt, EV_END, el);
	ws_send(c, 0x1, pkt.p, pkt.len);
}

void sio_message(struct conn *c, int op, const unsigned char *d, size_t n,
		 uint64_t now)
{
	size_t bl = sizeof(EV_B) - 1, el = sizeof(EV_END) - 1;

	if (op != 0x1 || n == 0) {
		sio_fail(c, "not an Engine.IO text packet", d, n);
		return;
	}
	switch (d[0]) {
	case '0':               /* open: connect to the main namespace */
		if (c->sio != SIO_WAIT_OPEN || n < 2 || d[1] != '{') {
			sio_fail(c, "unexpected open packet", d, n);
			return;
		}
		c->sio = SIO_WAIT_CONNECT;
		ws_send(c, 0x1, (const unsigned char *)"40", 2);
		return;
	case '2':               /* ping (v4: the server pings) */
		if (n != 1) {
			sio_fail(c, "ping with data", d, n);
			return;
		}
		G.sio_pings++;
		ws_send(c, 0x1, (const unsigned char *)"3", 1);
		return;
	case '1':
		sio_fail(c, "server closed the session", d, n);
		return;
	case '6':               /* noop */
		return;
	case '4':
		break;
	default:
		sio_fail(c, "unknown Engine.IO packet", d, n);
		return;
	}
	/* Engine.IO message: a Socket.IO packet */
	if (n >= 3 && d[1] == '0' && d[2] == '{') {
		if (c->sio != SIO_WAIT_CONNECT) {
			sio_fail(c, "CONNECT reply twice", d, n);
			return;
		}
		c->sio = SIO_READY;
		G.sio_pending--;
		G.sio_ready++;
		c->bc_from = c->next = G.next_seq;
		return;
	}
	if (n >= bl + el && !memcmp(d, EV_B, bl) && !memcmp(d + n - el, EV_END, el)) {
		if (c->sio != SIO_READY) {
			sio_fail(c, "event before the CONNECT reply", d, n);
			return;
		}
		/* with connection state recovery the server adds the packet's
		 * offset as one more string argument: ["b", payload, offset] */
		const unsigned char *body = d + bl;
		size_t blen = n - bl - el;
		const unsigned char *sep = memmem(body, blen, "\",\"", 3);

		if (sep)
			blen = (size_t)(sep - body);
		bcast_message(c, op, body, blen, now);
		return;
	}
	sio_fail(c, "unexpected Socket.IO packet", d, n);
}
