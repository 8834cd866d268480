/* fuzz_frame.c: csrc/frame.c's parser on arbitrary bytes, cut anywhere.
 * The first byte picks the side (bit 0: server, bit 1: permessage-deflate
 * allowed) and how many cuts follow (bits 2-4), one length byte per cut;
 * the rest is the stream. Checked: the events are the same whether the
 * stream comes whole or cut (the parser keeps no state it should not);
 * nothing arrives after an error; data pieces never exceed the input, a
 * message's first piece says first and only its last says final, control
 * frames are Close/Ping/Pong of at most 125 bytes, and the error codes are
 * 1002; and the events equal those of a whole-buffer reference decoder
 * written here from RFC 6455 5.2-5.5. */
#include <string.h>

#include "../csrc/proto.h"
#include "ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LOG_MAX 65536

struct log {
	unsigned char buf[LOG_MAX];
	size_t len;
	int errors, in_msg, after_error;
	uint64_t data_bytes;
};

static void
put(struct log *l, const void *p, size_t n)
{
	if (l->len + n > LOG_MAX)
		n = LOG_MAX - l->len;
	memcpy(l->buf + l->len, p, n);
	l->len += n;
}

static int
on_data(void *ud, unsigned char *p, size_t n, int first, int final, int binary, int compressed,
	uint64_t remain)
{
	struct log *l = ud;
	unsigned char tag[3] = { 'D', (unsigned char)(binary | compressed << 1),
				 (unsigned char)(first | final << 1) };

	(void)remain;
	CHECK(!l->errors, "data after an error");
	CHECK(first == !l->in_msg, "first=%d inside a message=%d", first, l->in_msg);
	l->in_msg = !final;
	l->data_bytes += n;
	/* first/final are per piece: cutting the stream moves them, so the
	 * log records only the bytes and where each message ends */
	put(l, p, n);
	if (final) {
		put(l, "|", 1);
		put(l, tag, 2);
	}
	return 0;
}

static int
on_control(void *ud, unsigned opcode, const unsigned char *p, size_t n)
{
	struct log *l = ud;
	unsigned char tag[2] = { 'C', (unsigned char)opcode };

	CHECK(!l->errors, "control frame after an error");
	CHECK(opcode == 8 || opcode == 9 || opcode == 10, "control opcode %u", opcode);
	CHECK(n <= 125, "control payload %zu", n);
	put(l, tag, 2);
	put(l, p, n);
	put(l, "|", 1);
	return 0;
}

static void
on_error(void *ud, uint16_t code, const char *msg)
{
	struct log *l = ud;

	CHECK(code == 1002, "error code %u (%s)", code, msg);
	CHECK(!l->errors, "a second error");
	l->errors++;
	put(l, "E", 1);
}

static const struct frame_sink sink = { on_data, on_control, on_error };

/* The reference: the whole stream decoded frame by frame as RFC 6455 5.2
 * reads, with 5.4 (fragmentation), 5.5 (control frames), 5.3 (masking
 * by side) and 5.2's RSV rule (RSV1 only with permessage-deflate, on a
 * message's first frame), logging what the sink above would. */
static void
reference(unsigned char *p, size_t len, int server, int rsv1_ok, struct log *l)
{
	size_t at = 0;
	int in_msg = 0, binary = 0, compressed = 0;

	while (at + 2 <= len) {
		unsigned b0 = p[at], b1 = p[at + 1], op = b0 & 15, fin = b0 >> 7;
		uint64_t n = b1 & 127;
		size_t h = 2, i;

		if (n == 126) {
			if (at + 4 > len)
				return;
			n = (uint64_t)p[at + 2] << 8 | p[at + 3];
			h = 4;
		} else if (n == 127) {
			if (at + 10 > len)
				return;
			n = 0;
			for (i = 0; i < 8; i++)
				n = n << 8 | p[at + 2 + i];
			h = 10;
		}
		if (b1 & 0x80)
			h += 4;
		if (at + h > len)
			return;
		if (n >> 63) {
			on_error(l, 1002, "ref: length top bit");
			return;
		}
		if ((b0 & 0x30) || !(b1 & 0x80) != !server || (op > 2 && op < 8) || op > 10 ||
		    (op >= 8 && (!fin || n > 125 || (b0 & 0x40))) || (op == 0 && (!in_msg || (b0 & 0x40))) ||
		    ((op == 1 || op == 2) && (in_msg || ((b0 & 0x40) && !rsv1_ok)))) {
			on_error(l, 1002, "ref");
			return;
		}
		if (n > len - at - h) {
			/* a partial last frame: what arrived of a data frame counts */
			if (op >= 8)
				return;
			n = len - at - h;
			fin = 0;
			if (!n)
				return;
		}
		if (b1 & 0x80)
			for (i = 0; i < n; i++)
				p[at + h + i] ^= p[at + h - 4 + (i & 3)];
		if (op >= 8) {
			on_control(l, op, p + at + h, (size_t)n);
		} else {
			if (op) {
				binary = op == 2;
				compressed = !!(b0 & 0x40);
			}
			if (n || !in_msg || fin) {
				on_data(l, p + at + h, (size_t)n, !in_msg, fin, binary, compressed, 0);
				in_msg = !fin;
			} else {
				in_msg = 1;
			}
		}
		at += h + (size_t)n;
	}
}

static struct log whole, cut, ref;
static unsigned char copy1[1 << 16], copy2[1 << 16], copy3[1 << 16];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_rx f1, f2;
	size_t ncuts, i, off, stream_len;
	const uint8_t *stream;
	int server, rsv1;

	if (size < 1 || size > sizeof(copy1))
		return 0;
	server = data[0] & 1;
	rsv1 = !!(data[0] & 2);
	ncuts = (data[0] >> 2) & 7;
	if (size < 1 + ncuts)
		return 0;
	stream = data + 1 + ncuts;
	stream_len = size - 1 - ncuts;

	memset(&whole, 0, sizeof(whole));
	memset(&cut, 0, sizeof(cut));
	memset(&ref, 0, sizeof(ref));
	memcpy(copy1, stream, stream_len);
	memcpy(copy2, stream, stream_len);
	memcpy(copy3, stream, stream_len);
	reference(copy3, stream_len, server, rsv1, &ref);

	frame_rx_init(&f1, server, rsv1);
	frame_parse(&f1, copy1, stream_len, &sink, &whole);
	CHECK(whole.data_bytes <= stream_len, "more data than input");

	frame_rx_init(&f2, server, rsv1);
	off = 0;
	for (i = 0; i <= ncuts; i++) {
		size_t n = i < ncuts ? data[1 + i] : stream_len - off;

		if (n > stream_len - off)
			n = stream_len - off;
		if (frame_parse(&f2, copy2 + off, n, &sink, &cut) < 0 && !cut.errors)
			CHECK(0, "stopped without an error or a sink's asking");
		off += n;
	}
	CHECK(whole.errors == cut.errors, "errors %d whole, %d cut", whole.errors, cut.errors);
	CHECK(whole.len == cut.len && !memcmp(whole.buf, cut.buf, whole.len),
	      "events differ between the whole stream and its pieces (%zu vs %zu bytes of log)",
	      whole.len, cut.len);
	CHECK(!memcmp(copy1, copy2, stream_len), "unmasked bytes differ");
	if (whole.errors)
		CHECK(f1.state == FRAME_DEAD, "error without a dead parser");
	CHECK(whole.errors == ref.errors, "errors %d, reference %d", whole.errors, ref.errors);
	CHECK(whole.len == ref.len && !memcmp(whole.buf, ref.buf, whole.len),
	      "events differ from the reference decoder (%zu vs %zu bytes of log)", whole.len,
	      ref.len);
	frame_rx_free(&f1);
	frame_rx_free(&f2);
	return 0;
}
