/* proto.c: the RFC 6455 and RFC 7230 checks lws 4.1.6 leaves to us
 * (UTF-8 of text and close reasons, close payload rules, handshake key
 * and token lists), and HTTP/1.1 request framing (Content-Length,
 * Transfer-Encoding, the chunked decoder). Pure functions: the fuzzers in
 * fuzz/ drive them. */
#include <string.h>
#include <strings.h>

#include "proto.h"

/* Bjoern Hoehrmann-style DFA, written out as explicit ranges so each
 * rejection reason is visible: state = bytes still expected, plus the
 * allowed range of the next continuation byte. */
enum { U_ANY = 0, U_C1, U_C2, U_C3, U_E0, U_ED, U_F0, U_F4 };

int
proto_utf8_step(uint32_t *state, const unsigned char *p, size_t len)
{
	uint32_t s = *state;
	size_t i = 0;

	if (s > U_F4)
		return -1;   /* already failed */
	while (i < len) {
		unsigned char c = p[i];

		if (s == U_ANY) {
			/* fast path for ASCII runs, 8 bytes at a time */
			while (i + 8 <= len) {
				uint64_t w;
				memcpy(&w, p + i, 8);
				if (w & 0x8080808080808080ull)
					break;
				i += 8;
			}
			if (i >= len)
				break;
			c = p[i];
			if (c < 0x80)
				s = U_ANY;
			else if (c >= 0xc2 && c <= 0xdf)
				s = U_C1;
			else if (c == 0xe0)
				s = U_E0;
			else if (c == 0xed)
				s = U_ED;   /* excludes UTF-16 surrogates */
			else if (c >= 0xe1 && c <= 0xef)
				s = U_C2;
			else if (c == 0xf0)
				s = U_F0;
			else if (c >= 0xf1 && c <= 0xf3)
				s = U_C3;
			else if (c == 0xf4)
				s = U_F4;   /* nothing above U+10FFFF */
			else
				goto bad;
			i++;
			continue;
		}
		switch (s) {
		case U_E0:
			if (c < 0xa0 || c > 0xbf) goto bad;
			s = U_C1;
			break;
		case U_ED:
			if (c < 0x80 || c > 0x9f) goto bad;
			s = U_C1;
			break;
		case U_F0:
			if (c < 0x90 || c > 0xbf) goto bad;
			s = U_C2;
			break;
		case U_F4:
			if (c < 0x80 || c > 0x8f) goto bad;
			s = U_C2;
			break;
		default:
			if ((c & 0xc0) != 0x80) goto bad;
			s = s - 1;  /* U_C3 -> U_C2 -> U_C1 -> U_ANY */
			break;
		}
		i++;
	}
	*state = s;
	return 0;
bad:
	*state = 0xff;
	return -1;
}

int
proto_utf8_valid(const unsigned char *p, size_t len)
{
	uint32_t s = UTF8_ACCEPT;

	return !proto_utf8_step(&s, p, len) && s == UTF8_ACCEPT;
}

static int
b64char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int
proto_key_valid(const char *key, size_t len)
{
	size_t i;

	if (!key || len != 24 || key[22] != '=' || key[23] != '=')
		return 0;
	for (i = 0; i < 22; i++)
		if (!b64char((unsigned char)key[i]))
			return 0;
	/* the last character before "==" carries only 2 bits: A, Q, g or w */
	return strchr("AQgw", key[21]) != NULL;
}

int
proto_close_code_sendable(unsigned code)
{
	if (code >= 3000 && code <= 4999)
		return 1;
	/* 1004-1006 and 1015 are reserved and must never be sent */
	return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 &&
	       code != 1006;
}

int
proto_close_payload(const unsigned char *p, size_t len, uint16_t *code)
{
	unsigned c;

	if (len == 0) {
		*code = 1005;  /* no status received */
		return 0;
	}
	if (len == 1 || len > 125)
		return 1002;
	c = (unsigned)p[0] << 8 | p[1];
	if (!proto_close_code_sendable(c))
		return 1002;
	if (!proto_utf8_valid(p + 2, len - 2))
		return 1007;
	*code = (uint16_t)c;
	return 0;
}

static int
tchar(unsigned char c)
{
	/* RFC 7230 3.2.6 token characters */
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int
proto_token_list(const char *s, size_t len,
		 void (*fn)(void *ud, const char *tok, size_t n), void *ud)
{
	size_t i = 0;
	int count = 0;

	/* validate first: fn only ever sees the tokens of a good list */
	if (fn && proto_token_list(s, len, NULL, NULL) < 0)
		return -1;
	for (;;) {
		size_t start, end;

		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		start = i;
		while (i < len && tchar((unsigned char)s[i]))
			i++;
		end = i;
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (end == start)
			return -1;   /* empty element or a non-token character */
		if (fn)
			fn(ud, s + start, end - start);
		count++;
		if (i == len)
			return count;
		if (s[i] != ',')
			return -1;
		i++;
	}
}

int
proto_list_has(const char *s, size_t len, const char *tok)
{
	size_t tl = strlen(tok), i = 0;

	if (!tl)
		return 0;
	while (i < len) {
		size_t start, end;

		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
			i++;
		start = i;
		while (i < len && s[i] != ',')
			i++;
		end = i;
		while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
			end--;
		if (end - start == tl && !strncasecmp(s + start, tok, tl))
			return 1;
	}
	return 0;
}

/* ---- HTTP/1.1 request framing --------------------------------------- */

static int
ows(char c)
{
	return c == ' ' || c == '\t';
}

int
proto_content_length(const char *s, size_t len, uint64_t *out)
{
	uint64_t first = 0;
	size_t i = 0;
	int n = 0;

	for (;;) {
		uint64_t v = 0;
		size_t digits = 0;

		while (i < len && ows(s[i]))
			i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			uint64_t d = (uint64_t)(s[i] - '0');

			/* nobody sends 4 EiB: refuse before overflow */
			if (v > (((uint64_t)1 << 62) - d) / 10)
				return -1;
			v = v * 10 + d;
			digits++;
			i++;
		}
		while (i < len && ows(s[i]))
			i++;
		if (!digits)
			return -1;
		if (n++ && v != first)
			return -1;   /* "5, 6": two framings, a smuggling attempt */
		first = v;
		if (i == len)
			break;
		if (s[i] != ',')
			return -1;
		i++;
	}
	*out = first;
	return 0;
}

int
proto_transfer_encoding(const char *s, size_t len)
{
	size_t i = 0;
	int chunked = 0, other = 0;

	for (;;) {
		size_t start, end;
		int params = 0;

		while (i < len && ows(s[i]))
			i++;
		start = i;
		while (i < len && tchar((unsigned char)s[i]))
			i++;
		end = i;
		while (i < len && ows(s[i]))
			i++;
		if (end == start)
			return PROTO_TE_BAD;   /* empty element or not a token */
		if (i < len && s[i] == ';') {
			/* transfer-parameters: we implement no coding that has any;
			 * only check that they stay inside this element */
			params = 1;
			while (i < len && s[i] != ',') {
				unsigned char c = (unsigned char)s[i];

				if (c < 0x20 && c != '\t')
					return PROTO_TE_BAD;
				if (c == 0x7f)
					return PROTO_TE_BAD;
				i++;
			}
		}
		if (end - start == 7 && !strncasecmp(s + start, "chunked", 7)) {
			if (chunked++)
				return PROTO_TE_BAD;   /* chunked applied twice */
			if (params)
				other = 1;
		} else {
			other = 1;
		}
		if (i == len)
			break;
		if (s[i] != ',')
			return PROTO_TE_BAD;
		i++;
	}
	return other ? PROTO_TE_UNSUPPORTED : PROTO_TE_CHUNKED;
}

/* decoder states */
enum {
	CK_SIZE0,      /* the first hex digit of a size line */
	CK_SIZE,       /* more hex digits */
	CK_SIZE_WS,    /* BWS after the digits: only ";" may follow */
	CK_EXT,        /* chunk extensions, up to CR */
	CK_SIZE_LF,    /* CR seen on the size line */
	CK_DATA,
	CK_DATA_CR,    /* the CRLF after a chunk's data */
	CK_DATA_LF,
	CK_TRAILER0,   /* the start of a trailer line, or the final CRLF */
	CK_TNAME,      /* a trailer field name */
	CK_TVALUE,     /* after its ":" */
	CK_TRAILER_LF, /* CR seen at the end of a trailer line */
	CK_END_LF,     /* CR of the final empty line */
	CK_DONE,
	CK_BAD,
	CK_BIG
};

void
proto_chunked_init(struct proto_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CK_SIZE0;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* field-value, extension and quoted-string bytes: VCHAR, SP, HTAB, obs-text */
static int
text_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

int
proto_chunked_decode(struct proto_chunked *c, const unsigned char *in, size_t len,
		     unsigned char *out, size_t *out_len, size_t *used, uint64_t max)
{
	size_t i = 0, o = 0;
	int st = c->state;

	*out_len = 0;
	*used = 0;
	if (st == CK_BAD)
		return PROTO_CHUNKED_BAD;
	if (st == CK_BIG)
		return PROTO_CHUNKED_TOO_BIG;
	if (st == CK_DONE)
		return PROTO_CHUNKED_DONE;
	while (i < len) {
		unsigned char ch = in[i];
		int h;

		if (st == CK_DATA) {
			size_t n = len - i;

			if ((uint64_t)n > c->size)
				n = (size_t)c->size;
			memmove(out + o, in + i, n);
			o += n;
			i += n;
			c->size -= n;
			c->total += n;
			if (!c->size)
				st = CK_DATA_CR;
			continue;
		}
		i++;
		if (st <= CK_SIZE_LF) {
			if (++c->line > PROTO_CHUNKED_LINE_MAX)
				goto bad;
		} else if (st >= CK_TRAILER0) {
			if (++c->line > PROTO_CHUNKED_TRAILER_MAX)
				goto bad;
		}
		switch (st) {
		case CK_SIZE0:
		case CK_SIZE:
			h = hexval(ch);
			if (h >= 0) {
				/* would the size, as an exact number, pass what is
				 * left of max? (total never passes max) */
				uint64_t room = max - c->total;

				if ((uint64_t)h > room || c->size > (room - (uint64_t)h) / 16)
					goto big;
				c->size = c->size * 16 + (uint64_t)h;
				st = CK_SIZE;
				break;
			}
			if (st == CK_SIZE0)
				goto bad;
			if (ch == '\r')
				st = CK_SIZE_LF;
			else if (ch == ';')
				st = CK_EXT;
			else if (ows((char)ch))
				st = CK_SIZE_WS;
			else
				goto bad;
			break;
		case CK_SIZE_WS:
			if (ch == ';')
				st = CK_EXT;
			else if (!ows((char)ch))
				goto bad;
			break;
		case CK_EXT:
			if (ch == '\r')
				st = CK_SIZE_LF;
			else if (!text_char(ch))
				goto bad;
			break;
		case CK_SIZE_LF:
			if (ch != '\n')
				goto bad;
			c->line = 0;
			st = c->size ? CK_DATA : CK_TRAILER0;
			break;
		case CK_DATA_CR:
			if (ch != '\r')
				goto bad;
			st = CK_DATA_LF;
			break;
		case CK_DATA_LF:
			if (ch != '\n')
				goto bad;
			st = CK_SIZE0;
			break;
		case CK_TRAILER0:
			if (ch == '\r')
				st = CK_END_LF;
			else if (tchar(ch))
				st = CK_TNAME;
			else
				goto bad;   /* obs-fold, a bare LF, a control character */
			break;
		case CK_TNAME:
			if (ch == ':')
				st = CK_TVALUE;
			else if (!tchar(ch))
				goto bad;
			break;
		case CK_TVALUE:
			if (ch == '\r')
				st = CK_TRAILER_LF;
			else if (!text_char(ch))
				goto bad;
			break;
		case CK_TRAILER_LF:
			if (ch != '\n')
				goto bad;
			st = CK_TRAILER0;
			break;
		case CK_END_LF:
			if (ch != '\n')
				goto bad;
			c->state = CK_DONE;
			*out_len = o;
			*used = i;
			return PROTO_CHUNKED_DONE;
		default:
			goto bad;
		}
	}
	c->state = (uint8_t)st;
	*out_len = o;
	*used = i;
	return PROTO_CHUNKED_MORE;
bad:
	c->state = CK_BAD;
	*out_len = o;
	*used = i;
	return PROTO_CHUNKED_BAD;
big:
	c->state = CK_BIG;
	*out_len = o;
	*used = i;
	return PROTO_CHUNKED_TOO_BIG;
}
