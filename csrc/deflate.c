/* deflate.c: permessage-deflate (RFC 7692) for the connections whose
 * frames are ours (csrc/conn.c): the server's answer to a client's offers,
 * and one connection's zlib streams, created on first use (an idle
 * connection carries none). No lws, no Lua: fuzz/fuzz_pmd.c drives the
 * negotiation directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "proto.h"

struct pmd {
	z_stream tx, rx;
	uint8_t tx_ready, rx_ready;
	uint8_t tx_reset;   /* server_no_context_takeover: a fresh window per message */
	int8_t level, mem_level, bits;
};

/* ---- negotiation (RFC 7692 5, 7.1) ------------------------------------- */

static const char *
skip_ows(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static int
token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* one token at p, or a quoted string (its content); returns its end */
static const char *
read_value(const char *p, const char *end, const char **v, size_t *vlen)
{
	if (p < end && *p == '"') {
		const char *q = ++p;

		while (q < end && *q != '"')
			q++;
		if (q >= end)
			return NULL;
		*v = p;
		*vlen = (size_t)(q - p);
		return q + 1;
	}
	*v = p;
	while (p < end && token_char(*p))
		p++;
	*vlen = (size_t)(p - *v);
	return *vlen ? p : NULL;
}

static int
window_bits(const char *v, size_t n)
{
	/* 8..15 with no leading zero; zlib's deflate cannot keep to an
	 * 8-bit window (it uses 9), so a client asking us for 8 is refused */
	if (n == 1 && v[0] >= '8' && v[0] <= '9')
		return v[0] - '0';
	if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
		return 10 + v[1] - '0';
	return -1;
}

/* One offer "permessage-deflate; p1; p2=v" in [p, end). Returns 0 and
 * fills the answer, or -1 (not ours, or parameters we must refuse). */
static int
one_offer(const char *p, const char *end, int no_context, struct pmd_answer *a)
{
	static const char name[] = "permessage-deflate";
	int seen_snct = 0, seen_cnct = 0, seen_smwb = 0, seen_cmwb = 0, smwb = 15;

	p = skip_ows(p, end);
	if ((size_t)(end - p) < sizeof(name) - 1 || strncasecmp(p, name, sizeof(name) - 1))
		return -1;
	p += sizeof(name) - 1;
	p = skip_ows(p, end);
	if (p < end && *p != ';')
		return -1;   /* a longer extension name */
	while (p < end) {
		const char *k, *v = NULL;
		size_t klen, vlen = 0;

		p = skip_ows(p + 1, end);   /* past ';' */
		k = p;
		while (p < end && token_char(*p))
			p++;
		klen = (size_t)(p - k);
		if (!klen)
			return -1;
		p = skip_ows(p, end);
		if (p < end && *p == '=') {
			p = read_value(skip_ows(p + 1, end), end, &v, &vlen);
			if (!p)
				return -1;
			p = skip_ows(p, end);
		}
		if (p < end && *p != ';')
			return -1;
#define IS(s) (klen == sizeof(s) - 1 && !strncasecmp(k, s, klen))
		if (IS("server_no_context_takeover")) {
			if (seen_snct++ || v)
				return -1;
		} else if (IS("client_no_context_takeover")) {
			if (seen_cnct++ || v)
				return -1;
		} else if (IS("server_max_window_bits")) {
			if (seen_smwb++ || !v || (smwb = window_bits(v, vlen)) < 9)
				return -1;
		} else if (IS("client_max_window_bits")) {
			/* the client may use a smaller window: our inflater's 15 bits
			 * read any, so the value changes nothing for us */
			if (seen_cmwb++ || (v && window_bits(v, vlen) < 8))
				return -1;
		} else {
			return -1;   /* a parameter we do not know */
		}
#undef IS
	}
	a->no_context = (uint8_t)(seen_snct || no_context);
	a->bits = (int8_t)smwb;
	a->len = 0;
	a->text[0] = '\0';
	/* what we answer binds us: say each thing we will keep to */
	a->len = (size_t)snprintf(a->text, sizeof(a->text), "permessage-deflate%s%s",
				  a->no_context ? "; server_no_context_takeover" : "",
				  seen_cnct ? "; client_no_context_takeover" : "");
	if (seen_smwb)
		a->len += (size_t)snprintf(a->text + a->len, sizeof(a->text) - a->len,
					   "; server_max_window_bits=%d", smwb);
	return 0;
}

int
pmd_negotiate(const char *offers, size_t len, int no_context, struct pmd_answer *a)
{
	const char *p = offers, *end = offers + len;

	/* offers in the client's order of preference, comma-separated; a
	 * comma inside a quoted value belongs to the value */
	while (p < end) {
		const char *q = p;
		int quoted = 0;

		while (q < end && (quoted || *q != ',')) {
			if (*q == '"')
				quoted = !quoted;
			q++;
		}
		if (one_offer(p, q, no_context, a) == 0)
			return 0;
		p = q + 1;
	}
	return -1;
}

/* ---- the streams ---------------------------------------------------------- */

struct pmd *
pmd_new(const struct pmd_answer *a, int level, int mem_level)
{
	struct pmd *z = calloc(1, sizeof(*z));

	if (!z)
		return NULL;
	z->tx_reset = a->no_context;
	z->bits = a->bits;
	z->level = (int8_t)level;
	z->mem_level = (int8_t)mem_level;
	return z;
}

void
pmd_free(struct pmd *z)
{
	if (!z)
		return;
	if (z->tx_ready)
		deflateEnd(&z->tx);
	if (z->rx_ready)
		inflateEnd(&z->rx);
	free(z);
}

int
pmd_compress(struct pmd *z, const unsigned char *in, size_t len, size_t headroom,
	     unsigned char **out, size_t *olen)
{
	size_t cap, used = headroom;
	unsigned char *buf;

	if (!z->tx_ready) {
		/* negative window bits: raw deflate, no zlib header or trailer */
		if (deflateInit2(&z->tx, z->level, Z_DEFLATED, -z->bits, z->mem_level,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
		z->tx_ready = 1;
	}
	cap = headroom + deflateBound(&z->tx, len) + 16;
	buf = malloc(cap);
	if (!buf)
		return -1;
	z->tx.next_in = (unsigned char *)in;
	z->tx.avail_in = (uInt)len;
	do {
		int rc;

		if (cap - used < 64) {
			unsigned char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
		z->tx.next_out = buf + used;
		z->tx.avail_out = (uInt)(cap - used);
		rc = deflate(&z->tx, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			free(buf);
			return -1;
		}
		used = cap - z->tx.avail_out;
	} while (z->tx.avail_in || z->tx.avail_out == 0);
	/* a sync flush ends in 00 00 ff ff, which the receiver puts back
	 * (RFC 7692 7.2.1) */
	if (used - headroom >= 4 && !memcmp(buf + used - 4, "\0\0\xff\xff", 4))
		used -= 4;
	/* nothing new since the last flush (an empty message): one empty
	 * stored block's first byte, which the receiver's tail completes
	 * (RFC 7692 7.2.3.6) */
	if (used == headroom)
		buf[used++] = 0;
	if (z->tx_reset)
		deflateReset(&z->tx);
	*out = buf;
	*olen = used - headroom;
	return 0;
}

int
pmd_inflate(struct pmd *z, const unsigned char *in, size_t len, int final,
	    int (*sink)(void *ud, const unsigned char *p, size_t n), void *ud)
{
	static const unsigned char tail[4] = { 0, 0, 0xff, 0xff };
	unsigned char out[16384];
	int pass;

	if (!z->rx_ready) {
		/* 15 bits read what any client window writes; never reset: a
		 * client that keeps its context needs ours kept too */
		if (inflateInit2(&z->rx, -15) != Z_OK)
			return PMD_NOMEM;
		z->rx_ready = 1;
	}
	for (pass = 0; pass < (final ? 2 : 1); pass++) {
		z->rx.next_in = pass ? (unsigned char *)tail : (unsigned char *)in;
		z->rx.avail_in = (uInt)(pass ? 4 : len);
		do {
			int rc;

			z->rx.next_out = out;
			z->rx.avail_out = sizeof(out);
			rc = inflate(&z->rx, Z_SYNC_FLUSH);
			if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR)
				return PMD_BAD;
			if (rc == Z_MEM_ERROR)
				return PMD_NOMEM;
			if (sizeof(out) - z->rx.avail_out &&
			    sink(ud, out, sizeof(out) - z->rx.avail_out))
				return PMD_STOP;
			if (rc == Z_STREAM_END)   /* a BFINAL block: the next one starts afresh */
				inflateReset(&z->rx);
			else if (rc == Z_BUF_ERROR)
				break;   /* no progress possible: all input taken */
		} while (z->rx.avail_out == 0 || z->rx.avail_in);
	}
	return 0;
}
