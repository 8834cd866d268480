/* client.c: outgoing WebSocket connections (lws.conn with is_client).
 * Owns the connect info (URL pieces, TLS flags, extra request headers),
 * one client vhost per distinct CA file, and turning every failure into
 * one "error"(detail, kind, status) event followed by close(1006): lws
 * returns NULL for an unresolvable host without any callback (docs/libwebsockets-4.1.md §2),
 * and its TLS failure text is opaque, so we keep OpenSSL's own verdict. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "core.h"

/* While a client connects, close_code/close_reason (unused until it is
 * open) say why it failed: 1006 = aborted from Lua (terminate, connect
 * timeout), 1015 = TLS certificate verification failed (RFC 6455's own
 * reserved code for that), 1002 = a handshake we refused. None of them
 * goes on the wire. */
#define VERIFY_FAILED 1015
#define HANDSHAKE_REFUSED 1002

struct client_vhost {
	struct client_vhost *next;
	char *ca;
	struct lws_vhost *vh;
	char name[32];               /* lws keeps a pointer to the vhost name */
};

static struct lws_vhost *
client_vhost_for(struct ctx *x, const char *ca)
{
	struct lws_context_creation_info info;
	struct client_vhost *cv;
	static int serial;

	if (!ca)
		return x->internal;
	for (cv = x->client_vhosts; cv; cv = cv->next)
		if (!strcmp(cv->ca, ca))
			return cv->vh;
	cv = calloc(1, sizeof(*cv));
	if (!cv)
		return NULL;
	cv->ca = strdup(ca);
	if (!cv->ca) {
		free(cv);
		return NULL;
	}
	snprintf(cv->name, sizeof(cv->name), "lws-lua-client-%d", ++serial);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.vhost_name = cv->name;
	info.protocols = x->internal_protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.client_ssl_ca_filepath = cv->ca;
	cv->vh = lws_create_vhost(x->lws, &info);
	if (!cv->vh) {
		free(cv->ca);
		free(cv);
		return NULL;
	}
	cv->next = x->client_vhosts;
	x->client_vhosts = cv;
	return cv->vh;
}

static void
client_vhosts_free(struct ctx *x)
{
	while (x->client_vhosts) {
		struct client_vhost *cv = x->client_vhosts;

		x->client_vhosts = cv->next;
		free(cv->ca);
		free(cv);
	}
}

/* The failure is kept as "kind status detail" until it is reported. */
static void
client_failed(struct conn *c, char *failure)
{
	struct ctx *x = c->ctx;
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
	if (core_dispatch_prepare(x, c->self_ref, "error") == 0) {
		lua_pushstring(x->L, detail);
		lua_pushstring(x->L, kind);
		if (status)
			lua_pushinteger(x->L, (lua_Integer)status);
		else
			lua_pushnil(x->L);
		if (c->retry_after)
			lua_pushinteger(x->L, (lua_Integer)c->retry_after);
		else
			lua_pushnil(x->L);
		core_call(x, 6, 0);
	}
	c->state = CONN_OPEN;   /* so finalize reports close(1006, detail) */
	c->close_code = 0;
	conn_finalize(c, detail);
}

static void
connect_failed_deferred(struct ctx *x, void *arg, int arg_ref)
{
	struct conn *c = arg;   /* arg_ref keeps it alive */
	char *failure = c->extra_headers;

	(void)x;
	(void)arg_ref;
	c->extra_headers = NULL;
	if (failure)
		client_failed(c, failure);
	else
		client_failed(c, (char[]){ "connect 0 connection failed (out of memory)" });
	free(failure);
}

/* Failures may happen inside lws_client_connect_via_info, before the
 * caller has set its handlers: report them on the next loop turn. */
static void
client_fail_later(struct conn *c, const char *kind, unsigned status, const char *detail)
{
	struct ctx *x = c->ctx;
	char buf[320];

	if (c->wsi)
		lws_set_opaque_user_data(c->wsi, NULL);
	c->wsi = NULL;
	if (c->state == CONN_CLOSED || c->self_ref == LUA_NOREF)
		return;
	c->fail = 1;
	if (x->finalizing) {
		conn_finalize(c, detail);   /* never opened: no events, just unpin */
		return;
	}
	snprintf(buf, sizeof(buf), "%s %u %s", kind, status, detail);
	free(c->extra_headers);   /* unsent request headers: not needed any more */
	c->extra_headers = strdup(buf);
	c->state = CONN_CLOSED;   /* no more events until the deferred report */
	lua_rawgeti(x->L, LUA_REGISTRYINDEX, c->self_ref);
	core_defer(x, connect_failed_deferred, c, luaL_ref(x->L, LUA_REGISTRYINDEX));
}

/* OpenSSL's verdict on the server's certificate, for a message that says
 * which check failed (lws only logs it). Called once per certificate of
 * the chain; returning 0 leaves the decision to lws. */
static void
client_verify_result(struct conn *c, X509_STORE_CTX *xs, SSL *ssl, int preverify_ok)
{
	int err = X509_STORE_CTX_get_error(xs);
	const char *check, *host;

	if (preverify_ok || err == X509_V_OK || c->state != CONN_CONNECTING || c->close_code)
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
		snprintf(c->close_reason, sizeof(c->close_reason),
			 "%s check failed: %s (the certificate is not valid for '%s')", check,
			 X509_verify_cert_error_string(err), host);
	else
		snprintf(c->close_reason, sizeof(c->close_reason), "%s check failed: %s", check,
			 X509_verify_cert_error_string(err));
	c->close_reason_len = (uint8_t)strlen(c->close_reason);
	c->close_code = VERIFY_FAILED;
}

/* CLIENT_CONNECTION_ERROR: lws's short text (or our own record) -> a
 * stable kind token plus detail. c->last_rx is 0 until ESTABLISHED. */
static void
connection_error(struct conn *c, struct lws *wsi, const char *in, size_t len)
{
	unsigned status = wsi ? lws_http_client_http_response(wsi) : 0;
	char text[160];

	if (c->close_code == 1006 && c->close_reason_len) {   /* terminate() while connecting */
		client_fail_later(c, "aborted", 0, c->close_reason);
		return;
	}
	if (c->close_code == VERIFY_FAILED) {
		client_fail_later(c, "tls-verify", 0, c->close_reason);
		return;
	}
	if (c->close_code == HANDSHAKE_REFUSED) {
		client_fail_later(c, "handshake", 0, c->close_reason);
		return;
	}
	if (status && status != 101) {
		char ra[16];

		/* a 503/429 refusal may say when to come back (reconnect storms) */
		if (lws_hdr_copy(wsi, ra, sizeof(ra), WSI_TOKEN_HTTP_RETRY_AFTER) > 0)
			c->retry_after = (uint32_t)strtoul(ra, NULL, 10);
		snprintf(text, sizeof(text), "HTTP %u", status);
		client_fail_later(c, "http", status, text);
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

static int
client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		size_t len)
{
	struct conn *c = core_opaque(wsi, KIND_CONN);
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

	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		if (c && c->extra_headers) {
			char **p = (char **)in;
			size_t n = strlen(c->extra_headers);

			if (n >= len)
				return -1;
			memcpy(*p, c->extra_headers, n);
			*p += n;
			free(c->extra_headers);
			c->extra_headers = NULL;
		}
		break;

	case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
		/* the last moment the response headers are there (lws detaches
		 * them before ESTABLISHED). lws checked that the first
		 * Sec-WebSocket-Protocol was one we offered, but not that there
		 * was only one (RFC 6455 4.1: fail the connection otherwise) */
		if (c && !c->protocol && lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > 0) {
			int n = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);

			c->protocol = malloc((size_t)n + 1);
			if (c->protocol && lws_hdr_copy(wsi, c->protocol, n + 1, WSI_TOKEN_PROTOCOL) < 0)
				c->protocol[0] = '\0';
			if (c->protocol && (lws_hdr_fragment_length(wsi, WSI_TOKEN_PROTOCOL, 1) > 0 ||
					    strchr(c->protocol, ','))) {
				snprintf(c->close_reason, sizeof(c->close_reason),
					 "the server chose more than one subprotocol (%s)", c->protocol);
				c->close_reason_len = (uint8_t)strlen(c->close_reason);
				c->close_code = HANDSHAKE_REFUSED;
				free(c->protocol);
				c->protocol = NULL;
				return -1;
			}
		}
		return 0;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!c)
			return -1;
		c->close_code = 0;
		c->close_reason_len = 0;
		return conn_established(c);

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c)
			connection_error(c, wsi, in, len);
		return 0;

	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		/* CONNECTION_ERROR normally comes first (and detaches us), but
		 * not for a wsi killed while waiting for the server's answer */
		if (c && !c->last_rx)
			connection_error(c, wsi, "closed before established", 25);
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
	const char *headers, *ca, *origin;
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
	ci.protocol = core_opt_str_field(L, 1, "protocols", NULL);
	ci.ietf_version_or_minus_one = -1;
	ci.local_protocol_name = "lws-lua-client";
	tls = core_opt_bool_field(L, 1, "tls", 0);
	insecure = core_opt_bool_field(L, 1, "insecure", 0);
	ca = core_opt_str_field(L, 1, "ca", NULL);
	headers = core_opt_str_field(L, 1, "headers", NULL);
	origin = core_opt_str_field(L, 1, "origin", NULL);
	if (tls) {
		ci.ssl_connection = LCCSCF_USE_SSL;
		if (insecure)
			ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
					     LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
					     LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	}

	c = conn_new(L, x);
	c->is_client = 1;
	c->max_message = (size_t)core_opt_int_field(L, 1, "max_message_size",
						    CONN_MAX_MESSAGE_DEFAULT, 0, CONN_LIMIT_MAX);
	c->max_queue = (size_t)core_opt_int_field(L, 1, "max_queue_bytes",
						  CONN_MAX_QUEUE_DEFAULT, 0, CONN_LIMIT_MAX);
	c->close_timeout = (int)core_opt_int_field(L, 1, "close_timeout",
						   CONN_CLOSE_TIMEOUT_DEFAULT, 1, 3600);
	/* pin now: events may fire from inside lws_client_connect_via_info */
	c->self_ref = core_ref_self(L, -1);
	x->n_conns++;

	/* lws only logs an unreadable CA file, then fails every handshake */
	if (ca && tls && !(f = fopen(ca, "r"))) {
		snprintf(msg, sizeof(msg), "cannot read the CA file '%s': %s", ca, strerror(errno));
		client_fail_later(c, "tls", 0, msg);
		return 1;
	}
	if (f)
		fclose(f);
	ci.vhost = client_vhost_for(x, tls ? ca : NULL);
	if (!ci.vhost) {
		client_fail_later(c, "tls", 0, "cannot create the TLS client context");
		return 1;
	}
	/* lws writes ci.origin as "Origin: http://<origin>" unless a context
	 * option says otherwise: send it as one of our own headers instead */
	if (origin) {
		size_t n = strlen(origin) + (headers ? strlen(headers) : 0) + 11;

		c->extra_headers = malloc(n);
		if (c->extra_headers)
			snprintf(c->extra_headers, n, "Origin: %s\r\n%s", origin, headers ? headers : "");
	} else if (headers) {
		c->extra_headers = strdup(headers);
	}
	ci.opaque_user_data = c;
	ci.pwsi = &c->wsi;
	if (!lws_client_connect_via_info(&ci)) {
		/* no callback comes for this one (docs/libwebsockets-4.1.md §2); lws 4.1 resolves
		 * names synchronously here, so this is almost always DNS */
		snprintf(msg, sizeof(msg), "cannot resolve or connect to %s:%d", ci.address, ci.port);
		client_fail_later(c, "dns", 0, msg);
	}
	return 1;
}

int
client_open(lua_State *L)
{
	core_on_destroy(core_state(L), client_vhosts_free);
	lua_pushcfunction(L, l_connect);
	lua_setfield(L, -2, "connect");
	return 0;
}
