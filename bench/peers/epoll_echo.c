/*
 * epoll_echo: the ceiling, not a competitor. A WebSocket echo server with
 * no library at all: one thread, epoll, one recv per readable socket, every
 * reply that read produced framed into one buffer and one send. It does
 * only what an echo needs (no extensions, no UTF-8 check, no limits), so
 * it shows how fast this kernel's loopback lets any server go when each
 * message needs one recv and one send: the bound under the strict-echo
 * figures of lws, lua-lws and ws.
 *
 *   epoll_echo --port N     (0 = any free port; binds 127.0.0.1)
 */

#define _GNU_SOURCE   /* memmem, accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RX_SIZE 65536

struct peer {
	int fd;
	int upgraded;
	unsigned char *in;      /* bytes of an incomplete frame or request */
	size_t in_len;
	unsigned char *out;     /* what the socket did not take yet */
	size_t out_len;
	int closing;            /* our Close is queued: close once it is out */
};

static volatile sig_atomic_t interrupted;
static unsigned char rx[RX_SIZE];
static unsigned char *tx;
static size_t tx_cap;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int
tx_reserve(size_t need)
{
	size_t cap = tx_cap;
	unsigned char *t;

	if (need <= tx_cap)
		return 0;
	while (cap < need)
		cap = cap ? cap * 2 : RX_SIZE * 2;
	t = realloc(tx, cap);
	if (!t)
		return -1;
	tx = t;
	tx_cap = cap;
	return 0;
}

static void
peer_drop(int ep, struct peer *p)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
	close(p->fd);
	free(p->in);
	free(p->out);
	free(p);
}

/* Writes what is pending and then len bytes of buf; keeps the rest and
 * asks for EPOLLOUT. -1: the connection is gone. */
static int
peer_send(int ep, struct peer *p, const unsigned char *buf, size_t len)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
	ssize_t n = 0;

	if (p->out_len) {
		unsigned char *o = realloc(p->out, p->out_len + len);

		if (!o)
			return -1;
		memcpy(o + p->out_len, buf, len);
		p->out = o;
		p->out_len += len;
		buf = p->out;
		len = p->out_len;
	}
	if (len) {
		n = send(p->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN)
			return -1;
		if (n < 0)
			n = 0;
	}
	if ((size_t)n < len) {
		unsigned char *rest = malloc(len - (size_t)n);

		if (!rest)
			return -1;
		memcpy(rest, buf + n, len - (size_t)n);
		free(p->out);
		p->out = rest;
		p->out_len = len - (size_t)n;
		ev.events |= EPOLLOUT;
		return epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
	}
	if (p->out_len) {
		free(p->out);
		p->out = NULL;
		p->out_len = 0;
		epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
	}
	return p->closing ? -1 : 0;
}

/* The 101 answer to a complete request in buf, framed into tx. */
static long
handshake(const unsigned char *buf, size_t len, size_t *used)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	const char *end = memmem(buf, len, "\r\n\r\n", 4), *k, *e;
	unsigned char key[128], digest[EVP_MAX_MD_SIZE], accept[64];
	unsigned int dlen = 0;
	size_t klen;

	if (!end)
		return 0;
	*used = (size_t)(end + 4 - (const char *)buf);
	k = memmem(buf, *used, "Sec-WebSocket-Key:", 18);
	if (!k)
		return -1;
	for (k += 18; *k == ' '; k++)
		;
	e = memchr(k, '\r', (size_t)(end + 2 - k));
	if (!e || (klen = (size_t)(e - k)) + sizeof(guid) > sizeof(key))
		return -1;
	memcpy(key, k, klen);
	memcpy(key + klen, guid, sizeof(guid) - 1);
	if (!EVP_Digest(key, klen + sizeof(guid) - 1, digest, &dlen, EVP_sha1(), NULL))
		return -1;
	EVP_EncodeBlock(accept, digest, (int)dlen);
	if (tx_reserve(256))
		return -1;
	return snprintf((char *)tx, 256,
			"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			(const char *)accept);
}

/* Frames every complete client frame of buf into tx as its echo (same FIN
 * and opcode, so fragments echo as fragments), a pong per ping and the
 * Close answered. Returns the bytes of tx, *used how much of buf. */
static long
echo_frames(struct peer *p, unsigned char *buf, size_t len, size_t *used)
{
	size_t off = 0, t = 0;

	while (len - off >= 2) {
		unsigned char b0 = buf[off], *mask, *pl;
		size_t hl = 2, plen = buf[off + 1] & 0x7f, i;
		int opcode = b0 & 0x0f;

		if (!(buf[off + 1] & 0x80))
			return -1;   /* clients must mask */
		if (plen == 126)
			hl += 2;
		else if (plen == 127)
			hl += 8;
		if (len - off < hl + 4)
			break;
		if (plen == 126) {
			plen = (size_t)buf[off + 2] << 8 | buf[off + 3];
		} else if (plen == 127) {
			for (plen = 0, i = 0; i < 8; i++)
				plen = plen << 8 | buf[off + 2 + i];
			if (plen > (64u << 20))
				return -1;
		}
		if (len - off < hl + 4 + plen)
			break;
		mask = buf + off + hl;
		pl = mask + 4;
		for (i = 0; i < plen; i++)
			pl[i] ^= mask[i & 3];
		off += hl + 4 + plen;
		if (opcode == 0xa)
			continue;   /* pong */
		if (tx_reserve(t + plen + 10))
			return -1;
		tx[t++] = opcode == 0x9 ? 0x8a : b0;
		if (plen < 126) {
			tx[t++] = (unsigned char)plen;
		} else if (plen < 65536) {
			tx[t++] = 126;
			tx[t++] = (unsigned char)(plen >> 8);
			tx[t++] = (unsigned char)plen;
		} else {
			tx[t++] = 127;
			for (i = 0; i < 8; i++)
				tx[t++] = (unsigned char)((uint64_t)plen >> (56 - 8 * i));
		}
		memcpy(tx + t, pl, plen);
		t += plen;
		if (opcode == 0x8) {
			p->closing = 1;
			break;
		}
	}
	*used = off;
	return (long)t;
}

/* One recv; everything it completed answered with one send. */
static int
peer_read(int ep, struct peer *p)
{
	unsigned char *buf = rx;
	size_t len, used = 0;
	ssize_t n = recv(p->fd, rx, sizeof(rx), 0);
	long t;

	if (n <= 0)
		return n < 0 && errno == EAGAIN ? 0 : -1;
	len = (size_t)n;
	if (p->in_len) {   /* the rest of an incomplete frame */
		unsigned char *b = realloc(p->in, p->in_len + len);

		if (!b)
			return -1;
		memcpy(b + p->in_len, rx, len);
		p->in = b;
		buf = b;
		len += p->in_len;
	}
	if (!p->upgraded) {
		t = handshake(buf, len, &used);
		if (t > 0)
			p->upgraded = 1;
	} else {
		t = echo_frames(p, buf, len, &used);
	}
	if (t < 0)
		return -1;
	if (used < len) {
		unsigned char *rest = malloc(len - used);

		if (!rest)
			return -1;
		memcpy(rest, buf + used, len - used);
		free(p->in);
		p->in = rest;
		p->in_len = len - used;
	} else if (p->in_len) {
		free(p->in);
		p->in = NULL;
		p->in_len = 0;
	}
	if (p->in_len > (65u << 20))
		return -1;
	return t || p->closing ? peer_send(ep, p, tx, (size_t)t) : 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN }, evs[512];
	socklen_t alen = sizeof(a);
	int port = 0, one = 1, lfd, ep, i, n;
	unsigned long conns = 0;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 4096) ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen)) {
		perror("epoll_echo: listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.data.ptr = NULL;   /* NULL: the listener */
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("listening on ws://127.0.0.1:%d/\n", ntohs(a.sin_port));
	fflush(stdout);

	while (!interrupted) {
		n = epoll_wait(ep, evs, 512, 1000);
		for (i = 0; i < n; i++) {
			struct peer *p = evs[i].data.ptr;

			if (!p) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct epoll_event pev = { .events = EPOLLIN };

					p = calloc(1, sizeof(*p));
					if (!p) {
						close(fd);
						continue;
					}
					p->fd = fd;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					pev.data.ptr = p;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &pev);
					conns++;
				}
				continue;
			}
			if ((evs[i].events & EPOLLOUT && peer_send(ep, p, tx, 0)) ||
			    (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) && peer_read(ep, p)))
				peer_drop(ep, p);
		}
	}
	fprintf(stderr, "epoll_echo: %lu connections\n", conns);
	free(tx);
	return 0;
}
