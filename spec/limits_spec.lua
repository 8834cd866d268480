-- Limits, hostile peers, security defaults, metrics, signals and shutdown.
local H = require "helper"
local lws = require "lws"

local url = H.ws_url

local function node_open(port, opts)
	local p = H.node()
	opts = opts or {}
	opts.cmd, opts.url = "connect", url(port, opts.path)
	opts.path = nil
	p:cmd(opts)
	return p
end

local function my_pid()
	local f = assert(io.open("/proc/self/stat"))
	local pid = tonumber(f:read("a"):match("^(%d+)"))
	f:close()
	return pid
end

describe("limits", function()
	after_each(H.clean)

	it("max_connections: at the limit accepted, one over refused with 503 and Retry-After", function()
		local srv, port = H.echo_server { max_connections = 3 }
		local peers = {}
		for i = 1, 3 do
			peers[i] = node_open(port)
			peers[i]:wait("open")
		end
		local r = H.raw(port)
		local status, hdrs, body = r:handshake("/")
		assert.are.same({ 503, "5", "server is at its connection limit" }, { status, hdrs["retry-after"], body })
		peers[1]:cmd { cmd = "close", code = 1000 }
		peers[1]:wait("close")
		H.run_until(function() return srv:connection_count() == 2 end)
		node_open(port):wait("open")
		assert.are.equal(1, srv:stats().handshakes_refused)
	end)

	it("handshake_timeout: slow headers are dropped, fast ones served", function()
		local srv, port = H.echo_server { handshake_timeout = 1 }
		local slow = H.raw(port)
		slow:send("GET / HTTP/1.1\r\nHost: a\r\n")   -- and never the rest
		local t0 = lws.now()
		slow:wait_closed(5000)
		local took = lws.now() - t0
		assert.is_true(took >= 900 and took < 4000 * H.SLOW, "closed after " .. took .. " ms")
		-- within the limit: headers sent in two parts, 300 ms apart
		local req = H.upgrade_request("/")
		local fast = H.raw(port)
		fast:send(req:sub(1, 20))
		H.run_for(300)
		fast:send(req:sub(21))
		assert.are.equal(101, (fast:read_response()))
		H.run_until(function() return srv:connection_count() == 1 end)
	end)

	it("idle_timeout closes connections silent for that long with 1001", function()
		local srv, port = H.echo_server { idle_timeout = 1 }
		local pinger
		srv:on("connection", function(ws, req)
			-- the busy peer answers pings every 300 ms: that is traffic
			if req.path == "/busy" then
				pinger = lws.set_interval(function() ws:ping("keep") end, 300)
				ws:on("close", function() pinger:stop() end)
			end
		end)
		local busy, idle = node_open(port, { path = "/busy" }), node_open(port)
		busy:wait("open"); idle:wait("open")
		local t0 = lws.now()
		local closed = idle:wait("close", 6000)
		assert.are.same({ 1001, "idle timeout" }, { closed.code, closed.reason })
		assert.is_true(lws.now() - t0 >= 900)
		H.run_for(500)
		assert.is_nil(busy:has("close"))
		busy:cmd { cmd = "close", code = 1000 }
		busy:wait("close")
	end)

	it("origins: an allow-list checked at the handshake, 403 otherwise", function()
		local _, port = H.echo_server { origins = { "http://ok.test", "https://Also.OK" } }
		node_open(port, { origin = "http://ok.test" }):wait("open")
		node_open(port, { origin = "https://also.ok" }):wait("open")
		local p = node_open(port, { origin = "http://evil.test" })
		assert.are.same({ 403, "origin not allowed" },
			(function(ev) return { ev.status, ev.body } end)(p:wait("unexpected-response")))
		-- no Origin: not a browser, so not a cross-site hijack
		local r = H.raw(port)
		assert.are.equal(101, (r:handshake("/")))
	end)

	it("handshake_rate answers a reconnect storm's excess with 503 and Retry-After", function()
		local srv, port = H.echo_server { handshake_rate = 5 }
		local ok, refused = 0, 0
		for _ = 1, 12 do
			local r = H.raw(port)
			local status, hdrs = r:handshake("/")
			if status == 101 then ok = ok + 1
			else
				assert.are.same({ 503, "1" }, { status, hdrs["retry-after"] })
				refused = refused + 1
			end
			r:close()
		end
		assert.is_true(ok >= 5 and ok <= 7, ok .. " accepted")
		assert.are.equal(12 - ok, refused)
		-- tokens come back with time
		H.run_for(400)
		local r = H.raw(port)
		assert.are.equal(101, (r:handshake("/")))
		assert.is_true(srv:stats().handshakes_refused >= 5)
	end)
end)

describe("hostile peers", function()
	after_each(H.clean)

	it("1,000 half-open handshakes (slowloris) do not stop a fresh client from echoing", function()
		local _, port = H.echo_server()
		local socket = require "socket"
		local held = {}
		for i = 1, 1000 do
			local s = socket.tcp()
			s:settimeout(5)
			assert(s:connect("127.0.0.1", port))
			s:settimeout(0)
			s:send("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
			held[i] = s
			if i % 100 == 0 then lws.run("nowait") end
		end
		local t0 = lws.now()
		local p = node_open(port)
		p:wait("open", 5000)
		p:cmd { cmd = "send", data = "through the crowd" }
		assert.are.equal("through the crowd", p:wait("message").data)
		local took = lws.now() - t0
		for _, s in ipairs(held) do s:close() end
		assert.is_true(took < 1000 * H.SLOW, "took " .. took .. " ms")
	end)

	it("an endless stream of 1-byte fragments ends at max_message_size with 1009", function()
		local srv, port = H.echo_server { max_message_size = 5000 }
		local closes = {}
		srv:on("connection", function(ws) ws:on("close", function(c) closes[#closes + 1] = c end) end)
		local r = H.raw(port)
		assert.are.equal(101, (r:handshake("/")))
		local parts = { H.frame(2, "x", { fin = false }) }
		for i = 2, 6000 do parts[i] = H.frame(0, "x", { fin = false }) end
		r:send(table.concat(parts))
		local code = r:read_close()
		assert.are.equal(1009, code)
		r:close()
		H.run_until(function() return #closes == 1 end)
		assert.are.equal(1009, closes[1])
	end)

	it("garbage after the handshake fails that connection only", function()
		local _, port = H.echo_server()
		local good = node_open(port)
		good:wait("open")
		local r = H.raw(port)
		assert.are.equal(101, (r:handshake("/")))
		r:send("\255\254\253 this is not a frame at all \0\1\2")
		local f = r:read_frame()
		assert.is_true(f == nil or f.opcode == 8)
		r:close()
		good:cmd { cmd = "send", data = "fine" }
		assert.are.equal("fine", good:wait("message").data)
	end)

	it("an abrupt disconnect mid-HTTP-body leaves nothing behind", function()
		local srv, port = H.server()
		local called = false
		srv:post("/up", function(_, res) called = true; res:send("ok") end)
		local r = H.raw(port)
		r:send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" .. string.rep("b", 5000))
		H.run_for(50)
		r:close()
		H.run_until(function() return lws.stats().requests == 0 end)
		assert.is_false(called)
	end)
end)

describe("operations", function()
	after_each(H.clean)

	it("server:stats() counts connections, handshakes, messages, bytes and closes by code", function()
		local srv, port = H.echo_server()
		local p = node_open(port)
		p:wait("open")
		for i = 1, 3 do
			p:cmd { cmd = "send", data = "msg" .. i }
			p:wait("message")
		end
		local s = srv:stats()
		assert.are.same({ 1, 1, 3, 3, 12, 12, 0 },
			{ s.connections, s.handshakes, s.messages_in, s.messages_out, s.bytes_in, s.bytes_out, s.queued_bytes })
		p:cmd { cmd = "close", code = 4004, reason = "bye" }
		p:wait("close")
		H.run_until(function() return srv:stats().connections == 0 end)
		s = srv:stats()
		assert.are.same({ 3, 1 }, { s.messages_in, s.closes[4004] })
		local r = H.raw(port)
		r:handshake("/", { ["Sec-WebSocket-Version"] = "8" })
		assert.are.equal(1, srv:stats().handshakes_refused)
	end)

	it("serves /metrics in Prometheus text format", function()
		local srv, port = H.echo_server()
		srv:metrics("/metrics")
		local p = node_open(port)
		p:wait("open")
		p:cmd { cmd = "send", data = "x" }
		p:wait("message")
		local r = H.raw(port)
		r:send("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
		local status, hdrs, body = r:read_response()
		assert.are.equal(200, status)
		assert.matches("^text/plain; version=0.0.4", hdrs["content-type"])
		assert.matches("# TYPE lws_connections gauge\nlws_connections 1\n", body, 1, true)
		assert.matches("lws_messages_received_total 1\n", body, 1, true)
		assert.matches("lws_handshakes_total 1\n", body, 1, true)
	end)

	it("runs a Lua signal handler from the loop, not inside the signal handler", function()
		local got
		assert(lws.on_signal("SIGUSR1", function(name) got = name end))
		os.execute("kill -USR1 " .. my_pid())
		H.run_until(function() return got end)
		assert.are.equal("SIGUSR1", got)
		assert(lws.on_signal("SIGUSR1", nil))
		assert.has_error(function() lws.on_signal("SIGNOPE", function() end) end)
	end)

	it("shutdown drains queued messages, answers in-flight HTTP, closes with 1001", function()
		local srv, port = H.server()
		local conns = {}
		srv:on("connection", function(ws) conns[#conns + 1] = ws end)
		local pending
		srv:get("/slow", function(_, res) pending = res end)
		local p = node_open(port)
		p:wait("open")
		H.run_until(function() return #conns == 1 end)
		for i = 1, 50 do conns[1]:send(("queued %d "):format(i) .. string.rep("q", 20000)) end
		local r = H.raw(port)
		r:send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		H.run_until(function() return pending end)
		local done = false
		-- from inside the loop (a signal handler would be): returns at once
		-- (the grace scales with LWS_TEST_SLOW: draining 1 MB is the point, not its speed)
		lws.set_timeout(function() srv:shutdown(5 * H.SLOW, function() done = true end) end, 0)
		-- the in-flight request is still answered
		lws.set_timeout(function() pending:send("answered during shutdown") end, 100)
		local status, _, body = r:read_response()
		assert.are.same({ 200, "answered during shutdown" }, { status, body })
		for _ = 1, 50 do p:wait("message", 10000) end
		local ev = p:wait("close")
		assert.are.same({ 1001, "server closing" }, { ev.code, ev.reason })
		H.run_until(function() return done end)
	end)

	it("accepts TLS 1.2 and 1.3 only", function()
		local dir = os.tmpname()
		os.remove(dir)
		assert(os.execute(("mkdir -p %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem " ..
			"-out %s/cert.pem -days 1 -subj /CN=localhost >/dev/null 2>&1"):format(dir, dir, dir)))
		local _, port = H.echo_server { tls = { cert = dir .. "/cert.pem", key = dir .. "/key.pem" } }
		local function handshake(flag)
			-- openssl runs outside our loop: let the loop serve it meanwhile
			local out = os.tmpname()
			os.execute(("(echo | timeout 5 openssl s_client %s -connect 127.0.0.1:%d >%s 2>&1; echo rc=$? >>%s) &")
				:format(flag, port, out, out))
			local text
			H.run_until(function()
				local f = io.open(out)
				text = f and f:read("a") or ""
				if f then f:close() end
				return text:find("rc=%d+")
			end, 8000, "openssl s_client", 50)
			os.remove(out)
			return text
		end
		assert.matches("New, TLSv1%.2,", handshake("-tls1_2"))
		assert.matches("New, TLSv1%.3,", handshake("-tls1_3"))
		-- the client allows TLS 1.1 (SECLEVEL=0); our server must still refuse it
		local old = handshake("-tls1_1 -cipher DEFAULT@SECLEVEL=0")
		assert.is_falsy(old:find("New, TLSv1%.1"), old)
		assert.matches("alert protocol version", old)
		os.execute("rm -rf " .. dir)
	end)
end)
