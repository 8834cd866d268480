-- The ws-shaped server API against Node's ws client.
local H = require "helper"
local lws = require "lws"

local url = H.ws_url

local connect = H.node_connect

describe("lws.server", function()
	after_each(H.clean)

	it("listens on port 0 and reports the port; several servers share one loop", function()
		local a, pa = H.echo_server()
		local b, pb = H.echo_server()
		assert.is_true(pa > 0 and pb > 0 and pa ~= pb)
		assert.are.equal(pa, a:port())
		local p1, p2 = connect(pa), connect(pb)
		p1:wait("open"); p2:wait("open")
		p1:cmd { cmd = "send", data = "to a" }
		p2:cmd { cmd = "send", data = "to b" }
		assert.are.equal("to a", p1:wait("message").data)
		assert.are.equal("to b", p2:wait("message").data)
		assert.matches("^lws.server %(127.0.0.1:%d+, listening%)$", tostring(b))
	end)

	it("returns nil, err, 'listen' for a port in use", function()
		local _, port = H.server()
		local srv, err, code = lws.server { host = "127.0.0.1", port = port }
		assert.is_nil(srv)
		assert.are.equal("listen", code)
		assert.matches("cannot listen on 127.0.0.1:" .. port .. ": Address already in use", err, 1, true)
	end)

	it("raises on unknown options and wrong types", function()
		assert.has_error(function() lws.server { port = 0, bogus = 1 } end, "unknown option 'bogus'")
		assert.has_error(function() lws.server { port = "x" } end,
			"option 'port' must be an integer in 0..65535, got string \"x\"")
		assert.has_error(function() lws.server { port = 70000 } end, "option 'port' must be an integer in 0..65535, got number 70000")
		assert.has_error(function() lws.server { verify = 1 } end, "option 'verify' must be a function, got number 1")
		assert.has_error(function() lws.server { prot = 1 } end, "unknown option 'prot' (did you mean 'port'?)")
		-- the caller's line, not the library's
		local ok, err = pcall(function() local s = lws.server { port = "x" }; return s end)
		assert.is_false(ok)
		assert.matches("^spec/server_spec%.lua:%d+: option 'port'", err)
		assert.has_error(function() lws.server("x") end, "bad argument #1 to 'server' (table expected, got string)")
	end)

	it("gives the connection event the upgrade request", function()
		local srv, port = H.server()
		local got
		srv:on("connection", function(ws, req) got = { ws = ws, req = req } end)
		local p = connect(port, { path = "/chat/room?token=abc&x=1",
			headers = { Cookie = "sid=42", ["X-Custom"] = "yes" }, origin = "http://example.test" })
		p:wait("open")
		H.run_until(function() return got end)
		local req = got.req
		assert.are.equal("GET", req.method)
		assert.are.equal("/chat/room", req.path)
		assert.are.same({ token = "abc", x = "1" }, req.query)
		assert.are.equal("/chat/room?token=abc&x=1", req.url)
		assert.are.equal("sid=42", req.headers.cookie)
		assert.are.equal("http://example.test", req.headers.origin)
		assert.are.equal("127.0.0.1", req.remote_address)
		assert.are.equal("HTTP/1.1", req.http_version)
		assert.is_nil(got.ws.request)   -- not kept: memory per connection
		assert.are.equal(lws.OPEN, got.ws.readyState)
		assert.are.equal("127.0.0.1", got.ws.remote_address)
		assert.is_true(srv.clients[got.ws])
	end)

	it("lets verify refuse with 401 and 403 and read the query, headers and cookies", function()
		local _, port = H.server {
			verify = function(req)
				if req.query.token ~= "good" then return false, 401, "bad token" end
				if req.headers.origin ~= "http://ok.test" then return false, 403, "origin not allowed" end
				if not (req.headers.cookie or ""):find("sid=1") then
					return false, 403, "no session", { ["X-Why"] = "cookie" }
				end
				return true
			end,
		}
		local p = connect(port, { path = "/?token=bad" })
		local ev = p:wait("unexpected-response")
		assert.are.same({ 401, "bad token" }, { ev.status, ev.body })
		p = connect(port, { path = "/?token=good", origin = "http://evil.test" })
		ev = p:wait("unexpected-response")
		assert.are.same({ 403, "origin not allowed" }, { ev.status, ev.body })
		p = connect(port, { path = "/?token=good", origin = "http://ok.test" })
		ev = p:wait("unexpected-response")
		assert.are.same({ 403, "no session", "cookie" }, { ev.status, ev.body, ev.headers["x-why"] })
		p = connect(port, { path = "/?token=good", origin = "http://ok.test", headers = { Cookie = "a=b; sid=1" } })
		p:wait("open")
	end)

	it("negotiates subprotocols like ws: the first offered, or the hook's choice", function()
		local _, port = H.echo_server()
		local p = connect(port, { protocols = { "chat.v2", "chat.v1" } })
		assert.are.equal("chat.v2", p:wait("open").protocol)

		local srv2, port2 = H.server {
			handle_protocols = function(offered)
				for _, name in ipairs(offered) do if name == "chat.v1" then return name end end
				return false
			end,
		}
		local seen
		srv2:on("connection", function(ws) seen = ws.protocol end)
		p = connect(port2, { protocols = { "chat.v2", "chat.v1" } })
		assert.are.equal("chat.v1", p:wait("open").protocol)
		H.run_until(function() return seen end)
		assert.are.equal("chat.v1", seen)

		-- the hook declines: 101 without Sec-WebSocket-Protocol (ws then fails it)
		local r = H.raw(port2)
		local status, hdrs = r:handshake("/", { ["Sec-WebSocket-Protocol"] = "other" })
		assert.are.equal(101, status)
		assert.is_nil(hdrs["sec-websocket-protocol"])
		-- and a client that offered nothing gets none
		r = H.raw(port2)
		status, hdrs = r:handshake("/")
		assert.are.equal(101, status)
		assert.is_nil(hdrs["sec-websocket-protocol"])
	end)

	it("only upgrades on its path when given one", function()
		local _, port = H.server { path = "/ws" }
		local p = connect(port, { path = "/other" })
		assert.are.equal(400, p:wait("unexpected-response").status)
		p = connect(port, { path = "/ws" })
		p:wait("open")
	end)

	it("echoes 16 MiB text and binary messages", function()
		local _, port = H.echo_server { max_message_size = 16 * 1024 * 1024 }
		local p = connect(port)
		p:wait("open")
		for _, binary in ipairs { false, true } do
			p:cmd { cmd = "send", size = 16 * 1024 * 1024, binary = binary }
			local ev = p:wait("message", 30000)
			assert.are.same({ 16 * 1024 * 1024, binary, true }, { ev.len, ev.binary, ev.match })
		end
	end)

	it("reassembles fragmented input from ws", function()
		local srv, port = H.server()
		local got
		srv:on("connection", function(ws) ws:on("message", function(d, b) got = { d, b } end) end)
		local p = connect(port)
		p:wait("open")
		p:cmd { cmd = "fragments", parts = { "hel", "lo ", "wor", "ld" } }
		H.run_until(function() return got end)
		assert.are.same({ "hello world", false }, got)
	end)

	it("pings and pongs both ways", function()
		local srv, port = H.server()
		local pongs = {}
		srv:on("connection", function(ws)
			ws:on("pong", function(payload) pongs[#pongs + 1] = payload end)
			ws:ping("from-server")
		end)
		local p = connect(port)
		p:wait("open")
		assert.are.equal("from-server", p:wait("ping").data)
		H.run_until(function() return #pongs == 1 end)
		assert.are.equal("from-server", pongs[1])
		p:cmd { cmd = "ping", data = "from-node" }
		assert.are.equal("from-node", p:wait("pong").data)
	end)

	it("carries close codes and reasons both ways", function()
		local srv, port = H.server()
		local closes, conns = {}, {}
		srv:on("connection", function(ws)
			conns[#conns + 1] = ws
			ws:on("close", function(code, reason, clean) closes[#closes + 1] = { code, reason, clean } end)
		end)
		local p = connect(port)
		p:wait("open")
		p:cmd { cmd = "close", code = 4003, reason = "client says bye" }
		assert.are.equal(4003, p:wait("close").code)
		H.run_until(function() return #closes == 1 end)
		assert.are.same({ 4003, "client says bye", true }, closes[1])

		p = connect(port)
		p:wait("open")
		H.run_until(function() return #conns == 2 end)
		conns[2]:close(4002, "server says bye")
		local ev = p:wait("close")
		assert.are.same({ 4002, "server says bye" }, { ev.code, ev.reason })
		H.run_until(function() return #closes == 2 end)
		assert.are.same({ 4002, "server says bye", true }, closes[2])
		assert.has_error(function() conns[2]:close(1005) end)
		assert.has_error(function() conns[2]:close(1000, string.rep("x", 124)) end)
	end)

	it("serves 200 concurrent clients each echoing", function()
		local srv, port = H.echo_server()
		local p = H.node()
		p:cmd { cmd = "many", url = url(port), clients = 200, messages = 20, size = 64 }
		local ev = p:wait("many-done", 30000)
		assert.are.same({ 200, 200, 0 }, { ev.opened, ev.done, ev.errors })
		p:wait("many-closed", 10000)
		H.run_until(function() return srv:client_count() == 0 end)
	end)

	it("closes every client with 1001 when closed with clients attached", function()
		local srv, port = H.echo_server()
		local closed = false
		srv:on("close", function() closed = true end)
		local peers = {}
		for i = 1, 3 do
			peers[i] = connect(port)
			peers[i]:wait("open")
		end
		srv:close()
		for i = 1, 3 do
			local ev = peers[i]:wait("close")
			assert.are.same({ 1001, "server closing" }, { ev.code, ev.reason })
		end
		H.run_until(function() return closed end)
		assert.are.same({ nil, "server is closed", "closed" }, { srv:port() })
		-- the port is free again
		local again = assert(lws.server { host = "127.0.0.1", port = port })
		again:close()
	end)

	it("survives collectgarbage() in the middle of traffic", function()
		local srv, port = H.server()
		local count = 0
		srv:on("connection", function(ws)
			ws:on("message", function(data, binary)
				count = count + 1
				collectgarbage("collect")
				ws:send(data, binary)
			end)
		end)
		local p = connect(port)
		p:wait("open")
		for i = 1, 50 do
			p:cmd { cmd = "send", data = "msg" .. i }
			if i % 10 == 0 then collectgarbage("collect") end
		end
		for i = 1, 50 do
			local ev = p:wait("message")
			assert.are.equal("msg" .. i, ev.data)
		end
		-- nobody holds the connection but the server: it stays alive
		collectgarbage("collect")
		p:cmd { cmd = "send", data = "still here" }
		assert.are.equal("still here", p:wait("message").data)
	end)

	it("caps the send queue: bufferedAmount grows, then send() says full", function()
		local srv, port = H.server { max_queue_bytes = 1 << 20 }
		local results, conn = {}, nil
		srv:on("connection", function(ws) conn = ws end)
		local p = connect(port)
		p:wait("open")
		H.run_until(function() return conn end)
		p:cmd { cmd = "pause" }
		p:cmd { cmd = "state" }
		p:wait("state")
		local chunk = string.rep("x", 64 * 1024 + 1)   -- reported without payload
		local full
		H.run_until(function()
			local ok, err, code = conn:send(chunk)
			if not ok then full = { err, code } return true end
			results[#results + 1] = conn.bufferedAmount
			return false
		end, 20000, "the send queue to fill", 10)   -- we are the producer: re-check every 10 ms
		assert.are.equal("full", full[2])
		assert.matches("^send queue full", full[1])
		assert.is_true(conn.bufferedAmount > 0 and conn.bufferedAmount <= 1 << 20)
		-- the reader resumes and gets everything that was accepted
		p:cmd { cmd = "resume" }
		for _ = 1, #results do p:wait("message", 10000) end
		H.run_until(function() return conn.bufferedAmount == 0 end)
	end)

	it("closes a slow consumer with 1008 when asked to", function()
		local srv, port = H.server { max_queue_bytes = 256 * 1024, slow_consumer = "close" }
		local conn, code
		srv:on("connection", function(ws)
			conn = ws
			ws:on("close", function(c) code = c end)
		end)
		local p = connect(port)
		p:wait("open")
		H.run_until(function() return conn end)
		p:cmd { cmd = "pause" }
		p:cmd { cmd = "state" }
		p:wait("state")
		-- over 64 KiB: the peer reports it without its payload (a spec under
		-- valgrind must not spend the close timeout decoding megabytes of echoes)
		local chunk = string.rep("y", 64 * 1024 + 1)
		H.run_until(function() return not conn:send(chunk) end, 20000, "the queue to fill", 10)
		assert.are.equal(lws.CLOSING, conn.readyState)
		p:cmd { cmd = "resume" }
		H.run_until(function() return code end, 15000)
		assert.are.equal(1008, code)
	end)

	it("sends a ping ahead of a big queued message", function()
		local srv, port = H.server()
		srv:on("connection", function(ws)
			ws:send(string.rep("z", 8 * 1024 * 1024))
			ws:ping("urgent")
		end)
		local p = connect(port)
		p:wait("open")
		local order = {}
		H.run_until(function()
			for _, ev in ipairs(p.events) do
				if (ev.ev == "ping" or ev.ev == "message") and not order[ev.ev] then
					order[#order + 1] = ev.ev
					order[ev.ev] = true
				end
			end
			return #order == 2
		end, 20000)
		assert.are.same({ "ping", "message" }, { order[1], order[2] })
	end)
end)
