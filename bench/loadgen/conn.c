/*
 * bench/loadgen/conn.c: one connection's socket and bookkeeping: its state
 * and the counts of each state, failing and releasing it, the output flush
 * (the dirty list), reading and handing bytes to ws.c, and the non-blocking
 * connect.
 */
#include "loadgen.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned char rbuf[READ_CHUNK];

/* ---- connection bookkeeping ---- */

void set_state(struct conn *c, enum state s)
{
	enum state o = (enum state)c->state;

	if (o == ST_CONNECTING || o == ST_HANDSHAKE)
		G.pending--;
	else if (o == ST_OPEN) {
		G.open--;
		sio_leave(c);
	}
	else if (o == ST_CLOSING)
		G.closing--;
	if (s == ST_CONNECTING || s == ST_HANDSHAKE)
		G.pending++;
	else if (s == ST_OPEN)
		G.open++;
	else if (s == ST_CLOSING)
		G.closing++;
	else if (s == ST_DONE)
		G.done++;
	c->state = (uint8_t)s;
}

void conn_release(struct conn *c)
{
	if (c->fd >= 0) {
		close(c->fd);       /* also drops it from the epoll set */
		c->fd = -1;
	}
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->msg);
	free(c->tq);
	c->tq = NULL;
	c->tq_len = c->tq_cap = c->tq_head = 0;
}

/* a connection that dies mid-run takes its unanswered messages with it:
 * count them lost now, so drains and broadcast windows don't wait for it */
void conn_abandon(struct conn *c)
{
	uint64_t n = c->send_seq - c->recv_seq;

	if (c->abandoned || c->state < ST_OPEN)
		return;
	c->abandoned = 1;
	G.outstanding -= n;
	G.lost += n;
	c->recv_seq = c->send_seq;
	/* a Socket.IO session counts for broadcasts from its CONNECT reply on */
	if (O.mode == M_BROADCAST || (O.mode == M_SIO && c->sio == SIO_READY))
		bcast_forget(c);
}

void conn_fail(struct conn *c, uint64_t *counter, const char *fmt, ...)
{
	va_list ap;

	if (c->state == ST_DONE)
		return;
	conn_abandon(c);
	if (counter)
		(*counter)++;
	if (counter && G.reports++ < MAX_REPORTS) {
		fprintf(stderr, "loadgen: conn %u: ", c->id);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	conn_release(c);
	set_state(c, ST_DONE);
}

void conn_mark(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = 1;
		G.dirty[G.ndirty++] = c->id;
	}
}

void conn_want(struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.u64 = c->id };

	if (ev != c->events && c->fd >= 0) {
		epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &e);
		c->events = ev;
	}
}

void conn_flush(struct conn *c)
{
	while (c->fd >= 0 && buf_used(&c->out)) {
		ssize_t w = send(c->fd, c->out.p + c->out.off, buf_used(&c->out),
				 MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_fail(c, G.phase >= PH_CLOSE ? &G.unclean_close : &G.closed_errors,
				  "send: %s", strerror(errno));
			return;
		}
		c->out.off += (size_t)w;
	}
	if (c->fd < 0)
		return;
	buf_trim(&c->out);
	if (c->state != ST_CONNECTING)
		conn_want(c, EPOLLIN | (buf_used(&c->out) ? EPOLLOUT : 0));
}

void flush_dirty(void)
{
	uint32_t i;

	for (i = 0; i < G.ndirty; i++) {
		struct conn *c = &G.c[G.dirty[i]];

		c->dirty = 0;
		conn_flush(c);
	}
	G.ndirty = 0;
}

void conn_input(struct conn *c, const unsigned char *d, size_t n,
		       uint64_t now)
{
	size_t used;

	if (c->state == ST_HANDSHAKE) {
		buf_append(&c->in, d, n);
		handshake_input(c, now);
		return;
	}
	if (buf_used(&c->in)) {
		/* a partial frame is pending: append and parse from our buffer */
		buf_append(&c->in, d, n);
		used = parse_frames(c, c->in.p + c->in.off, buf_used(&c->in), now);
		if (c->state == ST_DONE)
			return;
		c->in.off += used;
		buf_trim(&c->in);
	} else {
		used = parse_frames(c, d, n, now);
		if (c->state != ST_DONE && used < n)
			buf_append(&c->in, d + used, n - used);
	}
}

static void conn_eof(struct conn *c)
{
	if (c->got_close && c->sent_close) {
		conn_release(c);    /* clean: close frames both ways, server closed TCP */
		set_state(c, ST_DONE);
	} else if (c->state < ST_OPEN) {
		conn_fail(c, &G.conn_errors, "connection closed during handshake");
	} else {
		conn_fail(c, G.phase >= PH_CLOSE ? &G.unclean_close : &G.closed_errors,
			  "connection closed without a close frame");
	}
}

static void conn_read(struct conn *c, uint64_t now)
{
	int iter;

	for (iter = 0; iter < 4 && c->state != ST_DONE; iter++) {
		ssize_t r = recv(c->fd, rbuf, sizeof(rbuf), 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				conn_fail(c, c->state < ST_OPEN ? &G.conn_errors :
					  G.phase >= PH_CLOSE ? &G.unclean_close :
					  &G.closed_errors, "recv: %s", strerror(errno));
			return;
		}
		if (r == 0) {
			conn_eof(c);
			return;
		}
		conn_input(c, rbuf, (size_t)r, now);
		if ((size_t)r < sizeof(rbuf))
			return;
	}
}

void conn_event(struct conn *c, uint32_t ev, uint64_t now)
{
	if (c->state == ST_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err)
			conn_fail(c, &G.conn_errors, "connect: %s", strerror(err));
		else if (ev & EPOLLOUT)
			send_handshake(c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(c, now);
	if (c->state != ST_DONE && (ev & EPOLLOUT))
		conn_flush(c);
}

void start_conn(struct conn *c, uint64_t now)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = O.host,
				  .sin_port = htons((uint16_t)sio_port(c)) };
	struct epoll_event e = { .events = EPOLLOUT, .data.u64 = c->id };
	int one = 1;

	if (!G.t_first_connect)
		G.t_first_connect = now;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(c, &G.conn_errors, "socket: %s", strerror(errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (O.src_ips > 1) {
		/* spread over 127.0.0.x sources; NO_PORT lets connect() pick the
		 * port per destination instead of reserving one at bind() */
		struct sockaddr_in src = { .sin_family = AF_INET };

		src.sin_addr.s_addr = htonl(0x7f000001u + c->id % (uint32_t)O.src_ips);
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			conn_fail(c, &G.conn_errors, "bind: %s", strerror(errno));
			return;
		}
	}
	/* ST_CONNECTING first, so a failure below is counted as pending → done */
	set_state(c, ST_CONNECTING);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		conn_fail(c, &G.conn_errors, "connect: %s", strerror(errno));
		return;
	}
	c->events = EPOLLOUT;
	if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
		conn_fail(c, &G.conn_errors, "epoll_ctl: %s", strerror(errno));
}
