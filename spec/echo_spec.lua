local H = require "helper"

describe("echo with the Node ws client", function()
	after_each(H.clean)

	it("echoes text and binary of every interesting size", function()
		local _, port = H.echo_server()
		local p = H.node()
		p:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
		p:wait("open")
		for _, size in ipairs { 0, 1, 125, 126, 65535, 65536, 1048576 } do
			for _, binary in ipairs { false, true } do
				p:cmd { cmd = "send", size = size, binary = binary }
				local ev = p:wait("message", 10000)
				assert.are.equal(size, ev.len)
				assert.are.equal(binary, ev.binary)
				assert.is_true(ev.match, "echo differs from what was sent")
			end
		end
		p:cmd { cmd = "close", code = 1000, reason = "done" }
		local ev = p:wait("close")
		assert.are.equal(1000, ev.code)
	end)
end)

-- Queued data is written just before the loop polls again (csrc/conn.c,
-- conn_flush_all), whatever queued it: a timer, another connection's
-- close, or a message handler that also closes.
describe("sends made outside a message callback", function()
	after_each(H.clean)

	it("leave from a timer with nothing else waking the loop", function()
		local srv, port = H.server()
		srv:on("connection", function(ws)
			H.lws.set_timeout(function() ws:send("from a timer") end, 100)
		end)
		local p = H.node()
		p:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
		p:wait("open")
		-- the peer sends nothing: only the timer's send can make this event
		assert.are.equal("from a timer", p:wait("message", 3000).data)
		-- and again from an interval, several times over
		local n = 0
		local conn
		for ws in pairs(srv.clients) do conn = ws end
		local iv
		iv = H.lws.set_interval(function()
			n = n + 1
			conn:send("tick " .. n)
			if n == 5 then H.lws.clear(iv) end
		end, 50)
		for i = 1, 5 do assert.are.equal("tick " .. i, p:wait("message", 3000).data) end
	end)

	it("leave from another connection's close handler", function()
		local srv, port = H.server()
		local first
		srv:on("connection", function(ws)
			if not first then
				first = ws
			else
				ws:on("close", function() first:send("the other one left") end)
			end
		end)
		local a, b = H.node(), H.node()
		a:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
		a:wait("open")
		H.run_until(function() return first ~= nil end)
		b:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
		b:wait("open")
		b:cmd { cmd = "terminate" }   -- no Close frame: lws notices the socket
		assert.are.equal("the other one left", a:wait("message", 3000).data)
	end)

	it("leave from a close that libwebsockets' own timeout ends", function()
		-- a is paused: it never answers our Close, so lws gives up after its
		-- fixed 5 s, from its timer list, just before it polls.
		local srv, port = H.server()
		local conns = {}
		srv:on("connection", function(ws)
			conns[#conns + 1] = ws
			if #conns == 1 then
				ws:on("close", function() conns[2]:send("the first one is gone") end)
			end
		end)
		local a, b = H.node(), H.node()
		a:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
		a:wait("open")
		b:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
		b:wait("open")
		H.run_until(function() return #conns == 2 end)
		a:cmd { cmd = "pause" }
		a:cmd { cmd = "state" }
		a:wait("state")
		-- a witness: if the send waited for something else to wake the
		-- loop, this unrelated timer would be that something
		local woken_by_witness = false
		local witness = H.lws.set_timeout(function() woken_by_witness = true end, 12000)
		conns[1]:close(1000, "bye")
		assert.are.equal("the first one is gone", b:wait("message", 30000).data)
		assert.is_false(woken_by_witness, "the send waited for an unrelated timer")
		H.lws.clear(witness)
	end)

	it("leave before a close made in the same callback, in order", function()
		local srv, port = H.server()
		srv:on("connection", function(ws)
			ws:on("message", function(data)
				for i = 1, 3 do ws:send(data .. " " .. i) end
				ws:close(4001, "bye")
			end)
		end)
		local p = H.node()
		p:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
		p:wait("open")
		p:cmd { cmd = "send", data = "hi", track = false }
		for i = 1, 3 do assert.are.equal("hi " .. i, p:wait("message").data) end
		local ev = p:wait("close")
		assert.are.equal(4001, ev.code)
		assert.are.equal("bye", ev.reason)
	end)
end)
