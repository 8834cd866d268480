/* proto.c: the RFC 6455 and RFC 7230 checks lws 4.1.6 leaves to us
 * (UTF-8 of text and close reasons, close payload rules, handshake key
 * and token lists). Pure functions: the fuzzers in fuzz/ drive them. */
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
