/* fuzz_pmd.c: csrc/deflate.c on arbitrary input.
 * pmd_negotiate on the input as a Sec-WebSocket-Extensions value: an
 * accepted offer's answer names permessage-deflate, says
 * server_no_context_takeover exactly when we will reset, names a window
 * of 9..15 bits only when one was asked, never overflows its buffer, and
 * the same offer list answers the same way every time. Then the input as
 * messages (first byte: how many cuts, then one length byte per cut):
 * each message compressed and inflated by two connections' streams comes
 * back byte for byte, with context takeover and without; and the input
 * inflated as if it were a peer's compressed message never crashes. */
#include <string.h>

#include "../csrc/proto.h"
#include "ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	unsigned char buf[1 << 17];
	size_t len;
};

static int
collect(void *ud, const unsigned char *p, size_t n)
{
	struct acc *a = ud;

	if (n > sizeof(a->buf) - a->len)
		return 1;   /* more than we keep: stop, as max_message_size would */
	memcpy(a->buf + a->len, p, n);
	a->len += n;
	return 0;
}

static struct acc got;

static void
negotiate(const char *s, size_t n)
{
	struct pmd_answer a, b;
	int r = pmd_negotiate(s, n, 0, &a), r2 = pmd_negotiate(s, n, 1, &b);

	CHECK(r == 0 || r == -1, "returned %d", r);
	if (r == 0) {
		CHECK(a.len < sizeof(a.text) && strlen(a.text) == a.len, "answer length");
		CHECK(!strncmp(a.text, "permessage-deflate", 18), "answer '%s'", a.text);
		CHECK(a.bits >= 9 && a.bits <= 15, "bits %d", a.bits);
		CHECK(!!strstr(a.text, "server_no_context_takeover") == a.no_context,
		      "no_context %d but answer '%s'", a.no_context, a.text);
		CHECK(a.bits == 15 || strstr(a.text, "server_max_window_bits="),
		      "window %d not announced in '%s'", a.bits, a.text);
		/* configured no_context takes the same offer, resetting */
		CHECK(r2 == 0 && b.no_context && strstr(b.text, "server_no_context_takeover"),
		      "configured server_no_context_takeover not kept");
	} else {
		CHECK(r2 == -1, "configuration changed which offer is taken");
	}
}

static void
round_trip(const uint8_t *data, size_t size, int no_context)
{
	struct pmd_answer ans = { .no_context = (uint8_t)no_context, .bits = 15 };
	struct pmd *tx = pmd_new(&ans, 6, 8), *rx = pmd_new(&ans, 6, 8);
	size_t ncuts = size ? data[0] & 7 : 0, off, i;

	CHECK(tx && rx, "pmd_new");
	if (size < 1 + ncuts)
		ncuts = 0;
	off = size ? 1 + ncuts : 0;
	for (i = 0; i <= ncuts && off <= size; i++) {
		size_t n = i < ncuts ? data[1 + i] : size - off;
		unsigned char *z;
		size_t zlen;

		if (n > size - off)
			n = size - off;
		CHECK(pmd_compress(tx, data + off, n, 10, &z, &zlen) == 0, "compress");
		got.len = 0;
		CHECK(pmd_inflate(rx, z + 10, zlen, 1, collect, &got) == 0, "inflate of our own output");
		CHECK(got.len == n && !memcmp(got.buf, data + off, n), "round trip of %zu bytes", n);
		free(z);
		off += n;
	}
	pmd_free(tx);
	pmd_free(rx);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pmd_answer ans = { .bits = 15 };
	struct pmd *z;

	if (size > 65536)
		return 0;
	negotiate((const char *)data, size);
	round_trip(data, size, 0);
	round_trip(data, size, 1);
	/* a peer's message: anything may come, nothing may break */
	z = pmd_new(&ans, 1, 8);
	got.len = 0;
	(void)pmd_inflate(z, data, size / 2, 0, collect, &got);
	(void)pmd_inflate(z, data + size / 2, size - size / 2, 1, collect, &got);
	pmd_free(z);
	return 0;
}
