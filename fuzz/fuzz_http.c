/* fuzz_http.c: HTTP/1.1 request framing. proto_chunked_decode fed the
 * input in the fuzzer's pieces, byte by byte, whole and in place, against
 * a reference that parses the whole input at once from RFC 9112 7.1 and
 * finds the first byte each rule rejects; proto_content_length and
 * proto_transfer_encoding on the same bytes against split-and-check
 * references.
 * Input: byte 0's low 3 bits are a number of cuts k, its high 5 bits pick
 * the body limit (max) from a table; the next k bytes are piece lengths;
 * the rest is the body. */
#include <string.h>

#include "../csrc/proto.h"
#include "ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { R_MORE = PROTO_CHUNKED_MORE, R_DONE = PROTO_CHUNKED_DONE, R_BAD = PROTO_CHUNKED_BAD,
       R_BIG = PROTO_CHUNKED_TOO_BIG };

static int
ref_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 9110 5.6.2 tchar */
static int
ref_tchar(unsigned char c)
{
	static const char punct[] = "!#$%&'*+-.^_`|~";

	if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
		return 1;
	return c != 0 && memchr(punct, c, sizeof(punct) - 1) != NULL;
}

/* VCHAR / SP / HTAB / obs-text */
static int
ref_text(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80;
}

#define NOWHERE ((size_t)-1)

static size_t
first(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* The whole-input reference. Each line is checked rule by rule, each rule
 * giving the position of the first byte it rejects (NOWHERE if none);
 * the earliest wins, and a position at or past len means the input ended
 * before anything was wrong (MORE). */
static int
ref_chunked(const unsigned char *in, size_t len, uint64_t max, unsigned char *out,
	    size_t *out_len, size_t *used)
{
	size_t pos = 0, o = 0;
	uint64_t total = 0;

	*out_len = 0;
	*used = len;
	for (;;) {
		size_t start = pos, p, bad = NOWHERE, big = NOWHERE, lf = NOWHERE, fail;
		unsigned __int128 v = 0;
		uint64_t size;

		/* 1*HEXDIG, the size as an exact number against what is left */
		for (p = start; p < len && ref_hex(in[p]) >= 0; p++) {
			v = v * 16 + (unsigned)ref_hex(in[p]);
			if (big == NOWHERE && v > (unsigned __int128)(max - total))
				big = p;
		}
		if (p == start)
			bad = start;
		/* [ BWS ";" ext ] CR LF */
		if (bad == NOWHERE && p < len) {
			size_t q = p;

			while (q < len && (in[q] == ' ' || in[q] == '\t'))
				q++;
			if (q < len && q > p && in[q] != ';')
				bad = q;
			if (bad == NOWHERE && q < len && in[q] == ';') {
				q++;
				while (q < len && ref_text(in[q]))
					q++;
			}
			if (bad == NOWHERE && q < len) {
				if (in[q] != '\r')
					bad = q;
				else if (q + 1 < len && in[q + 1] != '\n')
					bad = q + 1;
				else if (q + 1 < len)
					lf = q + 1;
			}
		}
		/* the line with its CRLF is at most LINE_MAX bytes */
		if (lf == NOWHERE || lf - start + 1 > PROTO_CHUNKED_LINE_MAX)
			bad = first(bad, start + PROTO_CHUNKED_LINE_MAX);
		fail = first(bad, big);
		if (lf != NOWHERE && lf < fail) {
			/* a good size line: big cannot be past it */
		} else {
			if (fail >= len)
				goto more;
			*out_len = o;
			*used = fail + 1;
			return fail == big ? R_BIG : R_BAD;
		}
		size = (uint64_t)v;
		pos = lf + 1;
		if (size == 0)
			break;
		/* chunk-data CRLF */
		if (len - pos < size) {
			memcpy(out + o, in + pos, len - pos);
			o += len - pos;
			goto more;
		}
		memcpy(out + o, in + pos, (size_t)size);
		o += (size_t)size;
		total += size;
		pos += (size_t)size;
		if (pos >= len)
			goto more;
		if (in[pos] != '\r')
			goto bad_here;
		pos++;
		if (pos >= len)
			goto more;
		if (in[pos] != '\n')
			goto bad_here;
		pos++;
	}
	/* trailer-section CRLF, at most TRAILER_MAX bytes in all */
	{
		size_t start = pos, bad = NOWHERE, end = NOWHERE;

		while (pos < len) {
			if (in[pos] == '\r') {
				if (pos + 1 < len && in[pos + 1] != '\n')
					bad = pos + 1;
				else if (pos + 1 < len)
					end = pos + 1;
				break;
			}
			/* field-name ":" field-value CR LF */
			if (!ref_tchar(in[pos])) {
				bad = pos;
				break;
			}
			while (pos < len && ref_tchar(in[pos]))
				pos++;
			if (pos < len && in[pos] != ':') {
				bad = pos;
				break;
			}
			pos++;
			while (pos < len && ref_text(in[pos]))
				pos++;
			if (pos < len && in[pos] != '\r') {
				bad = pos;
				break;
			}
			pos++;
			if (pos < len && in[pos] != '\n') {
				bad = pos;
				break;
			}
			pos++;
		}
		if (end == NOWHERE || end - start + 1 > PROTO_CHUNKED_TRAILER_MAX)
			bad = first(bad, start + PROTO_CHUNKED_TRAILER_MAX);
		if (end != NOWHERE && end < bad) {
			*out_len = o;
			*used = end + 1;
			return R_DONE;
		}
		if (bad >= len)
			goto more;
		*out_len = o;
		*used = bad + 1;
		return R_BAD;
	}
bad_here:
	*out_len = o;
	*used = pos + 1;
	return R_BAD;
more:
	*out_len = o;
	*used = len;
	return R_MORE;
}

/* ---- Content-Length and Transfer-Encoding references ----------------- */

struct span {
	size_t off, n;
};

static size_t
split(const char *s, size_t len, struct span *out, size_t max)
{
	size_t n = 0, start = 0, i;

	for (i = 0; i <= len && n < max; i++) {
		if (i < len && s[i] != ',')
			continue;
		out[n].off = start;
		out[n].n = i - start;
		n++;
		start = i + 1;
	}
	return n;
}

static void
trim(const char *s, struct span *e)
{
	while (e->n && (s[e->off] == ' ' || s[e->off] == '\t'))
		e->off++, e->n--;
	while (e->n && (s[e->off + e->n - 1] == ' ' || s[e->off + e->n - 1] == '\t'))
		e->n--;
}

static int
ref_content_length(const char *s, size_t len, uint64_t *out)
{
	static struct span el[4096];
	size_t n = split(s, len, el, 4096), i, j;
	unsigned __int128 firstv = 0;

	if (n == 4096)
		return -2;   /* too many to say: skip */
	for (i = 0; i < n; i++) {
		unsigned __int128 v = 0;

		trim(s, &el[i]);
		if (!el[i].n)
			return -1;
		for (j = 0; j < el[i].n; j++) {
			char c = s[el[i].off + j];

			if (c < '0' || c > '9')
				return -1;
			v = v * 10 + (unsigned)(c - '0');
			if (v > ((unsigned __int128)1 << 62))
				return -1;
		}
		if (i && v != firstv)
			return -1;
		firstv = v;
	}
	*out = (uint64_t)firstv;
	return 0;
}

static int
ref_transfer_encoding(const char *s, size_t len)
{
	static struct span el[4096];
	size_t n = split(s, len, el, 4096), i;
	int chunked = 0, other = 0, malformed = 0;

	if (n == 4096)
		return 1;   /* skip */
	for (i = 0; i < n; i++) {
		struct span e = el[i];
		size_t k = 0, name;

		trim(s, &e);
		while (k < e.n && ref_tchar((unsigned char)s[e.off + k]))
			k++;
		name = k;
		if (!name) {
			malformed = 1;
			continue;
		}
		while (k < e.n && (s[e.off + k] == ' ' || s[e.off + k] == '\t'))
			k++;
		if (k < e.n) {
			/* ";" then parameters without control characters */
			if (s[e.off + k] != ';') {
				malformed = 1;
				continue;
			}
			for (; k < e.n; k++) {
				unsigned char c = (unsigned char)s[e.off + k];

				if ((c < 0x20 && c != '\t') || c == 0x7f)
					malformed = 1;
			}
		}
		if (name == 7 && !strncasecmp(s + e.off, "chunked", 7)) {
			chunked++;
			if (e.n > 7)
				other = 1;   /* chunked with parameters */
		} else {
			other = 1;
		}
	}
	if (malformed || chunked > 1)
		return PROTO_TE_BAD;
	return other ? PROTO_TE_UNSUPPORTED : PROTO_TE_CHUNKED;
}

/* ---- the harness ------------------------------------------------------- */

struct feed {
	struct proto_chunked c;
	unsigned char *out;
	size_t out_len, consumed;
	int r;
};

/* one piece, from its own exact-size allocation; checks the calls' own
 * contract and returns the result */
static int
feed_piece(struct feed *f, const unsigned char *p, size_t n, uint64_t max)
{
	unsigned char *copy = malloc(n ? n : 1), *dst = malloc(n ? n : 1);
	size_t ol = 12345, used = 12345;
	int was = f->r;

	memcpy(copy, p, n);
	f->r = proto_chunked_decode(&f->c, copy, n, dst, &ol, &used, max);
	CHECK(ol <= n && used <= n, "out_len %zu used %zu of %zu", ol, used, n);
	CHECK(ol <= used, "wrote %zu data bytes from %zu consumed", ol, used);
	if (was == R_BAD || was == R_BIG || was == R_DONE)
		CHECK(f->r == was && ol == 0 && used == 0, "after %d: %d, %zu, %zu", was, f->r, ol,
		      used);
	if (f->r == R_MORE)
		CHECK(used == n, "MORE but consumed %zu of %zu", used, n);
	memcpy(f->out + f->out_len, dst, ol);
	f->out_len += ol;
	if (f->r != R_BAD && f->r != R_BIG)
		f->consumed += used;
	free(copy);
	free(dst);
	return f->r;
}

static void
compare(const char *how, struct feed *f, int want, const unsigned char *want_out, size_t want_len,
	size_t want_used)
{
	CHECK(f->r == want, "%s: result %d, reference %d", how, f->r, want);
	CHECK(f->out_len == want_len, "%s: %zu data bytes, reference %zu", how, f->out_len, want_len);
	CHECK(!memcmp(f->out, want_out, want_len), "%s: data differs from the reference", how);
	if (want == R_DONE)
		CHECK(f->consumed == want_used, "%s: consumed %zu, reference %zu", how, f->consumed,
		      want_used);
	CHECK(f->c.total == f->out_len, "%s: total %llu, %zu data bytes", how,
	      (unsigned long long)f->c.total, f->out_len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t maxes[32] = {
		0, 1, 2, 5, 15, 16, 17, 255, 256, 4095, 4096, 65535, 65536, 1000000, 1 << 20,
		0xffffffffu, 0x100000000ull, (uint64_t)1 << 40, (uint64_t)1 << 62, UINT64_MAX,
		UINT64_MAX - 1, UINT64_MAX / 16, UINT64_MAX / 16 + 1, 3, 7, 10, 100, 1000, 10000,
		12345, 99, 64
	};
	size_t cuts, lens[8], i, body_len, ref_out_len, ref_used, off;
	const unsigned char *body;
	unsigned char *ref_out, *whole;
	uint64_t max, cl, rcl;
	struct feed f;
	int want, r, rr;

	if (size < 1)
		return 0;
	cuts = data[0] & 7;
	max = maxes[data[0] >> 3];
	if (size < 1 + cuts)
		return 0;
	for (i = 0; i < cuts; i++)
		lens[i] = data[1 + i];
	body = data + 1 + cuts;
	body_len = size - 1 - cuts;

	ref_out = malloc(body_len + 1);
	want = ref_chunked(body, body_len, max, ref_out, &ref_out_len, &ref_used);

	/* the fuzzer's pieces, then the rest; after every piece the result
	 * must be the reference's on the prefix fed so far */
	memset(&f, 0, sizeof(f));
	proto_chunked_init(&f.c);
	f.out = malloc(body_len + 1);
	off = 0;
	for (i = 0; i <= cuts; i++) {
		size_t n = i < cuts ? lens[i] : body_len - off, pl, pu;
		unsigned char *pref = malloc(off + n + 1);
		int pw;

		if (n > body_len - off)
			n = body_len - off;
		feed_piece(&f, body + off, n, max);
		off += n;
		pw = ref_chunked(body, off, max, pref, &pl, &pu);
		compare("pieces (prefix)", &f, pw, pref, pl, pu);
		free(pref);
	}
	compare("pieces", &f, want, ref_out, ref_out_len, ref_used);
	free(f.out);

	/* byte by byte */
	memset(&f, 0, sizeof(f));
	proto_chunked_init(&f.c);
	f.out = malloc(body_len + 1);
	for (i = 0; i < body_len; i++)
		if (feed_piece(&f, body + i, 1, max) != R_MORE)
			break;
	if (body_len == 0)
		feed_piece(&f, body, 0, max);
	compare("bytes", &f, want, ref_out, ref_out_len, ref_used);
	free(f.out);

	/* whole, decoded in place */
	{
		struct proto_chunked c;
		size_t ol, used;

		whole = malloc(body_len ? body_len : 1);
		memcpy(whole, body, body_len);
		proto_chunked_init(&c);
		r = proto_chunked_decode(&c, whole, body_len, whole, &ol, &used, max);
		CHECK(r == want, "in place: result %d, reference %d", r, want);
		CHECK(ol == ref_out_len && !memcmp(whole, ref_out, ol), "in place: data differs");
		if (r == R_DONE)
			CHECK(used == ref_used, "in place: used %zu, reference %zu", used, ref_used);
		free(whole);
	}
	free(ref_out);

	/* the same bytes as header values */
	cl = rcl = 777;
	r = proto_content_length((const char *)body, body_len, &cl);
	rr = ref_content_length((const char *)body, body_len, &rcl);
	if (rr != -2) {
		CHECK(r == rr, "proto_content_length %d, reference %d", r, rr);
		CHECK(r != 0 || cl == rcl, "Content-Length %llu, reference %llu",
		      (unsigned long long)cl, (unsigned long long)rcl);
		CHECK(r == 0 || cl == 777, "failed but wrote %llu", (unsigned long long)cl);
	}
	rr = ref_transfer_encoding((const char *)body, body_len);
	if (rr != 1)
		CHECK(proto_transfer_encoding((const char *)body, body_len) == rr,
		      "proto_transfer_encoding %d, reference %d",
		      proto_transfer_encoding((const char *)body, body_len), rr);
	return 0;
}
