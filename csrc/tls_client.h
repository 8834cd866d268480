/* tls_client.h: a TLS client session over memory BIOs (csrc/tls_client.c),
 * for wss:// connections on lws's raw client sockets. */
#ifndef LWS_LUA_TLS_CLIENT_H
#define LWS_LUA_TLS_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

#pragma GCC visibility push(hidden)

enum { TLS_CLIENT_OK = 0, TLS_CLIENT_FAILED = -1, TLS_CLIENT_STOP = -2, TLS_CLIENT_CLOSED = -3 };

struct tls_client;
struct tls_client_ctx;

/* called for each certificate OpenSSL checks (as its verify callback) */
typedef void (*tls_client_verify_fn)(void *ud, X509_STORE_CTX *xs, SSL *ssl, int ok);
/* plaintext from the server; (NULL, 0) once when the handshake is over.
 * Nonzero stops reading. */
typedef int (*tls_client_sink)(void *ud, const unsigned char *p, size_t n);

/* the SSL_CTX for this CA file (NULL: the system's) and mode, cached in
 * *list; NULL if the CA file does not load */
SSL_CTX *tls_client_ctx(struct tls_client_ctx **list, const char *ca, int insecure);
void tls_client_ctx_free_all(struct tls_client_ctx **list);

/* host: SNI (names only) and, with check_host, the name or IP address
 * the certificate must be for */
struct tls_client *tls_client_new(SSL_CTX *ctx, const char *host, int check_host,
				  tls_client_verify_fn fn, void *ud);
void tls_client_free(struct tls_client *t);
int tls_client_ready(const struct tls_client *t);
int tls_client_start(struct tls_client *t);               /* the ClientHello */
int tls_client_rx(struct tls_client *t, const unsigned char *in, size_t len,
		  tls_client_sink sink, void *ud);
int tls_client_tx(struct tls_client *t, const unsigned char *p, size_t n);
void tls_client_close(struct tls_client *t);              /* close_notify */
/* ciphertext waiting to be sent; then take it, up to cap bytes (0: none) */
size_t tls_client_pending(const struct tls_client *t);
size_t tls_client_take(struct tls_client *t, unsigned char *buf, size_t cap);

#pragma GCC visibility pop

#endif
