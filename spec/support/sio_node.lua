-- One Socket.IO node of spec/socketio_cluster_spec.lua: a server whose
-- broadcasts cross an lws.bus on a shared Redis, driven by its clients.
--   bin/lws-lua spec/support/sio_node.lua --port 0 --redis PORT [--workers N]
-- Prints "listening on http://127.0.0.1:PORT/" first (worker 1 only).
local lws = require "lws"
local socketio = require "lws.socketio"

local opts = { host = "127.0.0.1", port = 0 }
local redis_port
local i = 1
while arg[i] do
	local a, v = arg[i], arg[i + 1]
	if a == "--port" then opts.port = assert(math.tointeger(tonumber(v)))
	elseif a == "--redis" then redis_port = assert(math.tointeger(tonumber(v)))
	elseif a == "--workers" then opts.workers = assert(math.tointeger(tonumber(v)))
	else error("unknown argument " .. a) end
	i = i + 2
end

local server = assert(lws.server(opts))
local bus = lws.bus { redis = { port = redis_port, reconnect = { min = 50, max = 300 } },
	channel = "sio-spec" }
local sio = socketio(server, { bus = bus })
local node = require("lws.bus").default_node_id()

sio:on("connection", function(socket)
	socket:on("whoami", function(ack) ack(node, socket.id) end)
	socket:on("ready", function(ack) ack(bus:ready()) end)
	socket:on("join", function(room, ack) socket:join(room); ack(true) end)
	socket:on("leave", function(room, ack) socket:leave(room); ack(true) end)
	socket:on("all", function(text) sio:emit("msg", text) end)
	socket:on("local", function(text) sio["local"]:emit("msg", text) end)
	socket:on("others", function(text) socket.broadcast:emit("msg", text) end)
	socket:on("to", function(room, text) sio:to(room):emit("msg", text) end)
	socket:on("to_except", function(room, except, text) sio:to(room):except(except):emit("msg", text) end)
	socket:on("socket_to", function(room, text) socket:to(room):emit("msg", text) end)
	socket:on("bin", function(n)
		local bytes = {}
		for b = 0, n - 1 do bytes[#bytes + 1] = string.char(b % 256) end
		sio:emit("bin", socketio.binary(table.concat(bytes)), n)
	end)
	socket:on("nsp", function(text) sio:of("/admin"):emit("msg", text) end)
	socket:on("move", function(from, to) sio:in_(from):sockets_join(to) end)
	socket:on("kick", function(room) sio:in_(room):disconnect_sockets(true) end)
end)
sio:of("/admin"):on("connection", function() end)

if lws.worker_index() <= 1 then
	io.stdout:write(("listening on http://127.0.0.1:%d/\n"):format(server:port()))
	io.stdout:flush()
end
lws.run()
