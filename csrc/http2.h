/* http2.h: csrc/http2.c, what HTTP/2 changes for our HTTP code */
#ifndef LWS_LUA_HTTP2_H
#define LWS_LUA_HTTP2_H

#include "core.h"

#pragma GCC visibility push(hidden)

/* is wsi an h2 stream (not an HTTP/1.1 connection)? */
int http2_stream(struct lws *wsi);
/* ALPN "h2,http/1.1" and our SETTINGS, for an http2 server's vhost */
void http2_vhost_info(struct lws_context_creation_info *info);
/* how many of want bytes the next DATA write may carry (0: wait) */
size_t http2_piece(struct lws *wsi, size_t want);
/* "Name: value\r\n" lines into a head: copied on HTTP/1.1, HPACK on h2 */
int http2_add_lines(struct lws *wsi, const char *lines, unsigned char **p, unsigned char *end);
/* LWS_CALLBACK_ESTABLISHED of lws's own ws-over-h2: closed with 1008 */
int http2_refuse_ws(struct lws *wsi);

#pragma GCC visibility pop

#endif
