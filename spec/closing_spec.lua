-- The server's frames are its own (csrc/frame.c, csrc/conn.c own_*):
-- every Ping answered, in order and ahead of data that completes after
-- it; close codes as the peer sent them (1012-1014 included); a Close
-- answered after the message that was backing up when it came; protocol
-- errors failed with Close 1002 and an "error" event. Peers: raw sockets
-- writing exact bytes, and Node's ws client.
local H = require "spec.helper"
local lws = require "lws"

local TEXT, PING, PONG, CLOSE = 1, 9, 10, 8

local function recording_server(opts)
	local srv, port = H.server(opts)
	local seen = { closes = {}, errors = {}, messages = {} }
	srv:on("connection", function(ws)
		ws:on("message", function(data, binary)
			seen.messages[#seen.messages + 1] = data
			ws:send(data, binary)
		end)
		ws:on("error", function(msg, code) seen.errors[#seen.errors + 1] = { msg = msg, code = code } end)
		ws:on("close", function(code, reason, clean)
			seen.closes[#seen.closes + 1] = { code = code, reason = reason, clean = clean }
		end)
	end)
	return srv, port, seen
end

local function open_raw(port)
	local r = H.raw(port)
	assert.are.equal(101, (r:handshake("/")))
	return r
end

-- the next frames from r, as "pong:<payload>" / "text:<len>" / "close:<code>"
local function next_frames(r, n)
	local out = {}
	for i = 1, n do
		local f = r:read_frame(5000)
		assert.is_not_nil(f, "frame " .. i .. " of " .. n .. " never came (got " .. table.concat(out, ", ") .. ")")
		assert.is_false(f.masked)
		if f.opcode == PONG then out[i] = "pong:" .. f.payload
		elseif f.opcode == CLOSE then out[i] = "close:" .. (#f.payload >= 2 and string.unpack(">I2", f.payload) or "")
		else out[i] = (f.opcode == TEXT and "text:" or "data:") .. #f.payload end
	end
	return out
end

describe("the server's Pongs", function()
	after_each(H.clean)

	it("answer Pings between fragments before the message they interrupt (Autobahn 5.19)", function()
		local _, port = recording_server()
		local r = open_raw(port)
		r:send(H.frame(TEXT, "frag1", { fin = false }) .. H.frame(0, "frag2", { fin = false }) ..
			H.frame(PING, "p1"))
		assert.are.same({ "pong:p1" }, next_frames(r, 1))
		H.run_for(300)
		r:send(H.frame(0, "frag3", { fin = false }) .. H.frame(0, "frag4", { fin = false }) ..
			H.frame(PING, "p2"))
		assert.are.same({ "pong:p2" }, next_frames(r, 1))
		H.run_for(300)
		r:send(H.frame(0, "frag5"))
		assert.are.same({ "text:25" }, next_frames(r, 1))
		r:close()
	end)

	it("go before the echo of a message completed in the same read as the Ping", function()
		local _, port = recording_server()
		for _ = 1, 5 do
			local r = open_raw(port)
			r:send(H.frame(TEXT, "a", { fin = false }) .. H.frame(PING, "p1") ..
				H.frame(0, "b", { fin = false }) .. H.frame(PING, "p2") .. H.frame(0, "c"))
			assert.are.same({ "pong:p1", "pong:p2", "text:3" }, next_frames(r, 3))
			r:close()
		end
	end)

	it("answer each of ten Pings sent back to back, in order (Autobahn 2.10)", function()
		local _, port = recording_server()
		for _ = 1, 20 do
			local r = open_raw(port)
			local pings, want = {}, {}
			for i = 1, 10 do
				pings[i] = H.frame(PING, "ping " .. i)
				want[i] = "pong:ping " .. i
			end
			r:send(table.concat(pings))
			assert.are.same(want, next_frames(r, 10))
			r:close()
		end
	end)

	it("answer a Ping after each of 9 fragments, then the message", function()
		local _, port = recording_server()
		local r = open_raw(port)
		local parts, want = {}, {}
		for i = 1, 9 do
			parts[#parts + 1] = H.frame(i == 1 and TEXT or 0, tostring(i), { fin = false })
			parts[#parts + 1] = H.frame(PING, "f" .. i)
			want[i] = "pong:f" .. i
		end
		parts[#parts + 1] = H.frame(0, "0")
		want[10] = "text:10"
		r:send(table.concat(parts))
		assert.are.same(want, next_frames(r, 10))
		r:close()
	end)
end)

describe("close codes", function()
	after_each(H.clean)

	it("1012, 1013 and 1014 from a raw client are reported and echoed unchanged", function()
		local _, port, seen = recording_server()
		for i, code in ipairs { 1012, 1013, 1014 } do
			local r = open_raw(port)
			r:send(H.frame(CLOSE, H.close_payload(code, "why")))
			local f = r:read_frame(5000)
			assert.are.equal(CLOSE, f.opcode)
			assert.are.equal(H.close_payload(code, "why"), f.payload)
			r:wait_closed()
			H.run_until(function() return #seen.closes == i end)
			assert.are.same({ code = code, reason = "why", clean = true }, seen.closes[i])
		end
	end)

	it("1012, 1013 and 1014 from Node's ws client come back to it unchanged", function()
		local _, port, seen = recording_server()
		for i, code in ipairs { 1012, 1013, 1014 } do
			local p = H.node_client(port)
			p:cmd { cmd = "close", code = code, reason = "restart" }
			local ev = p:wait("close")
			assert.are.equal(code, ev.code)
			assert.are.equal("restart", ev.reason)
			H.run_until(function() return #seen.closes == i end)
			assert.are.equal(code, seen.closes[i].code)
		end
	end)

	it("sent by the server reach Node unchanged", function()
		local srv, port = H.server()
		local conns = {}
		srv:on("connection", function(ws) conns[#conns + 1] = ws end)
		for i, code in ipairs { 1012, 1013, 1014 } do
			local p = H.node_client(port)
			H.run_until(function() return conns[i] end)
			assert.is_true(conns[i]:close(code, "later"))
			local ev = p:wait("close")
			assert.are.equal(code, ev.code)
			assert.are.equal("later", ev.reason)
		end
	end)
end)

describe("a Close while a big message backs up", function()
	after_each(H.clean)

	it("is answered once the echo has left, within close_timeout", function()
		local _, port, seen = recording_server { close_timeout = 20 }
		local p = H.node_client(port)
		p:cmd { cmd = "pause" }
		p:cmd { cmd = "state" }
		p:wait("state")
		p:cmd { cmd = "send", size = 8 << 20 }
		H.run_until(function() return #seen.messages == 1 end, 20000, "the 8 MiB message")
		p:cmd { cmd = "close", code = 1000, reason = "done" }
		H.run_for(500)
		p:cmd { cmd = "resume" }
		local ev = p:wait("message", 20000)
		assert.are.equal(8 << 20, ev.len)
		assert.is_true(ev.match)
		ev = p:wait("close", 20000)
		assert.are.equal(1000, ev.code)
		assert.are.equal("done", ev.reason)
		H.run_until(function() return #seen.closes == 1 end)
		assert.are.same({ code = 1000, reason = "done", clean = true }, seen.closes[1])
	end)

	it("lets what the application queued before it leave first", function()
		local srv, port = H.server()
		srv:on("connection", function(ws)
			ws:on("message", function()
				for i = 1, 50 do ws:send(("m%02d"):format(i) .. string.rep("x", 10000)) end
			end)
		end)
		local r = open_raw(port)
		r:send(H.frame(TEXT, "go") .. H.frame(CLOSE, H.close_payload(1000)))
		local got = {}
		while true do
			local f = r:read_frame(5000)
			assert.is_not_nil(f)
			if f.opcode == CLOSE then
				assert.are.equal(H.close_payload(1000), f.payload)
				break
			end
			got[#got + 1] = f.payload:sub(1, 3)
		end
		assert.are.equal(50, #got)
		for i = 1, 50 do assert.are.equal(("m%02d"):format(i), got[i]) end
		r:wait_closed()
	end)

	it("after a peer that never answers our Close is dropped at close_timeout", function()
		local srv, port = H.server { close_timeout = 1 }
		local closed
		srv:on("connection", function(ws)
			ws:on("close", function(code, _, clean) closed = { code = code, clean = clean } end)
			ws:close(4000, "bye")
		end)
		local r = open_raw(port)
		local f = r:read_frame(5000)
		assert.are.equal(CLOSE, f.opcode)
		assert.are.equal(H.close_payload(4000, "bye"), f.payload)
		local t0 = lws.now()
		r:wait_closed(5000)
		assert.is_true(lws.now() - t0 < 3000)
		H.run_until(function() return closed end)
		assert.are.equal(4000, closed.code)
	end)
end)

describe("protocol errors", function()
	after_each(H.clean)

	local cases = {
		{ "RSV2 and RSV3", function() return H.frame(TEXT, "x", { rsv = 3 }) end },
		{ "RSV1 without permessage-deflate", function() return H.frame(TEXT, "x", { rsv = 4 }) end },
		{ "a reserved data opcode", function() return H.frame(3, "x") end },
		{ "a reserved control opcode", function() return H.frame(11, "x") end },
		{ "a continuation without a message", function() return H.frame(0, "x") end },
		{ "a new message inside a fragmented one",
			function() return H.frame(TEXT, "a", { fin = false }) .. H.frame(TEXT, "b") end },
		{ "a fragmented Ping", function() return H.frame(PING, "x", { fin = false }) end },
		{ "a Ping over 125 bytes", function() return H.frame(PING, string.rep("p", 126)) end },
		{ "an unmasked frame", function() return H.frame(TEXT, "x", { mask = false }) end },
		{ "a 64-bit length with its top bit set",
			function() return string.pack(">BBI8", 0x82, 0xff, 1 << 63) .. "abcd" end },
	}
	for _, case in ipairs(cases) do
		it("fail " .. case[1] .. " with Close 1002 and an error event", function()
			local _, port, seen = recording_server()
			local r = open_raw(port)
			r:send(H.frame(TEXT, "before") .. case[2]())
			assert.are.same({ "text:6", "close:1002" }, next_frames(r, 2))
			r:wait_closed()   -- nothing of the stream can be trusted: no wait for our answer
			H.run_until(function() return #seen.closes == 1 end)
			assert.are.equal(1002, seen.closes[1].code)
			assert.are.equal(1, #seen.errors)
			assert.are.equal(1002, seen.errors[1].code)
		end)
	end
end)
