/* client.c: outgoing WebSocket connections (lws.conn with is_client).
 * Owns the connect info (URL pieces, TLS flags, extra request headers),
 * one client vhost per distinct CA file, and turning every failure into
 * an event: lws returns NULL for an unresolvable host without any
 * callback (notes 2), so that case is reported on the next loop turn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

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

void
client_vhosts_free(struct ctx *x)
{
	while (x->client_vhosts) {
		struct client_vhost *cv = x->client_vhosts;

		x->client_vhosts = cv->next;
		free(cv->ca);
		free(cv);
	}
}

/* error event, then close(1006): what every connect failure looks like */
static void
client_failed(struct conn *c, const char *msg)
{
	struct ctx *x = c->ctx;

	if (core_dispatch_prepare(x, c->self_ref, "error") == 0) {
		lua_pushstring(x->L, msg);
		core_call(x, 3, 0);
	}
	c->state = CONN_OPEN;   /* so finalize reports close(1006, msg) */
	conn_finalize(c, msg);
}

static void
connect_failed_deferred(struct ctx *x, void *arg, int arg_ref)
{
	struct conn *c = arg;   /* arg_ref keeps it alive */

	(void)x;
	(void)arg_ref;
	client_failed(c, c->extra_headers ? c->extra_headers : "connect failed");
	free(c->extra_headers);
	c->extra_headers = NULL;
}

/* Failures may happen inside lws_client_connect_via_info, before the
 * caller has set its handlers: report them on the next loop turn. */
static void
client_fail_later(struct conn *c, const char *msg)
{
	struct ctx *x = c->ctx;

	if (c->wsi)
		lws_set_opaque_user_data(c->wsi, NULL);
	c->wsi = NULL;
	if (c->state == CONN_CLOSED || c->self_ref == LUA_NOREF)
		return;
	free(c->extra_headers);
	c->extra_headers = strdup(msg);
	c->state = CONN_CLOSED;   /* no more events until the deferred report */
	c->fail = 1;
	if (x->finalizing) {
		conn_finalize(c, msg);
		return;
	}
	lua_rawgeti(x->L, LUA_REGISTRYINDEX, c->self_ref);
	core_defer(x, connect_failed_deferred, c, luaL_ref(x->L, LUA_REGISTRYINDEX));
}

static const char *
connection_error_text(struct lws *wsi, const char *in, char *buf, size_t n)
{
	unsigned status = wsi ? lws_http_client_http_response(wsi) : 0;

	if (status && status != 101) {
		snprintf(buf, n, "server refused the WebSocket upgrade: HTTP %u", status);
		return buf;
	}
	if (!in)
		return "connection failed";
	if (strstr(in, "Unable to connect") || strstr(in, "Connection refused"))
		snprintf(buf, n, "connection refused (%s)", in);
	else if (strstr(in, "SSL") || strstr(in, "ssl") || strstr(in, "tls"))
		snprintf(buf, n, "TLS handshake failed: %s", in);
	else
		snprintf(buf, n, "%s", in);
	return buf;
}

int
client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		size_t len)
{
	struct conn *c = core_opaque(wsi, KIND_CONN);
	char buf[256];

	switch (reason) {
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

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!c)
			return -1;
		if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > 0) {
			int n = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);

			c->protocol = malloc((size_t)n + 1);
			if (c->protocol && lws_hdr_copy(wsi, c->protocol, n + 1, WSI_TOKEN_PROTOCOL) < 0)
				c->protocol[0] = '\0';
		}
		return conn_established(c);

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c) {
			client_fail_later(c, connection_error_text(wsi, in, buf, sizeof(buf)));
		}
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (c)
			return conn_receive(c, in, len);
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c)
			return conn_writeable(c);
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		if (c)
			conn_pong(c, in, len);
		break;

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c)
			return conn_peer_close(c, in, len);
		break;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c)
			conn_finalize(c, NULL);
		break;

	case LWS_CALLBACK_WSI_DESTROY:
		if (c) {
			if (c->state == CONN_CONNECTING)
				client_fail_later(c, "connection failed");
			else
				conn_finalize(c, NULL);
		}
		break;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const char *const connect_fields[] = {
	"address", "port", "path", "host", "origin", "protocols", "tls", "insecure", "ca",
	"headers", "max_message_size", "max_queue_bytes", "close_timeout", NULL
};

/* connect(opts) -> conn (CONNECTING); results arrive as events */
static int
l_connect(lua_State *L)
{
	struct ctx *x = core_ctx(L);
	struct lws_client_connect_info ci;
	const char *headers, *ca;
	struct conn *c;
	int tls, insecure;

	luaL_checktype(L, 1, LUA_TTABLE);
	core_check_fields(L, 1, connect_fields);
	memset(&ci, 0, sizeof(ci));
	ci.context = x->lws;
	ci.address = core_opt_str_field(L, 1, "address", NULL);
	luaL_argcheck(L, ci.address != NULL, 1, "option 'address' is required");
	ci.port = (int)core_opt_int_field(L, 1, "port", 80, 1, 65535);
	ci.path = core_opt_str_field(L, 1, "path", "/");
	ci.host = core_opt_str_field(L, 1, "host", ci.address);
	ci.origin = core_opt_str_field(L, 1, "origin", NULL);
	ci.protocol = core_opt_str_field(L, 1, "protocols", NULL);
	ci.ietf_version_or_minus_one = -1;
	ci.local_protocol_name = "lws-lua-client";
	tls = core_opt_bool_field(L, 1, "tls", 0);
	insecure = core_opt_bool_field(L, 1, "insecure", 0);
	ca = core_opt_str_field(L, 1, "ca", NULL);
	headers = core_opt_str_field(L, 1, "headers", NULL);
	if (tls) {
		ci.ssl_connection = LCCSCF_USE_SSL;
		if (insecure)
			ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
					     LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
					     LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	}
	ci.vhost = client_vhost_for(x, ca);
	if (!ci.vhost)
		return core_push_error(L, "cannot load the CA file", "tls");

	c = conn_new(L, x);
	c->is_client = 1;
	c->max_message = (size_t)core_opt_int_field(L, 1, "max_message_size", 16 << 20, 0,
						    (lua_Integer)1 << 40);
	c->max_queue = (size_t)core_opt_int_field(L, 1, "max_queue_bytes", 16 << 20, 0,
						  (lua_Integer)1 << 40);
	c->close_timeout = (int)core_opt_int_field(L, 1, "close_timeout", 10, 1, 3600);
	if (headers)
		c->extra_headers = strdup(headers);
	/* pin now: events may fire from inside lws_client_connect_via_info */
	c->self_ref = core_ref_self(L, -1);
	x->n_conns++;
	ci.opaque_user_data = c;
	ci.pwsi = &c->wsi;
	if (!lws_client_connect_via_info(&ci)) {
		char msg[256];

		/* no callback will come for this one (notes 2) */
		snprintf(msg, sizeof(msg), "cannot connect to %s:%d (name resolution or socket "
			 "failure)", ci.address, ci.port);
		client_fail_later(c, msg);
	}
	return 1;
}

int
client_open(lua_State *L)
{
	lua_pushcfunction(L, l_connect);
	lua_setfield(L, -2, "connect");
	return 0;
}
