/* client.c: outgoing WebSocket connections (lws.conn with is_client).
 * lws connects a raw socket; we write the upgrade request and check the
 * 101 (RFC 6455 4.1), run TLS for wss:// ourselves (csrc/tls_client.c),
 * then the frames are csrc/conn.c's. Owns turning every failure into one
 * "error"(detail, kind, status) event followed by close(1006): lws
 * returns NULL for an unresolvable host without any callback
 * (docs/libwebsockets-4.1.md §2), and we keep OpenSSL's own verdict on a
 * certificate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "core.h"
#include "conn.h"
#include "tls_client.h"

/* Our own opening handshake (RFC 6455 4.1) on lws's raw socket: the
 * state of it, the connection's owner data (csrc/conn.h), freed with the
 * connection. While it connects, verify_failed says why OpenSSL refused
 * the server's certificate, failure what is to be reported. */
#define RESPONSE_MAX 16384   /* the server's 101 and its header lines */

struct client_hs {
	uint8_t done;             /* the handshake is over: the frames are conn.c's */
	uint32_t retry_after;     /* seconds a refusing server asked us to wait */
	char *failure;            /* "kind status detail", until reported */
	char verify_failed[200];  /* OpenSSL's verdict, or "" */
	char accept[32];          /* the Sec-WebSocket-Accept we expect */
	char *offered;            /* the Sec-WebSocket-Protocol we sent, or NULL */
	char *request;            /* not yet written, or NULL */
	size_t request_len;
	size_t resp_len;
	char resp[RESPONSE_MAX];
};

static void
client_hs_free(struct conn *c)
{
	struct client_hs *hs = conn_owner_data(c);

	free(hs->offered);
	free(hs->request);
	free(hs->failure);
	free(hs);
}

static void
client_tls_free(struct ctx *x)
{
	tls_client_ctx_free_all(&x->client_tls);
}

/* The failure is kept as "kind status detail" until it is reported. */
static void
client_failed(struct conn *c, struct ctx *x, char *failure)
{
	struct client_hs *hs = conn_owner_data(c);
	char kind[16] = "connect";
	const char *detail = failure;
	unsigned long status = 0;
	char *sp = strchr(failure, ' '), *end;

	if (sp && (size_t)(sp - failure) < sizeof(kind)) {
		memcpy(kind, failure, (size_t)(sp - failure));
		kind[sp - failure] = '\0';
		status = strtoul(sp + 1, &end, 10);
		detail = *end == ' ' ? end + 1 : end;
	}
	if (conn_event(c, "error") == 0) {
		lua_pushstring(x->L, detail);
		lua_pushstring(x->L, kind);
		if (status)
			lua_pushinteger(x->L, (lua_Integer)status);
		else
			lua_pushnil(x->L);
		if (hs->retry_after)
			lua_pushinteger(x->L, (lua_Integer)hs->retry_after);
		else
			lua_pushnil(x->L);
		core_call(x, 6, 0);
	}
	conn_report_failed(c, detail);
}

static void
connect_failed_deferred(struct ctx *x, void *arg, int arg_ref)
{
	struct conn *c = arg;   /* arg_ref keeps it alive */
	struct client_hs *hs = conn_owner_data(c);
	char *failure = hs->failure;

	(void)arg_ref;
	hs->failure = NULL;
	if (failure)
		client_failed(c, x, failure);
	else
		client_failed(c, x, (char[]){ "connect 0 connection failed (out of memory)" });
	free(failure);
}

/* Failures may happen inside lws_client_connect_via_info, before the
 * caller has set its handlers: report them on the next loop turn. */
static void
client_fail_later(struct conn *c, const char *kind, unsigned status, const char *detail)
{
	struct client_hs *hs = conn_owner_data(c);
	char buf[320];

	if (conn_fail_unopened(c, detail))
		return;
	snprintf(buf, sizeof(buf), "%s %u %s", kind, status, detail);
	free(hs->failure);
	hs->failure = strdup(buf);
	conn_defer(c, connect_failed_deferred);
}

/* OpenSSL's verdict on the server's certificate, for a message that says
 * which check failed (lws only logs it). Called once per certificate of
 * the chain; returning 0 leaves the decision to lws. */
static void
client_verify_result(struct conn *c, X509_STORE_CTX *xs, SSL *ssl, int preverify_ok)
{
	struct client_hs *hs = conn_owner_data(c);
	int err = X509_STORE_CTX_get_error(xs);
	const char *check, *host;

	if (preverify_ok || err == X509_V_OK || conn_state(c) != CONN_CONNECTING ||
	    hs->verify_failed[0] || conn_aborted(c))
		return;
	switch (err) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		check = "hostname";
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		check = "validity period";
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		check = "chain of trust";
		break;
	default:
		check = "certificate";
		break;
	}
	host = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
	if (!strcmp(check, "hostname") && host)
		snprintf(hs->verify_failed, sizeof(hs->verify_failed),
			 "%s check failed: %s (the certificate is not valid for '%s')", check,
			 X509_verify_cert_error_string(err), host);
	else
		snprintf(hs->verify_failed, sizeof(hs->verify_failed), "%s check failed: %s", check,
			 X509_verify_cert_error_string(err));
}

/* CLIENT_CONNECTION_ERROR: lws's short text (or our own record) -> a
 * stable kind token plus detail */
static void
connection_error(struct conn *c, const char *in, size_t len)
{
	struct client_hs *hs = conn_owner_data(c);
	char text[160];

	if (conn_aborted(c)) {   /* terminate() while connecting */
		client_fail_later(c, "aborted", 0, conn_aborted(c));
		return;
	}
	if (hs->verify_failed[0]) {
		client_fail_later(c, "tls-verify", 0, hs->verify_failed);
		return;
	}
	if (!in) {
		in = "connection failed";
		len = strlen(in);
	}
	if (len >= sizeof(text))
		len = sizeof(text) - 1;
	memcpy(text, in, len);
	text[len] = '\0';
	if (strstr(text, "Unable to connect"))
		client_fail_later(c, "refused", 0, text);
	else if (strstr(text, "getaddrinfo"))
		client_fail_later(c, "dns", 0, text);
	else if (strstr(text, "Timed out"))
		client_fail_later(c, "timeout", 0, text);
	else if (!strncmp(text, "connect SSL err", 15) || !strncmp(text, "connect SYSCALL", 15))
		/* lws's words for a failed TLS handshake, OpenSSL's codes after them */
		client_fail_later(c, "tls", 0, "TLS handshake failed (not a TLS server, or no "
				  "protocol version or cipher in common)");
	else if (strstr(text, "SSL") || strstr(text, "ssl") || strstr(text, "tls"))
		client_fail_later(c, "tls", 0, text);
	else if (!strcmp(text, "HS: PROTOCOL malformed"))
		client_fail_later(c, "handshake", 0, "the server chose a subprotocol that was not offered");
	else if (!strncmp(text, "HS:", 3) || strstr(text, "protocol"))
		client_fail_later(c, "handshake", 0, text);
	else if (strstr(text, "read failed") || strstr(text, "hung up") ||
		 strstr(text, "before established") || strstr(text, "before conn"))
		client_fail_later(c, "closed", 0, text);
	else
		client_fail_later(c, "connect", 0, text);
}


/* ---- the opening handshake ------------------------------------------- */

/* header name: value (OWS trimmed) of the response's lines; repeated
 * lines joined with ", " (RFC 9110 5.3). NULL if absent. */
static char *
resp_header(const char *head, const char *name)
{
	size_t nlen = strlen(name), cap = 0, used = 0;
	const char *line = strstr(head, "\r\n");
	char *out = NULL;

	while (line && line[2] != '\r') {
		const char *start = line + 2, *end = strstr(start, "\r\n"), *v;

		if (!end)
			break;
		if ((size_t)(end - start) > nlen && start[nlen] == ':' &&
		    !strncasecmp(start, name, nlen)) {
			size_t vlen;

			v = start + nlen + 1;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			vlen = (size_t)(end - v);
			while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (used + vlen + 3 > cap) {
				char *n;

				cap = used + vlen + 64;
				n = realloc(out, cap);
				if (!n) {
					free(out);
					return NULL;
				}
				out = n;
			}
			if (used) {
				memcpy(out + used, ", ", 2);
				used += 2;
			}
			memcpy(out + used, v, vlen);
			used += vlen;
			out[used] = '\0';
		}
		line = end;
	}
	return out;
}

/* The response is complete at head[0..n): check it. Returns 0 (open), or
 * -1 after client_fail_later. */
static int
handshake_check(struct conn *c, const char *head)
{
	struct client_hs *hs = conn_owner_data(c);
	unsigned status = 0;
	char *v;
	int bad;

	if (strncmp(head, "HTTP/1.1 ", 9) || sscanf(head + 9, "%3u", &status) != 1) {
		client_fail_later(c, "handshake", 0, "the server's answer is not HTTP/1.1");
		return -1;
	}
	if (status != 101) {
		char text[32], *ra = resp_header(head, "retry-after");

		/* a 503/429 refusal may say when to come back (reconnect storms) */
		if (ra)
			hs->retry_after = (uint32_t)strtoul(ra, NULL, 10);
		free(ra);
		snprintf(text, sizeof(text), "HTTP %u", status);
		client_fail_later(c, "http", status, text);
		return -1;
	}
	v = resp_header(head, "upgrade");
	bad = !v || strcasecmp(v, "websocket");
	free(v);
	if (bad) {
		client_fail_later(c, "handshake", 0, "the 101 has no 'Upgrade: websocket'");
		return -1;
	}
	v = resp_header(head, "connection");
	bad = !v || !proto_list_has(v, strlen(v), "upgrade");
	free(v);
	if (bad) {
		client_fail_later(c, "handshake", 0, "the 101 has no 'Connection: Upgrade'");
		return -1;
	}
	v = resp_header(head, "sec-websocket-accept");
	bad = !v || strcmp(v, hs->accept);
	free(v);
	if (bad) {
		client_fail_later(c, "handshake", 0, "missing or wrong Sec-WebSocket-Accept");
		return -1;
	}
	v = resp_header(head, "sec-websocket-extensions");
	if (v && *v) {
		/* we offer none: a server may not choose one (RFC 6455 4.1) */
		free(v);
		client_fail_later(c, "handshake", 0, "the server chose an extension that was not offered");
		return -1;
	}
	free(v);
	v = resp_header(head, "sec-websocket-protocol");
	if (v && strchr(v, ',')) {
		char detail[200];

		snprintf(detail, sizeof(detail), "the server chose more than one subprotocol (%s)", v);
		free(v);
		client_fail_later(c, "handshake", 0, detail);
		return -1;
	}
	if (v && (!hs->offered || !proto_list_has(hs->offered, strlen(hs->offered), v))) {
		free(v);
		client_fail_later(c, "handshake", 0, "the server chose a subprotocol that was not offered");
		return -1;
	}
	conn_set_protocol(c, v);
	return 0;
}

/* The server's bytes until its response ends; what follows is frames */
static int
handshake_rx(struct conn *c, struct lws *wsi, unsigned char *in, size_t len)
{
	struct client_hs *hs = conn_owner_data(c);
	size_t room = sizeof(hs->resp) - 1 - hs->resp_len, take = len < room ? len : room;
	char *end;

	memcpy(hs->resp + hs->resp_len, in, take);
	hs->resp_len += take;
	hs->resp[hs->resp_len] = '\0';
	end = strstr(hs->resp, "\r\n\r\n");
	if (!end) {
		if (take < len || hs->resp_len == sizeof(hs->resp) - 1) {
			client_fail_later(c, "handshake", 0, "the server's response headers are too long");
			return -1;
		}
		return 0;
	}
	end[2] = '\0';   /* the head with its last line's CRLF */
	{
		/* the bytes of this read after the head */
		size_t head_len = (size_t)(end + 4 - hs->resp), before = hs->resp_len - take;
		size_t rest_off = head_len - before;

		if (handshake_check(c, hs->resp))
			return -1;
		hs->done = 1;
		conn_own_framing(c);
		conn_established(c);
		if (rest_off < len && conn_wsi(c) == wsi)
			return conn_own_rx(c, in + rest_off, len - rest_off);
	}
	return 0;
}

/* our upgrade request, once */
static int
send_request(struct conn *c, struct client_hs *hs)
{
	int rc = conn_send_raw(c, hs->request, hs->request_len);

	free(hs->request);
	hs->request = NULL;
	return rc;
}

/* wss://: what OpenSSL decrypted, or (NULL, 0) once its handshake is
 * done; rc says whether to close */
struct plain {
	struct conn *c;
	struct lws *wsi;
	int rc;
};

static int
client_plain(void *ud, const unsigned char *p, size_t n)
{
	struct plain *pl = ud;
	struct conn *c = pl->c;
	struct client_hs *hs = conn_owner_data(c);

	if (!p) {   /* TLS is up: our upgrade request goes out in it */
		if (!hs->done && hs->request)
			pl->rc = send_request(c, hs);
	} else if (!hs->done) {
		pl->rc = handshake_rx(c, pl->wsi, (unsigned char *)p, n);
	} else {
		pl->rc = conn_own_rx(c, (unsigned char *)p, n);
	}
	return pl->rc || conn_wsi(c) != pl->wsi;
}

static int
tls_rx(struct conn *c, struct lws *wsi, const unsigned char *in, size_t len)
{
	struct client_hs *hs = conn_owner_data(c);
	struct plain pl = { c, wsi, 0 };
	int rc = tls_client_rx(conn_tls(c), in, len, client_plain, &pl);

	if (conn_wsi(c) != wsi)
		return -1;   /* failed and detached while reading */
	if (rc == TLS_CLIENT_FAILED && !hs->done) {
		if (hs->verify_failed[0])
			client_fail_later(c, "tls-verify", 0, hs->verify_failed);
		else
			client_fail_later(c, "tls", 0, "TLS handshake failed (not a TLS server, or no "
					  "protocol version or cipher in common)");
		return -1;
	}
	if (rc == TLS_CLIENT_FAILED || rc == TLS_CLIENT_CLOSED || pl.rc)
		return -1;
	return conn_send_raw(c, NULL, 0);   /* what the TLS layer has to say back */
}

static void
client_verify_hook(void *ud, X509_STORE_CTX *xs, SSL *ssl, int ok)
{
	client_verify_result(ud, xs, ssl, ok);
}

/* the request, built when connect() is called */
static int
handshake_request(struct conn *c, lua_State *L, const char *path, const char *host,
		  const char *protocols, const char *origin, const char *headers)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char nonce[16], sha[20];
	char key[32], joined[80];
	struct client_hs *hs = conn_owner_data(c);
	luaL_Buffer b;
	size_t n;
	const char *r;

	if (lws_get_random(core_ctx(L)->lws, nonce, sizeof(nonce)) != sizeof(nonce))
		return -1;
	lws_b64_encode_string((char *)nonce, sizeof(nonce), key, sizeof(key));
	n = (size_t)snprintf(joined, sizeof(joined), "%s%s", key, guid);
	lws_SHA1((unsigned char *)joined, n, sha);
	lws_b64_encode_string((char *)sha, 20, hs->accept, sizeof(hs->accept));
	if (protocols && !(hs->offered = strdup(protocols)))
		return -1;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, "GET ");
	luaL_addstring(&b, path);
	luaL_addstring(&b, " HTTP/1.1\r\nHost: ");
	luaL_addstring(&b, host);
	luaL_addstring(&b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
	luaL_addstring(&b, key);
	luaL_addstring(&b, "\r\nSec-WebSocket-Version: 13\r\n");
	if (protocols) {
		luaL_addstring(&b, "Sec-WebSocket-Protocol: ");
		luaL_addstring(&b, protocols);
		luaL_addstring(&b, "\r\n");
	}
	if (origin) {
		luaL_addstring(&b, "Origin: ");
		luaL_addstring(&b, origin);
		luaL_addstring(&b, "\r\n");
	}
	if (headers)
		luaL_addstring(&b, headers);
	luaL_addstring(&b, "\r\n");
	luaL_pushresult(&b);
	r = lua_tolstring(L, -1, &n);
	hs->request = malloc(n);
	if (hs->request)
		memcpy(hs->request, r, n);
	hs->request_len = n;
	lua_pop(L, 1);
	return hs->request ? 0 : -1;
}

static int
client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		size_t len)
{
	struct conn *c = core_opaque(wsi, KIND_CONN);
	struct client_hs *hs = c ? conn_owner_data(c) : NULL;
	int handled;

	/* what every established connection does, client or server */
	if (c && (handled = conn_callback(c, reason, in, len)) != CONN_NOT_HANDLED)
		return handled;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/* lws calls protocols[0] of the first vhost (ours) with
		 * user = the X509_STORE_CTX, in = the SSL, len = preverify_ok */
		if (c && user)
			client_verify_result(c, user, in, (int)len);
		return 0;

	case LWS_CALLBACK_RAW_CONNECTED:
		if (!c || hs->done)
			return -1;
		conn_set_raw(c);
		if (conn_tls(c))   /* our ClientHello; the request once TLS is up */
			return tls_client_start(conn_tls(c)) ? -1 : conn_send_raw(c, NULL, 0);
		return send_request(c, hs);

	case LWS_CALLBACK_RAW_WRITEABLE:
		return 0;

	case LWS_CALLBACK_RAW_RX:
		if (!c)
			return -1;
		if (conn_tls(c))
			return tls_rx(c, wsi, in, len);
		if (hs->done)
			return -1;
		return handshake_rx(c, wsi, in, len);

	case LWS_CALLBACK_RAW_CLOSE:
		if (c && conn_tls(c) && !tls_client_ready(conn_tls(c)))   /* lws's words for it */
			connection_error(c, "connect SSL err", 15);
		else if (c && !hs->done)
			connection_error(c, "closed before established", 25);
		else if (c)
			conn_finalize(c, NULL);
		return 0;

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c)
			connection_error(c, in, len);
		return 0;

	case LWS_CALLBACK_WSI_DESTROY:
		/* CONNECTION_ERROR normally comes first (and detaches us), but
		 * not for a wsi killed while waiting for the server's answer */
		if (c && !conn_was_established(c))
			connection_error(c, "closed before established", 25);
		else if (c)
			conn_finalize(c, NULL);
		break;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* on the internal vhost (csrc/lws_core.c lists it there); one write may
 * carry a whole fragment (csrc/core.h CONN_TX_PACKET) */
const struct lws_protocols client_protocol = {
	.name = "lws-lua-client", .callback = client_callback, .tx_packet_size = CONN_TX_PACKET,
};

static const char *const connect_fields[] = {
	"address", "port", "path", "host", "origin", "protocols", "tls", "insecure", "ca",
	"headers", "max_message_size", "max_queue_bytes", "close_timeout", NULL
};

/* connect(opts) -> conn (CONNECTING); every outcome arrives as events:
 * "open", or "error"(detail, kind, status) then "close"(1006, detail) */
static int
l_connect(lua_State *L)
{
	struct ctx *x = core_ctx(L);
	struct lws_client_connect_info ci;
	struct conn_owner o = { 0 };
	struct client_hs *hs;
	const char *headers, *ca, *origin, *protocols;
	char msg[300];
	struct conn *c;
	int tls, insecure;
	FILE *f = NULL;

	luaL_checktype(L, 1, LUA_TTABLE);
	core_check_fields(L, 1, connect_fields);
	memset(&ci, 0, sizeof(ci));
	ci.context = x->lws;
	ci.address = core_opt_str_field(L, 1, "address", NULL);
	luaL_argcheck(L, ci.address != NULL, 1, "option 'address' is required");
	ci.port = (int)core_opt_int_field(L, 1, "port", 80, 1, 65535);
	ci.path = core_opt_str_field(L, 1, "path", "/");
	/* SNI, certificate hostname check and the Host header (docs/libwebsockets-4.1.md §1.3) */
	ci.host = core_opt_str_field(L, 1, "host", ci.address);
	protocols = core_opt_str_field(L, 1, "protocols", NULL);
	ci.local_protocol_name = "lws-lua-client";
	tls = core_opt_bool_field(L, 1, "tls", 0);
	insecure = core_opt_bool_field(L, 1, "insecure", 0);
	ca = core_opt_str_field(L, 1, "ca", NULL);
	headers = core_opt_str_field(L, 1, "headers", NULL);
	origin = core_opt_str_field(L, 1, "origin", NULL);

	o.max_message = (size_t)core_opt_int_field(L, 1, "max_message_size",
						   CONN_MAX_MESSAGE_DEFAULT, 0, CONN_LIMIT_MAX);
	o.max_queue = (size_t)core_opt_int_field(L, 1, "max_queue_bytes",
						 CONN_MAX_QUEUE_DEFAULT, 0, CONN_LIMIT_MAX);
	o.close_timeout = (int)core_opt_int_field(L, 1, "close_timeout",
						  CONN_CLOSE_TIMEOUT_DEFAULT, 1, 3600);
	o.is_client = 1;
	o.gone = client_hs_free;
	o.data = hs = calloc(1, sizeof(*hs));
	if (!hs)
		return luaL_error(L, "out of memory");
	c = conn_new(L, x, &o);
	/* pin now: events may fire from inside lws_client_connect_via_info */
	conn_pin(c);

	/* lws only logs an unreadable CA file, then fails every handshake */
	if (ca && tls && !(f = fopen(ca, "r"))) {
		snprintf(msg, sizeof(msg), "cannot read the CA file '%s': %s", ca, strerror(errno));
		client_fail_later(c, "tls", 0, msg);
		return 1;
	}
	if (f)
		fclose(f);
	ci.vhost = x->internal;
	/* a raw socket: the handshake and the frames are ours, TLS too */
	ci.method = "RAW";
	if (handshake_request(c, L, ci.path, ci.host, protocols, origin, headers)) {
		client_fail_later(c, "connect", 0, "out of memory");
		return 1;
	}
	if (tls) {
		SSL_CTX *sc = tls_client_ctx(&x->client_tls, ca, insecure);

		conn_set_tls(c, sc ? tls_client_new(sc, ci.address, !insecure, client_verify_hook, c) :
			     NULL);
		if (!conn_tls(c)) {
			client_fail_later(c, "tls", 0, sc ? "cannot create the TLS session" :
					  "cannot load the CA certificates");
			return 1;
		}
	}
	ci.opaque_user_data = c;
	ci.pwsi = conn_wsi_slot(c);
	if (!lws_client_connect_via_info(&ci)) {
		/* no callback comes for this one (docs/libwebsockets-4.1.md §2); lws 4.1 resolves
		 * names synchronously here, so this is almost always DNS. For
		 * method "RAW" lws has already stored the wsi in *pwsi, then
		 * freed it: forget it */
		*conn_wsi_slot(c) = NULL;
		snprintf(msg, sizeof(msg), "cannot resolve or connect to %s:%d", ci.address, ci.port);
		client_fail_later(c, "dns", 0, msg);
	}
	return 1;
}

int
client_open(lua_State *L)
{
	core_on_destroy(core_state(L), client_tls_free);
	lua_pushcfunction(L, l_connect);
	lua_setfield(L, -2, "connect");
	return 0;
}
