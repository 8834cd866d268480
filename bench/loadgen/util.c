/*
 * bench/loadgen/util.c: what every part of loadgen leans on: fatal errors,
 * the monotonic clock, the random numbers, memory, the scratch buffer,
 * byte buffers and the deterministic payload pattern.
 */
#include "loadgen.h"

#include <errno.h>
#include <stdarg.h>

static unsigned char pat[2 * PATLEN];
static size_t scratch_cap;
unsigned char *scratch;
uint64_t rng_state;

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t s_to_ns(double s)
{
	return s <= 0 ? 0 : (uint64_t)(s * 1e9);
}

uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p && n)
		die("out of memory");
	return p;
}

unsigned char *scratch_get(size_t n)
{
	if (n > scratch_cap) {
		scratch_cap = n;
		scratch = xrealloc(scratch, n);
	}
	return scratch;
}

/* ---- byte buffers ---- */

unsigned char *buf_reserve(struct buf *b, size_t n)
{
	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap && b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	return b->p + b->len;
}

void buf_append(struct buf *b, const void *src, size_t n)
{
	memcpy(buf_reserve(b, n), src, n);
	b->len += n;
}

void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* drop big buffers once empty so 10k idle connections stay small */
void buf_trim(struct buf *b)
{
	if (b->off == b->len) {
		b->off = b->len = 0;
		if (b->cap > 65536)
			buf_free(b);
	}
}

/* ---- payloads: deterministic printable ASCII, so replies verify without
 * keeping copies of what was sent ---- */

void pat_init(void)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	int i;

	for (i = 0; i < PATLEN; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		pat[i] = (unsigned char)(0x21 + (x >> 33) % 94);
	}
	memcpy(pat + PATLEN, pat, PATLEN);
}

void fill_pat(unsigned char *d, size_t n, uint64_t off)
{
	off %= PATLEN;
	while (n) {
		size_t k = n < PATLEN ? n : PATLEN;

		memcpy(d, pat + off, k);
		d += k;
		n -= k;
	}
}
