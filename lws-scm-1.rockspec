rockspec_format = "3.0"
package = "lws"
version = "scm-1"
source = {
   url = "git+https://example.invalid/lws.git",
}
description = {
   summary = "WebSocket servers and clients for Lua 5.4 over libwebsockets",
   detailed = [[
      A C core over libwebsockets 4.1 (the event loop, timers, servers,
      clients, connections and messages) and a Lua layer with a server
      shaped like Node's ws, a browser-shaped client, heartbeat and
      reconnect, broadcast and pub/sub, HTTP routes and static files on
      the same port, and a Socket.IO-compatible server.
   ]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   WEBSOCKETS = {
      header = "libwebsockets.h",
      library = "websockets",
   },
   HIREDIS = {
      header = "hiredis/async.h",
      library = "hiredis",
   },
   OPENSSL = {
      header = "openssl/ssl.h",
      library = "ssl",
   },
   ZLIB = {
      header = "zlib.h",
      library = "z",
   },
   LIBEV = {
      header = "ev.h",
      library = "ev",
   },
   LIBCRYPT = {
      header = "crypt.h",
      library = "crypt",
   },
}
build = {
   type = "builtin",
   modules = {
      ["lws.core"] = {
         sources = {
            "csrc/client.c", "csrc/conn.c", "csrc/conn_lua.c", "csrc/conn_read.c", "csrc/conn_write.c", "csrc/core.c",
            "csrc/core_call.c", "csrc/core_hooks.c", "csrc/crypt.c", "csrc/deflate.c",
            "csrc/evloop.c", "csrc/files.c", "csrc/frame.c", "csrc/http2.c", "csrc/http_head.c", "csrc/listen.c", "csrc/lws_core.c",
            "csrc/luatype.c", "csrc/msgbuf.c", "csrc/msgpack.c", "csrc/proto.c", "csrc/redis.c", "csrc/request.c",
            "csrc/request_body.c", "csrc/request_reply.c", "csrc/server.c", "csrc/server_lua.c", "csrc/server_upgrade.c", "csrc/server_vhost.c",
            "csrc/signal.c",
            "csrc/timer.c", "csrc/tls_client.c", "csrc/watch.c", "csrc/workers.c",
         },
         libraries = { "websockets", "hiredis", "ssl", "crypto", "z", "ev", "crypt" },
         incdirs = { "$(WEBSOCKETS_INCDIR)", "$(HIREDIS_INCDIR)", "$(OPENSSL_INCDIR)", "$(ZLIB_INCDIR)",
            "$(LIBEV_INCDIR)", "$(LIBCRYPT_INCDIR)" },
         libdirs = { "$(WEBSOCKETS_LIBDIR)", "$(HIREDIS_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(ZLIB_LIBDIR)",
            "$(LIBEV_LIBDIR)", "$(LIBCRYPT_LIBDIR)" },
         defines = {},
      },
      ["lws"] = "lua/lws/init.lua",
      ["lws.emitter"] = "lua/lws/emitter.lua",
      ["lws.options"] = "lua/lws/options.lua",
      ["lws.cli"] = "lua/lws/cli.lua",
      ["lws.server"] = "lua/lws/server.lua",
      ["lws.http"] = "lua/lws/http.lua",
      ["lws.pubsub"] = "lua/lws/pubsub.lua",
      ["lws.ops"] = "lua/lws/ops.lua",
      ["lws.heartbeat"] = "lua/lws/heartbeat.lua",
      ["lws.websocket"] = "lua/lws/websocket.lua",
      ["lws.redis"] = "lua/lws/redis.lua",
      ["lws.bus"] = "lua/lws/bus.lua",
      ["lws.json"] = "lua/lws/json.lua",
      ["lws.msgpack"] = "lua/lws/msgpack.lua",
      ["lws.socketio"] = "lua/lws/socketio/init.lua",
      ["lws.socketio.engine"] = "lua/lws/socketio/engine.lua",
      ["lws.socketio.parser"] = "lua/lws/socketio/parser.lua",
      ["lws.socketio.cluster"] = "lua/lws/socketio/cluster.lua",
      ["lws.socketio.common"] = "lua/lws/socketio/common.lua",
      ["lws.socketio.adapter"] = "lua/lws/socketio/adapter.lua",
      ["lws.socketio.operator"] = "lua/lws/socketio/operator.lua",
      ["lws.socketio.socket"] = "lua/lws/socketio/socket.lua",
      ["lws.socketio.namespace"] = "lua/lws/socketio/namespace.lua",
      ["lws.socketio.redis_adapter"] = "lua/lws/socketio/redis_adapter.lua",
      ["lws.socketio.redis_sharded"] = "lua/lws/socketio/redis_sharded.lua",
      ["lws.socketio.redis_streams"] = "lua/lws/socketio/redis_streams.lua",
      ["lws.socketio.msgpack_parser"] = "lua/lws/socketio/msgpack_parser.lua",
      ["lws.socketio.admin"] = "lua/lws/socketio/admin.lua",
   },
   -- the Socket.IO browser bundles served at /socket.io/socket.io.js: a
   -- dotted key names the directory (lws/socketio/clientN/), the file keeps
   -- its own name
   -- lua-language-server definitions: lib/luarocks/rocks-5.4/lws/<version>/types
   copy_directories = { "types" },
   install = {
      -- the lws command (connect / serve / bench)
      bin = { lws = "bin/lws" },
      lua = {
         ["lws.socketio.client2.socket_io_js"] = "lua/lws/socketio/client2/socket.io.js",
         ["lws.socketio.client2.socket_io_js_map"] = "lua/lws/socketio/client2/socket.io.js.map",
         ["lws.socketio.client2.LICENSE"] = "lua/lws/socketio/client2/LICENSE",
         ["lws.socketio.client4.LICENSE"] = "lua/lws/socketio/client4/LICENSE",
         ["lws.socketio.client4.socket_io_js"] = "lua/lws/socketio/client4/socket.io.js",
         ["lws.socketio.client4.socket_io_js_map"] = "lua/lws/socketio/client4/socket.io.js.map",
         ["lws.socketio.client4.socket_io_min_js"] = "lua/lws/socketio/client4/socket.io.min.js",
         ["lws.socketio.client4.socket_io_min_js_map"] = "lua/lws/socketio/client4/socket.io.min.js.map",
         ["lws.socketio.client4.socket_io_esm_min_js"] = "lua/lws/socketio/client4/socket.io.esm.min.js",
         ["lws.socketio.client4.socket_io_esm_min_js_map"] = "lua/lws/socketio/client4/socket.io.esm.min.js.map",
         ["lws.socketio.client4.socket_io_msgpack_min_js"] = "lua/lws/socketio/client4/socket.io.msgpack.min.js",
         ["lws.socketio.client4.socket_io_msgpack_min_js_map"] =
            "lua/lws/socketio/client4/socket.io.msgpack.min.js.map",
      },
   },
}
