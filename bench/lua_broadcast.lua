-- Broadcast server for the benchmarks: every message goes to every client,
-- the sender included (one shared buffer for all recipients).
--   bin/lws-lua bench/lua_broadcast.lua --port 0
local lws = require "lws"

local port = 0
for i = 1, #arg do if arg[i] == "--port" then port = tonumber(arg[i + 1]) end end
local server = assert(lws.server { host = "127.0.0.1", port = port, max_queue_bytes = 64 << 20 })
server:on("connection", function(ws)
	ws:on("message", function(data, binary) server:broadcast(data, binary) end)
end)
lws.on_signal("SIGTERM", function() lws.stop() end)
lws.on_signal("SIGINT", function() lws.stop() end)
io.stdout:write(("listening on ws://127.0.0.1:%d/\n"):format(server:port()))
io.stdout:flush()
lws.run()
