/* server_upgrade.c: a server's WebSocket upgrades: the strict checks of
 * the request (RFC 6455 4.2.1), the request table Lua's hooks see (also
 * for plain HTTP requests), the upgrade hook's answer, permessage-deflate
 * negotiated (csrc/deflate.c), our own 101, and the connection linked to
 * its server (csrc/server.c owns the server and lws's callbacks). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"
#include "conn.h"
#include "http2.h"
#include "server_private.h"

static int server_own_upgrade(struct server *s, struct conn *c, struct lws *wsi,
			      const char *protos, int plen);
static void server_conn_gone(struct conn *c);
static void server_link_conn(struct server *s, struct conn *c);

/* ---- handshake ------------------------------------------------------------ */

static int
hdr_len(struct lws *wsi, enum lws_token_indexes t)
{
	return lws_hdr_total_length(wsi, t);
}

/* A copy of a header (all fragments), NUL-terminated, or NULL. */

static int
refuse(struct server *s, struct lws *wsi, int status, const char *extra, const char *msg)
{
	s->n_refused++;
	/* an HTTP/1.1 status line: say that we close (lws would keep a
	 * keep-alive connection open and close a first request's) */
	if (extra) {
		size_t n = strlen(extra);
		char *both = malloc(n + 20);

		if (!both)
			return -1;
		memcpy(both, extra, n);
		memcpy(both + n, "connection: close\r\n", 20);
		http_reply(wsi, status, both, msg, strlen(msg));
		free(both);
	} else {
		http_reply(wsi, status, "connection: close\r\n", msg, strlen(msg));
	}
	return -1;   /* lws flushes what it buffered, then closes */
}

static void
push_header_table(lua_State *L, struct lws *wsi)
{
	int t;

	lua_newtable(L);
	for (t = 0; t < WSI_TOKEN_COUNT; t++) {
		const char *name = (const char *)lws_token_to_string((enum lws_token_indexes)t);
		size_t nl;
		char *v;

		if (!name || !*name || *name == ':' || hdr_len(wsi, (enum lws_token_indexes)t) <= 0)
			continue;
		nl = strlen(name);
		if (name[nl - 1] != ':')
			continue;   /* request-line pseudo tokens ("get ", "http/1.1 ") */
		v = http_hdr_dup(wsi, (enum lws_token_indexes)t, NULL);
		if (!v)
			continue;
		lua_pushlstring(L, name, nl - 1);
		lua_pushstring(L, v);
		lua_rawset(L, -3);
		free(v);
	}
	if (http2_stream(wsi) && hdr_len(wsi, WSI_TOKEN_HTTP_COLON_AUTHORITY) > 0) {
		/* h2 carries Host as :authority (RFC 9113 8.3.1) */
		char *v = http_hdr_dup(wsi, WSI_TOKEN_HTTP_COLON_AUTHORITY, NULL);

		if (v) {
			lua_pushstring(L, v);
			lua_setfield(L, -2, "host");
			free(v);
		}
	}
}

static void
push_query_table(lua_State *L, struct lws *wsi, luaL_Buffer *raw)
{
	char frag[4096];
	int i, n;

	lua_newtable(L);
	for (i = 0; (n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS,
					       i)) > 0; i++) {
		char *eq = strchr(frag, '=');

		if (raw) {
			luaL_addchar(raw, i ? '&' : '?');
			luaL_addlstring(raw, frag, (size_t)n);
		}
		if (eq) {
			lua_pushlstring(L, frag, (size_t)(eq - frag));
			lua_pushstring(L, eq + 1);
		} else {
			lua_pushstring(L, frag);
			lua_pushliteral(L, "");
		}
		lua_rawset(L, -3);
	}
}

static void
add_token(void *ud, const char *tok, size_t n)
{
	lua_State *L = ud;

	lua_pushlstring(L, tok, n);
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

/* Pushes the request table the upgrade hook and "connection" see. */
static void
push_request(lua_State *L, struct lws *wsi, const char *method, const char *protos, int plen)
{
	char *uri = NULL, *path, *ver, addr[64];
	int ulen = 0;
	luaL_Buffer url;

	/* the request line's path, whatever the method */
	if (lws_http_get_uri_and_method(wsi, &uri, &ulen) < 0)
		uri = NULL;
	path = uri && ulen > 0 ? strndup(uri, (size_t)ulen) : NULL;
	lua_createtable(L, 0, 10);
	lua_pushstring(L, method);
	lua_setfield(L, -2, "method");
	lua_pushstring(L, path ? path : "/");
	lua_setfield(L, -2, "path");
	luaL_buffinit(L, &url);
	luaL_addstring(&url, path ? path : "/");
	free(path);
	push_query_table(L, wsi, &url);   /* buffer below the query table */
	lua_insert(L, -2);
	luaL_pushresult(&url);
	lua_setfield(L, -3, "url");
	lua_setfield(L, -2, "query");
	push_header_table(L, wsi);
	lua_setfield(L, -2, "headers");
	ver = http2_stream(wsi) ? NULL : http_hdr_dup(wsi, WSI_TOKEN_HTTP, NULL);
	lua_pushstring(L, http2_stream(wsi) ? "HTTP/2" : ver ? ver : "HTTP/1.0");
	lua_setfield(L, -2, "http_version");
	free(ver);
	if (lws_get_peer_simple(wsi, addr, sizeof(addr))) {
		lua_pushstring(L, addr);
		lua_setfield(L, -2, "remote_address");
	}
	lua_newtable(L);
	if (protos)
		proto_token_list(protos, (size_t)plen, add_token, L);
	lua_setfield(L, -2, "protocols");
}

void
server_push_http_request(lua_State *L, struct lws *wsi, const char *method)
{
	push_request(L, wsi, method, NULL, 0);
}

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE for "websocket": the strict checks,
 * then Lua. Returns 0 to let lws upgrade, -1 after writing a refusal (or
 * to hang up). */
int
server_confirm_upgrade(struct server *s, struct lws *wsi, char *upgrade)
{
	struct ctx *x = s->ctx;
	lua_State *L = x->L;
	char *conn_hdr, *key, *ver, *protos, *http;
	const char *method = "GET";
	int klen = 0, plen = 0, bad = 0, top = lua_gettop(L), accept, rc;
	struct conn *c;

	if (s->closing)
		return refuse(s, wsi, 503, "Retry-After: 1\r\n", "server is shutting down");
	if (hdr_len(wsi, WSI_TOKEN_GET_URI) <= 0)
		return refuse(s, wsi, 400, NULL, "WebSocket upgrade must use GET");
	http = http_hdr_dup(wsi, WSI_TOKEN_HTTP, NULL);
	bad = !http || strcmp(http, "HTTP/1.1");
	free(http);
	if (bad)
		return refuse(s, wsi, 400, NULL, "WebSocket upgrade needs HTTP/1.1");
	if (hdr_len(wsi, WSI_TOKEN_HOST) <= 0)
		return refuse(s, wsi, 400, NULL, "missing Host header");
	conn_hdr = http_hdr_dup(wsi, WSI_TOKEN_CONNECTION, &klen);
	bad = !conn_hdr || !proto_list_has(conn_hdr, (size_t)klen, "upgrade");
	free(conn_hdr);
	if (bad)
		return refuse(s, wsi, 400, NULL, "Connection header must contain 'Upgrade'");
	key = http_hdr_dup(wsi, WSI_TOKEN_KEY, &klen);
	bad = !key || !proto_key_valid(key, (size_t)klen);
	free(key);
	if (bad)
		return refuse(s, wsi, 400, NULL, "missing or invalid Sec-WebSocket-Key header");
	ver = http_hdr_dup(wsi, WSI_TOKEN_VERSION, NULL);
	bad = !ver || strcmp(ver, "13");
	free(ver);
	if (bad)
		return refuse(s, wsi, 426, "Sec-WebSocket-Version: 13\r\n",
			      "unsupported Sec-WebSocket-Version (this server speaks 13)");
	protos = http_hdr_dup(wsi, WSI_TOKEN_PROTOCOL, &plen);
	if (protos && (plen > 126 || proto_token_list(protos, (size_t)plen, NULL, NULL) < 0)) {
		free(protos);
		return refuse(s, wsi, 400, NULL, "invalid Sec-WebSocket-Protocol header");
	}

	/* the connection object exists from here, so the hook can keep it */
	{
		struct conn_owner o = { .data = s, .homed = 1, .gone = server_conn_gone,
					.max_message = s->max_message, .max_queue = s->max_queue,
					.close_timeout = s->close_timeout,
					.close_on_full = s->close_on_full };

		c = conn_new(L, x, &o);
	}
	conn_attach(c, wsi);   /* pins; userdata stays on the stack */

	if (core_dispatch_prepare(x, s->self_ref, "upgrade")) {
		free(protos);
		lua_settop(L, top);
		conn_release_unopened(c);
		return refuse(s, wsi, 503, NULL, "server is not ready");
	}
	lua_pushvalue(L, top + 1);   /* conn */
	push_request(L, wsi, method, protos, plen);
	if (core_call(x, 4, 4)) {
		free(protos);
		lua_settop(L, top);
		conn_release_unopened(c);
		return refuse(s, wsi, 500, NULL, "internal error in upgrade handler");
	}
	/* results: accept, protocol|status, headers, body */
	accept = lua_toboolean(L, -4);
	if (!accept) {
		int status = (int)luaL_optinteger(L, -3, 400);
		const char *body = lua_tostring(L, -1);
		const char *extra = lua_tostring(L, -2);

		if (status < 300 || status > 599)
			status = 400;
		refuse(s, wsi, status, extra, body ? body : "upgrade refused");
		free(protos);
		lua_settop(L, top);
		conn_release_unopened(c);
		return -1;
	}
	rc = server_own_upgrade(s, c, wsi, protos, plen);
	free(protos);
	lua_settop(L, top);
	if (rc == 0)
		*upgrade = '\0';   /* see server_own_upgrade */
	return rc;
}

/* An upgrade the hook accepted, to be answered by us: its results are on
 * the stack (accept, protocol, headers, body). We want lws to take the
 * request as answered and keep the socket for our frames
 * (lws_http_transaction_completed), which it only does for a keep-alive
 * request, and it reads Connection: for that in lws_http_action, after
 * this callback. So the caller blanks the Upgrade header (lws then serves
 * the request as plain HTTP, as for h2c) and our 101 is written from the
 * LWS_CALLBACK_HTTP that follows (server_switch). Returns 0, or -1 after
 * a refusal. */
static int
server_own_upgrade(struct server *s, struct conn *c, struct lws *wsi, const char *protos,
		   int plen)
{
	lua_State *L = s->ctx->L;
	struct pmd_answer ans;
	struct pmd *z = NULL;
	const char *extra = NULL;
	char *ext;
	int elen = 0;

	if (lua_type(L, -3) == LUA_TSTRING) {
		const char *chosen = lua_tostring(L, -3);

		if (!protos || !proto_list_has(protos, (size_t)plen, chosen)) {
			conn_release_unopened(c);
			return refuse(s, wsi, 500, NULL,
				      "upgrade hook chose a subprotocol the client did not offer");
		}
		conn_set_protocol(c, strdup(chosen));
	}
	if (lua_type(L, -2) == LUA_TSTRING)
		extra = lua_tostring(L, -2);
	/* permessage-deflate: the first offer we can honour, answered in the
	 * 101 ahead of the hook's own header lines */
	ext = s->pmd ? http_hdr_dup(wsi, WSI_TOKEN_EXTENSIONS, &elen) : NULL;
	if (ext && pmd_negotiate(ext, (size_t)elen, s->pmd_no_context, &ans) == 0)
		z = pmd_new(&ans, s->pmd_level, s->pmd_mem_level);
	free(ext);
	conn_set_deflate(c, z);
	if (z || extra) {
		size_t n = (z ? ans.len + 32 : 0) + (extra ? strlen(extra) : 0) + 1;
		char *h = malloc(n);

		if (h)
			snprintf(h, n, "%s%s%s%s", z ? "sec-websocket-extensions: " : "",
				 z ? ans.text : "", z ? "\r\n" : "", extra ? extra : "");
		conn_set_reply_headers(c, h);
	}
	conn_take_events(c);   /* the 101 is still to be written: state CONNECTING */
	return 0;
}

/* LWS_CALLBACK_HTTP of an upgrade server_own_upgrade accepted: our 101,
 * then the connection is open and its frames are ours (csrc/conn.c) */
int
server_switch(struct server *s, struct conn *c, struct lws *wsi)
{
	char *key = http_hdr_dup(wsi, WSI_TOKEN_KEY, NULL), *extra = conn_take_reply_headers(c);
	int bad = !key || http_switching(wsi, key, conn_protocol(c), NULL, extra);

	free(key);
	free(extra);
	if (bad) {
		conn_release_unopened(c);
		return -1;
	}
	conn_own_framing(c);
	if (lws_http_transaction_completed(wsi)) {
		conn_release_unopened(c);
		return -1;
	}
	s->n_accepted++;
	if (s->closing) {   /* never announced: not one of its clients */
		conn_close_unannounced(c, 1001, "server closing", 14);
		return 0;
	}
	server_link_conn(s, c);
	return conn_established(c);
}

static void
server_conn_gone(struct conn *c)
{
	struct server *s = conn_owner_data(c);

	conn_counts_add(c, &s->closed);
	if (conn_list_remove(&s->conns, c))
		s->n_conns--;
}

static void
server_link_conn(struct server *s, struct conn *c)
{
	conn_list_add(&s->conns, c);
	s->n_conns++;
}

