--[[ lws.heartbeat: protocol-level pings (opcode 0x9) that find dead peers,
for a server's every connection and for a client.

  lws.server{ port = 9001, heartbeat = { interval = 30000, timeout = 10000 } }
  lws.WebSocket(url, nil, { heartbeat = { interval = 30000, timeout = 10000 } })

Design criteria:
 - A ping every `interval` ms (default 30000). A connection that has sent
   nothing at all - no pong, no message - within `timeout` ms (default
   10000) of the oldest ping it has not answered is dead: it is
   terminated (TCP drop, no closing handshake) and reports close 1006
   "heartbeat timeout". A peer that stopped without closing TCP is found
   within interval + timeout.
 - Any traffic counts as life (C keeps ws.last_activity, the lws.now() ms
   of the last bytes from the peer), so a busy connection is never
   dropped because its pong is queued behind data.
 - Cheap at 10,000 connections: ONE timer per server, re-armed to the next
   thing due (a ping round or a deadline); each round is one pass over
   server.clients, with the state in one weak table, not per-connection
   timers or closures in C.
 - ws.rtt is the round trip of the last answered heartbeat, in ms (the
   ping payload carries its send time); a "heartbeat"(rtt) event fires
   on the connection.
]]
local core = require "lws.core"
local emitter = require "lws.emitter"

local M = {}

M.defaults = { interval = 30000, timeout = 10000 }
local PREFIX = "lws-hb:"

local function positive_ms(v)
	if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then return "a positive number of ms" end
end
local spec = { interval = positive_ms, timeout = positive_ms }

--- options(t, name[, level]) -> { interval, timeout } with defaults; raises
function M.options(t, name, level)
	name = name or "heartbeat"
	level = level or 2
	if type(t) ~= "table" then
		error(("option '%s' must be a table, got %s"):format(name, type(t)), level + 1)
	end
	require("lws.options").check(t, spec, level + 1, name .. ".")
	local o = { interval = M.defaults.interval, timeout = M.defaults.timeout }
	for k, v in pairs(t) do o[k] = v end
	return o
end

--- ping_payload(now) / parse_payload(p) -> send time or nil (exported for specs)
function M.ping_payload(now) return PREFIX .. string.format("%.3f", now) end
function M.parse_payload(p)
	if type(p) ~= "string" or p:sub(1, #PREFIX) ~= PREFIX then return nil end
	return tonumber(p:sub(#PREFIX + 1))
end

local Sweeper = {}
Sweeper.__index = Sweeper

--- sweeper(o, each, on_rtt) -> a heartbeat over the connections each(fn)
-- visits; on_rtt(ws, rtt) after every answered heartbeat
function M.sweeper(o, each, on_rtt)
	local s = setmetatable({
		interval = o.interval, timeout = o.timeout, each = each, on_rtt = on_rtt,
		since = setmetatable({}, { __mode = "k" }),   -- ws -> oldest unanswered ping (ms)
	}, Sweeper)
	s.tick = function() s:round() end
	return s
end

function Sweeper:start()
	if self.timer then return end
	self.next_ping = core.now() + self.interval
	self.timer = core.timer(self.interval, 0, self.tick)
end

function Sweeper:stop()
	if self.timer then self.timer:stop(); self.timer = nil end
end

-- One pass: drop the dead, ping everyone when a round is due, and re-arm
-- the timer to the earlier of the next round and the next deadline.
function Sweeper:round()
	if not self.timer then return end
	local now = core.now()
	local since, timeout = self.since, self.timeout
	-- timers have 1 ms resolution: treat "due within 1 ms" as due
	local payload
	if now >= self.next_ping - 1 then
		payload = M.ping_payload(now)
		self.next_ping = self.next_ping + self.interval
		if self.next_ping <= now then self.next_ping = now + self.interval end
	end
	local next_deadline = math.huge
	self.each(function(ws)
		local t = since[ws]
		if t and ws.last_activity >= t then t = nil end   -- it spoke since
		if t and now - t >= timeout - 1 then
			since[ws] = nil
			ws:terminate("heartbeat timeout")
			return
		end
		if payload and ws.readyState == 1 and ws:ping(payload) and not t then t = now end
		since[ws] = t
		if t and t + timeout < next_deadline then next_deadline = t + timeout end
	end)
	local due = math.min(self.next_ping, next_deadline)
	if self.timer then self.timer:again(math.max(1, math.ceil(due - core.now()))) end
end

function Sweeper:pong(ws, payload)
	local t = M.parse_payload(payload)
	if not t then return end
	local rtt = core.now() - t
	if rtt < 0 then return end
	self.since[ws] = nil
	ws.rtt = rtt
	if self.on_rtt then self.on_rtt(ws, rtt) end
end

--- attach_server(srv, opts): heartbeat for every connection srv accepts
-- (server.lua calls this for the `heartbeat` option). One timer, stopped
-- when the server closes.
function M.attach_server(srv, opts)
	local ok, o = pcall(M.options, opts, "heartbeat", -1)
	if not ok then
		-- server.lua made the server before asking us: don't leave it open
		srv:close(0)
		error(o, 3)
	end
	local f = srv:fields()
	local s = M.sweeper(o, function(fn)
		for ws in pairs(f.clients) do fn(ws) end
	end, function(ws, rtt) emitter.emit(ws, "heartbeat", rtt) end)
	srv:on("connection", function(ws)
		ws:on("pong", function(payload) s:pong(ws, payload) end)
	end)
	srv:on("close", function() s:stop() end)
	s:start()
	return s
end

--- client(o, get_conn, on_rtt) -> a sweeper over the client's one
-- connection: start() when it opens, stop() when it closes, pong(conn, p)
function M.client(o, get_conn, on_rtt)
	return M.sweeper(o, function(fn)
		local c = get_conn()
		if c then fn(c) end
	end, function(_, rtt) on_rtt(rtt) end)
end

return M
