-- Heartbeat on both ends: protocol pings find a peer that went silent
-- without closing TCP (a Node process stopped with SIGSTOP), within
-- interval + timeout, without disturbing anything else; the round trip
-- is readable; the server's application-level "ping"/"pong".
local H = require "helper"
local lws = require "lws"
local heartbeat = require "lws.heartbeat"
local socket = require "socket"

local INTERVAL, TIMEOUT = 200, 200
-- what a loaded machine (or valgrind) may add to a deadline
local MARGIN = 250 * H.SLOW

local clients = {}
local function client(url, opts)
	local ws = lws.WebSocket(url, nil, opts)
	clients[#clients + 1] = ws
	return ws
end

local url = H.ws_url

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A script of the checkout in its own process (bin/lws-lua), its stdout a
-- TCP connection back to us: proc.lines() is what it printed so far.
local procs = {}
local function spawn(script, args)
	local ctl = assert(socket.bind("127.0.0.1", 0))
	ctl:settimeout(0)
	local _, cport = ctl:getsockname()
	local p = { buf = "", log = os.tmpname() }
	-- our ASan/valgrind preload is not for the child
	local env = io.open(H.ROOT .. "/build/lws/core.so") and "env -u LD_PRELOAD -u LWS_BUILD_DIR" or "env"
	local cmd = ("cd %s && exec %s bin/lws-lua %s %s >/dev/tcp/127.0.0.1/%d 2>%s"):format(sh_quote(H.ROOT),
		env, script, args, cport, sh_quote(p.log))
	local pidfile = os.tmpname()
	os.execute(("bash -c %s </dev/null & echo $! >%s"):format(sh_quote(cmd), sh_quote(pidfile)))
	local f = assert(io.open(pidfile))
	p.pid = tonumber(f:read("a"):match("%d+"))
	f:close()
	os.remove(pidfile)
	procs[#procs + 1] = p
	local w = lws.watch(ctl:getfd(), function()
		local c = ctl:accept()
		if c then p.sock = c end
	end)
	local ok, err = pcall(H.run_until, function() return p.sock end, 10000, script .. " to start")
	w:close()
	ctl:close()
	assert(ok, err)
	p.sock:settimeout(0)
	p.watch = lws.watch(p.sock:getfd(), function()
		local data, rerr, partial = p.sock:receive(4096)
		p.buf = p.buf .. (data or partial or "")
		if rerr == "closed" then p.watch:close(); p.watch = nil; p.exited = true end
	end)
	-- waits for a printed line matching pat (after the first `after` bytes)
	function p.wait_line(pat, ms, after)
		local found
		local ok2, err2 = pcall(H.run_until, function()
			found = p.buf:sub((after or 0) + 1):match(pat)
			return found or p.exited
		end, ms or 5000, "a line matching " .. pat)
		if not found then
			local f2 = io.open(p.log)
			local errs = f2 and f2:read("a") or ""
			if f2 then f2:close() end
			error(("%s\nprinted:\n%s\nstderr:\n%s"):format(ok2 and "exited" or err2, p.buf, errs), 2)
		end
		return found
	end
	return p
end

local function stop_procs()
	for _, p in ipairs(procs) do
		if p.pid then os.execute("kill " .. p.pid .. " 2>/dev/null") end
		pcall(H.run_until, function() return p.exited end, 5000, "the process to exit")
		if p.watch then p.watch:close() end
		if p.sock then p.sock:close() end
		os.remove(p.log)
	end
	procs = {}
end

local node_client = H.node_client

describe("heartbeat", function()
	after_each(function()
		for _, ws in ipairs(clients) do ws:close() end
		clients = {}
		stop_procs()
		H.clean()
	end)

	it("server: drops a silent peer within interval + timeout; other clients keep echoing", function()
		local srv, port = H.server { heartbeat = { interval = INTERVAL, timeout = TIMEOUT } }
		local closes, conns = {}, {}
		srv:on("connection", function(ws, req)
			conns[#conns + 1] = ws
			ws:on("message", function(d, b) ws:send(d, b) end)
			ws:on("close", function(code, reason, clean)
				closes[ws] = { code = code, reason = reason, clean = clean, at = lws.now() }
			end)
		end)
		local silent, alive = node_client(port), node_client(port)
		H.run_until(function() return #conns == 2 end)
		-- both answer pings while they run
		silent:wait("ping", 2000)
		alive:wait("ping", 2000)

		silent:signal("STOP")
		local stopped_at = lws.now()
		-- the other one keeps talking the whole time (a message every 50 ms)
		local sent, last = 0, 0
		local function echoed()
			local k = 0
			for _, ev in ipairs(alive.events) do if ev.ev == "message" then k = k + 1 end end
			return k
		end
		local dead
		local wake = lws.set_interval(function() end, 10)   -- let the predicate run often
		H.run_until(function()
			if echoed() == sent and lws.now() - last >= 50 then
				sent, last = sent + 1, lws.now()
				alive:cmd { cmd = "send", data = "still here " .. sent }
			end
			for ws, c in pairs(closes) do dead = { ws = ws, c = c } end
			return dead
		end, INTERVAL + TIMEOUT + MARGIN + 1000, "the silent peer to be dropped")
		wake:stop()
		local took = dead.c.at - stopped_at
		if os.getenv("LWS_SPEC_VERBOSE") then print(("\n    server dropped the silent peer after %.0f ms"):format(took)) end
		assert.are.same({ 1006, "heartbeat timeout", false }, { dead.c.code, dead.c.reason, dead.c.clean })
		assert.is_true(took >= TIMEOUT - 50 and took <= INTERVAL + TIMEOUT + MARGIN,
			("dropped after %.0f ms (interval %d + timeout %d)"):format(took, INTERVAL, TIMEOUT))
		assert.is_true(echoed() >= 3, "the live client echoed while the other was silent")
		-- nothing else was closed, and the live client still echoes
		H.run_for(2 * (INTERVAL + TIMEOUT))
		local n = 0
		for _ in pairs(closes) do n = n + 1 end
		assert.are.equal(1, n)
		local before = echoed()
		alive:cmd { cmd = "send", data = "after" }
		H.run_until(function() return echoed() > before end)
		assert.are.equal(1, srv:client_count())
		silent:signal("CONT")
	end)

	it("server: one timer however many connections, stopped when the server closes", function()
		local timers0 = lws.stats().timers
		local srv, port = H.server { heartbeat = { interval = 100, timeout = 1000 } }
		assert.are.equal(timers0 + 1, lws.stats().timers)
		local n = 0
		srv:on("connection", function() n = n + 1 end)
		local ws = {}
		for i = 1, 20 do ws[i] = client(url(port)) end
		H.run_until(function()
			for i = 1, 20 do if ws[i].readyState ~= lws.OPEN then return false end end
			return n == 20
		end)
		assert.are.equal(timers0 + 1, lws.stats().timers)
		-- every connection gets pinged and measures its round trip
		local rtts = {}
		for c in pairs(srv.clients) do
			c:on("heartbeat", function(rtt) rtts[c] = rtt end)
		end
		H.run_until(function()
			local k = 0
			for _ in pairs(rtts) do k = k + 1 end
			return k == 20
		end, 2000)
		for c, rtt in pairs(rtts) do
			assert.is_true(rtt >= 0 and rtt < 1000, "rtt " .. rtt)
			assert.are.equal(rtt, c.rtt)
		end
		local closed = false
		srv:on("close", function() closed = true end)
		srv:close()
		H.run_until(function() return closed end)
		assert.are.equal(timers0, lws.stats().timers)
	end)

	it("client: finds a server that went silent, and reports the round trip", function()
		local p = H.node(H.ROOT .. "/spec/peers/ws_server.js")
		p:cmd { cmd = "listen" }
		local port = math.tointeger(p:wait("listening").port)
		local ws = client(url(port), { heartbeat = { interval = INTERVAL, timeout = TIMEOUT } })
		local rtts, closed = {}, nil
		ws:on("heartbeat", function(rtt) rtts[#rtts + 1] = rtt end)
		ws:on("close", function(code, reason, clean) closed = { code, reason, clean, at = lws.now() } end)
		H.run_until(function() return #rtts >= 2 end, 3000, "two heartbeats")
		assert.is_true(rtts[1] >= 0 and rtts[1] < 1000)
		assert.are.equal(rtts[#rtts], ws.rtt)
		assert.are.equal("ping", p:wait("ping").ev)

		p:signal("STOP")
		local stopped_at = lws.now()
		H.run_until(function() return closed end, INTERVAL + TIMEOUT + MARGIN + 1000, "the client to give up")
		local took = closed.at - stopped_at
		if os.getenv("LWS_SPEC_VERBOSE") then print(("\n    client dropped the silent server after %.0f ms"):format(took)) end
		assert.are.same({ 1006, "heartbeat timeout", false }, { closed[1], closed[2], closed[3] })
		assert.is_true(took >= TIMEOUT - 50 and took <= INTERVAL + TIMEOUT + MARGIN,
			("dropped after %.0f ms"):format(took))
		assert.are.equal(lws.CLOSED, ws.readyState)
		p:signal("CONT")
	end)

	it("any traffic counts as life: a busy peer is not dropped", function()
		-- the client answers no pings while paused, but keeps sending
		local srv, port = H.server { heartbeat = { interval = 100, timeout = 100 } }
		local got, closed = 0, false
		srv:on("connection", function(ws)
			ws:on("message", function() got = got + 1 end)
			ws:on("close", function() closed = true end)
		end)
		local ws = client(url(port))
		ws:on("open", function() end)
		H.run_until(function() return ws.readyState == lws.OPEN end)
		local t = lws.set_interval(function() ws:send("tick") end, 30)
		H.run_for(600)
		t:stop()
		assert.is_false(closed)
		assert.is_true(got >= 10)
	end)

	it("server: application heartbeat answers 'ping' with 'pong', out of the user's sight", function()
		local srv, port = H.server { app_heartbeat = { ping = "ping", pong = "pong" } }
		local seen = {}
		srv:on("connection", function(c)
			c:on("message", function(d) seen[#seen + 1] = d; c:send("echo:" .. d) end)
		end)
		local ws = client(url(port))
		local got = {}
		ws:on("message", function(d) got[#got + 1] = d end)
		H.run_until(function() return ws.readyState == lws.OPEN end)
		ws:send("ping")
		ws:send("hello")
		ws:send("ping", true)   -- binary "ping" is an ordinary message
		H.run_until(function() return #got == 3 end)
		assert.are.same({ "pong", "echo:hello", "echo:ping" }, got)
		assert.are.same({ "hello", "ping" }, seen)
	end)

	it("checks its options and builds payloads the pong parser reads back", function()
		assert.has_error(function() lws.server { port = 0, heartbeat = { interval = 0 } } end,
			"option 'heartbeat.interval' must be a positive number of ms, got number 0")
		assert.has_error(function() lws.server { port = 0, heartbeat = { every = 1 } } end,
			"unknown option 'heartbeat.every'")
		assert.are.same({ interval = 30000, timeout = 10000 }, heartbeat.options({}))
		assert.are.equal(1234.5, heartbeat.parse_payload(heartbeat.ping_payload(1234.5)))
		assert.is_nil(heartbeat.parse_payload("user ping"))
	end)
	it("example: the Lua client logs round trips and survives a server restart", function()
		local srv, port = H.echo_server()
		local p = spawn("examples/heartbeat/client.lua",
			("--url ws://127.0.0.1:%d/ --interval 100 --timeout 300 --every 200"):format(port))
		p.wait_line("open ws://")
		assert.is_truthy(tonumber(p.wait_line("heartbeat rtt ([%d.]+) ms")))
		p.wait_line('echo "tick %d+"')
		srv:close()
		local mark = #p.buf
		p.wait_line("close 1001 server closing %(will reconnect%)", 5000, mark)
		p.wait_line("reconnect attempt 2 in %d+ ms", 5000, mark)
		p.wait_line("error: cannot connect to 127.0.0.1:" .. port .. ": connection refused", 5000, mark)
		mark = #p.buf
		H.echo_server { port = port }
		p.wait_line("open ws://", 10000, mark)
		p.wait_line("heartbeat rtt", 5000, mark)
		p.wait_line('echo "tick %d+"', 5000, mark)
	end)

	it("example: the page's server serves the page and answers the application heartbeat", function()
		local p = spawn("examples/heartbeat/server.lua", "--port 0")
		local port = math.tointeger(tonumber(p.wait_line("^listening on http://127%.0%.0%.1:(%d+)/\n")))
		for path, want in pairs { ["/"] = "<title>Heartbeat", ["/app.js"] = "PONG_WITHIN" } do
			local r = H.raw(port)
			r:send(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"):format(path, port))
			local status, _, body = r:read_response()
			r:close()
			assert.are.equal(200, status, path)
			assert.is_truthy(body:find(want, 1, true), path)
		end
		local ws = client(("ws://127.0.0.1:%d/ws"):format(port))
		local got = {}
		ws:on("message", function(d) got[#got + 1] = d end)
		H.run_until(function() return ws.readyState == lws.OPEN end)
		ws:send("ping")
		ws:send("hello")
		H.run_until(function() return #got == 2 end)
		assert.are.same({ "pong", "hello" }, got)
	end)
	it("example: the page in Chromium gives up a silent server and comes back after a restart", function()
		local srv = spawn("examples/heartbeat/server.lua", "--port 0")
		local port = math.tointeger(tonumber(srv.wait_line("^listening on http://127%.0%.0%.1:(%d+)/\n")))
		local b = H.node(H.ROOT .. "/spec/peers/browser.js")
		local seq = 0
		local function call(t, ms)
			seq = seq + 1
			t.id = seq
			b:cmd(t)
			local ev = b:wait("result", ms or 15000, function(ev) return ev.id == t.id end)
			if not ev.ok then error("browser: " .. tostring(ev.error), 2) end
			return ev.value
		end
		call({ cmd = "launch" }, 40000)
		assert.are.equal(200, call({ cmd = "open", page = "a", url = ("http://127.0.0.1:%d/"):format(port) }).status)
		call { cmd = "state", page = "a", state = "open" }
		-- stopped, not closed: only the application heartbeat can tell (3 s + 2 s)
		os.execute("kill -STOP " .. srv.pid)
		local ok, err = pcall(call, { cmd = "state", page = "a", state = "closed", timeout = 8000 }, 12000)
		os.execute("kill -CONT " .. srv.pid)
		assert(ok, err)
		call({ cmd = "state", page = "a", state = "open", timeout = 10000 }, 12000)
		-- a real restart on the same port
		stop_procs()
		call({ cmd = "state", page = "a", state = "closed", timeout = 8000 }, 12000)
		spawn("examples/heartbeat/server.lua", "--port " .. port)
			.wait_line("^listening on")
		call({ cmd = "state", page = "a", state = "open", timeout = 15000 }, 20000)
		local r = call { cmd = "report", page = "a" }
		assert.are.same({ {}, {}, {}, {} }, { r.errors, r.warnings, r.csp, r.blocked })
		call { cmd = "close" }
	end)
end)
