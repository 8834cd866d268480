-- Errors and isolation, bad arguments, and object lifetimes.
local H = require "helper"
local lws = require "lws"

local url = H.ws_url

local node_client = H.node_client

describe("errors in callbacks", function()
	after_each(H.clean)

	it("close only that connection with 1011; the others go on", function()
		local srv, port = H.server()
		srv:on("connection", function(ws)
			ws:on("message", function(data)
				if data == "boom" then error("handler exploded") end
				ws:send(data)
			end)
		end)
		local good, bad = node_client(port), node_client(port)
		bad:cmd { cmd = "send", data = "boom" }
		local ev = bad:wait("close")
		assert.are.equal(1011, ev.code)
		assert.are.equal(1, #H.errors)
		assert.matches("handler exploded", H.errors[1])
		assert.matches("stack traceback", H.errors[1])
		good:cmd { cmd = "send", data = "still fine" }
		assert.are.equal("still fine", good:wait("message").data)
	end)

	it("in the connection handler close that connection with 1011", function()
		local srv, port = H.server()
		srv:on("connection", function() error({ code = "not a string" }) end)
		local p = node_client(port)
		assert.are.equal(1011, p:wait("close").code)
		assert.matches("error object { code = \"not a string\" }", H.errors[1], 1, true)
	end)

	it("in verify answer 500 and the server goes on", function()
		local calls = 0
		local _, port = H.server {
			verify = function()
				calls = calls + 1
				if calls == 1 then error("verify broke") end
				return true
			end,
		}
		local p = H.node()
		p:cmd { cmd = "connect", url = url(port) }
		assert.are.equal(500, p:wait("unexpected-response").status)
		assert.matches("verify broke", H.errors[1])
		node_client(port)
	end)

	it("in a close handler are reported and nothing else happens", function()
		local srv, port = H.server()
		srv:on("connection", function(ws)
			ws:on("close", function() error("close handler broke") end)
		end)
		local p = node_client(port)
		p:cmd { cmd = "close", code = 1000 }
		p:wait("close")
		H.run_until(function() return #H.errors == 1 end)
		assert.matches("close handler broke", H.errors[1])
	end)

	it("go to lws.on_error, stderr by default", function()
		local got
		lws.on_error(function(msg) got = msg end)
		lws.set_timeout(function() error("to the hook") end, 1)
		H.run_until(function() return got end)
		assert.matches("to the hook", got)
		lws.on_error(function(msg) H.errors[#H.errors + 1] = msg end)
		assert.has_error(function() lws.on_error(42) end)
	end)
end)

describe("bad arguments raise", function()
	after_each(H.clean)

	it("on connection methods", function()
		local srv, port = H.server()
		local conn
		srv:on("connection", function(ws) conn = ws end)
		node_client(port)
		H.run_until(function() return conn end)
		assert.has_error(function() conn:send() end, "bad argument #1 to 'send' (string expected, got no value)")
		assert.has_error(function() conn:send({}) end, "bad argument #1 to 'send' (string expected, got table)")
		assert.has_error(function() conn:ping(string.rep("p", 126)) end,
			"bad argument #1 to 'ping' (ping payload longer than 125 bytes)")
		assert.has_error(function() conn:close(999) end)
		assert.has_error(function() conn:close(1000, "\255") end,
			"bad argument #2 to 'close' (close reason is not valid UTF-8)")
		assert.has_error(function() conn.send(nil, "x") end, "bad argument #1 to 'send' (lws.conn expected, got nil)")
		assert.has_error(function() conn.readyState = 3 end, "'readyState' is read-only")
		assert.has_error(function() conn:on("message", 42) end)
		assert.has_error(function() conn:set_limits { bogus = 1 } end, "unknown option 'bogus'")
		-- the value and the caller's line, as lua/lws/options.lua words it
		local ok, err = pcall(function() conn:set_limits { max_message_size = -5 } end)
		assert.is_false(ok)
		assert.matches("^spec/errors_spec.lua:%d+: option 'max_message_size' must be an integer in "
			.. "0..1099511627776, got number %-5$", err)
		ok, err = pcall(function() conn:set_limits { close_timeout = "10" } end)
		assert.is_false(ok)
		assert.matches(": option 'close_timeout' must be an integer in 1..3600, got string \"10\"$", err)
	end)
end)

describe("lifetimes", function()
	after_each(H.clean)

	it("a connection object outlives its connection: methods answer 'closed'", function()
		local srv, port = H.server()
		local conn, closed
		srv:on("connection", function(ws)
			conn = ws
			ws:on("close", function() closed = true end)
		end)
		local p = node_client(port)
		p:cmd { cmd = "close", code = 1000 }
		H.run_until(function() return closed end)
		assert.are.equal(lws.CLOSED, conn.readyState)
		assert.are.same({ nil, "connection is closed", "closed" }, { conn:send("x") })
		assert.are.same({ nil, "connection is closed", "closed" }, { conn:ping() })
		assert.are.same({ nil, "connection is closed", "closed" }, { conn:close() })
		conn:terminate()
		assert.matches("^lws.conn %(CLOSED", tostring(conn))
		assert.is_nil(srv.clients[conn])
	end)

	it("nothing fires after close", function()
		local srv, port = H.server()
		local events = {}
		srv:on("connection", function(ws)
			ws:on("message", function(d)
				events[#events + 1] = "message:" .. d
				if d == "stop" then ws:close(4000, "stopped") end
			end)
			ws:on("close", function() events[#events + 1] = "close" end)
		end)
		local p = node_client(port)
		for _, m in ipairs { "a", "stop", "b", "c" } do p:cmd { cmd = "send", data = m } end
		p:wait("close")
		H.run_until(function() return events[#events] == "close" end)
		H.run_for(50)
		assert.are.same({ "message:a", "message:stop", "close" }, events)
	end)

	it("a server can be closed from inside one of its callbacks", function()
		local srv, port = H.server()
		local server_closed
		srv:on("close", function() server_closed = true end)
		srv:on("connection", function(ws)
			ws:on("message", function() srv:close() end)
		end)
		local p = node_client(port)
		p:cmd { cmd = "send", data = "close the server" }
		assert.are.equal(1001, p:wait("close").code)
		H.run_until(function() return server_closed end)
	end)

	it("garbage collection never frees an open connection", function()
		local srv, port = H.server()
		local weak = setmetatable({}, { __mode = "k" })
		srv:on("connection", function(ws)
			weak[ws] = true
			ws:on("message", function(d) ws:send(d) end)
		end)
		srv.clients = setmetatable({}, { __mode = "k" })   -- the server keeps no strong ref
		local p = node_client(port)
		for _ = 1, 3 do collectgarbage("collect") end
		p:cmd { cmd = "send", data = "alive?" }
		assert.are.equal("alive?", p:wait("message").data)
		p:cmd { cmd = "close", code = 1000 }
		p:wait("close")
		H.run_until(function() return lws.stats().connections == 0 end)
		for _ = 1, 3 do collectgarbage("collect") end
		assert.is_nil(next(weak))
	end)
end)
