/* http_head.c: the HTTP/1.1 heads we write ourselves, in one place: the
 * Date line (RFC 9110 6.6.1, formatted once a second) and whole small
 * replies with our own status line (server refusals, request errors).
 * Used by csrc/server.c and csrc/request_reply.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "http2.h"

const char *
http_date_line(size_t *len)
{
	static char line[64];
	static size_t n;
	static time_t at = -1;
	time_t now = time(NULL);

	if (now != at) {
		struct tm tm;

		gmtime_r(&now, &tm);
		n = strftime(line, sizeof(line), "date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		at = now;
	}
	if (len)
		*len = n;
	return line;
}

static const char *
status_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 301: return "Moved Permanently";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Server Error";
	}
}

/* Writes a complete small HTTP response from any callback (lws buffers
 * what the kernel does not take). extra: "name: value\r\n" lines or NULL.
 * Our own status line: lws_add_http_header_status() says "HTTP/1.0" until
 * lws_http_action() has read the request's version, which an upgrade
 * refusal (HTTP_CONFIRM_UPGRADE) comes before. On an h2 stream (csrc/http2.c)
 * lws writes the head as HPACK fields, without the connection-specific
 * lines of extra. */
int
http_reply(struct lws *wsi, int status, const char *extra, const char *body,
		  size_t blen)
{
	unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
		*end = buf + sizeof(buf) - 1;
	int n, h2 = http2_stream(wsi);

	if (h2) {
		/* lws writes :status (HPACK) on an h2 stream */
		if (lws_add_http_header_status(wsi, (unsigned)status, &p, end))
			return -1;
	} else {
		n = snprintf((char *)p, (size_t)(end - p), "HTTP/1.1 %d %s\r\n", status,
			     status_reason(status));
		if (n < 0 || n >= end - p)
			return -1;
		p += n;
	}
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (unsigned char *)"text/plain; charset=utf-8", 25, &p,
					 end) ||
	    lws_add_http_header_content_length(wsi, blen, &p, end) ||
	    http2_add_lines(wsi, http_date_line(NULL), &p, end) || http2_add_lines(wsi, extra, &p, end) ||
	    lws_finalize_http_header(wsi, &p, end))
		return -1;
	if (lws_write(wsi, start, (size_t)(p - start),
		      LWS_WRITE_HTTP_HEADERS | (h2 && !blen ? LWS_WRITE_H2_STREAM_END : 0)) < 0)
		return -1;
	if (blen) {
		unsigned char *b = malloc(LWS_PRE + blen);

		if (!b)
			return -1;
		memcpy(b + LWS_PRE, body, blen);
		/* small texts: within any peer's first window (65,535) and
		 * lws's frame size */
		n = lws_write(wsi, b + LWS_PRE, blen, LWS_WRITE_HTTP_FINAL);
		free(b);
		if (n < 0)
			return -1;
	}
	return 0;
}


/* Our answer to an accepted WebSocket upgrade (RFC 6455 4.2.2), written
 * raw: from here on the connection's frames are ours (csrc/conn.c).
 * key: the client's Sec-WebSocket-Key; protocol, extensions: the values
 * chosen, or NULL; extra: "name: value\r\n" lines from the upgrade hook */
int
http_switching(struct lws *wsi, const char *key, const char *protocol, const char *extensions,
	       const char *extra)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char joined[64 + sizeof(guid)], accept[32];
	unsigned char sha[20], *buf, *p;
	size_t klen = strlen(key), dlen, cap;
	const char *date = http_date_line(&dlen);
	int n;

	if (klen > 64)
		return -1;
	memcpy(joined, key, klen);
	memcpy(joined + klen, guid, sizeof(guid) - 1);
	lws_SHA1((unsigned char *)joined, klen + sizeof(guid) - 1, sha);
	if (lws_b64_encode_string((char *)sha, 20, accept, sizeof(accept)) < 0)
		return -1;
	cap = 256 + dlen + (protocol ? strlen(protocol) : 0) +
	      (extensions ? strlen(extensions) : 0) + (extra ? strlen(extra) : 0);
	buf = malloc(LWS_PRE + cap);
	if (!buf)
		return -1;
	p = buf + LWS_PRE;
	n = snprintf((char *)p, cap,
		     "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
		     "connection: Upgrade\r\nsec-websocket-accept: %s\r\n%s%s%s%s%s%s%s%s\r\n",
		     accept, protocol ? "sec-websocket-protocol: " : "", protocol ? protocol : "",
		     protocol ? "\r\n" : "", extensions ? "sec-websocket-extensions: " : "",
		     extensions ? extensions : "", extensions ? "\r\n" : "", extra ? extra : "",
		     date);
	if (n < 0 || (size_t)n >= cap) {
		free(buf);
		return -1;
	}
	n = lws_write(wsi, p, (size_t)n, LWS_WRITE_RAW) < n ? -1 : 0;
	free(buf);
	return n;
}

/* A copy of a request header (its lines joined by lws with ","),
 * NUL-terminated, its length in *plen if asked; NULL if absent or empty */
char *
http_hdr_dup(struct lws *wsi, enum lws_token_indexes t, int *plen)
{
	int n = lws_hdr_total_length(wsi, t);
	char *b;

	if (n <= 0)
		return NULL;
	b = malloc((size_t)n + 1);
	if (!b)
		return NULL;
	n = lws_hdr_copy(wsi, b, n + 1, t);
	if (n < 0) {
		free(b);
		return NULL;
	}
	b[n] = '\0';
	if (plen)
		*plen = n;
	return b;
}
