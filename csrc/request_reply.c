/* request_reply.c: what an HTTP request writes. The answer, queued by
 * request_respond (status, "Name: value" lines, a copied body) and
 * written from HTTP_WRITEABLE: the head through lws's header helpers plus
 * our Date, then the body in 64 KiB pieces; a 100 Continue; and the
 * refusal of a request whose framing is wrong, before there is an object.
 * When the answer is done is request.c's to decide. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http2.h"
#include "request.h"

#define BODY_PIECE 65536

/* Answers before there is a request object (its framing is refused)
 * and drops the connection; returns -1, what the lws callback returns. */
int
request_reply_now(struct lws *wsi, int status, const char *msg)
{
	http_reply(wsi, status, "connection: close\r\n", msg, strlen(msg));
	return -1;
}

/* curl waits 1 s for this before sending a body (docs/libwebsockets-4.1.md §1.2) */
void
request_continue(struct lws *wsi)
{
	static unsigned char cont[LWS_PRE + 32];
	static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (http2_stream(wsi))
		/* an h2 peer sends its body without waiting (RFC 9113 8.5):
		 * a raw status line would corrupt the connection */
		return;

	memcpy(cont + LWS_PRE, msg, sizeof(msg) - 1);
	lws_write(wsi, cont + LWS_PRE, sizeof(msg) - 1, LWS_WRITE_HTTP_HEADERS);
}

/* Queue the answer; it is written from HTTP_WRITEABLE. Copies body. */
int
request_respond(struct request *r, int status, const char *headers, const char *body,
		size_t blen)
{
	if (r->state != REQ_WAITING || !r->wsi)
		return -1;
	r->status = status;
	free(r->hdrs);
	r->hdrs = headers ? strdup(headers) : NULL;
	r->body = malloc(LWS_PRE + blen + 1);
	if (!r->body)
		return -1;
	memcpy(r->body + LWS_PRE, body, blen);
	r->body_len = blen;
	r->body_off = 0;
	r->state = REQ_RESPONDING;
	lws_set_timer_usecs(r->wsi, LWS_SET_TIMER_USEC_CANCEL);
	lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, 30);   /* to write it */
	lws_callback_on_writable(r->wsi);
	return 0;
}

/* Does a "Name: value\r\n" line of hdrs name this field? */
static int
has_header(const char *hdrs, const char *name)
{
	size_t n = strlen(name);
	const char *p = hdrs;

	while (p && *p) {
		if (!strncasecmp(p, name, n) && p[n] == ':')
			return 1;
		p = strstr(p, "\r\n");
		if (p)
			p += 2;
	}
	return 0;
}

/* HTTP_WRITEABLE while responding: headers first, then the body in
 * pieces. Returns 1 once all of it is written, 0 if more is to come (the
 * next HTTP_WRITEABLE is asked for), -1 to close the connection. */
int
request_write(struct request *r)
{
	struct lws *wsi = r->wsi;
	int h2 = http2_stream(wsi);

	if (!r->headers_sent) {
		/* HPACK never takes more room than the lines do (and lws
		 * checks end) */
		size_t hl = r->hdrs ? strlen(r->hdrs) : 0, cap = LWS_PRE + 1024 + hl;
		unsigned char *buf = malloc(cap), *start, *p, *end;
		int n, bodyless;

		if (!buf)
			return -1;
		start = p = buf + LWS_PRE;
		end = buf + cap - 1;
		if (lws_add_http_header_status(wsi, (unsigned)r->status, &p, end) ||
		    (!has_header(r->hdrs, "content-type") &&
		     lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
						  (unsigned char *)"text/plain; charset=utf-8", 25,
						  &p, end)) ||
		    (r->status != 304 && r->status >= 200 &&
		     lws_add_http_header_content_length(wsi, r->body_len, &p, end))) {
			free(buf);
			return -1;
		}
		if ((!has_header(r->hdrs, "date") && http2_add_lines(wsi, http_date_line(NULL), &p, end)) ||
		    http2_add_lines(wsi, r->hdrs, &p, end) ||   /* RFC 9110 6.6.1: every response */
		    (r->close_after && !h2 &&
		     http2_add_lines(wsi, "connection: close\r\n", &p, end))) {
			free(buf);
			return -1;
		}
		if (lws_finalize_http_header(wsi, &p, end)) {
			free(buf);
			return -1;
		}
		bodyless = r->head || !r->body_len || r->status == 304;
		/* on h2 a reply without a body ends its stream with its
		 * HEADERS frame */
		n = lws_write(wsi, start, (size_t)(p - start),
			      LWS_WRITE_HTTP_HEADERS | (h2 && bodyless ? LWS_WRITE_H2_STREAM_END : 0));
		free(buf);
		if (n < 0)
			return -1;
		r->headers_sent = 1;
		if (bodyless) {
			r->body_len = 0;
		} else {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	if (r->body_off < r->body_len) {
		size_t n = r->body_len - r->body_off;
		int final;

		if (n > BODY_PIECE)
			n = BODY_PIECE;
		/* h2: within the peer's window and frame size; 0 waits for
		 * its WINDOW_UPDATE, which asks for this callback again */
		n = http2_piece(wsi, n);
		if (!n)
			return 0;
		final = r->body_off + n == r->body_len;
		/* lws_write needs LWS_PRE writable bytes before what it sends: for
		 * a later piece those are the tail of the previous one, already
		 * written, so they may be overwritten */
		if (lws_write(wsi, (unsigned char *)r->body + LWS_PRE + r->body_off, n,
			      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
			return -1;
		r->body_off += n;
		if (!final) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	return 1;
}
