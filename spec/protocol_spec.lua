-- RFC 6455 strictness, checked with a raw client that writes exact bytes.
local H = require "helper"

local TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10

-- a server that records what its connections see
local function recording_server(opts)
	local seen = { messages = {}, closes = {}, conns = {} }
	local srv, port = H.server(opts)
	srv:on("connection", function(ws, req)
		seen.conns[#seen.conns + 1] = ws
		seen.req = req
		ws:on("message", function(data, binary)
			seen.messages[#seen.messages + 1] = { data = data, binary = binary }
			if data == "echo-me" or data:sub(1, 5) == "echo:" then ws:send(data, binary) end
		end)
		ws:on("close", function(code, reason, clean)
			seen.closes[#seen.closes + 1] = { code = code, reason = reason, clean = clean }
		end)
	end)
	return srv, port, seen
end

local function open_raw(port, path)
	local r = H.raw(port)
	local status = r:handshake(path or "/")
	assert.are.equal(101, status)
	return r
end

describe("handshake checks", function()
	after_each(H.clean)

	local function expect_status(port, want, path, headers, method, version)
		local r = H.raw(port)
		local status, hdrs, body = r:handshake(path or "/", headers, method, version)
		assert.are.equal(want, status, body)
		return hdrs, body
	end

	it("accepts a correct upgrade with the right Sec-WebSocket-Accept", function()
		local _, port = recording_server()
		local r = H.raw(port)
		r:send(H.upgrade_request("/", { ["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ==" }))
		local status, hdrs = r:read_response()
		assert.are.equal(101, status)
		-- RFC 6455 1.3's own example
		assert.are.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", hdrs["sec-websocket-accept"])
		assert.are.equal("websocket", hdrs["upgrade"]:lower())
	end)

	it("answers a missing Sec-WebSocket-Key with 400", function()
		local _, port = recording_server()
		local _, body = expect_status(port, 400, "/", { ["Sec-WebSocket-Key"] = false })
		assert.matches("Sec%-WebSocket%-Key", body)
	end)

	it("answers malformed keys with 400", function()
		local _, port = recording_server()
		for _, key in ipairs { "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=", "!!!!!!!!!!!!!!!!!!!!!!==",
			"dGhlIHNhbXBsZSBub25jZR==" } do
			expect_status(port, 400, "/", { ["Sec-WebSocket-Key"] = key })
		end
	end)

	it("answers a POST upgrade with 400", function()
		local _, port = recording_server()
		expect_status(port, 400, "/", nil, "POST")
	end)

	it("answers an HTTP/1.0 upgrade with 400", function()
		local _, port = recording_server()
		expect_status(port, 400, "/", nil, "GET", "HTTP/1.0")
	end)

	it("answers an unsupported version with 426 and Sec-WebSocket-Version: 13", function()
		local _, port = recording_server()
		for _, v in ipairs { "12", "8", "14", false } do
			local hdrs = expect_status(port, 426, "/", { ["Sec-WebSocket-Version"] = v })
			assert.are.equal("13", hdrs["sec-websocket-version"])
		end
	end)

	it("answers a Connection header without 'upgrade' with 400", function()
		local _, port = recording_server()
		expect_status(port, 400, "/", { Connection = "keep-alive" })
	end)

	it("answers an invalid subprotocol list with 400", function()
		local _, port = recording_server()
		expect_status(port, 400, "/", { ["Sec-WebSocket-Protocol"] = "a b, c" })
		expect_status(port, 400, "/", { ["Sec-WebSocket-Protocol"] = "a,,b" })
	end)

	it("answers plain HTTP on a WebSocket server with 426", function()
		local _, port = recording_server()
		local r = H.raw(port)
		r:send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		local status = r:read_response()
		assert.are.equal(426, status)
	end)

	it("never reaches Lua for a refused handshake", function()
		local _, port, seen = recording_server()
		expect_status(port, 400, "/", { ["Sec-WebSocket-Key"] = false })
		assert.are.equal(0, #seen.conns)
	end)
end)

describe("frames from a raw client", function()
	after_each(H.clean)

	it("echoes a masked text frame", function()
		local _, port = recording_server()
		local r = open_raw(port)
		r:send(H.frame(TEXT, "echo-me"))
		local f = r:read_frame()
		assert.are.same({ TEXT, "echo-me", true, false }, { f.opcode, f.payload, f.fin, f.masked })
	end)

	it("reassembles fragments, with a ping in the middle answered at once", function()
		local _, port, seen = recording_server()
		local r = open_raw(port)
		r:send(H.frame(TEXT, "echo:", { fin = false }))
		r:send(H.frame(PING, "mid"))
		local pong = r:read_frame()
		assert.are.same({ PONG, "mid" }, { pong.opcode, pong.payload })
		r:send(H.frame(CONT, "one,", { fin = false }) .. H.frame(CONT, "two"))
		local f = r:read_frame()
		assert.are.same({ TEXT, "echo:one,two" }, { f.opcode, f.payload })
		assert.are.equal(1, #seen.messages)
	end)

	it("reassembles 1-byte fragments of a binary message", function()
		local _, port, seen = recording_server()
		local r = open_raw(port)
		local msg = "echo:" .. string.rep("\0\255", 50)
		local parts = {}
		for i = 1, #msg do
			parts[#parts + 1] = H.frame(i == 1 and BINARY or CONT, msg:sub(i, i), { fin = i == #msg })
		end
		r:send(table.concat(parts))
		local f = r:read_frame()
		assert.are.same({ BINARY, msg }, { f.opcode, f.payload })
		assert.is_true(seen.messages[1].binary)
	end)

	it("accepts a UTF-8 character split across fragments", function()
		local _, port = recording_server()
		local r = open_raw(port)
		local euro = "\226\130\172"
		r:send(H.frame(TEXT, "echo:" .. euro:sub(1, 1), { fin = false }) .. H.frame(CONT, euro:sub(2)))
		assert.are.equal("echo:" .. euro, r:read_frame().payload)
	end)

	-- sends bytes, expects the server's Close with want_code, answers it
	-- like a well-behaved peer and waits for the server to drop TCP
	-- (when the client's own Close was the bad frame, it just hangs up,
	-- as Node ws does once both Close frames have been seen)
	-- (hangup: after a frame whose length lws could not trust, the stream
	-- cannot carry our Close back, so the client just hangs up too)
	local function expect_close(port, bytes, want_code, hangup)
		local r = open_raw(port)
		r:send(bytes)
		local code, reason = r:read_close()
		assert.are.equal(want_code, code, reason)
		if hangup or bytes:byte(1) & 0x0f == CLOSE then
			r:close()
		else
			if not r.closed then r:send(H.frame(CLOSE, H.close_payload(code))) end
			r:wait_closed()
		end
		return reason
	end

	it("fails invalid UTF-8 in a text frame with 1007", function()
		local _, port, seen = recording_server()
		expect_close(port, H.frame(TEXT, "bad \255 utf8"), 1007)
		expect_close(port, H.frame(TEXT, "\237\160\128"), 1007)          -- a UTF-16 surrogate
		expect_close(port, H.frame(TEXT, "\192\175"), 1007)              -- overlong '/'
		expect_close(port, H.frame(TEXT, "\244\144\128\128"), 1007)      -- above U+10FFFF
		H.run_until(function() return #seen.closes == 4 end)
		for _, c in ipairs(seen.closes) do assert.are.equal(1007, c.code) end
		assert.are.equal(0, #seen.messages)
	end)

	it("fails a text message that ends mid-character with 1007", function()
		local _, port, seen = recording_server()
		expect_close(port, H.frame(TEXT, "ok\226\130", { fin = false }) .. H.frame(CONT, ""), 1007)
		assert.are.equal(0, #seen.messages)
	end)

	it("emits an error event, as ws does, before failing the connection", function()
		local srv, port = H.server()
		local errors = {}
		srv:on("connection", function(ws)
			ws:on("error", function(msg, code) errors[#errors + 1] = { msg, code } end)
		end)
		expect_close(port, H.frame(TEXT, "\255"), 1007)
		H.run_until(function() return #errors == 1 end)
		assert.are.same({ "invalid UTF-8", 1007 }, errors[1])
	end)

	it("fails a message over max_message_size with 1009, at the limit it passes", function()
		local _, port, seen = recording_server { max_message_size = 1000 }
		local r = open_raw(port)
		r:send(H.frame(BINARY, "echo:" .. string.rep("x", 995)))
		assert.are.equal(1000, #r:read_frame().payload)
		expect_close(port, H.frame(BINARY, string.rep("x", 1001)), 1009)
		-- fragmented: refused at the fragment that crosses the limit
		expect_close(port, H.frame(BINARY, string.rep("x", 600), { fin = false }) ..
			H.frame(CONT, string.rep("x", 401)), 1009)
		H.run_until(function() return #seen.closes == 2 end)
		assert.are.equal(1, #seen.messages)
		for _, c in ipairs(seen.closes) do assert.are.equal(1009, c.code) end
	end)

	it("fails a frame announcing 2^63-1 bytes with 1009 on its first chunk", function()
		local _, port = recording_server { max_message_size = 1 << 20 }
		expect_close(port, string.pack(">BBI8", 0x82, 0xff, (1 << 63) - 1) .. "abcd" ..
			string.rep("x", 100), 1009, true)
	end)

	it("drops a connection whose frame length has the top bit set", function()
		local _, port = recording_server()
		local r = open_raw(port)
		r:send(string.pack(">BBI8", 0x82, 0xff, 1 << 63) .. "abcd")
		local f = r:read_frame()
		assert.is_true(f == nil or f.opcode == CLOSE)
		r:wait_closed()
	end)

	it("fails a 1-byte close payload with 1002", function()
		local _, port, seen = recording_server()
		expect_close(port, H.frame(CLOSE, "\3"), 1002)
		H.run_until(function() return #seen.closes == 1 end)
		assert.are.equal(1002, seen.closes[1].code)
	end)

	it("fails invalid close codes with 1002", function()
		local _, port = recording_server()
		for _, code in ipairs { 0, 999, 1004, 1005, 1006, 1016, 2000, 2999, 5000, 65535 } do
			expect_close(port, H.frame(CLOSE, H.close_payload(code, "x")), 1002)
		end
	end)

	it("fails a close reason that is not UTF-8 with 1007", function()
		local _, port, seen = recording_server()
		expect_close(port, H.frame(CLOSE, H.close_payload(1000, "bad \255")), 1007)
		H.run_until(function() return #seen.closes == 1 end)
		assert.are.equal(1007, seen.closes[1].code)
	end)

	it("echoes a valid close and reports the peer's code and reason", function()
		local _, port, seen = recording_server()
		local reason = expect_close(port, H.frame(CLOSE, H.close_payload(4001, "client bye")), 4001)
		assert.are.equal("client bye", reason)
		H.run_until(function() return #seen.closes == 1 end)
		assert.are.same({ code = 4001, reason = "client bye", clean = true }, seen.closes[1])
	end)

	it("reports 1005 for a close frame without a code", function()
		local _, port, seen = recording_server()
		expect_close(port, H.frame(CLOSE, ""), 1005)
		H.run_until(function() return #seen.closes == 1 end)
		assert.are.equal(1005, seen.closes[1].code)
	end)

	it("fails a ping with a payload over 125 bytes", function()
		local _, port = recording_server()
		local r = open_raw(port)
		r:send(H.frame(PING, string.rep("p", 126)))
		local f = r:read_frame()
		assert.is_true(f == nil or f.opcode == CLOSE)
		r:wait_closed()
	end)

	it("fails reserved bits, reserved opcodes and a stray continuation with 1002", function()
		local _, port = recording_server()
		expect_close(port, H.frame(TEXT, "x", { rsv = 4 }), 1002, true)
		expect_close(port, H.frame(3, "x"), 1002)
		expect_close(port, H.frame(11, "x"), 1002)
		expect_close(port, H.frame(TEXT, "a", { fin = false }) .. H.frame(TEXT, "b"), 1002)
	end)

	it("reports 1006 when TCP just drops", function()
		local _, port, seen = recording_server()
		local r = open_raw(port)
		r:send(H.frame(TEXT, "half", { fin = false }))
		H.run_until(function() return #seen.conns == 1 end)
		r:close()
		H.run_until(function() return #seen.closes == 1 end)
		assert.are.equal(1006, seen.closes[1].code)
		assert.is_false(seen.closes[1].clean)
	end)

	it("sends queued data before its Close, and no data frame after it", function()
		local srv, port = H.server()
		local sent_after
		srv:on("connection", function(ws)
			ws:on("message", function()
				for i = 1, 3 do ws:send("m" .. i) end
				ws:close(4000, "server bye")
				sent_after = { ws:send("too late") }
			end)
		end)
		local r = open_raw(port)
		r:send(H.frame(TEXT, "go"))
		for i = 1, 3 do assert.are.equal("m" .. i, r:read_frame().payload) end
		local f = r:read_frame()
		assert.are.equal(CLOSE, f.opcode)
		assert.are.equal(4000, string.unpack(">I2", f.payload))
		assert.are.same({ nil, "connection is closing", "closed" }, sent_after)
		-- data from the client after the server's Close is not answered
		r:send(H.frame(TEXT, "still there?") .. H.frame(CLOSE, H.close_payload(4000)))
		r:wait_closed()
		assert.are.equal("", r.buf)
	end)

	it("answers a ping with the same payload", function()
		local _, port = recording_server()
		local r = open_raw(port)
		r:send(H.frame(PING, "hello-ping"))
		local f = r:read_frame()
		assert.are.same({ PONG, "hello-ping" }, { f.opcode, f.payload })
	end)
end)
