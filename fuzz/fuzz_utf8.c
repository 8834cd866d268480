/* fuzz_utf8.c: proto_utf8_step fed in fuzzer-chosen pieces, byte by byte
 * and whole, against the code-point reference in ref.h; proto_utf8_valid
 * must agree with both. Input: byte 0 & 7 = number of cuts, then one byte
 * per cut (the length of that piece), then the text itself. */
#include <stdlib.h>
#include <string.h>

#include "../csrc/proto.h"
#include "ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds t[0..len) as pieces of lens[0..n) bytes then the rest, each piece
 * in its own exact-size allocation so ASan sees any read past it. After
 * each piece the result must match the reference: -1 exactly once the
 * first bad byte (index bad) has been fed, and state 0 exactly at a
 * character boundary. Returns the final verdict. */
static int
feed(const unsigned char *t, size_t len, const unsigned char *lens, size_t n,
     int bytewise, size_t bad, const unsigned char *bnd)
{
	uint32_t st = UTF8_ACCEPT;
	size_t off = 0, i = 0;
	int failed = 0;
	unsigned char *one = malloc(1);   /* reused: a malloc per byte is slow */

	CHECK(one, "out of memory");

	for (;;) {
		size_t piece;
		unsigned char *buf;
		int r;

		if (bytewise)
			piece = off < len ? 1 : 0;
		else if (i < n)
			piece = lens[i++];
		else
			piece = len - off;
		if (piece > len - off)
			piece = len - off;
		buf = bytewise ? one : malloc(piece);
		CHECK(buf || !piece, "out of memory");
		if (piece)
			memcpy(buf, t + off, piece);
		r = proto_utf8_step(&st, buf, piece);
		if (!bytewise)
			free(buf);
		off += piece;
		if (failed) {
			CHECK(r == -1, "step returned %d after an earlier failure (offset %zu)", r, off);
		} else if (bad < off) {
			CHECK(r == -1, "step accepted invalid byte 0x%02x at %zu", t[bad], bad);
			CHECK(st != UTF8_ACCEPT, "state is ACCEPT after a failure");
			failed = 1;
		} else {
			CHECK(r == 0, "step rejected valid prefix of %zu bytes", off);
			CHECK((st == UTF8_ACCEPT) == bnd[off],
			      "after %zu bytes state=%u but reference says %s", off,
			      (unsigned)st, bnd[off] ? "boundary" : "mid-character");
		}
		if (off == len && (bytewise || i >= n))
			break;
	}
	free(one);
	return !failed && st == UTF8_ACCEPT;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ncut = size ? (data[0] & 7u) : 0, skip, len, bad;
	const unsigned char *lens, *t;
	unsigned char *bnd;
	int want;

	skip = size ? 1 + ncut : 0;
	if (skip > size) {
		ncut = size - 1;
		skip = size;
	}
	lens = data + 1;
	t = data + skip;
	len = size - skip;

	bnd = calloc(len + 1, 1);
	CHECK(bnd, "out of memory");
	bad = ref_utf8_scan(t, len, bnd);
	want = bad == len && bnd[len];

	CHECK(feed(t, len, lens, ncut, 0, bad, bnd) == want,
	      "pieces: verdict differs from reference (%s)", want ? "valid" : "invalid");
	CHECK(feed(t, len, NULL, 0, 1, bad, bnd) == want,
	      "byte by byte: verdict differs from reference (%s)", want ? "valid" : "invalid");
	CHECK(feed(t, len, NULL, 0, 0, bad, bnd) == want,
	      "whole: verdict differs from reference (%s)", want ? "valid" : "invalid");
	CHECK(proto_utf8_valid(t, len) == want,
	      "proto_utf8_valid says %d, reference %d", !want, want);
	free(bnd);
	return 0;
}
