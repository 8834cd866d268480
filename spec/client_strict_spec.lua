-- lws.WebSocket (ws://) against a strict server written here byte by byte,
-- the checks an Autobahn-fuzzingserver-style run makes of a client: masked
-- frames from a server refused, every Ping answered in order, close codes
-- as sent (1012-1014 included), protocol errors failed with Close 1002 and
-- an "error" whose code says what broke, after the messages that came
-- before. The client's frames are its own (csrc/client.c, csrc/conn.c),
-- over ws:// here and wss:// alike (spec/tls_spec.lua).
local H = require "helper"
local lws = require "lws"
local socket = require "socket"

local TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10
local GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
local clients, listeners = {}, {}

-- a listening socket; accept() -> a raw object (spec/helper.lua raw_wrap)
-- that has answered the client's upgrade with a correct 101
local function strict_server()
	local s = assert(socket.bind("127.0.0.1", 0))
	s:settimeout(0)
	local _, port = s:getsockname()
	local pending = {}
	local w = lws.watch(s:getfd(), function()
		local c = s:accept()
		if c then pending[#pending + 1] = c end
	end)
	listeners[#listeners + 1] = { s = s, w = w }
	local srv = { port = port }
	function srv.accept(extra, after)
		H.run_until(function() return #pending > 0 end, 5000, "the client to connect")
		local r = H.raw_wrap(table.remove(pending, 1))
		local head, headers = r:read_request()
		assert(head and head:match("^GET / HTTP/1.1\r\n"), "not an upgrade: " .. tostring(head))
		local accept = H.base64(H.sha1(headers["sec-websocket-key"] .. GUID))
		r:send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			.. "Sec-WebSocket-Accept: " .. accept .. "\r\n" .. (extra or "") .. "\r\n" .. (after or ""))
		return r, headers
	end
	return srv
end

-- the server's frames are not masked
local function sframe(opcode, payload, opts)
	opts = opts or {}
	opts.mask = opts.mask or false
	return H.frame(opcode, payload, opts)
end

local function client(port)
	local ws = lws.WebSocket("ws://127.0.0.1:" .. port .. "/")
	clients[#clients + 1] = ws
	local rec = { messages = {}, errors = {} }
	ws.onopen = function() rec.open = true end
	ws.onmessage = function(ev) rec.messages[#rec.messages + 1] = ev.data end
	ws.onerror = function(ev) rec.errors[#rec.errors + 1] = ev end
	ws.onclose = function(ev) rec.close = ev end
	return ws, rec
end

local function opened(srv)
	local ws, rec = client(srv.port)
	local r = srv.accept()
	H.run_until(function() return rec.open end, 5000, "the client to open")
	return ws, rec, r
end

-- the client's next frame must be a Close with this code
local function expect_close_frame(r, code)
	local f
	repeat f = r:read_frame(5000) until not f or f.opcode == CLOSE
	assert.is_not_nil(f, "no Close from the client")
	assert.is_true(f.masked, "the client's Close is not masked")
	assert.are.equal(code, (string.unpack(">I2", f.payload)))
end

describe("lws.WebSocket against a strict server", function()
	after_each(function()
		for _, ws in ipairs(clients) do ws:terminate() end
		for _, l in ipairs(listeners) do l.w:close(); l.s:close() end
		clients, listeners = {}, {}
		H.clean()
	end)

	it("sends a correct upgrade and masked frames with fresh keys", function()
		local srv = strict_server()
		local ws, rec = client(srv.port)
		local r, headers = srv.accept()
		assert.are.equal("websocket", headers.upgrade)
		assert.are.equal("13", headers["sec-websocket-version"])
		assert.are.equal("127.0.0.1:" .. srv.port, headers.host)
		assert.are.equal(16, #H.unbase64(headers["sec-websocket-key"]))
		H.run_until(function() return rec.open end)
		ws:send("hello")
		ws:send("hello")
		local a, b = r:read_frame(), r:read_frame()
		assert.are.same({ true, TEXT, "hello" }, { a.masked, a.opcode, a.payload })
		assert.are.same({ true, TEXT, "hello" }, { b.masked, b.opcode, b.payload })
	end)

	it("takes frames that arrive in the same read as the 101", function()
		local srv = strict_server()
		local _, rec = client(srv.port)
		local r = srv.accept(nil, sframe(TEXT, "first") .. sframe(PING, "hi"))
		H.run_until(function() return #rec.messages == 1 end)
		assert.are.equal("first", rec.messages[1])
		local f = r:read_frame()
		assert.are.same({ PONG, "hi" }, { f.opcode, f.payload })
	end)

	it("fails a masked frame from the server with 1002 (RFC 6455 5.1)", function()
		local srv = strict_server()
		for _, frame in ipairs {
			H.frame(TEXT, "masked"), H.frame(PING, "masked ping"),
			H.frame(CLOSE, H.close_payload(1000)),
		} do
			local _, rec, r = opened(srv)
			r:send(frame)
			expect_close_frame(r, 1002)
			H.run_until(function() return rec.close end)
			assert.are.same({ 1002, false }, { rec.close.code, rec.close.wasClean })
			assert.are.equal(0, #rec.messages)
			assert.are.equal("protocol", rec.errors[1].code)
		end
	end)

	it("answers each of ten Pings in order, and Pings between fragments", function()
		local srv = strict_server()
		local _, rec, r = opened(srv)
		local t = {}
		for i = 1, 10 do t[i] = sframe(PING, "p" .. i) end
		r:send(table.concat(t))
		for i = 1, 10 do
			local f = r:read_frame()
			assert.are.same({ PONG, "p" .. i, true }, { f.opcode, f.payload, f.masked })
		end
		t = {}
		for i = 1, 9 do
			t[#t + 1] = sframe(i == 1 and TEXT or 0, tostring(i), { fin = false })
			t[#t + 1] = sframe(PING, "f" .. i)
		end
		t[#t + 1] = sframe(0, "0")
		r:send(table.concat(t))
		for i = 1, 9 do
			local f = r:read_frame()
			assert.are.same({ PONG, "f" .. i }, { f.opcode, f.payload })
		end
		H.run_until(function() return #rec.messages == 1 end)
		assert.are.equal("1234567890", rec.messages[1])
	end)

	it("reports and echoes 1012, 1013 and 1014 unchanged", function()
		local srv = strict_server()
		for _, code in ipairs { 1012, 1013, 1014 } do
			local _, rec, r = opened(srv)
			r:send(sframe(CLOSE, H.close_payload(code, "later")))
			local f = r:read_frame()
			assert.are.same({ CLOSE, H.close_payload(code, "later") }, { f.opcode, f.payload })
			r:close()
			H.run_until(function() return rec.close end)
			assert.are.same({ code, "later", true }, { rec.close.code, rec.close.reason, rec.close.wasClean })
		end
	end)

	it("fails invalid close codes with 1002, all by one rule", function()
		local srv = strict_server()
		for _, code in ipairs { 0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000 } do
			local _, rec, r = opened(srv)
			r:send(sframe(CLOSE, H.close_payload(code, "x")))
			expect_close_frame(r, 1002)
			H.run_until(function() return rec.close end)
			assert.are.same({ 1002, false }, { rec.close.code, rec.close.wasClean }, "code " .. code)
			assert.are.equal("protocol", rec.errors[1].code)
		end
	end)

	local broken = {
		{ "reserved bits", function() return sframe(TEXT, "x", { rsv = 2 }) end },
		{ "RSV1 without an extension", function() return sframe(TEXT, "x", { rsv = 4 }) end },
		{ "a reserved opcode", function() return sframe(3, "x") end },
		{ "a reserved control opcode", function() return sframe(11, "x") end },
		{ "a continuation without a message", function() return sframe(0, "x") end },
		{ "a new message inside a fragmented one",
			function() return sframe(TEXT, "a", { fin = false }) .. sframe(BINARY, "b") end },
		{ "a fragmented Ping", function() return sframe(PING, "x", { fin = false }) end },
		{ "a Ping over 125 bytes", function() return sframe(PING, string.rep("p", 126)) end },
		{ "a 64-bit length with its top bit set",
			function() return string.pack(">BBI8", 0x82, 0x7f, 1 << 63) end },
	}
	for _, case in ipairs(broken) do
		it("fails " .. case[1] .. " with Close 1002 after the message before it", function()
			local srv = strict_server()
			local _, rec, r = opened(srv)
			r:send(sframe(TEXT, "valid first") .. case[2]())
			expect_close_frame(r, 1002)
			H.run_until(function() return rec.close end)
			assert.are.same({ "valid first" }, rec.messages)
			assert.are.same({ 1002, false }, { rec.close.code, rec.close.wasClean })
			assert.are.equal(1, #rec.errors)
			assert.are.equal("protocol", rec.errors[1].code)
			assert.are.equal(1002, rec.errors[1].close_code)
		end)
	end

	it("fails invalid UTF-8 with 1007 after the message before it", function()
		local srv = strict_server()
		local _, rec, r = opened(srv)
		r:send(sframe(TEXT, "ok") .. sframe(TEXT, "bad \255"))
		expect_close_frame(r, 1007)
		r:send(sframe(CLOSE, H.close_payload(1007)))
		H.run_until(function() return rec.close end)
		assert.are.same({ "ok" }, rec.messages)
		assert.are.equal("invalid-utf8", rec.errors[1].code)
		assert.are.equal(1007, rec.close.code)
	end)
end)
