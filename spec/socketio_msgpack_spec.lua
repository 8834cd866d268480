-- lws.socketio with parser = "msgpack" against socket.io-client 4 using
-- socket.io-msgpack-parser 3 (spec/peers/sio_peer.js): connect with auth,
-- events and acks both ways, binary anywhere in the arguments, rooms and
-- namespaces, over websocket, polling and the upgrade; a client sending
-- what is not a msgpack packet loses only its own session.
local H = require "helper"
local json = require "lws.json"
local socketio = require "lws.socketio"
local mp = require "lws.msgpack"
local P = require "lws.socketio.msgpack_parser"

local PEER = H.ROOT .. "/spec/peers/sio_peer.js"

local MODES = {
	{ name = "websocket", transports = { "websocket" } },
	{ name = "polling", transports = { "polling" } },
	{ name = "upgrade", upgrade = true },
}

local function connect(p, id, mode, port, extra)
	local c = { cmd = "connect", id = id, version = "4", transports = mode.transports, parser = "msgpack",
		url = "http://127.0.0.1:" .. port, events = { "msg", "bin", "ask" }, ackReply = { id, { ok = true } } }
	for k, v in pairs(extra or {}) do c[k] = v end
	p:cmd(c)
	local ev = p:wait("connect", 10000, function(e) return e.id == id end)
	if mode.upgrade then p:wait("upgrade", 10000, function(e) return e.id == id end) end
	return ev
end

local function hex(s) return (s:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end)) end

describe("socket.io msgpack parser", function()
	after_each(H.clean)

	it("writes and reads socket.io-msgpack-parser's packets", function()
		local _, bins = P.encode(2, "/", nil, { n = 3, "ev", 1, nil }, true)
		-- what the Node parser writes for { type: 2, data: ["ev", 1, null], nsp: "/" }
		assert.are.equal("83a47479706502a46461746193a2657601c0a36e7370a12f", hex(bins[1]))
		local p = P.decode(bins[1])
		assert.are.same({ type = 2, nsp = "/", data = json.array { "ev", 1, json.null } }, p)
		_, bins = P.encode(3, "/admin", "7", { n = 0 }, true)
		p = P.decode(bins[1])
		assert.are.equal(7, p.id)
		assert.is_true(json.is_array(p.data))
		local rows = {
			{ { type = 9, nsp = "/" }, "invalid packet type" },
			{ { type = 2, nsp = 1, data = { "x" } }, "invalid namespace" },
			{ { type = 2, nsp = "/", data = json.object { a = 1 } }, "invalid payload" },
			{ { type = 0, nsp = "/", data = json.array { 1 } }, "invalid payload" },
			{ { type = 1, nsp = "/", data = "x" }, "invalid payload" },
			{ { type = 2, nsp = "/", data = { "x" }, id = 1.5 }, "invalid packet id" },
			{ json.array { 1 }, "invalid packet" },
		}
		for _, r in ipairs(rows) do
			local v, err = P.decode(mp.encode(r[1]))
			assert.is_nil(v)
			assert.are.equal(r[2], err)
		end
		assert.are.equal("msgpack: a byte that is no msgpack type at byte 0", select(2, P.decode("\xc1")))
	end)

	for _, mode in ipairs(MODES) do
		it("talks to socket.io-client 4 with the msgpack parser over " .. mode.name, function()
			local srv, port = H.server()
			local io = socketio(srv, { parser = "msgpack" })
			local auths, replies = {}, {}
			io:on("connection", function(socket)
				auths[#auths + 1] = socket.handshake.auth.token
				socket:join("room")
				socket:on("echo", function(...)
					local args = table.pack(...)
					local ack = args[args.n]
					ack(table.unpack(args, 1, args.n - 1))
				end)
				socket:on("relay", function(text) io:to("room"):emit("msg", text) end)
				socket:emit("ask", "q", function(...) replies[#replies + 1] = table.pack(...) end)
			end)
			io:of("/admin"):on("connection", function(socket) socket:emit("msg", "admin:" .. socket.id) end)
			local p = H.node(PEER)
			connect(p, "a", mode, port, { auth = { token = "ta" } })
			connect(p, "b", mode, port, { auth = { token = "tb" } })
			assert.are.same({ "ta", "tb" }, auths)
			-- our ask with an ack: each client answers { id, { ok = true } }
			H.run_until(function() return #replies == 2 end, 10000, "the clients' acks")
			table.sort(replies, function(x, y) return x[1] < y[1] end)
			assert.are.equal("a", replies[1][1])
			assert.is_true(json.is_object(replies[1][2]) and replies[1][2].ok)
			-- their emit with an ack: the same values back, kinds kept, binary nested
			local args = { "x", 1, 2.5, json.array {}, json.object {}, { n = json.null, deep = { 1, { "two" } } },
				{ ["$bin"] = H.base64("\0\1\2\255") }, { inner = { ["$bin"] = H.base64("bytes") } } }
			p:cmd { cmd = "emit", id = "a", event = "echo", argsJson = json.encode(json.array(args)), ack = "e1" }
			local ack = p:wait("ack", 10000, function(e) return e.tag == "e1" end)
			assert.is_true(ack.same, ack.json)
			-- broadcast to a room reaches both, once
			p:cmd { cmd = "emit", id = "b", event = "relay", args = { "to-room" } }
			for _, id in ipairs { "a", "b" } do
				p:wait("event", 10000, function(e) return e.id == id and e.event == "msg" and e.args[1] == "to-room" end)
			end
			-- binary from the server
			io:emit("bin", socketio.binary("\0\1\2"), { nested = socketio.binary("\255") })
			for _, id in ipairs { "a", "b" } do
				local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "bin" end)
				assert.are.equal("\0\1\2", H.unbase64(ev.args[1]["$bin"]))
				assert.are.equal("\255", H.unbase64(ev.args[2].nested["$bin"]))
			end
			-- a namespace
			connect(p, "c", mode, port, { nsp = "/admin" })
			local ev = p:wait("event", 10000, function(e) return e.id == "c" and e.event == "msg" end)
			assert.matches("^admin:", ev.args[1])
			H.run_for(200 * H.SLOW)
			for _, e in ipairs(p.events) do
				assert.is_false(e.ev == "event" and e.event ~= "ask", "more than once: " .. tostring(e.json))
			end
			io:close()
		end)
	end

	it("closes only the session that sends what is no msgpack packet", function()
		local srv, port = H.server()
		local io = socketio(srv, { parser = "msgpack" })
		io:on("connection", function() end)
		local p = H.node(PEER)
		connect(p, "good", MODES[1], port)
		for _, bad in ipairs { "\xc1", mp.encode { type = 2, nsp = "/", data = "not an array" }, "text" } do
			local w = H.node_client(port, { path = "/socket.io/?EIO=4&transport=websocket" })
			w:wait("message")   -- the open packet
			if bad == "text" then
				w:cmd { cmd = "send", data = "40" }
			else
				w:cmd { cmd = "send", b64 = H.base64(mp.encode { type = 0, nsp = "/" }), binary = true, track = false }
				w:wait("message", 5000, function(e) return e.binary end)   -- CONNECT answer
				w:cmd { cmd = "send", b64 = H.base64(bad), binary = true, track = false }
			end
			w:wait("close", 5000)
		end
		io:emit("msg", "still here")
		p:wait("event", 10000, function(e) return e.id == "good" and e.args[1] == "still here" end)
		assert.is_nil(p:has("disconnect"))
		for _, e in ipairs(H.errors) do assert.is_string(e) end
		io:close()
	end)

	it("refuses an unknown parser at the caller's line", function()
		local srv = H.server()
		assert.has_error(function() socketio(srv, { parser = "bson" }) end,
			'option \'parser\' must be "json" or "msgpack", got string "bson"')
	end)
end)
