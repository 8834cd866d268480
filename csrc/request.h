/* request.h: struct request, one HTTP transaction, and what its three
 * files share: request.c (the lws.request object and its lifetime),
 * request_body.c (framing and reading the body), request_reply.c
 * (writing the answer). No other file includes it: a server holds a
 * request only through the request_* functions in core.h. */
#ifndef LWS_LUA_REQUEST_H
#define LWS_LUA_REQUEST_H

#include "core.h"

#pragma GCC visibility push(hidden)

enum req_state { REQ_BODY, REQ_WAITING, REQ_RESPONDING, REQ_DONE, REQ_CLOSED };

struct request {
	int kind;                     /* KIND_REQUEST */
	struct ctx *ctx;
	const struct request_owner *owner;
	struct lws *wsi;              /* NULL once answered or closed */
	int self_ref;                 /* pinned while the transaction lives */
	int req_ref;                  /* the Lua request table */
	uint8_t state;
	uint8_t head;                 /* HEAD: headers only */
	uint8_t headers_sent;
	uint8_t close_after;          /* "connection: close" and hang up */
	uint8_t chunked;              /* the body is being read through ck */
	uint8_t fix_pending;          /* request_fix_timeout is scheduled */
	uint8_t h2;                   /* on an h2 stream (csrc/http2.c) */
	uint8_t h2_counted;           /* in *owner->h2_in_flight until released */
	int status;
	int timeout_s;
	char *hdrs;                   /* "Name: value\r\n" lines */
	char *body;                   /* LWS_PRE headroom, then body_len bytes */
	size_t body_len, body_off;
	char *rbody;                  /* request body being read */
	size_t rbody_len, rbody_cap, max_body;
	struct proto_chunked ck;      /* Transfer-Encoding: chunked decoder */
};

/* request_body.c */
int request_takes_chunked(int method);   /* lws reads a body without Content-Length */
int request_framing(struct lws *wsi, int method, lua_Integer *clen, int *chunked);
enum { BODY_MORE, BODY_DONE, BODY_TOO_BIG, BODY_MALFORMED, BODY_NOMEM };
int request_body_take(struct request *r, const void *in, size_t len);

/* request_reply.c */
int request_reply_now(struct lws *wsi, int status, const char *msg);
void request_continue(struct lws *wsi);
int request_respond(struct request *r, int status, const char *headers, const char *body,
		    size_t blen);
int request_write(struct request *r);

#pragma GCC visibility pop

#endif
