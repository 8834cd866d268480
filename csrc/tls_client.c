/* tls_client.c: the TLS client session of a wss:// connection, run by us
 * over OpenSSL memory BIOs on lws's raw client socket. lws 4.1.6 cannot
 * start TLS on a raw client socket itself (core-net/connect.c creates the
 * session for method "RAW" before the socket exists, and fails), and our
 * client needs the raw socket to read and write its own frames
 * (csrc/client.c, csrc/conn.c). No lws and no Lua in here: ciphertext
 * in, plaintext out to a sink; plaintext in, ciphertext left for the
 * caller to write. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_client.h"

struct tls_client {
	SSL *ssl;
	BIO *in, *out;            /* the network side: what arrived, what to send */
	int done;                 /* the handshake is over */
};

/* One SSL_CTX per CA file and verification mode, kept until the caller's
 * tls_client_ctx_free_all (csrc/client.c, when the lws context goes) */
struct tls_client_ctx {
	struct tls_client_ctx *next;
	char *ca;
	int insecure;
	SSL_CTX *ctx;
};

static int verify_index = -1;   /* SSL ex_data: the caller's verify hook */

struct verify_hook {
	tls_client_verify_fn fn;
	void *ud;
};

static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct verify_hook *h = ssl ? SSL_get_ex_data(ssl, verify_index) : NULL;

	if (h && h->fn)
		h->fn(h->ud, xs, ssl, ok);
	return ok;
}

SSL_CTX *
tls_client_ctx(struct tls_client_ctx **list, const char *ca, int insecure)
{
	struct tls_client_ctx *e;
	SSL_CTX *ctx;

	for (e = *list; e; e = e->next)
		if (e->insecure == insecure && ((!ca && !e->ca) || (ca && e->ca && !strcmp(ca, e->ca))))
			return e->ctx;
	if (verify_index < 0)
		verify_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
		if (ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 :
			 SSL_CTX_set_default_verify_paths(ctx) != 1) {
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e || (ca && !(e->ca = strdup(ca)))) {
		free(e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	e->insecure = insecure;
	e->ctx = ctx;
	e->next = *list;
	*list = e;
	return ctx;
}

void
tls_client_ctx_free_all(struct tls_client_ctx **list)
{
	while (*list) {
		struct tls_client_ctx *e = *list;

		*list = e->next;
		SSL_CTX_free(e->ctx);
		free(e->ca);
		free(e);
	}
}

struct tls_client *
tls_client_new(SSL_CTX *ctx, const char *host, int check_host, tls_client_verify_fn fn,
	       void *ud)
{
	struct tls_client *t = calloc(1, sizeof(*t));
	struct verify_hook *h = calloc(1, sizeof(*h));
	int is_ip;
	unsigned char ip[16];

	if (!t || !h)
		goto fail;
	t->ssl = SSL_new(ctx);
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->in || !t->out)
		goto fail;
	BIO_set_mem_eof_return(t->in, -1);   /* empty means "more to come" */
	SSL_set_bio(t->ssl, t->in, t->out);   /* the SSL owns both from here */
	h->fn = fn;
	h->ud = ud;
	SSL_set_ex_data(t->ssl, verify_index, h);
	SSL_set_connect_state(t->ssl);
	is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	if (!is_ip)
		SSL_set_tlsext_host_name(t->ssl, host);   /* SNI is for names only */
	if (check_host) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);

		if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1 :
			    X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1)
			goto fail_ssl;
	}
	return t;
fail:
	if (t) {
		BIO_free(t->in);
		BIO_free(t->out);
	}
fail_ssl:
	if (t && t->ssl)
		SSL_free(t->ssl);
	free(t);
	free(h);
	return NULL;
}

void
tls_client_free(struct tls_client *t)
{
	if (!t)
		return;
	free(SSL_get_ex_data(t->ssl, verify_index));
	SSL_free(t->ssl);   /* frees the BIOs */
	free(t);
}

int
tls_client_ready(const struct tls_client *t)
{
	return t->done;
}

/* the handshake's next step; TLS_CLIENT_OK while it goes on */
static int
step(struct tls_client *t)
{
	int rc;

	if (t->done)
		return TLS_CLIENT_OK;
	ERR_clear_error();
	rc = SSL_do_handshake(t->ssl);
	if (rc == 1) {
		t->done = 1;
		return TLS_CLIENT_OK;
	}
	rc = SSL_get_error(t->ssl, rc);
	return rc == SSL_ERROR_WANT_READ || rc == SSL_ERROR_WANT_WRITE ? TLS_CLIENT_OK :
	       TLS_CLIENT_FAILED;
}

int
tls_client_start(struct tls_client *t)
{
	return step(t);
}

int
tls_client_rx(struct tls_client *t, const unsigned char *in, size_t len, tls_client_sink sink,
	      void *ud)
{
	unsigned char buf[16384];

	if (len && BIO_write(t->in, in, (int)len) != (int)len)
		return TLS_CLIENT_FAILED;
	if (!t->done) {
		if (step(t) != TLS_CLIENT_OK)
			return TLS_CLIENT_FAILED;
		if (!t->done)
			return TLS_CLIENT_OK;
		if (sink(ud, NULL, 0))   /* the handshake is over */
			return TLS_CLIENT_STOP;
	}
	for (;;) {
		int n, e;

		ERR_clear_error();
		n = SSL_read(t->ssl, buf, sizeof(buf));
		if (n > 0) {
			if (sink(ud, buf, (size_t)n))
				return TLS_CLIENT_STOP;
			continue;
		}
		e = SSL_get_error(t->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return TLS_CLIENT_OK;
		if (e == SSL_ERROR_ZERO_RETURN)
			return TLS_CLIENT_CLOSED;   /* the server's close_notify */
		return TLS_CLIENT_FAILED;
	}
}

int
tls_client_tx(struct tls_client *t, const unsigned char *p, size_t n)
{
	while (n) {
		int k;

		ERR_clear_error();
		k = SSL_write(t->ssl, p, n > 65536 ? 65536 : (int)n);
		if (k <= 0)
			return TLS_CLIENT_FAILED;
		p += k;
		n -= (size_t)k;
	}
	return TLS_CLIENT_OK;
}

void
tls_client_close(struct tls_client *t)
{
	if (t->done)
		SSL_shutdown(t->ssl);   /* our close_notify, into the out BIO */
}

size_t
tls_client_pending(const struct tls_client *t)
{
	return BIO_ctrl_pending(t->out);
}

size_t
tls_client_take(struct tls_client *t, unsigned char *buf, size_t cap)
{
	int n = BIO_read(t->out, buf, (int)cap);

	return n > 0 ? (size_t)n : 0;
}
