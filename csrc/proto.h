/* proto.h: pure RFC 6455 checks and HTTP/1.1 request framing (RFC 9112)
 * with no lws or Lua in them, so the fuzz harnesses in fuzz/ can drive
 * them directly. */
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

/* ---- HTTP/1.1 request framing (RFC 9112 6, 7.1) ---- */

/* A Content-Length value as lws hands it over (repeated header lines
 * joined with ","): one or more 1*DIGIT elements with optional SP/HTAB
 * around them, all the same number (RFC 9110 8.6). Returns 0 and sets
 * *out, or -1 (no digits, another character, differing values, or a
 * number over 2^62). */
int proto_content_length(const char *s, size_t len, uint64_t *out);

/* A Transfer-Encoding value: PROTO_TE_CHUNKED when it is exactly the
 * chunked coding (case-insensitive, OWS around it); PROTO_TE_BAD for a
 * malformed list or chunked applied twice (400); PROTO_TE_UNSUPPORTED
 * when any other coding is listed, or chunked has parameters (501). */
enum { PROTO_TE_CHUNKED = 0, PROTO_TE_BAD = -1, PROTO_TE_UNSUPPORTED = -2 };
int proto_transfer_encoding(const char *s, size_t len);

/* Incremental decoder of a chunked body (RFC 9112 7.1): chunk sizes in
 * hex with optional extensions, CRLF after each line and each chunk's
 * data, a last chunk of size 0, trailer field lines (read and dropped),
 * then an empty line. Input may be split anywhere. Strict: every line
 * ends in CRLF, no bare LF, no whitespace before the size, no control
 * characters in extensions or trailers. */
#define PROTO_CHUNKED_LINE_MAX 4096      /* a size line with its extensions */
#define PROTO_CHUNKED_TRAILER_MAX 16384  /* the whole trailer section */
enum { PROTO_CHUNKED_MORE = 0, PROTO_CHUNKED_DONE = 1, PROTO_CHUNKED_BAD = -1,
       PROTO_CHUNKED_TOO_BIG = -2 };

struct proto_chunked {
	uint64_t size;       /* the chunk size being read, then its bytes still to come */
	uint64_t total;      /* chunk data so far, all chunks */
	uint32_t line;       /* bytes of the current size line / trailer section */
	uint8_t state;
};

void proto_chunked_init(struct proto_chunked *c);

/* Decodes in[0..len) into out (room for len bytes; out may equal in: data
 * only ever moves towards the front). Sets *out_len to the data bytes
 * written and *used to the input bytes consumed: len, except with DONE,
 * where the bytes after the body's final CRLF are not consumed.
 * Returns MORE (the body goes on), DONE (complete), BAD (malformed: 400)
 * or TOO_BIG (the data would pass max bytes in all: 413, detected on the
 * size line before any of that chunk's data). BAD and TOO_BIG stick:
 * later calls return them again and consume nothing. */
int proto_chunked_decode(struct proto_chunked *c, const unsigned char *in, size_t len,
			 unsigned char *out, size_t *out_len, size_t *used, uint64_t max);


/* ---- WebSocket frames (RFC 6455 5), csrc/frame.c ---- */

/* What the parser hands on, in wire order. data: a piece of a data
 * message, unmasked in place (first/final: of the whole message, so an
 * empty final frame still arrives with n 0; remain: bytes of this frame
 * still to come). control: a whole Close/Ping/Pong (opcode 8/9/10).
 * error: the peer broke the protocol, with the close code to fail with.
 * data and control return nonzero to stop the parser. */
struct frame_sink {
	int (*data)(void *ud, unsigned char *p, size_t n, int first, int final, int binary,
		    int compressed, uint64_t remain);
	int (*control)(void *ud, unsigned opcode, const unsigned char *p, size_t n);
	void (*error)(void *ud, uint16_t code, const char *msg);
};

struct frame_rx {
	uint64_t remain;         /* payload bytes of this frame still to come */
	uint8_t hdr[14], hlen;   /* the header being read */
	uint8_t state, server, rsv1_ok;
	uint8_t fin, opcode, masked, mask[4], mpos;
	uint8_t in_msg, first, msg_binary, msg_compressed;
	uint8_t ctl_len;
	/* a control frame's payload: where it lies whole in the caller's
	 * buffer, or ctl_buf, allocated the first time one comes in pieces
	 * (an idle connection carries no 125-byte buffer) */
	const unsigned char *ctl;
	unsigned char *ctl_buf;
};

/* server: frames must be masked (else masked frames are refused);
 * rsv1_ok: permessage-deflate was negotiated */
void frame_rx_init(struct frame_rx *f, int server, int rsv1_ok);
void frame_rx_free(struct frame_rx *f);   /* what the parser allocated */
#define FRAME_DEAD 2   /* frame_rx.state after an error */
/* Feeds in[0..len) (unmasked in place). Returns 0, or -1 once error was
 * called or a sink callback asked to stop; after an error the parser
 * stays failed. */
int frame_parse(struct frame_rx *f, unsigned char *in, size_t len, const struct frame_sink *s,
		void *ud);
/* Writes an unmasked frame header to out (room for 10 bytes); returns
 * its length */
size_t frame_header(unsigned char *out, int fin, int rsv1, unsigned opcode, uint64_t len);
#define FRAME_HEADER_MAX 10
/* XORs p[0..n) with the masking key, starting at key byte pos & 3 */
void frame_mask(unsigned char *p, size_t n, const unsigned char key[4], unsigned pos);


/* ---- permessage-deflate (RFC 7692), csrc/deflate.c ---- */

/* The server's answer to a Sec-WebSocket-Extensions header: the first
 * permessage-deflate offer we can honour. no_context: we reset our
 * compressor per message (asked by the client, or configured); bits: our
 * window (server_max_window_bits, 9..15); text: the answer's value */
struct pmd_answer {
	uint8_t no_context;
	int8_t bits;
	size_t len;
	char text[128];
};
/* Returns 0 with *a filled, or -1: no offer we take */
int pmd_negotiate(const char *offers, size_t len, int no_context, struct pmd_answer *a);

struct pmd;   /* one connection's compressor and decompressor */
struct pmd *pmd_new(const struct pmd_answer *a, int level, int mem_level);
void pmd_free(struct pmd *z);
/* One whole message compressed (the 00 00 ff ff tail taken off) into a new
 * buffer with headroom bytes free before it: *out (free it), *olen bytes
 * after the headroom. Returns 0 or -1 (no memory). */
int pmd_compress(struct pmd *z, const unsigned char *in, size_t len, size_t headroom,
		 unsigned char **out, size_t *olen);
/* Feeds a compressed message's piece (final: its last) and hands what it
 * inflates to sink, 16 KiB at a time; sink returns nonzero to stop.
 * Returns 0, PMD_BAD (not deflate data), PMD_NOMEM or PMD_STOP. */
enum { PMD_BAD = -1, PMD_NOMEM = -2, PMD_STOP = -3 };
int pmd_inflate(struct pmd *z, const unsigned char *in, size_t len, int final,
		int (*sink)(void *ud, const unsigned char *p, size_t n), void *ud);

#pragma GCC visibility pop

#endif
