/* signal.c: POSIX signals delivered to Lua at a safe point. The handler
 * only writes the signal number into a pipe (async-signal-safe); the pipe
 * is watched by the loop (lws.watch), and Lua runs from there, never
 * inside the handler (luaposix's lesson). Signals are process-wide, so the
 * pipe is too: the one piece of static state here. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

static int sig_pipe[2] = { -1, -1 };

static void
on_signal(int signo)
{
	int saved = errno;
	unsigned char b = (unsigned char)signo;

	if (write(sig_pipe[1], &b, 1) < 0) {
		/* the pipe is full: that signal number is already pending */
	}
	errno = saved;
}

static int
ensure_pipe(void)
{
	if (sig_pipe[0] >= 0)
		return 0;
	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC))
		return -1;
	return 0;
}

/* signal(signo, catch) -> read end of the signal pipe | nil, err
 * catch true: write signo to the pipe on delivery; false: default action */
static int
l_signal(lua_State *L)
{
	int signo = (int)luaL_checkinteger(L, 1), on = lua_toboolean(L, 2);
	struct sigaction sa;

	luaL_argcheck(L, signo > 0 && signo < 64 && signo != SIGKILL && signo != SIGSTOP, 1,
		      "signal cannot be caught");
	if (ensure_pipe())
		return core_push_error(L, strerror(errno), "pipe");
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on ? on_signal : SIG_DFL;
	if (sigaction(signo, &sa, NULL))
		return core_push_error(L, strerror(errno), "sigaction");
	lua_pushinteger(L, sig_pipe[0]);
	return 1;
}

/* signals_pending() -> array of signal numbers delivered since last call */
static int
l_signals_pending(lua_State *L)
{
	unsigned char buf[64];
	ssize_t n;
	int i = 0;

	lua_newtable(L);
	if (sig_pipe[0] < 0)
		return 1;
	while ((n = read(sig_pipe[0], buf, sizeof(buf))) > 0) {
		ssize_t k;

		for (k = 0; k < n; k++) {
			lua_pushinteger(L, buf[k]);
			lua_rawseti(L, -2, ++i);
		}
	}
	return 1;
}

int
signal_open(lua_State *L)
{
	static const struct { const char *name; int no; } sigs[] = {
		{ "SIGHUP", SIGHUP }, { "SIGINT", SIGINT }, { "SIGQUIT", SIGQUIT },
		{ "SIGTERM", SIGTERM }, { "SIGUSR1", SIGUSR1 }, { "SIGUSR2", SIGUSR2 },
		{ "SIGPIPE", SIGPIPE }, { "SIGCHLD", SIGCHLD }, { NULL, 0 }
	};
	int i;

	lua_pushcfunction(L, l_signal);
	lua_setfield(L, -2, "signal");
	lua_pushcfunction(L, l_signals_pending);
	lua_setfield(L, -2, "signals_pending");
	lua_newtable(L);
	for (i = 0; sigs[i].name; i++) {
		lua_pushinteger(L, sigs[i].no);
		lua_setfield(L, -2, sigs[i].name);
	}
	lua_setfield(L, -2, "signals");
	return 0;
}
