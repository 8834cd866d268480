/* server_vhost.c: the lws vhosts of our servers, one per configuration
 * (TLS files, timeouts, receive buffer), shared by every lws.server that
 * asks for the same and kept until the context goes (why: csrc/server_private.h
 * struct server_vhost), and what a TLS vhost that lws refused did wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core.h"
#include "http2.h"
#include "server_private.h"

static int
same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

void
server_vhosts_free(struct ctx *x)
{
	while (x->server_vhosts) {
		struct server_vhost *sv = x->server_vhosts;

		x->server_vhosts = sv->next;
		free(sv->cert);
		free(sv->key);
		free(sv->ca);
		free(sv);
	}
}

/* The vhost for this TLS configuration (NULLs: plain), created on first
 * use and kept until the context is destroyed. Takes the strings. */
struct server_vhost *
server_vhost_for(struct ctx *x, char *cert, char *key, char *ca, int hs_timeout, int ka_timeout,
		 int rx_size, int http2)
{
	struct lws_context_creation_info info;
	struct server_vhost *sv;
	static int serial;

	for (sv = x->server_vhosts; sv; sv = sv->next)
		if (same(sv->cert, cert) && same(sv->key, key) && same(sv->ca, ca) &&
		    sv->handshake_timeout == hs_timeout && sv->keepalive_timeout == ka_timeout &&
		    sv->rx_buffer_size == rx_size && sv->http2 == http2) {
			free(cert);
			free(key);
			free(ca);
			return sv;
		}
	sv = calloc(1, sizeof(*sv));
	if (!sv) {
		free(cert);
		free(key);
		free(ca);
		return NULL;
	}
	sv->cert = cert;
	sv->key = key;
	sv->ca = ca;
	sv->handshake_timeout = hs_timeout;
	sv->keepalive_timeout = ka_timeout;
	sv->rx_buffer_size = rx_size;
	sv->http2 = (uint8_t)http2;
	sv->protocols[0].name = "lws-lua";
	sv->protocols[0].callback = server_callback;
	sv->protocols[0].user = sv;
	/* lws allocates this per connection: small keeps idle connections
	 * small (2 KiB: 4.7 KiB per idle connection in all, bench/README.md),
	 * big means fewer RECEIVE callbacks for big messages */
	sv->protocols[0].rx_buffer_size = (size_t)rx_size;
	sv->protocols[0].tx_packet_size = CONN_TX_PACKET;

	memset(&info, 0, sizeof(info));
	snprintf(sv->name, sizeof(sv->name), "lws-lua-server-%d", ++serial);
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;   /* we listen ourselves */
	info.vhost_name = sv->name;
	info.protocols = sv->protocols;
	info.keepalive_timeout = ka_timeout;
	/* from a request's first byte to its complete headers (slowloris) */
	info.timeout_secs_ah_idle = (unsigned)hs_timeout;
	/* after our own 101 the client's first frame is not HTTP: lws then
	 * moves the same wsi (TLS included) to its raw role, bound to
	 * protocols[0] (lws_http_to_fallback), and csrc/conn.c reads it */
	info.options = LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG;
	if (cert) {
		/* the vhost's TLS: without this option lws 4.1.6 makes none
		 * (lib/tls/tls-server.c). With it, lws also builds the vhost a
		 * client SSL_CTX with the system's CA store (~30 ms, once per
		 * process: it caches by configuration); a plain-text vhost goes
		 * without both, and no vhost of ours makes lws client
		 * connections with TLS (csrc/client.c does its own) */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cert;
		info.ssl_private_key_filepath = key;
		info.ssl_ca_filepath = ca;
		/* TLS 1.2 and up, forward-secret AEAD suites only */
		info.ssl_options_set = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
				       SSL_OP_NO_TLSv1_1;
		info.ssl_cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
				       "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				       "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
		/* ALPN offers HTTP/1.1 only. Left NULL, lws 4.1.6 offers its
		 * context default "h2,http/1.1", every current browser and curl
		 * pick h2, and none of our HTTP or WebSocket code runs over h2
		 * streams (blank pages, reset streams). A client that offers only
		 * h2 gets no ALPN answer and talks HTTP/1.1 over TLS. lws keeps
		 * this pointer (no copy): a string literal lives long enough.
		 * http2 = true offers h2 first (csrc/http2.c). */
		info.alpn = "http/1.1";
		if (http2)
			http2_vhost_info(&info);
	}
	sv->vh = lws_create_vhost(x->lws, &info);
	if (!sv->vh) {
		free(sv->cert);
		free(sv->key);
		free(sv->ca);
		free(sv);
		return NULL;
	}
	sv->next = x->server_vhosts;
	x->server_vhosts = sv;
	return sv;
}

/* lws only logs why a TLS vhost failed: load the files again into a
 * scratch SSL_CTX and name the file and the step that fails */
void
server_tls_diagnose(const char *cert, const char *key, char *out, size_t outlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const char *what = NULL, *file = NULL;
	char ossl[160] = "";

	ERR_clear_error();
	if (!ctx || !cert || !key) {
		what = "cannot create the TLS server";
	} else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		what = "cannot use the TLS certificate";
		file = cert;
	} else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		what = "cannot use the TLS key";
		file = key;
	} else if (SSL_CTX_check_private_key(ctx) != 1) {
		what = "the TLS key does not match the certificate";
		file = key;
	} else {
		what = "cannot create the TLS server with";
		file = cert;
	}
	if (ERR_peek_last_error())
		ERR_error_string_n(ERR_peek_last_error(), ossl, sizeof(ossl));
	ERR_clear_error();
	if (ctx)
		SSL_CTX_free(ctx);
	snprintf(out, outlen, "%s%s%s%s%s", what, file ? " " : "", file ? file : "",
		 ossl[0] ? ": " : "", ossl);
}
