/* http2.c: what HTTP/2 (`http2 = true`, TLS servers only) changes for our
 * HTTP code, in one place: the vhost's ALPN and SETTINGS, how a reply's
 * head and body go out on an h2 stream, and refusing lws's own WebSocket
 * over HTTP/2. csrc/http_head.c, csrc/request_reply.c, csrc/request.c
 * and csrc/server.c call it; docs/http2.md says what we rely on in
 * libwebsockets 4.1.6's h2 code and why.
 *
 * On an h2 stream lws turns what we write into frames: LWS_WRITE_HTTP_HEADERS
 * becomes one HEADERS frame (HPACK-encoded: every field must go through
 * lws_add_http_header_*), LWS_WRITE_HTTP one DATA frame, and END_STREAM is
 * set by LWS_WRITE_HTTP_FINAL, LWS_WRITE_H2_STREAM_END or when the
 * content-length we declared is used up. lws does not split a DATA frame
 * to the peer's window or frame size (roles/h2/http2.c lws_h2_frame_write
 * writes what it is given): http2_piece sizes every DATA write. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"
#include "http2.h"

/* RFC 9113 4.2: SETTINGS_MAX_FRAME_SIZE is at least this, so a DATA frame
 * of this size is always allowed */
#define H2_MIN_MAX_FRAME 16384

int
http2_stream(struct lws *wsi)
{
	/* an h2 stream's network wsi is the connection's; an HTTP/1.1
	 * wsi is its own */
	return wsi && lws_get_network_wsi(wsi) != wsi;
}

/* The vhost of an http2 server offers h2 first. lws 4.1.6 keeps the
 * pointer (a literal lives long enough). http2_settings[1..5] replace
 * lws's stock SETTINGS (roles/h2/ops-h2.c rops_init_vhost_h2 copies only
 * those five; SETTINGS_ENABLE_CONNECT_PROTOCOL stays lws's 1). */
void
http2_vhost_info(struct lws_context_creation_info *info)
{
	info->alpn = "h2,http/1.1";
	info->http2_settings[0] = 1;
	/* the others are lws's stock values (roles/h2/ops-h2.c
	 * lws_h2_stock_settings) */
	info->http2_settings[H2SET_HEADER_TABLE_SIZE] = 65536;
	info->http2_settings[H2SET_ENABLE_PUSH] = 0;
	/* lws's stock 24 streams is less than a page with many assets and
	 * WebSockets opens at once; 128 is what common servers allow */
	info->http2_settings[H2SET_MAX_CONCURRENT_STREAMS] = 128;
	/* 0: lws grants the peer's window with explicit WINDOW_UPDATEs as it
	 * reads (lws's stock value, roles/h2/ops-h2.c lws_h2_stock_settings) */
	info->http2_settings[H2SET_INITIAL_WINDOW_SIZE] = 0;
	info->http2_settings[H2SET_MAX_FRAME_SIZE] = H2_MIN_MAX_FRAME;
}

/* How many of want bytes the next DATA write may carry: on HTTP/1.1 all
 * of them; on h2 no more than the peer's flow-control window (stream and
 * connection, lws_get_peer_write_allowance) and the smallest frame size a
 * peer may set. 0: wait, lws asks for a writeable callback on every child
 * stream when a WINDOW_UPDATE arrives (roles/h2/http2.c). */
size_t
http2_piece(struct lws *wsi, size_t want)
{
	lws_fileofs_t allow;

	if (!http2_stream(wsi))
		return want;
	allow = lws_get_peer_write_allowance(wsi);
	if (allow < 0)   /* no flow control on this wsi */
		allow = H2_MIN_MAX_FRAME;
	if (want > H2_MIN_MAX_FRAME)
		want = H2_MIN_MAX_FRAME;
	if ((lws_fileofs_t)want > allow)
		want = allow > 0 ? (size_t)allow : 0;
	return want;
}

/* RFC 9113 8.2.2: fields that are about one HTTP/1.1 connection are
 * malformed in HTTP/2 (a peer resets the stream) */
static int
connection_specific(const char *name, size_t n)
{
	static const char *const names[] = {
		"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", NULL
	};
	int i;

	for (i = 0; names[i]; i++)
		if (strlen(names[i]) == n && !strncasecmp(name, names[i], n))
			return 1;
	return 0;
}

/* Adds "Name: value\r\n" lines to a head being built at *p: on HTTP/1.1
 * copied as they are (byte-exact with what we always wrote), on h2 one
 * HPACK field each, the name lower-cased (RFC 9113 8.2.1) and the
 * connection-specific ones left out. Returns nonzero if they do not fit. */
int
http2_add_lines(struct lws *wsi, const char *lines, unsigned char **p, unsigned char *end)
{
	const char *l = lines;

	if (!lines || !*lines)
		return 0;
	if (!http2_stream(wsi)) {
		size_t n = strlen(lines);

		if ((size_t)(end - *p) < n)
			return 1;
		memcpy(*p, lines, n);
		*p += n;
		return 0;
	}
	while (*l) {
		const char *eol = strstr(l, "\r\n"), *colon = memchr(l, ':', eol ? (size_t)(eol - l) : strlen(l)),
			   *v;
		char name[128];
		size_t nl, vl, i;

		if (!eol)
			eol = l + strlen(l);
		if (!colon || colon == l || (size_t)(colon - l) >= sizeof(name) - 1)
			return 1;   /* the Lua layer only builds "Name: value" lines */
		nl = (size_t)(colon - l);
		for (i = 0; i < nl; i++)
			name[i] = (char)tolower((unsigned char)l[i]);
		name[nl] = ':';
		name[nl + 1] = '\0';
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		vl = (size_t)(eol - v);
		if (!connection_specific(name, nl) &&
		    lws_add_http_header_by_name(wsi, (const unsigned char *)name,
						(const unsigned char *)v, (int)vl, p, end))
			return 1;
		l = *eol ? eol + 2 : eol;
	}
	return 0;
}

/* An extended CONNECT (:protocol websocket, RFC 8441). lws 4.1.6 sends
 * SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 on every h2 connection and takes
 * such a stream into its own ws role (roles/h2/ops-h2.c
 * rops_check_upgrades_h2) before any callback of ours. Our WebSocket code
 * never runs on lws's ws role (its ws-over-h2 writes ignore the stream's
 * flow-control window, docs/http2.md), so the stream is closed with 1008
 * as soon as it is open.
 *
 * Not refused earlier, in LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION (an
 * HTTP status there would be the better answer): lws has allocated the
 * stream's ws state by then and frees it only with the ws role, which a
 * stream refused there never gets (roles/ws/server-ws.c
 * lws_process_ws_upgrade2, roles/ws/ops-ws.c rops_destroy_role_ws): each
 * refusal would leak it (LeakSanitizer: 224 bytes).
 *
 * LWS_CALLBACK_ESTABLISHED of an h2 stream: returns -1 (lws sends the
 * Close, then ends the stream). */
int
http2_refuse_ws(struct lws *wsi)
{
	static const char why[] = "WebSockets over HTTP/2 are not served";

	lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why,
			 sizeof(why) - 1);
	return -1;
}
