-- One Lua node of the Socket.IO cluster benchmark (bench/sio_cluster/run):
-- lws.socketio with lws.socketio.redis_adapter (the wire of
-- @socket.io/redis-adapter 8), so io:emit reaches every node's clients.
-- The event "pub" from a client is broadcast to everyone as "b".
--   bin/lws-lua bench/sio_cluster/lua_node.lua --port 0 --redis PORT [--adapter streams]
-- With --adapter streams: lws.socketio.redis_streams_adapter (the wire of
-- @socket.io/redis-streams-adapter 0.3) and connection state recovery.
-- Prints "listening on ws://127.0.0.1:PORT/" first.
local lws = require "lws"
local socketio = require "lws.socketio"

local port, redis_port, kind = 0, nil, "classic"
for i = 1, #arg, 2 do
	if arg[i] == "--port" then port = assert(math.tointeger(tonumber(arg[i + 1])))
	elseif arg[i] == "--redis" then redis_port = assert(math.tointeger(tonumber(arg[i + 1])))
	elseif arg[i] == "--adapter" then kind = assert(arg[i + 1])
	else error("unknown argument " .. arg[i]) end
end
assert(redis_port, "--redis PORT is required")

-- max_queue_bytes as bench/lua_broadcast.lua: a slow reader is not cut off
-- while the benchmark's window of messages is in flight
local server = assert(lws.server { host = "127.0.0.1", port = port, max_queue_bytes = 64 << 20 })
local opts
if kind == "streams" then
	opts = { adapter = socketio.redis_streams_adapter { port = redis_port },
		connection_state_recovery = { max_disconnection_duration = 120000 } }
else
	assert(kind == "classic", "--adapter classic|streams")
	opts = { adapter = socketio.redis_adapter { port = redis_port, key = "socket.io" } }
end
local io_ = socketio(server, opts)
io_:on("connection", function(socket)
	socket:on("pub", function(payload) io_:emit("b", payload) end)
end)
lws.on_signal("SIGTERM", function() lws.stop() end)
lws.on_signal("SIGINT", function() lws.stop() end)
io.stdout:write(("listening on ws://127.0.0.1:%d/\n"):format(server:port()))
io.stdout:flush()
lws.run()
