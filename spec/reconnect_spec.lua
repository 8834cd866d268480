-- Automatic reconnect: exponential backoff with jitter, against a Node ws
-- server that is killed and started again on the same port, against our
-- own server closed and reopened, and against a port that stays closed
-- (the backoff reaches max and the process stays idle meanwhile).
local H = require "helper"
local lws = require "lws"
local websocket = require "lws.websocket"

local clients = {}

local function client(url, opts)
	local ws = lws.WebSocket(url, nil, opts)
	clients[#clients + 1] = ws
	local rec = { ws = ws, events = {} }
	for _, name in ipairs { "open", "message", "error", "close", "reconnect" } do
		ws:on(name, function(...)
			rec.events[#rec.events + 1] = table.pack(name, ...)
			rec.events[#rec.events].at = lws.now()
		end)
	end
	function rec.count(name)
		local k = 0
		for _, e in ipairs(rec.events) do if e[1] == name then k = k + 1 end end
		return k
	end
	function rec.all(name)
		local t = {}
		for _, e in ipairs(rec.events) do if e[1] == name then t[#t + 1] = e end end
		return t
	end
	function rec.wait(name, n, ms)
		H.run_until(function() return rec.count(name) >= (n or 1) end, ms or 10000,
			("%d '%s' events (seen %d)"):format(n or 1, name, rec.count(name)))
		return rec.all(name)[n or 1]
	end
	return ws, rec
end

local url = H.ws_url

local function node_server(port, opts)
	opts = opts or {}
	opts.port = port
	return H.node_server(opts)
end

local closed_port = H.free_port

local FAST = { min = 40, max = 160, factor = 2, jitter = 0 }

describe("reconnect", function()
	after_each(function()
		for _, ws in ipairs(clients) do ws:close() end
		clients = {}
		H.clean()
	end)

	it("backoff: min*factor^(n-1) up to max, minus up to jitter of it", function()
		local r = { min = 100, max = 1000, factor = 2, jitter = 0.5 }
		local function at(rand) return function() return rand end end
		local got = {}
		for n = 1, 6 do got[n] = websocket.backoff(n, r, at(0)) end
		assert.are.same({ 100, 200, 400, 800, 1000, 1000 }, got)
		assert.are.equal(50, websocket.backoff(1, r, at(1)))
		assert.are.equal(500, websocket.backoff(9, r, at(1)))
		r.jitter = 1   -- full jitter: anywhere in [0, base]
		assert.are.equal(0, websocket.backoff(3, r, at(1)))
		for _ = 1, 100 do
			local d = websocket.backoff(3, r)
			assert.is_true(d >= 0 and d <= 400)
		end
	end)

	it("survives a Node server killed and started again on the same port", function()
		local peer, port = node_server()
		local ws, rec = client(url(port), { reconnect = FAST })
		local opens = 0
		ws.onopen = function() opens = opens + 1 end
		rec.wait("open")
		ws:send("one")
		assert.are.equal("one", rec.wait("message")[2])

		peer:kill()
		local c = rec.wait("close")
		assert.are.same({ 1006, false, true }, { c[2], c[4], c[5] })
		local r = rec.wait("reconnect")
		assert.are.same({ 1, 40 }, { r[2], r[3] })
		assert.are.equal(lws.CONNECTING, ws.readyState)
		-- refused while it is down: each attempt fails with events, and waits longer
		rec.wait("reconnect", 3)
		assert.are.equal("refused", rec.all("error")[1][3])

		node_server(port)
		rec.wait("open", 2, 5000)
		assert.are.equal(2, opens)   -- same object, same handlers
		assert.are.equal(lws.OPEN, ws.readyState)
		ws:send("two")
		assert.are.equal("two", rec.wait("message", 2)[2])
		-- every close before the last said it would reconnect
		for _, e in ipairs(rec.all("close")) do assert.is_true(e[5]) end
	end)

	it("survives our own server closed and reopened on the same port", function()
		local srv, port = H.echo_server()
		local ws, rec = client(url(port), { reconnect = FAST })
		rec.wait("open")
		srv:close()
		local c = rec.wait("close")
		assert.are.same({ 1001, "server closing", true, true }, { c[2], c[3], c[4], c[5] })
		rec.wait("reconnect", 2)
		H.echo_server { port = port }
		rec.wait("open", 2)
		ws:send("back")
		assert.are.equal("back", rec.wait("message")[2])
	end)

	it("against a port that stays closed: backoff grows to max, the process stays idle", function()
		local port = closed_port()
		local r = { min = 20, max = 160, factor = 2, jitter = 0, reset_after = 1000 }
		local _, rec = client(url(port), { reconnect = r })
		rec.wait("reconnect", 1)
		local cpu0, wall0 = os.clock(), lws.now()
		rec.wait("reconnect", 12, 10000)
		local cpu, wall = os.clock() - cpu0, lws.now() - wall0
		local delays = {}
		for i, e in ipairs(rec.all("reconnect")) do delays[i] = e[3] end
		assert.are.same({ 20, 40, 80, 160, 160, 160 }, { table.unpack(delays, 1, 6) })
		-- attempts are spaced by the delays (loosely: order and growth)
		local at = rec.all("reconnect")
		for i = 2, #at do
			assert.is_true(at[i].at - at[i - 1].at >= at[i - 1][3] - 2,
				("attempt %d came %.1f ms after the one before (delay %d)"):format(i, at[i].at - at[i - 1].at,
					at[i - 1][3]))
		end
		-- no busy loop: the CPU used while waiting is a small part of the wall time
		local share = cpu / (wall / 1000)
		if os.getenv("LWS_SPEC_VERBOSE") then
			print(("\n    closed port: %d attempts in %.0f ms wall, %.1f ms CPU (%.1f%%)"):format(
				#at - 1, wall, cpu * 1000, share * 100))
		end
		assert.is_true(share < 0.1, ("CPU %.1f%% of the wait"):format(share * 100))
		assert.is_true(wall >= 20 + 40 + 80 + 160 * 7)
	end)

	it("gives up after `attempts`: the last close says so", function()
		local port = closed_port()
		local ws, rec = client(url(port), { reconnect = { min = 10, max = 20, attempts = 2 } })
		H.run_until(function()
			local last = rec.all("close")[3]
			return last ~= nil
		end)
		H.run_for(100)
		assert.are.equal(3, rec.count("close"))
		assert.are.equal(2, rec.count("reconnect"))
		local closes = rec.all("close")
		assert.are.same({ true, true, false }, { closes[1][5], closes[2][5], closes[3][5] })
		assert.are.equal(lws.CLOSED, ws.readyState)
		assert.are.same({ nil, "connection is closed", "closed" }, { ws:send("x") })
	end)

	it("does not retry a close code or HTTP status marked final", function()
		local _, port = node_server(nil, { close_on_open = { code = 4001, reason = "banned" } })
		local _, rec = client(url(port), { reconnect = FAST, final_codes = { 1008, 4001 } })
		local c = rec.wait("close")
		assert.are.same({ 4001, "banned", true, false }, { c[2], c[3], c[4], c[5] })
		H.run_for(200)
		assert.are.equal(0, rec.count("reconnect"))

		-- a code not marked final is retried
		local _, port2 = node_server(nil, { close_on_open = { code = 4000, reason = "later" } })
		local ws2, rec2 = client(url(port2), { reconnect = FAST, final_codes = { 4001 } })
		rec2.wait("reconnect", 2)
		ws2:close()

		-- an HTTP status: 403 final, so one error and one close
		local _, port3 = node_server(nil, { refuse = { status = 403 } })
		local _, rec3 = client(url(port3), { reconnect = FAST, final_codes = { 403 } })
		local c3 = rec3.wait("close")
		assert.is_false(c3[5])
		H.run_for(200)
		assert.are.same({ 1, 1, 0 }, { rec3.count("error"), rec3.count("close"), rec3.count("reconnect") })
	end)

	it("close() by the user stops reconnecting for good, also while waiting", function()
		local peer, port = node_server()
		local ws, rec = client(url(port), { reconnect = FAST })
		rec.wait("open")
		ws:close(1000, "bye")
		local c = rec.wait("close")
		assert.are.same({ 1000, "bye", true, false }, { c[2], c[3], c[4], c[5] })
		peer:kill()
		H.run_for(200)
		assert.are.equal(0, rec.count("reconnect"))

		-- while a reconnect is pending: one final close, nothing after
		local port2 = closed_port()
		local ws2, rec2 = client(url(port2), { reconnect = { min = 5000, max = 5000 } })
		rec2.wait("reconnect")
		assert.are.equal(lws.CONNECTING, ws2.readyState)
		ws2:close()
		local last = rec2.wait("close", 2)
		assert.are.same({ 1006, "closed while waiting to reconnect", false, false },
			{ last[2], last[3], last[4], last[5] })
		assert.are.equal(lws.CLOSED, ws2.readyState)
		H.run_for(100)
		assert.are.equal(2, rec2.count("close"))

		-- from inside the close handler that announced a reconnect
		local ws3, rec3 = client(url(closed_port()), { reconnect = FAST })
		ws3:on("close", function(_, _, _, again) if again then ws3:close() end end)
		local final = rec3.wait("close", 2)
		assert.are.same({ 1006, "closed while waiting to reconnect", false }, { final[2], final[3], final[5] })
		H.run_for(100)
		assert.are.same({ 2, 0 }, { rec3.count("close"), rec3.count("reconnect") })
	end)

	it("resets the attempt count once a connection stayed up reset_after ms", function()
		local _, port = node_server(nil, { close_on_open = { code = 4000 } })
		local _, rec = client(url(port), { reconnect = { min = 10, max = 1000, jitter = 0, reset_after = 100000 } })
		rec.wait("reconnect", 3)
		local a = rec.all("reconnect")
		assert.are.same({ 1, 2, 3 }, { a[1][2], a[2][2], a[3][2] })
		assert.are.same({ 10, 20, 40 }, { a[1][3], a[2][3], a[3][3] })
		clients[1]:close()

		local _, rec2 = client(url(port), { reconnect = { min = 10, max = 1000, jitter = 0, reset_after = 0 } })
		rec2.wait("reconnect", 3)
		local b = rec2.all("reconnect")
		assert.are.same({ 1, 1, 1 }, { b[1][2], b[2][2], b[3][2] })
	end)

	it("send() while reconnecting: nil, err by default; queued in order with queue_while_reconnecting", function()
		local peer, port = node_server()
		local ws, rec = client(url(port), { reconnect = FAST })
		rec.wait("open")
		peer:kill()
		rec.wait("reconnect")
		assert.are.same({ nil, "not connected (reconnecting)", "reconnecting" }, { ws:send("lost") })
		ws:close()

		local peer2, port2 = node_server()
		local ws2, rec2 = client(url(port2), { reconnect = FAST, queue_while_reconnecting = 3 })
		rec2.wait("open")
		peer2:kill()
		rec2.wait("reconnect")
		assert.is_true(ws2:send("q1"))
		assert.is_true(ws2:send("q2", true))
		assert.is_true(ws2:send("q3"))
		assert.are.equal(6, ws2.bufferedAmount)
		assert.are.same({ nil, "send queue full while not connected (3 messages)", "full" }, { ws2:send("q4") })
		local back = node_server(port2)
		rec2.wait("open", 2)
		local got = {}
		for i = 1, 3 do
			local ev = back:wait("message")
			got[i] = { ev.data or H.unbase64(ev.b64), ev.binary }
		end
		assert.are.same({ { "q1", false }, { "q2", true }, { "q3", false } }, got)
		-- the echoes come back in order on the same object
		rec2.wait("message", 3)
		local m = rec2.all("message")
		assert.are.same({ "q1", "q2", "q3" }, { m[1][2], m[2][2], m[3][2] })
	end)

	it("is off unless asked for", function()
		local peer, port = node_server()
		local ws, rec = client(url(port))
		rec.wait("open")
		peer:kill()
		local c = rec.wait("close")
		assert.is_false(c[5])
		H.run_for(100)
		assert.are.equal(0, rec.count("reconnect"))
		assert.are.equal(lws.CLOSED, ws.readyState)
	end)
end)

describe("reconnect storms", function()
	after_each(H.clean)

	it("honours the Retry-After of a 503 refusal, then connects", function()
		-- the first upgrade is refused with Retry-After: 1, the next accepted
		local refused = 0
		local srv, port = H.server {
			verify = function()
				if refused == 0 then
					refused = 1
					return false, 503, "busy", { ["Retry-After"] = "1" }
				end
				return true
			end,
		}
		srv:on("connection", function(ws) ws:on("message", function(d) ws:send(d) end) end)
		local t0 = lws.now()
		local ws = lws.WebSocket("ws://127.0.0.1:" .. port .. "/", nil,
			{ reconnect = { min = 20, max = 100, jitter = 0 } })
		local delays, opened = {}, nil
		ws:on("reconnect", function(_, delay) delays[#delays + 1] = delay end)
		ws.onopen = function() opened = lws.now() - t0 end
		H.run_until(function() return opened end, 10000)
		assert.are.equal(1, #delays)
		assert.is_true(delays[1] >= 1000, "reconnected after " .. delays[1] .. " ms")
		assert.is_true(opened >= 1000)
		ws:close()
		H.run_until(function() return ws.readyState == lws.CLOSED end)
	end)
end)
