/* fuzz_handshake.c: the upgrade request checks. proto_key_valid against a
 * base64 decode of the key, proto_token_list against a split-and-check of
 * RFC 7230 #token (and a callback that checks every token it is given),
 * proto_list_has against a split, trim and case-insensitive compare.
 * Input: the header value; after a NUL, the token to look for. */
#include <string.h>

#include "../csrc/proto.h"
#include "ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct span {
	size_t off, n;
};

/* RFC 7230 3.2.6: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static int
ref_tchar(unsigned char c)
{
	static const char punct[] = "!#$%&'*+-.^_`|~";

	if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
		return 1;
	return c != 0 && memchr(punct, c, sizeof(punct) - 1) != NULL;
}

static int
ref_ows(char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char
ref_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Splits s at every comma and trims OWS from each element; returns the
 * number of elements (always at least one, possibly empty). */
static size_t
ref_split(const char *s, size_t len, struct span *out)
{
	size_t n = 0, start = 0, i;

	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != ',')
			continue;
		{
			size_t a = start, b = i;

			while (a < b && ref_ows(s[a]))
				a++;
			while (b > a && ref_ows(s[b - 1]))
				b--;
			out[n].off = a;
			out[n].n = b - a;
			n++;
		}
		start = i + 1;
	}
	return n;
}

/* 1#token: every element a non-empty run of tchar; -1 otherwise. */
static long
ref_token_list(const char *s, const struct span *el, size_t nel)
{
	size_t i, j;

	for (i = 0; i < nel; i++) {
		if (el[i].n == 0)
			return -1;
		for (j = 0; j < el[i].n; j++)
			if (!ref_tchar((unsigned char)s[el[i].off + j]))
				return -1;
	}
	return (long)nel;
}

static int
ref_list_has(const char *s, const struct span *el, size_t nel, const char *tok)
{
	size_t tl = strlen(tok), i, j;

	for (i = 0; i < nel; i++) {
		if (el[i].n != tl)
			continue;
		for (j = 0; j < tl; j++)
			if (ref_lower((unsigned char)s[el[i].off + j]) != ref_lower((unsigned char)tok[j]))
				break;
		if (j == tl)
			return 1;
	}
	return 0;
}

static int
ref_b64(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* RFC 6455 4.1: the base64 of 16 bytes. 22 characters carry 132 bits, so
 * the last character's low 4 bits must be zero (canonical encoding). */
static int
ref_key_valid(const char *k, size_t len)
{
	size_t i;

	if (len != 24 || k[22] != '=' || k[23] != '=')
		return 0;
	for (i = 0; i < 22; i++)
		if (ref_b64((unsigned char)k[i]) < 0)
			return 0;
	return (ref_b64((unsigned char)k[21]) & 0x0f) == 0;
}

struct seen {
	const char *base;
	size_t len, calls, cap;
	struct span *v;
};

static void
on_token(void *ud, const char *tok, size_t n)
{
	struct seen *st = ud;
	size_t i;

	CHECK(n > 0, "empty token");
	CHECK(tok >= st->base && tok <= st->base + st->len &&
	      n <= (size_t)(st->base + st->len - tok),
	      "token outside the input");
	for (i = 0; i < n; i++)
		CHECK(ref_tchar((unsigned char)tok[i]), "token byte 0x%02x is not a tchar",
		      (unsigned char)tok[i]);
	CHECK(st->calls < st->cap, "more tokens than the input can hold");
	st->v[st->calls].off = (size_t)(tok - st->base);
	st->v[st->calls].n = n;
	st->calls++;
}

static void
check_token_list(const char *s, size_t len, const struct span *el, size_t nel)
{
	struct seen st = { s, len, 0, len + 1, NULL };
	long want = ref_token_list(s, el, nel);
	int r, r2;
	size_t i;

	st.v = calloc(st.cap, sizeof(*st.v));
	CHECK(st.v, "out of memory");
	r = proto_token_list(s, len, on_token, &st);
	r2 = proto_token_list(s, len, NULL, NULL);
	CHECK(r == r2, "with a callback %d, without %d", r, r2);
	CHECK(r == want, "returned %d, reference %ld", r, want);
	if (r >= 0) {
		CHECK(st.calls == (size_t)r, "%zu callbacks for %d tokens", st.calls, r);
		for (i = 0; i < st.calls; i++)
			CHECK(st.v[i].off == el[i].off && st.v[i].n == el[i].n,
			      "token %zu is [%zu,+%zu), reference [%zu,+%zu)", i,
			      st.v[i].off, st.v[i].n, el[i].off, el[i].n);
	} else {
		/* proto.h: "Calls fn for each token ... when it is" a list */
		CHECK(st.calls == 0, "fn called %zu times for a malformed list", st.calls);
	}
	free(st.v);
}

static void
check_list_has(const char *s, size_t len, const struct span *el, size_t nel, const char *tok)
{
	int r = proto_list_has(s, len, tok), want = ref_list_has(s, el, nel, tok);

	CHECK(r == want, "proto_list_has(\"%s\") = %d, reference %d", tok, r, want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *nul = memchr(s, '\0', size);
	struct span *el = calloc(size + 1, sizeof(*el));
	size_t nel, i;

	CHECK(el, "out of memory");
	CHECK(proto_key_valid(s, size) == ref_key_valid(s, size), "proto_key_valid = %d",
	      proto_key_valid(s, size));

	nel = ref_split(s, size, el);
	check_token_list(s, size, el, nel);
	check_list_has(s, size, el, nel, "upgrade");
	check_list_has(s, size, el, nel, "websocket");

	/* each element back as the token, case flipped: must be found */
	for (i = 0; i < nel && i < 4; i++) {
		char *tok = malloc(el[i].n + 1);
		size_t j;

		CHECK(tok, "out of memory");
		for (j = 0; j < el[i].n; j++) {
			unsigned char c = (unsigned char)s[el[i].off + j];

			tok[j] = (char)(j % 2 && c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c);
		}
		tok[el[i].n] = '\0';
		/* an empty token (or one cut short by a NUL) is not a question
		 * callers ask: proto_list_has is only given header tokens */
		if (tok[0] && strlen(tok) == el[i].n)
			CHECK(proto_list_has(s, size, tok) == 1, "element %zu not found", i);
		free(tok);
	}

	/* value NUL token: the list alone in an exact-size copy */
	if (nul) {
		size_t vlen = (size_t)(nul - s);
		char *v = malloc(vlen ? vlen : 1);
		const char *tok = nul + 1, *end = s + size;
		size_t tl = (size_t)(end - tok);
		const char *tn = memchr(tok, '\0', tl);
		char *t;

		CHECK(v, "out of memory");
		if (tn)
			tl = (size_t)(tn - tok);
		t = malloc(tl + 1);
		CHECK(t, "out of memory");
		memcpy(t, tok, tl);
		t[tl] = '\0';
		memcpy(v, s, vlen);
		if (tl) {
			check_list_has(s, size, el, nel, t);
			nel = ref_split(v, vlen, el);
			check_list_has(v, vlen, el, nel, t);
		}
		free(t);
		free(v);
	}
	free(el);
	return 0;
}
