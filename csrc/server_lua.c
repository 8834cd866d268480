/* server_lua.c: lws.server as Lua sees it: server(opts) (the options
 * read, the vhost, the listening socket or the workers), its methods
 * (port, close, stats, the registry of its connections, send_all) and the
 * type's registration. The object's lifetime and lws's callbacks for its
 * wsi are csrc/server.c's. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "conn.h"
#include "server_private.h"

static struct server *
server_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, SERVER_MT);
}

/* ---- Lua API ------------------------------------------------------------ */

static const char *const server_fields[] = {
	"host", "port", "tls", "max_message_size", "max_queue_bytes", "close_timeout",
	"backlog", "reuseport", "slow_consumer", "max_body_size", "request_timeout", "compression",
	"handshake_timeout", "keepalive_timeout", "workers", "sticky", "rx_buffer_size", "http2", NULL
};

static const char *const compression_fields[] = {
	"server_no_context_takeover", "level", "mem_level", NULL
};

static const char *const tls_fields[] = { "cert", "key", "ca", NULL };

static char *
opt_strdup(lua_State *L, int idx, const char *k)
{
	const char *v = core_opt_str_field(L, idx, k, NULL);

	return v ? strdup(v) : NULL;
}

/* server(opts) -> server | nil, err, code */
static int
l_server(lua_State *L)
{
	struct ctx *x;
	char *cert = NULL, *key = NULL, *ca = NULL;
	lws_adopt_desc_t ad;
	struct server *s;
	const char *host;
	char err[256];
	int port, backlog, reuseport, fd = -1, workers, sticky, http2;

	luaL_checktype(L, 1, LUA_TTABLE);
	core_check_fields(L, 1, server_fields);
	host = core_opt_str_field(L, 1, "host", "127.0.0.1");
	port = (int)core_opt_int_field(L, 1, "port", 0, 0, 65535);
	backlog = (int)core_opt_int_field(L, 1, "backlog", 511, 1, 65535);
	reuseport = core_opt_bool_field(L, 1, "reuseport", 0);
	workers = (int)core_opt_int_field(L, 1, "workers", 0, 0, 256);
	sticky = core_opt_bool_field(L, 1, "sticky", 0);
	if (sticky && !workers)
		luaL_error(L, "option 'sticky' needs 'workers'");
	if (workers) {
		/* before any context exists: the parent never comes back; with
		 * sticky, fd is this worker's listener, made by the parent */
		if (workers_fork(L, host, &port, workers, sticky, backlog, &fd, err,
				 sizeof(err)) < 0)
			return core_push_error(L, err, "listen");
		reuseport = 1;
	}
	x = core_ctx(L);

	s = lua_newuserdatauv(L, sizeof(*s), 1);
	memset(s, 0, sizeof(*s));
	s->kind = KIND_SERVER;
	s->ctx = x;
	s->fd = -1;
	s->self_ref = LUA_NOREF;
	luaL_setmetatable(L, SERVER_MT);
	s->max_message = (size_t)core_opt_int_field(L, 1, "max_message_size",
						    CONN_MAX_MESSAGE_DEFAULT, 0, CONN_LIMIT_MAX);
	s->max_queue = (size_t)core_opt_int_field(L, 1, "max_queue_bytes",
						  CONN_MAX_QUEUE_DEFAULT, 0, CONN_LIMIT_MAX);
	s->close_timeout = (int)core_opt_int_field(L, 1, "close_timeout",
						   CONN_CLOSE_TIMEOUT_DEFAULT, 1, 3600);
	s->http.max_body = (size_t)core_opt_int_field(L, 1, "max_body_size", 1 << 20, 0,
						 (lua_Integer)1 << 40);
	s->http.timeout_s = (int)core_opt_int_field(L, 1, "request_timeout", 60, 0, 86400);
	s->http.home = s;
	s->http.handler_ref = &s->self_ref;
	s->http.closing = &s->closing;
	s->http.push_req = server_push_http_request;
	s->http.h2_in_flight = &s->n_h2_requests;
	s->http.h2_all_done = server_h2_requests_done;
	{
		const char *sc = core_opt_str_field(L, 1, "slow_consumer", "error");

		if (strcmp(sc, "error") && strcmp(sc, "close"))
			luaL_error(L, "option 'slow_consumer' must be \"error\" or \"close\"");
		s->close_on_full = !strcmp(sc, "close");
	}

	lua_getfield(L, 1, "compression");
	if (lua_istable(L, -1)) {
		int t = lua_gettop(L);

		core_check_fields(L, t, compression_fields);
		s->pmd = 1;
		s->pmd_no_context = (uint8_t)core_opt_bool_field(L, t, "server_no_context_takeover", 0);
		s->pmd_level = (int8_t)core_opt_int_field(L, t, "level", 1, 1, 9);
		s->pmd_mem_level = (int8_t)core_opt_int_field(L, t, "mem_level", 8, 1, 9);
	} else if (!lua_isnil(L, -1)) {
		luaL_argcheck(L, lua_isboolean(L, -1), 1, "option 'compression' must be a boolean or a table");
		s->pmd = (uint8_t)lua_toboolean(L, -1);
		s->pmd_level = 1;
		s->pmd_mem_level = 8;
	}
	lua_pop(L, 1);

	lua_getfield(L, 1, "tls");
	if (!lua_isnil(L, -1)) {
		int t = lua_gettop(L);

		luaL_argcheck(L, lua_istable(L, t), 1, "option 'tls' must be a table");
		core_check_fields(L, t, tls_fields);
		if (!core_opt_str_field(L, t, "cert", NULL) || !core_opt_str_field(L, t, "key", NULL))
			luaL_error(L, "option 'tls' needs cert and key");
		cert = opt_strdup(L, t, "cert");
		key = opt_strdup(L, t, "key");
		ca = opt_strdup(L, t, "ca");
		s->tls = 1;
	}
	lua_pop(L, 1);
	http2 = core_opt_bool_field(L, 1, "http2", 0);
	if (http2 && !s->tls)
		/* browsers speak h2 over TLS only; h2c is not offered */
		luaL_error(L, "option 'http2' needs 'tls'");

	/* the vhost first: a bad certificate must not leave a socket behind */
	s->sv = server_vhost_for(x, cert, key, ca,
				 (int)core_opt_int_field(L, 1, "handshake_timeout", 10, 1, 3600),
				 (int)core_opt_int_field(L, 1, "keepalive_timeout", 5, 1, 3600),
				 (int)core_opt_int_field(L, 1, "rx_buffer_size", 2048, 128, 1 << 20),
				 http2);
	if (!s->sv) {
		if (s->tls) {
			/* the files were readable (lua/lws/server.lua checks): say
			 * what OpenSSL found wrong with them */
			lua_getfield(L, 1, "tls");
			lua_getfield(L, -1, "cert");
			lua_getfield(L, -2, "key");
			server_tls_diagnose(lua_tostring(L, -2), lua_tostring(L, -1), err, sizeof(err));
			return core_push_error(L, err, "tls");
		}
		return core_push_error(L, "cannot create the server", "vhost");
	}
	if (fd < 0)
		fd = listen_socket(host, port, backlog, reuseport, err, sizeof(err));
	if (fd < 0)
		return core_push_error(L, err, "listen");
	s->fd = fd;
	s->port = listen_bound_port(fd);
	s->iface = strdup(host);

	memset(&ad, 0, sizeof(ad));
	ad.vh = x->internal;
	ad.type = LWS_ADOPT_RAW_FILE_DESC;
	ad.fd.filefd = fd;
	ad.vh_prot_name = "lws-lua-listen";
	ad.opaque = s;   /* watch_callback: a KIND_SERVER opaque is a listener */
	s->listen_wsi = lws_adopt_descriptor_vhost_via_info(&ad);
	if (!s->listen_wsi) {
		s->fd = -1;   /* lws closed it */
		s->finished = 1;
		return core_push_error(L, "cannot watch the listening socket", "listen");
	}
	s->self_ref = core_ref_self(L, -1);
	x->n_servers++;
	return 1;
}

static int
server_port(lua_State *L)
{
	struct server *s = server_check(L, 1);

	if (s->fd < 0)
		return core_push_error(L, "server is closed", "closed");
	lua_pushinteger(L, s->port);
	return 1;
}

/* close([timeout_s]): stop accepting, close every connection with 1001
 * (queued data first), and after timeout drop what is left. The server's
 * "close" event fires when everything is gone. */
static int
server_close(lua_State *L)
{
	struct server *s = server_check(L, 1);
	lua_Number grace = luaL_optnumber(L, 2, s->close_timeout);
	struct conn *c, *next;

	if (s->closing || s->finished || !s->ctx->lws)
		return 0;
	s->closing = 1;
	/* lws closes the listening socket with its raw wsi; the server is
	 * finished only after that (RAW_CLOSE_FILE: server_listener_closed),
	 * so the port is free once "close" fires */
	if (s->listen_wsi)
		lws_set_timeout(s->listen_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	for (c = s->conns; c; c = next) {
		next = conn_list_next(c);
		if (conn_state(c) == CONN_OPEN)
			conn_request_close(c, 1001, "server closing", 14);
	}
	/* idle keep-alive HTTP connections and unfinished handshakes go now */
	server_sweep(s, 0);
	lws_sul_schedule(s->ctx->lws, 0, &s->sul_force, server_force_close,
			 (lws_usec_t)(grace * LWS_US_PER_SEC));
	server_try_finish(s);
	core_wake(s->ctx);
	return 0;
}

/* c_stats() -> counters kept in C (the Lua layer adds closes by code) */
static int
server_c_stats(lua_State *L)
{
	struct server *s = server_check(L, 1);
	struct conn_counts t = s->closed;
	struct conn *c;

	for (c = s->conns; c; c = conn_list_next(c))
		conn_counts_add(c, &t);
	lua_createtable(L, 0, 10);
#define SET(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
	SET("connections", s->n_conns);
	SET("handshakes", s->n_accepted);
	SET("handshakes_refused", s->n_refused);
	SET("http_requests", s->n_http);
	SET("messages_in", t.msgs_in);
	SET("messages_out", t.msgs_out);
	SET("bytes_in", t.bytes_in);
	SET("bytes_out", t.bytes_out);
	SET("queued_bytes", t.queued);
	SET("dropped", t.drops);
#undef SET
	return 1;
}

static int
server_connections(lua_State *L)
{
	struct server *s = server_check(L, 1);

	lua_pushinteger(L, s->n_conns);
	return 1;
}

/* has_client(ws) -> boolean: ws is one of this server's connections,
 * from its "open" to its "close" (the set server.clients shows) */
static int
server_has_client(lua_State *L)
{
	struct server *s = server_check(L, 1);
	struct conn *c = luaL_testudata(L, 2, CONN_MT);

	lua_pushboolean(L, c && conn_owner_data(c) == s && conn_listed(c));
	return 1;
}

/* core.server_of(ws) -> the server that accepted ws, from its upgrade
 * through its close event; else nil. A connection's server is not kept in
 * its Lua fields: that would be a table slot per connection
 * (bench/README.md, "Idle memory under 2 KiB"). Through its close event the
 * server is alive: it finishes only once its last wsi is destroyed. */
static int
server_of(lua_State *L)
{
	struct conn *c = conn_check(L, 1);
	struct server *s = conn_is_client(c) ? NULL : conn_owner_data(c);

	if (s && s->self_ref != LUA_NOREF)
		lua_rawgeti(L, LUA_REGISTRYINDEX, s->self_ref);
	else
		lua_pushnil(L);
	return 1;
}

/* client_list() -> { ws, ... }: a snapshot, so that a loop over it may
 * close connections */
static int
server_client_list(lua_State *L)
{
	struct server *s = server_check(L, 1);
	struct conn *c;
	int i = 0;

	lua_createtable(L, s->n_conns, 0);
	for (c = s->conns; c; c = conn_list_next(c)) {
		conn_push(c);
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

/* send_all(data[, binary[, except[, opts]]]) -> queued, refused: one
 * shared buffer to every open connection of this server */
static int
server_send_all(lua_State *L)
{
	struct server *s = server_check(L, 1);
	struct conn_many n = { 0 };
	struct msgbuf *m = conn_many_begin(L, 2, &n.except);
	struct conn *c;

	for (c = s->conns; c; c = conn_list_next(c))
		conn_many_offer(c, m, &n);
	return conn_many_end(L, m, &n);
}

static int
server_fields_tbl(lua_State *L)
{
	server_check(L, 1);
	core_push_fields(L, 1);
	return 1;
}

static int
server_tostring(lua_State *L)
{
	struct server *s = server_check(L, 1);

	lua_pushfstring(L, "lws.server (%s:%d, %s)", s->iface ? s->iface : "?", s->port,
			s->finished ? "closed" : s->closing ? "closing" : "listening");
	return 1;
}

static int
server_gc(lua_State *L)
{
	struct server *s = lua_touserdata(L, 1);

	if (!s->finished && s->self_ref != LUA_NOREF)   /* only at lua_close */
		core_finalize_from_gc(s->ctx);
	free(s->iface);
	s->iface = NULL;
	return 0;
}

static const luaL_Reg server_methods[] = {
	{ "port", server_port },
	{ "close", server_close },
	{ "connection_count", server_connections },
	{ "c_stats", server_c_stats },
	{ "has_client", server_has_client },
	{ "client_list", server_client_list },
	{ "send_all", server_send_all },
	{ "fields", server_fields_tbl },
	{ NULL, NULL }
};

int
server_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__newindex", core_fields_newindex }, { "__gc", server_gc },
		{ "__tostring", server_tostring }, { NULL, NULL }
	};

	core_new_type(L, SERVER_MT, server_methods, core_fields_index, meta, "server_methods");
	core_on_destroy(core_state(L), server_vhosts_free);
	core_on_log(core_state(L), server_header_overflow);
	lua_pushcfunction(L, l_server);
	lua_setfield(L, -2, "server");
	lua_pushcfunction(L, server_of);
	lua_setfield(L, -2, "server_of");
	return 0;
}
