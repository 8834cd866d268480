/*
 * uws_server: the uWebSockets (uWS) echo and broadcast servers the
 * benchmarks compare against, written the way uWS's own examples are
 * (examples/EchoServer.cpp, examples/Broadcast.cpp): one uWS::App, one
 * ws() behaviour on every path, the default uSockets epoll loop, no TLS, no
 * permessage-deflate. uWS is not in the repository: bench/build-uws
 * builds this file against sources fetched at bench time (bench/README.md,
 * "uWebSockets").
 *
 *   uws_server echo --port N        every message back to its sender
 *   uws_server broadcast --port N   every message to every connection,
 *                                   the sender included (one topic, the
 *                                   App's publish: uWS's own fan-out)
 *
 * Same contract as the other peers: binds 127.0.0.1 (port 0 = any free
 * one), prints "listening on ws://127.0.0.1:PORT/" as its first stdout
 * line, and on SIGTERM/SIGINT prints its count on stderr, closes every
 * connection with 1001 and exits.
 */
#include "App.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>

namespace {

struct PerSocketData {};
using WS = uWS::WebSocket<false, true, PerSocketData>;

volatile std::sig_atomic_t stop_requested = 0;
bool stopping = false;
int stop_ticks = 0;
unsigned long messages = 0;   // echoed, or received for broadcast
unsigned long frames = 0;     // broadcast: deliveries handed to uWS
std::unordered_set<WS *> open_sockets;
us_listen_socket_t *listener = nullptr;
uWS::App *app = nullptr;
bool broadcast = false;

void on_signal(int) { stop_requested = 1; }

// A signal handler cannot touch the loop: a 100 ms timer looks at the
// flag, then gives the connections up to 1 s to finish their close.
void tick(us_timer_t *t) {
	if (!stop_requested)
		return;
	if (!stopping) {
		stopping = true;
		if (broadcast)
			std::fprintf(stderr, "uws_broadcast: %lu messages received, %lu frames written\n",
				     messages, frames);
		else
			std::fprintf(stderr, "uws_echo: %lu messages echoed\n", messages);
		if (listener)
			us_listen_socket_close(0, listener);
		listener = nullptr;
		// end() runs the close handler, which erases from the set
		std::unordered_set<WS *> all = open_sockets;
		for (WS *ws : all)
			ws->end(1001);
	}
	if (open_sockets.empty() || ++stop_ticks > 10) {
		app->close();   // what is left, at the TCP level
		us_timer_close(t);
	}
}

int usage() {
	std::fprintf(stderr, "usage: uws_server echo|broadcast --port N\n");
	return 2;
}

} // namespace

int main(int argc, char **argv) {
	int port = -1;

	if (argc < 2)
		return usage();
	if (!std::strcmp(argv[1], "broadcast"))
		broadcast = true;
	else if (std::strcmp(argv[1], "echo"))
		return usage();
	for (int i = 2; i + 1 < argc; i++)
		if (!std::strcmp(argv[i], "--port"))
			port = std::atoi(argv[i + 1]);
	if (port < 0 || port > 65535)
		return usage();

	std::signal(SIGTERM, on_signal);
	std::signal(SIGINT, on_signal);
	std::signal(SIGPIPE, SIG_IGN);

	uWS::App server;
	app = &server;
	server.ws<PerSocketData>("/*", {
		.compression = uWS::DISABLED,
		// the other peers take messages this big (loadgen's big echo)
		.maxPayloadLength = 16 * 1024 * 1024,
		// no idle timeout and no pings of its own (the other peers send
		// none); the idle suite holds connections silent
		.idleTimeout = 0,
		// 64 KiB by default, past which uWS drops messages: a broadcast
		// receiver would count them missing. Node's ws buffers without a
		// limit; 16 MiB is far beyond any suite's window.
		.maxBackpressure = 16 * 1024 * 1024,
		.closeOnBackpressureLimit = false,
		.resetIdleTimeoutOnSend = false,
		.sendPingsAutomatically = false,
		.upgrade = nullptr,
		.open = [](WS *ws) {
			open_sockets.insert(ws);
			if (broadcast)
				ws->subscribe("all");
		},
		.message = [](WS *ws, std::string_view message, uWS::OpCode op) {
			messages++;
			if (broadcast) {
				frames += open_sockets.size();
				app->publish("all", message, op);
			} else {
				ws->send(message, op);
			}
		},
		.close = [](WS *ws, int, std::string_view) {
			open_sockets.erase(ws);
		},
	}).listen("127.0.0.1", port, [](us_listen_socket_t *ls) {
		listener = ls;
	});
	if (!listener) {
		std::fprintf(stderr, "uws_server: cannot listen on 127.0.0.1:%d\n", port);
		return 1;
	}
	std::printf("listening on ws://127.0.0.1:%d/\n",
		    us_socket_local_port(0, reinterpret_cast<us_socket_t *>(listener)));
	std::fflush(stdout);

	us_timer_t *t = us_create_timer(reinterpret_cast<us_loop_t *>(uWS::Loop::get()), 0, 0);
	us_timer_set(t, tick, 100, 100);
	server.run();
	return 0;
}
