/* ref.h: the slow, obviously-correct reference checks the harnesses compare
 * csrc/proto.c against. Written from the RFCs, not from proto.c: UTF-8 here
 * decodes code point ranges, where proto.c walks a byte-range DFA. */
#ifndef LWS_FUZZ_REF_H
#define LWS_FUZZ_REF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* abort() so libFuzzer saves the input; the message says which rule broke */
#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} \
} while (0)

/* Can the partial sequence whose first k of n bytes give the top bits v
 * still become a valid scalar value (RFC 3629 section 3)? The n-1-k
 * missing continuation bytes can add anything from 0 to 2^(6*rem)-1, so
 * the reachable code points are one interval; it must meet the range
 * legal for an n-byte form (no overlongs, at most U+10FFFF) somewhere
 * outside the surrogates U+D800..U+DFFF. */
static inline int
ref_utf8_viable(uint32_t v, int n, int k)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	static const uint32_t max[5] = { 0, 0x7f, 0x7ff, 0xffff, 0x10ffff };
	int rem = n - k;
	uint32_t lo = v << (6 * rem), hi = lo | ((1u << (6 * rem)) - 1);

	if (lo < min[n])
		lo = min[n];
	if (hi > max[n])
		hi = max[n];
	if (lo > hi)
		return 0;
	return lo < 0xd800 || hi > 0xdfff;
}

/* Scans p: returns the index of the first byte after which no valid
 * continuation exists (len if there is none). If bnd is given (len + 1
 * entries), bnd[i] for i up to the returned index is 1 where a character
 * starts or the buffer ends cleanly, 0 inside a character. */
static inline size_t
ref_utf8_scan(const unsigned char *p, size_t len, unsigned char *bnd)
{
	size_t i = 0;

	while (i < len) {
		unsigned char b = p[i];
		uint32_t v;
		int n, k;

		if (bnd)
			bnd[i] = 1;
		if (b < 0x80) {
			i++;
			continue;
		} else if ((b & 0xe0) == 0xc0) {
			n = 2, v = b & 0x1f;
		} else if ((b & 0xf0) == 0xe0) {
			n = 3, v = b & 0x0f;
		} else if ((b & 0xf8) == 0xf0) {
			n = 4, v = b & 0x07;
		} else {
			return i;   /* a continuation byte or 0xf8..0xff as lead */
		}
		if (!ref_utf8_viable(v, n, 1))
			return i;
		for (k = 2; k <= n; k++) {
			if (i + k - 1 >= len)
				goto truncated;
			b = p[i + k - 1];
			if (bnd)
				bnd[i + k - 1] = 0;
			if ((b & 0xc0) != 0x80)
				return i + k - 1;
			v = v << 6 | (b & 0x3f);
			if (!ref_utf8_viable(v, n, k))
				return i + k - 1;
		}
		i += n;
	}
	if (bnd)
		bnd[len] = 1;
	return len;
truncated:
	if (bnd)
		bnd[len] = 0;
	return len;
}

/* A complete, valid UTF-8 string. */
static inline int
ref_utf8_valid(const unsigned char *p, size_t len)
{
	unsigned char *bnd = malloc(len + 1);
	int ok;

	if (!bnd)
		abort();
	ok = ref_utf8_scan(p, len, bnd) == len && bnd[len];
	free(bnd);
	return ok;
}

#endif
