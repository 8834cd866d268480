/* proto.h: pure RFC 6455 checks with no lws or Lua in them, so the fuzz
 * harnesses in fuzz/ can drive them directly. */
#ifndef LWS_LUA_PROTO_H
#define LWS_LUA_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* internal to core.so (see core.h) */
#pragma GCC visibility push(hidden)

/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). *state starts at 0; returns 0 while valid,
 * -1 at the first invalid byte. A message is complete only if state is 0. */
#define UTF8_ACCEPT 0u
int proto_utf8_step(uint32_t *state, const unsigned char *p, size_t len);
int proto_utf8_valid(const unsigned char *p, size_t len);

/* Sec-WebSocket-Key: 22 base64 characters then "==" (16 random bytes). */
int proto_key_valid(const char *key, size_t len);

/* Close payload received from the peer. Returns 0 and fills *code (1005
 * when empty) if acceptable, else the close code we must fail with
 * (1002 protocol error, 1007 reason not UTF-8). */
int proto_close_payload(const unsigned char *p, size_t len, uint16_t *code);

/* Codes an endpoint may put on the wire (RFC 6455 7.4, IANA registry). */
int proto_close_code_sendable(unsigned code);

/* Is the comma-separated header value a list of RFC 7230 tokens?
 * Calls fn for each token (start, length) when it is. Returns the number
 * of tokens, or -1 if malformed. */
int proto_token_list(const char *s, size_t len,
		     void (*fn)(void *ud, const char *tok, size_t n), void *ud);

/* Does the comma-separated list contain tok (case-insensitive)? */
int proto_list_has(const char *s, size_t len, const char *tok);

/* Base64 of SHA-1 is done by lws; these helpers only parse. */
#pragma GCC visibility pop

#endif
