/*
 * bench/loadgen/ws.c: the WebSocket client side of one connection: the
 * HTTP upgrade request and the check of its 101 (SHA-1 and base64 for
 * Sec-WebSocket-Accept), masked frames out, and a frame parser that copes
 * with partial reads and reassembles fragmented server messages.
 */
#include "loadgen.h"

#include <arpa/inet.h>
#include <strings.h>
#include <sys/epoll.h>

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

void ws_accept_for(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char cat[64], dig[20];
	size_t kl = strlen(key);

	memcpy(cat, key, kl);
	memcpy(cat + kl, guid, sizeof(guid) - 1);
	sha1(cat, kl + sizeof(guid) - 1, dig);
	base64(dig, 20, out);
}

/* ---- framing ---- */

void mask_copy(unsigned char *dst, const unsigned char *src, size_t n,
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

void ws_send(struct conn *c, int op, const unsigned char *d, size_t n)
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

void ws_close(struct conn *c, unsigned code)
{
	unsigned char b[2] = { (unsigned char)(code >> 8), (unsigned char)code };

	if (c->sent_close)
		return;
	ws_send(c, 0x8, b, 2);
	c->sent_close = 1;
	if (c->state == ST_OPEN)
		set_state(c, ST_CLOSING);
}

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
size_t parse_frames(struct conn *c, const unsigned char *p, size_t n,
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

void handshake_input(struct conn *c, uint64_t now)
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

void send_handshake(struct conn *c)
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
		     O.path, inet_ntoa(O.host), sio_port(c), key);
	buf_append(&c->out, req, (size_t)n);
	set_state(c, ST_HANDSHAKE);
	conn_want(c, EPOLLIN);
	conn_flush(c);
}
