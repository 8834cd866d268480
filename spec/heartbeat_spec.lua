-- Heartbeat on both ends: protocol pings find a peer that went silent
-- without closing TCP (a Node process stopped with SIGSTOP), within
-- interval + timeout, without disturbing anything else; the round trip
-- is readable; the server's application-level "ping"/"pong".
local H = require "helper"
local lws = require "lws"
local heartbeat = require "lws.heartbeat"

local INTERVAL, TIMEOUT = 200, 200
-- what a loaded machine (or valgrind) may add to a deadline
local MARGIN = 250 * H.SLOW

local clients = {}
local function client(url, opts)
	local ws = lws.WebSocket(url, nil, opts)
	clients[#clients + 1] = ws
	return ws
end

local function url(port) return "ws://127.0.0.1:" .. port .. "/" end

local function node_client(port)
	local p = H.node()
	p:cmd { cmd = "connect", url = url(port) }
	p:wait("open")
	return p
end

describe("heartbeat", function()
	after_each(function()
		for _, ws in ipairs(clients) do ws:close() end
		clients = {}
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
		-- the other one keeps talking the whole time
		local n = 0
		local dead
		H.run_until(function()
			if not alive:has("message") and n == 0 or alive:has("message") then
				if alive:has("message") then alive:wait("message") end
				n = n + 1
				alive:cmd { cmd = "send", data = "still here " .. n }
			end
			for ws, c in pairs(closes) do dead = { ws = ws, c = c } end
			return dead
		end, INTERVAL + TIMEOUT + MARGIN + 1000, "the silent peer to be dropped")
		local took = dead.c.at - stopped_at
		assert.are.same({ 1006, "heartbeat timeout", false }, { dead.c.code, dead.c.reason, dead.c.clean })
		assert.is_true(took >= TIMEOUT - 50 and took <= INTERVAL + TIMEOUT + MARGIN,
			("dropped after %.0f ms (interval %d + timeout %d)"):format(took, INTERVAL, TIMEOUT))
		assert.is_true(n >= 2, "the live client echoed while the other was silent")
		-- the live client was not touched and still echoes
		assert.is_nil(closes[conns[2]] or (dead.ws == conns[2] and true or nil))
		alive:cmd { cmd = "send", data = "after" }
		H.run_until(function()
			for _, ev in ipairs(alive.events) do if ev.data == "after" then return true end end
		end)
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
		H.run_until(function() return n == 20 end)
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
			"option 'heartbeat.interval' must be a positive number of ms")
		assert.has_error(function() lws.server { port = 0, heartbeat = { every = 1 } } end,
			"unknown option 'heartbeat.every'")
		assert.are.same({ interval = 30000, timeout = 10000 }, heartbeat.options({}))
		assert.are.equal(1234.5, heartbeat.parse_payload(heartbeat.ping_payload(1234.5)))
		assert.is_nil(heartbeat.parse_payload("user ping"))
	end)
end)
