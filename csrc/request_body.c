/* request_body.c: an HTTP request's framing and its body (RFC 9112 6):
 * Content-Length or Transfer-Encoding: chunked, exactly one Host, the
 * smuggling refusals (a request framed two ways, a disguised framing
 * field name), and the body read into the request under max_body_size,
 * a chunked one decoded here. What to do when it is complete or refused
 * is request.c's.
 *
 * What lws 4.1.6 does with a request body (roles/http/server/server.c
 * lws_http_action, roles/h1/ops-h1.c lws_read_h1): with Content-Length it
 * passes exactly that many bytes to HTTP_BODY, then HTTP_BODY_COMPLETION.
 * It never looks at Transfer-Encoding: a POST, PUT or PATCH without
 * Content-Length is taken to have a 100 MiB body, so every later byte on
 * the connection (chunk framing, trailers, the next pipelined request)
 * arrives raw through HTTP_BODY, and other methods get no body at all (the
 * bytes would be parsed as the next request). So a chunked body is decoded
 * here from HTTP_BODY, and such a connection cannot carry another request:
 * its answer says "connection: close". */
#include <stdlib.h>
#include <string.h>

#include "request.h"

/* Is the header there at all (an empty value counts)? */
static int
hdr_present(struct lws *wsi, enum lws_token_indexes t)
{
	char one[2];

	return lws_hdr_total_length(wsi, t) > 0 ||
	       lws_hdr_copy_fragment(wsi, one, sizeof(one), t, 0) >= 0;
}


/* Methods whose body lws reads without a Content-Length (see the top). */
int
request_takes_chunked(int m)
{
#if defined(LWS_WITH_HTTP_UNCOMMON_HEADERS)
	return m == LWSHUMETH_POST || m == LWSHUMETH_PUT || m == LWSHUMETH_PATCH;
#else
	return m == LWSHUMETH_POST;
#endif
}

/* lws stores a header name it does not recognise as a custom header:
 * "Transfer-Encoding : chunked" or a folded " Transfer-Encoding: chunked"
 * never reach the token lws frames by, but a proxy in front may take them
 * for the real thing. RFC 9112 5.1 and 5.2: 400. (lws 4.1.6 has no way to
 * walk its custom headers: these are the spellings request smuggling
 * scanners try.) */
static int
framing_name_disguised(struct lws *wsi)
{
	static const char *const names[] = {
		"transfer-encoding :", "transfer-encoding\t:", " transfer-encoding:",
		"\ttransfer-encoding:", "transfer-encoding  :", "content-length :",
		"content-length\t:", " content-length:", "\tcontent-length:", NULL
	};
	int i;

	for (i = 0; names[i]; i++)
		if (lws_hdr_custom_length(wsi, names[i], (int)strlen(names[i])) >= 0)
			return 1;
	return 0;
}

/* The request's framing, before anything is read (RFC 9112 6.1, 6.3).
 * Returns 0 with *clen (-1: none) and *chunked, or answers and returns -1.
 * A request framed two ways is refused, never guessed at: a proxy in
 * front may have framed it the other way and hidden a second request in
 * its body. */
int
request_framing(struct lws *wsi, int m, lua_Integer *clen, int *chunked)
{
	char ver[16];
	int has_te = hdr_present(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
	int has_cl = hdr_present(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);

	*clen = -1;
	*chunked = 0;
	/* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host */
	if (lws_hdr_copy(wsi, ver, sizeof(ver), WSI_TOKEN_HTTP) > 0 && !strcmp(ver, "HTTP/1.1")) {
		char one[2];

		if (!hdr_present(wsi, WSI_TOKEN_HOST))
			return request_reply_now(wsi, 400, "missing Host header");
		if (lws_hdr_copy_fragment(wsi, one, sizeof(one), WSI_TOKEN_HOST, 1) >= 0 ||
		    lws_hdr_fragment_length(wsi, WSI_TOKEN_HOST, 1) > 0)
			return request_reply_now(wsi, 400, "more than one Host header");
	}
	if (has_te && has_cl)
		return request_reply_now(wsi, 400, "both Content-Length and Transfer-Encoding");
	if (framing_name_disguised(wsi))
		return request_reply_now(wsi, 400, "whitespace in a Transfer-Encoding or "
			       "Content-Length field name");
	if (has_cl) {
		uint64_t v;
		int n;
		char *cl = http_hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, &n);

		if (!cl)
			return request_reply_now(wsi, 400, "invalid Content-Length");
		n = proto_content_length(cl, (size_t)n, &v);
		free(cl);
		if (n)   /* not digits, or "5, 6" */
			return request_reply_now(wsi, 400, "invalid Content-Length");
		*clen = (lua_Integer)v;
	}
	if (has_te) {
		int n;
		char *te = http_hdr_dup(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, &n);

		n = te ? proto_transfer_encoding(te, (size_t)n) : PROTO_TE_BAD;
		free(te);
		if (n == PROTO_TE_UNSUPPORTED)
			return request_reply_now(wsi, 501, "unsupported Transfer-Encoding (only chunked is)");
		if (n != PROTO_TE_CHUNKED)
			return request_reply_now(wsi, 400, "invalid Transfer-Encoding");
		if (!request_takes_chunked(m))
			return request_reply_now(wsi, 411, "a chunked body needs POST, PUT or PATCH; "
				       "send Content-Length");
		*chunked = 1;
	}
	return 0;
}

static int
body_room(struct request *r, size_t len)
{
	if (r->rbody_len + len > r->rbody_cap) {
		size_t ncap = r->rbody_cap ? r->rbody_cap * 2 : 4096;
		char *nb;

		while (ncap < r->rbody_len + len)
			ncap *= 2;
		nb = realloc(r->rbody, ncap);
		if (!nb)
			return -1;
		r->rbody = nb;
		r->rbody_cap = ncap;
	}
	return 0;
}

/* Takes len bytes of the body being read: BODY_MORE, or what ends it */
int
request_body_take(struct request *r, const void *in, size_t len)
{
	if (r->chunked) {
		size_t out_len, used;
		int rc;

		/* the decoded data is never longer than what came in */
		if (body_room(r, len ? len : 1))
			return BODY_NOMEM;
		rc = proto_chunked_decode(&r->ck, in, len,
					  (unsigned char *)r->rbody + r->rbody_len, &out_len, &used,
					  r->max_body);
		r->rbody_len += out_len;
		switch (rc) {
		case PROTO_CHUNKED_MORE:
			return BODY_MORE;
		case PROTO_CHUNKED_TOO_BIG:
			return BODY_TOO_BIG;
		case PROTO_CHUNKED_DONE:
			/* what follows (len - used bytes) would be a next request:
			 * dropped, this connection closes after the answer */
			return BODY_DONE;
		default:
			return BODY_MALFORMED;
		}
	}
	if (len > r->max_body - r->rbody_len)
		/* a lying Content-Length: refuse while reading */
		return BODY_TOO_BIG;
	if (body_room(r, len))
		return BODY_NOMEM;
	memcpy(r->rbody + r->rbody_len, in, len);
	r->rbody_len += len;
	return BODY_MORE;
}
