-- on / once / off on every kind of object that has events, driven by real
-- events over real sockets: the server ("connection"), a server connection
-- ("message", whose single handler the C layer calls on a fast path), the
-- client lws.WebSocket ("message"), a Socket.IO socket (a client event)
-- and a Socket.IO namespace ("connection").
local H = require "helper"
local lws = H.lws
local socketio = require "lws.socketio"

local function raw_ws(port, path)
	local r = H.raw(port)
	assert.are.equal(101, r:handshake(path or "/", { Host = "127.0.0.1:" .. port }))
	return r
end

-- each kind: make() -> obj, event, fire() (one more event on obj), sync()
-- (returns once every fired event has been delivered, handlers or not)
local kinds = {}

kinds["server"] = function()
	local srv, port = H.server()
	local opened = 0
	local raws = {}
	srv:on("connection", function(ws) opened = opened + 1; ws:on("message", function() end) end)
	local fire = function() raws[#raws + 1] = raw_ws(port) end
	local sync = function()
		H.run_until(function() return opened == #raws end, 5000, "connections")
	end
	return srv, "connection", fire, sync
end

kinds["server connection"] = function()
	local srv, port = H.server()
	local conn
	srv:on("connection", function(ws) conn = ws end)
	local r = raw_ws(port)
	H.run_until(function() return conn end, 5000, "connection")
	local n = 0
	local fire = function() n = n + 1; r:send(H.frame(1, "m" .. n)) end
	-- a Ping after the messages: its Pong means they were all delivered
	local sync = function()
		r:send(H.frame(9, "sync" .. n))
		while true do
			local f = r:read_frame(5000)
			assert(f, "connection closed")
			if f.opcode == 10 and f.payload == "sync" .. n then return end
		end
	end
	return conn, "message", fire, sync
end

kinds["client"] = function()
	local srv, port = H.server()
	local conns = {}
	srv:on("connection", function(ws) conns[#conns + 1] = ws end)
	local ws = lws.WebSocket("ws://127.0.0.1:" .. port .. "/")
	local open, got, sent = false, 0, 0
	ws:on("open", function() open = true end)
	H.run_until(function() return open and #conns == 1 end, 5000, "client open")
	-- a counter registered first; emit order is registration order
	ws:on("message", function() got = got + 1 end)
	local fire = function() sent = sent + 1; assert(conns[1]:send("m" .. sent)) end
	local sync = function() H.run_until(function() return got == sent end, 5000, "client messages") end
	return ws, "message", fire, sync, function() ws:close() end
end

local function sio_server()
	local srv, port = H.server()
	return socketio(srv, {}), port
end

-- a raw Engine.IO 4 websocket client connected to namespace "/"
local function sio_client(port)
	local r = raw_ws(port, "/socket.io/?EIO=4&transport=websocket")
	assert.are.equal("0", r:read_frame(5000).payload:sub(1, 1))
	r:send(H.frame(1, "40"))
	assert.are.equal("40", r:read_frame(5000).payload:sub(1, 2))
	return r
end

kinds["socket.io socket"] = function()
	local sio, port = sio_server()
	local sock
	sio:on("connection", function(s) sock = s end)
	local r = sio_client(port)
	H.run_until(function() return sock end, 5000, "socket.io connection")
	local n, got = 0, 0
	sock:on("tick", function() got = got + 1 end)
	local fire = function() n = n + 1; r:send(H.frame(1, '42["tick",' .. n .. ']')) end
	local sync = function() H.run_until(function() return got == n end, 5000, "socket.io events") end
	return sock, "tick", fire, sync
end

kinds["socket.io namespace"] = function()
	local sio, port = sio_server()
	local nsp = sio:of("/")
	local n, got = 0, 0
	nsp:on("connection", function() got = got + 1 end)
	local fire = function() n = n + 1; sio_client(port) end
	local sync = function() H.run_until(function() return got == n end, 5000, "socket.io connections") end
	return nsp, "connection", fire, sync
end

for _, name in ipairs { "server", "server connection", "client", "socket.io socket", "socket.io namespace" } do
	describe("emitter on a " .. name, function()
		local make = kinds[name]
		local cleanup
		after_each(function()
			if cleanup then cleanup() end
			cleanup = nil
			H.clean()
		end)

		it("runs a once() handler one time only, also when it is the only handler", function()
			local obj, ev, fire, sync, done = make()
			cleanup = done
			local calls = 0
			assert.are.equal(obj, obj:once(ev, function() calls = calls + 1 end))
			fire(); fire(); fire()
			sync()
			assert.are.equal(1, calls)
		end)

		it("removes a once() handler with off(event, fn)", function()
			local obj, ev, fire, sync, done = make()
			cleanup = done
			local calls = 0
			local fn = function() calls = calls + 1 end
			obj:once(ev, fn)
			obj:off(ev, fn)
			fire()
			sync()
			assert.are.equal(0, calls)
		end)

		it("runs several handlers in the order they were added; off removes one", function()
			local obj, ev, fire, sync, done = make()
			cleanup = done
			local order = {}
			local a = function() order[#order + 1] = "a" end
			local b = function() order[#order + 1] = "b" end
			obj:on(ev, a)
			obj:on(ev, b)
			fire()
			sync()
			assert.are.same({ "a", "b" }, order)
			obj:off(ev, a)
			fire()
			sync()
			assert.are.same({ "a", "b", "b" }, order)
			if name == "server connection" then   -- sync needs no handler of ours
				obj:off(ev)
				fire()
				sync()
				assert.are.same({ "a", "b", "b" }, order)
			end
		end)

		it("lets a handler remove another during emit: it still runs this time, not the next", function()
			local obj, ev, fire, sync, done = make()
			cleanup = done
			local order = {}
			local b = function() order[#order + 1] = "b" end
			obj:on(ev, function() order[#order + 1] = "a"; obj:off(ev, b) end)
			obj:on(ev, b)
			fire()
			sync()
			fire()
			sync()
			assert.are.same({ "a", "b", "a" }, order)
		end)
	end)
end
