/* frame.c: the RFC 6455 frame parser and frame headers, pure (no lws, no
 * Lua), so fuzz/fuzz_frame.c drives it directly. Our server connections
 * read and write their frames with it (csrc/conn.c): libwebsockets 4.1.6's
 * own ws parser drops Pings, rewrites close codes and cannot answer a
 * Close while a big message backs up (docs/websocket-framing.md). */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

enum { ST_HDR = 0, ST_PAYLOAD = 1, ST_DEAD = FRAME_DEAD };

void
frame_rx_init(struct frame_rx *f, int server, int rsv1_ok)
{
	memset(f, 0, sizeof(*f));
	f->server = (uint8_t)!!server;
	f->rsv1_ok = (uint8_t)!!rsv1_ok;
}

void
frame_rx_free(struct frame_rx *f)
{
	free(f->ctl_buf);
	f->ctl_buf = NULL;
	f->ctl = NULL;
}

static int
fail(struct frame_rx *f, const struct frame_sink *s, void *ud, uint16_t code, const char *msg)
{
	f->state = ST_DEAD;
	s->error(ud, code, msg);
	return -1;
}

/* How many header bytes this frame has, once its first two are known. */
static size_t
header_size(const unsigned char *h)
{
	size_t n = 2;

	if ((h[1] & 0x7f) == 126)
		n += 2;
	else if ((h[1] & 0x7f) == 127)
		n += 8;
	if (h[1] & 0x80)
		n += 4;
	return n;
}

/* The header is complete: check it against RFC 6455 5.2-5.5. */
static int
header_done(struct frame_rx *f, const struct frame_sink *s, void *ud)
{
	const unsigned char *h = f->hdr;
	unsigned op = h[0] & 0x0f, masked = !!(h[1] & 0x80), i;
	uint64_t len = h[1] & 0x7f;
	size_t at = 2;

	if (len == 126) {
		len = (uint64_t)h[2] << 8 | h[3];
		at = 4;
	} else if (len == 127) {
		if (h[2] & 0x80)
			return fail(f, s, ud, 1002, "frame length has its top bit set");
		len = 0;
		for (i = 0; i < 8; i++)
			len = len << 8 | h[2 + i];
		at = 10;
	}
	if (masked)
		memcpy(f->mask, h + at, 4);
	f->fin = (uint8_t)!!(h[0] & 0x80);
	f->opcode = (uint8_t)op;
	f->remain = len;
	f->mpos = 0;
	f->masked = (uint8_t)masked;
	if (h[0] & 0x30)
		return fail(f, s, ud, 1002, "reserved bits set");
	if (f->server && !masked)
		return fail(f, s, ud, 1002, "unmasked frame from a client");
	if (!f->server && masked)
		return fail(f, s, ud, 1002, "masked frame from a server");
	if (op >= 8) {
		if (op > 10)
			return fail(f, s, ud, 1002, "reserved opcode");
		if (!f->fin)
			return fail(f, s, ud, 1002, "fragmented control frame");
		if (len > 125)
			return fail(f, s, ud, 1002, "control frame too long");
		if (h[0] & 0x40)
			return fail(f, s, ud, 1002, "reserved bits set");
		f->ctl_len = 0;
	} else if (op == 0) {
		if (!f->in_msg)
			return fail(f, s, ud, 1002, "continuation without a message");
		if (h[0] & 0x40)
			return fail(f, s, ud, 1002, "reserved bits set on a continuation");
		f->first = 0;
	} else {
		if (op > 2)
			return fail(f, s, ud, 1002, "reserved opcode");
		if (f->in_msg)
			return fail(f, s, ud, 1002, "new message inside a fragmented one");
		if ((h[0] & 0x40) && !f->rsv1_ok)
			return fail(f, s, ud, 1002, "reserved bits set");
		f->in_msg = 1;
		f->msg_binary = (uint8_t)(op == 2);
		f->msg_compressed = (uint8_t)!!(h[0] & 0x40);
		f->first = 1;
	}
	f->state = ST_PAYLOAD;
	return 0;
}

void
frame_mask(unsigned char *p, size_t n, const unsigned char key[4], unsigned pos)
{
	size_t i = 0;

	/* byte by byte up to the key's start, then 8 bytes at a time */
	for (; i < n && ((pos + i) & 3); i++)
		p[i] ^= key[(pos + i) & 3];
	if (n - i >= 8) {
		uint32_t k;
		uint64_t k8, w;

		memcpy(&k, key, 4);
		k8 = (uint64_t)k | (uint64_t)k << 32;
		for (; i + 8 <= n; i += 8) {
			memcpy(&w, p + i, 8);
			w ^= k8;
			memcpy(p + i, &w, 8);
		}
	}
	for (; i < n; i++)
		p[i] ^= key[(pos + i) & 3];
}

static void
unmask(struct frame_rx *f, unsigned char *p, size_t n)
{
	if (!f->masked)
		return;
	frame_mask(p, n, f->mask, f->mpos);
	f->mpos = (uint8_t)((f->mpos + n) & 3);
}

/* The frame's payload ends here (a data frame's bytes, possibly none, or a
 * whole control frame) */
static int
payload_done(struct frame_rx *f, const struct frame_sink *s, void *ud)
{
	f->state = ST_HDR;
	f->hlen = 0;
	if (f->opcode >= 8)
		return s->control(ud, f->opcode, f->ctl, f->ctl_len) ? -1 : 0;
	return 0;
}

int
frame_parse(struct frame_rx *f, unsigned char *in, size_t len, const struct frame_sink *s,
	    void *ud)
{
	size_t i = 0;

	while (i < len || (f->state == ST_PAYLOAD && !f->remain)) {
		if (f->state == ST_DEAD)
			return -1;
		if (f->state == ST_HDR) {
			size_t need;

			/* the usual case: a whole header in the buffer, one copy */
			if (!f->hlen && len - i >= 2) {
				need = header_size(in + i);
				if (len - i >= need) {
					memcpy(f->hdr, in + i, need);
					f->hlen = (uint8_t)need;
					i += need;
					if (header_done(f, s, ud))
						return -1;
					continue;
				}
			}
			need = f->hlen < 2 ? 2 : header_size(f->hdr);

			while (f->hlen < need && i < len) {
				f->hdr[f->hlen++] = in[i++];
				if (f->hlen == 2)
					need = header_size(f->hdr);
			}
			if (f->hlen < need)
				return 0;   /* the rest of the header comes later */
			if (header_done(f, s, ud))
				return -1;
			continue;
		}
		/* ST_PAYLOAD */
		{
			size_t n = len - i;

			if ((uint64_t)n > f->remain)
				n = (size_t)f->remain;
			unmask(f, in + i, n);
			f->remain -= n;
			if (f->opcode >= 8) {
				if (!f->ctl_len && !f->remain) {
					f->ctl = in + i;   /* whole here: read in place */
				} else {
					if (!f->ctl_buf && !(f->ctl_buf = malloc(125)))
						return fail(f, s, ud, 1011, "out of memory");
					memcpy(f->ctl_buf + f->ctl_len, in + i, n);
					f->ctl = f->ctl_buf;
				}
				f->ctl_len = (uint8_t)(f->ctl_len + n);
			} else {
				int final = f->fin && !f->remain, first = f->first;

				/* a data frame with no bytes still tells a message's
				 * start or end; an empty middle frame tells nothing */
				if (n || first || final) {
					f->first = 0;
					if (final)
						f->in_msg = 0;
					if (s->data(ud, in + i, n, first, final, f->msg_binary,
						    f->msg_compressed, f->remain))
						return -1;
				}
			}
			i += n;
			if (!f->remain && payload_done(f, s, ud))
				return -1;
		}
	}
	return 0;
}

size_t
frame_header(unsigned char *out, int fin, int rsv1, unsigned opcode, uint64_t len)
{
	out[0] = (unsigned char)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (unsigned char)len;
		return 2;
	}
	if (len < 65536) {
		out[1] = 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	return 10;
}
