/* workers.c: lws.server{ workers = N }: N worker processes accepting on
 * one port, each with its own SO_REUSEPORT listener (lws 4.1.6's
 * ALLOW_LISTEN_SHARE does nothing in Debian's build: docs/libwebsockets-4.1.md §5). The parent
 * keeps the port reserved with a bound, never-listening socket, restarts
 * workers that die, forwards SIGTERM/SIGINT for a graceful stop and exits
 * when they are gone; it never returns to Lua and never runs a loop.
 * Workers get SIGTERM if the parent dies (PR_SET_PDEATHSIG): no orphans.
 *
 * sticky = true: every connection from one client address goes to the same
 * worker (what Socket.IO's polling needs). The parent makes the N
 * listeners itself, in order, so that listener i is index i of the
 * kernel's SO_REUSEPORT group, attaches a classic BPF program that picks
 * the index from a hash of the source address, and keeps them all open:
 * a dead worker's listener stays in the group at its index, so the
 * mapping never changes and its connections wait in its accept queue
 * until the restarted worker (which inherits the same listener) takes
 * them. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

#define MAX_WORKERS 256

static int worker_index;   /* 0 in the parent or without workers, else 1..N */
static int sticky_fds[MAX_WORKERS];
static int sticky_n;         /* how many of sticky_fds the parent holds (0: not sticky) */

/* index = hash(source address) % n, for IPv4 and IPv6 (the low 32 bits of
 * the address); IPv4-mapped clients of a dual-stack listener arrive with
 * IPv4 headers. A result >= the group size makes the kernel fall back to
 * its own hash, so a program can never strand a connection. */
static int
attach_sticky_program(int fd, int n)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, (uint32_t)SKF_NET_OFF),        /* version/IHL */
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 2, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),   /* IPv4 saddr */
		BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 20),   /* IPv6 saddr, low word */
		BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9e3779b1u),                 /* spread near addresses */
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (uint32_t)n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog));
}

/* the parent's N listeners for sticky workers; -1 with err on failure */
static int
sticky_listeners(const char *host, int *port, int n, int backlog, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < n; i++) {
		int fd = listen_socket(host, *port, backlog, 1, err, errlen);

		if (fd < 0)
			goto fail;
		sticky_fds[i] = fd;
		sticky_n = i + 1;
		if (i == 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);

			if (getsockname(fd, (struct sockaddr *)&ss, &sl))
				goto fail_errno;
			*port = ntohs(ss.ss_family == AF_INET6 ?
				      ((struct sockaddr_in6 *)&ss)->sin6_port :
				      ((struct sockaddr_in *)&ss)->sin_port);
			if (attach_sticky_program(fd, n)) {
				snprintf(err, errlen, "option 'sticky': cannot attach the reuseport "
					 "program: %s", strerror(errno));
				goto fail;
			}
		}
	}
	return 0;
fail_errno:
	snprintf(err, errlen, "cannot listen on %s:%d: %s", host, *port, strerror(errno));
fail:
	for (i = 0; i < sticky_n; i++)
		close(sticky_fds[i]);
	sticky_n = 0;
	return -1;
}

/* in a sticky worker: keep only its own listener */
static int
sticky_take(int index)
{
	int i, fd = -1;

	for (i = 0; i < sticky_n; i++) {
		if (i == index - 1)
			fd = sticky_fds[i];
		else
			close(sticky_fds[i]);
	}
	sticky_n = 0;
	return fd;
}

static int
reserve_port(const char *host, int port, int *bound)
{
	struct addrinfo hints, *res;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char portstr[16];
	int fd, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (getaddrinfo(host, portstr, &hints, &res))
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
			bind(fd, res->ai_addr, res->ai_addrlen) ||
			getsockname(fd, (struct sockaddr *)&ss, &sl))) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
				((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* In the child: returns. In the parent: returns the pid. */
static pid_t
spawn(int index, pid_t parent, const sigset_t *oldmask)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	/* the worker: die with the parent, default signal handling */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	worker_index = index;
	return 0;
}

static void
say(const char *fmt, int a, int b, int c)
{
	fprintf(stderr, "lws: ");
	fprintf(stderr, fmt, a, b, c);
	fputc('\n', stderr);
	fflush(stderr);
}

/* The supervisor: returns only in a restarted worker (fork's child). */
static void
supervise(int n, pid_t *pids, pid_t parent, const sigset_t *oldmask)
{
	sigset_t set;
	int stopping = 0, alive = n, i;
	time_t stop_deadline = 0, last_restart[MAX_WORKERS] = { 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		struct timespec ts = { 1, 0 };
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &ts), status;
		pid_t pid;

		if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
			stopping = 1;
			stop_deadline = time(NULL) + 30;
			for (i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < n && pids[i] != pid; i++)
				;
			if (i == n)
				continue;
			pids[i] = 0;
			alive--;
			if (stopping)
				continue;
			if (WIFSIGNALED(status))
				say("worker %d (pid %d) killed by signal %d; restarting", i + 1, (int)pid,
				    WTERMSIG(status));
			else
				say("worker %d (pid %d) exited with status %d; restarting", i + 1, (int)pid,
				    WEXITSTATUS(status));
			/* a worker that dies at once again waits a second: no fork storm */
			if (time(NULL) - last_restart[i] < 1)
				sleep(1);
			last_restart[i] = time(NULL);
			pid = spawn(i + 1, parent, oldmask);
			if (pid == 0)
				return;   /* we are the new worker */
			pids[i] = pid;
			alive++;
		}
		if (stopping && alive == 0)
			exit(0);
		if (stopping && time(NULL) > stop_deadline) {
			for (i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGKILL);
		}
	}
}

/* Forks the workers. In each worker returns its index (1..n) with *port
 * resolved; the parent supervises and never returns. */
int
workers_fork(lua_State *L, const char *host, int *port, int n, int sticky, int backlog,
	     int *listen_fd, char *err, size_t errlen)
{
	pid_t pids[MAX_WORKERS], parent = getpid();
	sigset_t set, old;
	int i, reserve = -1, bound = 0;

	if (worker_index)
		luaL_error(L, "'workers' inside a worker process");
	if (n < 1 || n > MAX_WORKERS)
		luaL_error(L, "option 'workers' out of range (1..%d)", MAX_WORKERS);
	/* a context (and its sockets) must not be shared across fork */
	if (core_ctx_exists(L))
		luaL_error(L, "'workers' must come before anything else uses lws (a server, "
			   "client, timer or watch already exists)");
	if (sticky) {
		if (sticky_listeners(host, port, n, backlog, err, errlen))
			return -1;
	} else {
		reserve = reserve_port(host, *port, &bound);
		if (reserve < 0) {
			snprintf(err, errlen, "cannot listen on %s:%d: %s", host, *port,
				 strerror(errno));
			return -1;
		}
		*port = bound;
	}
	fflush(NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, &old);
	for (i = 0; i < n; i++) {
		pid_t pid = spawn(i + 1, parent, &old);

		if (pid == 0)
			goto worker;
		pids[i] = pid;
	}
	supervise(n, pids, parent, &old);
	/* a restarted worker comes back here */
worker:
	if (reserve >= 0)
		close(reserve);
	if (sticky)
		*listen_fd = sticky_take(worker_index);
	return worker_index;
}

static int
l_worker_index(lua_State *L)
{
	lua_pushinteger(L, worker_index);
	return 1;
}

int
workers_open(lua_State *L)
{
	lua_pushcfunction(L, l_worker_index);
	lua_setfield(L, -2, "worker_index");
	return 0;
}
