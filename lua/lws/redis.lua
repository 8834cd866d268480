--[[ lws.redis: a Redis client on the lws loop.

  local r = lws.redis.connect{ host = "127.0.0.1", port = 6379 }
  r:command({ "SET", "k", "v" }, function(reply, err, code) end)
  r:subscribe("news", function(message, channel) end)
  r:psubscribe("news.*", function(message, channel, pattern) end)
  r:publish("news", "hello"[, function(receivers, err, code) end])
  r:unsubscribe("news")
  r:ssubscribe("shard", function(message, channel) end)    -- sharded (Redis >= 7)
  r:spublish("shard", "hello"[, function(receivers, err, code) end])
  r:sunsubscribe("shard")
  r:on("ready", function() end)
  r:close()

Design criteria:
 - C (csrc/redis.c) owns mechanism: hiredis's async API, its socket
   watched by the lws loop (a raw-file wsi on a dup of hiredis's fd),
   replies handed over by command id. This file owns policy: the handshake
   (AUTH, SELECT, PING), readiness, reconnects with capped exponential
   backoff and jitter, health pings, the bound on commands in flight,
   subscriptions and their re-establishment, error reporting.
 - Two connections: one for commands, and one for subscriptions opened at
   the first subscribe(): in RESP2 a subscribed connection takes nothing
   but (P|S)(UN)SUBSCRIBE, PING and QUIT. Classic and sharded (Redis 7
   SSUBSCRIBE) subscriptions share it: one Redis, not a cluster, so every
   shard channel lives on the server we talk to. The subscription
   connection is a "raw" one of csrc/redis.c (replies sorted there:
   hiredis 0.14 does not know SSUBSCRIBE or "smessage").
 - A command either returns true and its callback then runs exactly once
   (with the reply, or nil, err, code), or returns nil, err, code and the
   callback never runs. Codes: "down" (not connected: during an outage,
   until the command connection is ready again), "full" (max_pending commands in flight), "closed" (close()
   was called, or the connection was lost before the reply: callback
   only), "redis" (an error reply: callback only).
 - While down, commands and publishes are refused at once and counted
   (stats().dropped). Nothing is queued for later: a broadcast delivered
   minutes late is worse than a missed one, and memory stays bounded.
   During the very first connection attempt, commands queue in hiredis
   behind the handshake (within max_pending) and fail in their callbacks
   if that attempt fails.
 - An outage lasts from a first failure until every connection is ready
   again. Its first failure is reported once through lws.on_error and the
   "error" event; later failures of the same outage are only counted
   (stats().failures). close() is not a failure.
 - Pub/sub is at most once (Redis's own guarantee): what is published
   while the subscription connection is down is not seen here. After a
   reconnect every channel is subscribed again ("subscribe" fires per
   channel once Redis confirms).
 - Replies: bulk and status strings -> strings, integers -> integers, nil
   -> nil (inside arrays: lws.redis.null, equal to cjson.null), arrays ->
   tables, error replies -> callback(nil, message, "redis") (inside arrays,
   e.g. EXEC: { err = message }). Everything is binary-safe.
 - The host is resolved by hiredis with a blocking getaddrinfo: prefer an
   address.

Options (unknown keys are an error):
  host, port        "127.0.0.1", 6379
  username, password  AUTH [username] password on every connection
  db                SELECT db on the command connection
  connect_timeout   ms for a connection to become ready (5000)
  ping_interval     ms between health PINGs on the command connection; one
                    left unanswered at the next tick ends both connections
                    (an outage) and they reconnect (5000; false: off)
  max_pending       commands in flight on the command connection (10000)
  reconnect         { min = 100, max = 10000, factor = 2, jitter = 0.5 }:
                    delay before attempt n = min*factor^(n-1), capped at max,
                    minus up to jitter of it at random; false: a failure
                    closes the client for good
  report_errors     report the first failure of an outage through
                    lws.on_error (true)

Events (r:on(name, fn)): "ready"() the command connection is ready (again);
"subscribe"(channel, count) / "psubscribe"(pattern, count) /
"ssubscribe"(channel, count) Redis confirmed a subscription; "disconnect"(role,
reason) a ready connection was lost (role "command" or "subscribe");
"reconnecting"(role, attempt, delay_ms); "error"(message) first failure of an
outage; "close"() after close(), once both connections are gone.
]]
local core = require "lws.core"
local emitter = require "lws.emitter"
local websocket = require "lws.websocket"

local emit = emitter.emit
local M = {}
M.null = core.redis_null
M.hiredis_version = core.hiredis_version

M.defaults = {
	host = "127.0.0.1", port = 6379, connect_timeout = 5000, ping_interval = 5000,
	max_pending = 10000, report_errors = true,
}
M.reconnect_defaults = { min = 100, max = 10000, factor = 2, jitter = 0.5 }

local methods = emitter.mixin({})
local mt = { __name = "lws.redis", __index = methods }
M.methods, M.mt = methods, mt

M.backoff = websocket.backoff

-- C connection userdata -> our connection table (ephemeron: no cycle issue)
local owners = setmetatable({}, { __mode = "k" })

local function report(msg)
	core.report(msg)
end

-- user handlers must not break our bookkeeping
local function safe_emit(obj, ev, ...)
	local ok, err = xpcall(emit, debug.traceback, obj, ev, ...)
	if not ok then report(err) end
end

local function callable(fn)
	if type(fn) == "function" then return true end
	local m = getmetatable(fn)
	return type(m) == "table" and m.__call ~= nil
end

---------------------------------------------------------------------------
-- options

-- 1 opt_error, 2 check_options, 3 connect, 4 its caller
local function opt_error(msg) error(msg, 4) end

local option_spec = {
	host = "string", port = "number", username = "string", password = "string",
	db = "number", connect_timeout = "number",
	ping_interval = function(v) if v ~= false and type(v) ~= "number" then return "a number or false" end end,
	max_pending = "number", reconnect = "boolean|table", report_errors = "boolean",
}

local function check_options(o)
	if type(o) ~= "table" then
		error("bad argument #1 to 'connect' (table expected, got " .. type(o) .. ")", 3)
	end
	-- 1 check, 2 check_options, 3 connect, 4 its caller
	require("lws.options").check(o, option_spec, 3)
	local c = {}
	for k, v in pairs(M.defaults) do c[k] = v end
	for k, v in pairs(o) do c[k] = v end
	if math.type(c.port) ~= "integer" or c.port < 1 or c.port > 65535 then
		opt_error("option 'port' must be an integer in 1..65535")
	end
	if c.db ~= nil and (math.type(c.db) ~= "integer" or c.db < 0) then
		opt_error("option 'db' must be a non-negative integer")
	end
	for _, k in ipairs { "connect_timeout", "max_pending" } do
		if c[k] <= 0 then opt_error("option '" .. k .. "' must be > 0") end
	end
	if c.ping_interval and c.ping_interval <= 0 then
		opt_error("option 'ping_interval' must be > 0 or false")
	end
	if c.reconnect ~= false then
		local r = {}
		for k, v in pairs(M.reconnect_defaults) do r[k] = v end
		for k, v in pairs(type(c.reconnect) == "table" and c.reconnect or {}) do
			if r[k] == nil then opt_error("unknown option 'reconnect." .. tostring(k) .. "'") end
			if type(v) ~= "number" or v ~= v or v < 0 then
				opt_error("option 'reconnect." .. k .. "' must be a non-negative number")
			end
			r[k] = v
		end
		if r.min < 1 or r.max < r.min or r.factor < 1 or r.jitter > 1 then
			opt_error("option 'reconnect' needs 1 <= min <= max, factor >= 1, 0 <= jitter <= 1")
		end
		c.reconnect = r
	end
	return c
end

---------------------------------------------------------------------------
-- one connection (command or subscribe) and its reconnect cycle
--
-- state: "connecting" (attempt under way, handshake queued), "ready",
-- "waiting" (backoff timer), "closed"

local attempt, fail, fail_all

local function stop_timer(conn, k)
	local t = conn[k]
	if t then t:stop(); conn[k] = nil end
end

-- send argv on conn; fn(reply, err, code) or nil (fire and forget)
local function send(conn, argv, fn)
	local id = 0
	if fn then
		id = conn.next_id + 1
		conn.next_id = id
		conn.cbs[id] = fn
	end
	local ok, err, code = conn.rc:command(id, argv)
	if not ok then
		if fn then conn.cbs[id] = nil end
		return nil, err, code
	end
	return true
end

local function subscribe_all(conn)
	local c = conn.client
	for cmd, subs in pairs { SUBSCRIBE = c.subs, PSUBSCRIBE = c.psubs, SSUBSCRIBE = c.ssubs } do
		local list, n = { cmd }, 1
		for ch in pairs(subs) do
			n = n + 1
			list[n] = ch
			if n > 1000 then send(conn, list); list, n = { cmd }, 1 end
		end
		if n > 1 then send(conn, list) end
	end
end

local function client_check_ready(c)
	if c.cmd.state ~= "ready" or (c.sub and c.sub.state ~= "ready") then return end
	c.outage = false
end

local function conn_ready(conn, rc)
	if rc ~= conn.rc or conn.state ~= "connecting" then return end
	local c = conn.client
	stop_timer(conn, "timer")
	conn.state = "ready"
	conn.attempt = 0
	if conn.role == "command" then
		local iv = c.opts.ping_interval
		if iv then
			conn.ping_out = false
			conn.ping_timer = core.timer(iv, iv, function()
				if conn.ping_out then
					return fail_all(c, ("no reply to PING within %d ms"):format(iv))
				end
				conn.ping_out = true
				send(conn, { "PING" }, function() conn.ping_out = false end)
			end)
		end
	else
		subscribe_all(conn)
	end
	client_check_ready(c)
	if conn.role == "command" then safe_emit(c, "ready") end
end

local function schedule(conn)
	local c = conn.client
	local r = c.opts.reconnect
	if c.closed or not r then
		conn.state = "closed"
		if not c.closed then c:close() end
		return
	end
	conn.state = "waiting"
	conn.attempt = conn.attempt + 1
	local delay = M.backoff(conn.attempt, r)
	c.counters.reconnects = c.counters.reconnects + 1
	conn.timer = core.timer(delay, 0, function()
		conn.timer = nil
		attempt(conn)
	end)
	safe_emit(c, "reconnecting", conn.role, conn.attempt, delay)
end

-- callbacks nobody will answer (hiredis answers each one before "close";
-- this is for a connection that went with the lws context: lws.shutdown)
local function flush(conn)
	local cbs = conn.cbs
	conn.cbs = {}
	for _, fn in pairs(cbs) do
		local ok, e = xpcall(fn, debug.traceback, nil, "connection closed", "closed")
		if not ok then report(e) end
	end
end

local function maybe_finished(c)
	if not c.closed or c.finished then return end
	if c.cmd.state ~= "closed" or (c.sub and c.sub.state ~= "closed") then return end
	c.finished = true
	safe_emit(c, "close")
	emitter.off(c)
end

-- the connection is gone (C "close" event, or a refused connect)
local function conn_gone(conn, err)
	local c = conn.client
	local was_ready = conn.state == "ready"
	local reason = conn.fail_reason or err or "connection closed"
	conn.rc, conn.fail_reason = nil, nil
	stop_timer(conn, "timer")
	stop_timer(conn, "ping_timer")
	flush(conn)
	if c.closed then
		conn.state = "closed"
		return maybe_finished(c)
	end
	c.counters.failures = c.counters.failures + 1
	if was_ready then safe_emit(c, "disconnect", conn.role, reason) end
	if not c.outage then
		c.outage = true
		c.counters.outages = c.counters.outages + 1
		local msg = ("redis %s:%d (%s connection): %s; reconnecting, further errors of this outage are not reported")
			:format(c.opts.host, c.opts.port, conn.role, reason)
		if c.opts.report_errors then report(msg) end
		safe_emit(c, "error", msg)
	end
	schedule(conn)
end

function attempt(conn)
	local c = conn.client
	if c.closed then conn.state = "closed"; return maybe_finished(c) end
	conn.state = "connecting"
	local rc, err = core.redis_connect(c.opts.host, c.opts.port, conn.role == "subscribe")
	if not rc then return conn_gone(conn, err) end
	owners[rc] = conn
	conn.rc = rc
	conn.timer = core.timer(c.opts.connect_timeout, 0, function()
		conn.timer = nil
		fail(conn, ("not ready after %d ms"):format(c.opts.connect_timeout))
	end)
	-- the handshake is queued in hiredis and written once the socket is up
	-- a lost connection answers with code "closed" and "close" follows
	local function step(_, e, code)
		if e and code == "redis" then fail(conn, "handshake: " .. e) end
	end
	local o = c.opts
	if o.password then
		send(conn, o.username and { "AUTH", o.username, o.password } or { "AUTH", o.password }, step)
	end
	if o.db and conn.role == "command" then send(conn, { "SELECT", o.db }, step) end
	send(conn, { "PING" }, function(_, e, code)
		if e then return step(nil, e, code) end
		conn_ready(conn, rc)
	end)
end

-- ends the current connection; "close" from C then schedules a reconnect
function fail(conn, reason)
	if not conn.rc then return end
	conn.fail_reason = conn.fail_reason or reason
	conn.rc:close()
end

function fail_all(c, reason)
	fail(c.cmd, reason)
	if c.sub then fail(c.sub, reason) end
end

local function new_conn(c, role)
	return { client = c, role = role, state = "closed", attempt = 0, next_id = 0, cbs = {} }
end

---------------------------------------------------------------------------
-- events from C

local conn_events = {}

function conn_events.connect() end   -- TCP is up; readiness comes with the PING reply

function conn_events.reply(conn, _, id, reply, err, code)
	if id == 0 then   -- an error reply to a fire-and-forget command
		conn.client.counters.errors = conn.client.counters.errors + 1
		return
	end
	local fn = conn.cbs[id]
	if not fn then return end
	conn.cbs[id] = nil
	fn(reply, err, code)
end

local function deliver(c, subs, channel, message, pattern)
	local list
	if pattern then list = subs[pattern] else list = subs[channel] end
	if not list then return end
	c.counters.messages = c.counters.messages + 1
	if #list == 1 then
		local ok, e = xpcall(list[1], debug.traceback, message, channel, pattern)
		if not ok then report(e) end
		return
	end
	for _, fn in ipairs(table.move(list, 1, #list, 1, {})) do
		local ok, e = xpcall(fn, debug.traceback, message, channel, pattern)
		if not ok then report(e) end
	end
end

function conn_events.push(conn, rc, kind, a, b, d)
	if rc ~= conn.rc then return end
	local c = conn.client
	if kind == "message" then
		deliver(c, c.subs, a, b)
	elseif kind == "smessage" then
		deliver(c, c.ssubs, a, b)
	elseif kind == "pmessage" then
		deliver(c, c.psubs, b, d, a)
	elseif kind == "subscribe" or kind == "psubscribe" or kind == "ssubscribe" then
		safe_emit(c, kind, a, b)
	end
end

function conn_events.close(conn, rc, err)
	if rc ~= conn.rc then return end
	conn_gone(conn, err)
end

local function on_conn_event(rc, event, ...)
	local conn = owners[rc]
	if conn then return conn_events[event](conn, rc, ...) end
end

local installed = false
--- install(lws, handlers): route lws.redis.conn events (init.lua calls it)
function M.install(_, handlers)
	handlers["lws.redis.conn"] = on_conn_event
	installed = true
end

---------------------------------------------------------------------------
-- the client

--- connect(opts) -> client. Never fails at once for I/O reasons: a Redis
-- that is down is retried in the background (see the design notes).
function M.connect(opts)
	local o = check_options(opts)
	if not installed then
		local lws = require "lws"
		M.install(lws, lws._handlers)
	end
	local c = setmetatable({
		opts = o, subs = {}, psubs = {}, ssubs = {}, outage = false, closed = false,
		counters = { dropped = 0, failures = 0, outages = 0, reconnects = 0, errors = 0, messages = 0 },
	}, mt)
	c.cmd = new_conn(c, "command")
	attempt(c.cmd)
	return c
end

local function refuse(c, msg, code)
	c.counters.dropped = c.counters.dropped + 1
	return nil, msg, code
end

local function check_argv(argv, fname)
	if type(argv) ~= "table" or argv[1] == nil then
		error("bad argument #1 to '" .. fname .. "' (non-empty table of strings expected)", 3)
	end
end

local sub_commands = { subscribe = true, unsubscribe = true, psubscribe = true, punsubscribe = true,
	ssubscribe = true, sunsubscribe = true }

local function command(c, argv, fn, fname)
	if fn ~= nil and not callable(fn) then
		error("bad argument #2 to '" .. fname .. "' (function expected, got " .. type(fn) .. ")", 3)
	end
	if c.closed then return nil, "redis client is closed", "closed" end
	local conn = c.cmd
	-- the first attempt queues (connect(), then command at once); during an
	-- outage nothing waits for an attempt that may fail again
	if conn.state ~= "ready" and (conn.state ~= "connecting" or c.outage) then
		return refuse(c, "redis is not connected (reconnecting)", "down")
	end
	if conn.rc:pending() >= c.opts.max_pending then
		return refuse(c, "too many redis commands in flight", "full")
	end
	local ok, err, code = send(conn, argv, fn)
	if not ok then return refuse(c, err, code) end
	return true
end

--- r:command(argv[, fn]) -> true | nil, err, code; fn(reply) or fn(nil, err, code)
function methods:command(argv, fn)
	check_argv(argv, "command")
	if type(argv[1]) == "string" and sub_commands[argv[1]:lower()] then
		error("bad argument #1 to 'command' (use subscribe/unsubscribe/ssubscribe/sunsubscribe)", 2)
	end
	return command(self, argv, fn, "command")
end

--- r:publish(channel, message[, fn]) -> true | nil, err, code; fn(receivers)
function methods:publish(channel, message, fn)
	if type(channel) ~= "string" then
		error("bad argument #1 to 'publish' (string expected, got " .. type(channel) .. ")", 2)
	end
	if type(message) ~= "string" then
		error("bad argument #2 to 'publish' (string expected, got " .. type(message) .. ")", 2)
	end
	return command(self, { "PUBLISH", channel, message }, fn, "publish")
end

--- r:spublish(channel, message[, fn]) -> true | nil, err, code; fn(receivers):
-- Redis 7 sharded pub/sub (SPUBLISH)
function methods:spublish(channel, message, fn)
	if type(channel) ~= "string" then
		error("bad argument #1 to 'spublish' (string expected, got " .. type(channel) .. ")", 2)
	end
	if type(message) ~= "string" then
		error("bad argument #2 to 'spublish' (string expected, got " .. type(message) .. ")", 2)
	end
	return command(self, { "SPUBLISH", channel, message }, fn, "spublish")
end

local subs_of = { SUBSCRIBE = "subs", PSUBSCRIBE = "psubs", SSUBSCRIBE = "ssubs",
	UNSUBSCRIBE = "subs", PUNSUBSCRIBE = "psubs", SUNSUBSCRIBE = "ssubs" }

local function subscribe(c, kind, channel, fn, fname)
	if type(channel) ~= "string" then
		error("bad argument #1 to '" .. fname .. "' (string expected, got " .. type(channel) .. ")", 3)
	end
	if not callable(fn) then
		error("bad argument #2 to '" .. fname .. "' (function expected, got " .. type(fn) .. ")", 3)
	end
	if c.closed then return nil, "redis client is closed", "closed" end
	local subs = c[subs_of[kind]]
	local list = subs[channel]
	local first = not list
	if first then list = {}; subs[channel] = list end
	list[#list + 1] = fn
	local conn = c.sub
	if not conn then
		conn = new_conn(c, "subscribe")
		c.sub = conn
		attempt(conn)
	elseif first and conn.state == "ready" then
		send(conn, { kind, channel })
	end
	return true
end

local function unsubscribe(c, kind, channel, fn)
	local subs = c[subs_of[kind]]
	local list = subs[channel]
	if not list then return false end
	if fn ~= nil then
		for i = #list, 1, -1 do
			if list[i] == fn then table.remove(list, i) end
		end
		if #list > 0 then return true end
	end
	subs[channel] = nil
	local conn = c.sub
	if conn and conn.state == "ready" then send(conn, { kind, channel }) end
	return true
end

--- r:subscribe(channel, fn(message, channel)) -> true | nil, err, code
function methods:subscribe(channel, fn)
	return subscribe(self, "SUBSCRIBE", channel, fn, "subscribe")
end

--- r:unsubscribe(channel[, fn]) -> true if something was subscribed
function methods:unsubscribe(channel, fn)
	return unsubscribe(self, "UNSUBSCRIBE", channel, fn)
end

--- r:psubscribe(pattern, fn(message, channel, pattern)) -> true | nil, err, code:
-- every channel matching the glob-style pattern (Redis PSUBSCRIBE)
function methods:psubscribe(pattern, fn)
	return subscribe(self, "PSUBSCRIBE", pattern, fn, "psubscribe")
end

--- r:punsubscribe(pattern[, fn]) -> true if something was subscribed
function methods:punsubscribe(pattern, fn)
	return unsubscribe(self, "PUNSUBSCRIBE", pattern, fn)
end

--- r:ssubscribe(channel, fn(message, channel)) -> true | nil, err, code:
-- Redis 7 sharded pub/sub (SSUBSCRIBE; messages SPUBLISHed on channel)
function methods:ssubscribe(channel, fn)
	return subscribe(self, "SSUBSCRIBE", channel, fn, "ssubscribe")
end

--- r:sunsubscribe(channel[, fn]) -> true if something was subscribed
function methods:sunsubscribe(channel, fn)
	return unsubscribe(self, "SUNSUBSCRIBE", channel, fn)
end

--- r:ready() -> the command connection is ready
function methods:ready()
	return self.cmd.state == "ready"
end

--- r:close([drain_ms]): no new commands; both connections go on the next
-- turn and commands still waiting get (nil, "connection closed", "closed").
-- With drain_ms, a ready command connection first waits (at most that
-- long) for the replies to what was already sent. Then "close" fires.
function methods:close(drain_ms)
	if drain_ms ~= nil and (type(drain_ms) ~= "number" or drain_ms < 0) then
		error("bad argument #1 to 'close' (milliseconds expected)", 2)
	end
	if self.closed then return end
	self.closed = true
	for _, conn in ipairs { self.cmd, self.sub or false } do
		if conn then
			stop_timer(conn, "timer")
			stop_timer(conn, "ping_timer")
			if conn.rc and conn.rc:stats().state == "closed" then
				conn.rc = nil   -- gone with the lws context, without events
				flush(conn)
			end
			if not conn.rc then
				conn.state = "closed"
			elseif drain_ms and conn.role == "command" and conn.state == "ready" then
				conn.rc:close(true)
				conn.timer = core.timer(drain_ms, 0, function()
					conn.timer = nil
					if conn.rc then conn.rc:close() end
				end)
			else
				conn.rc:close()
			end
		end
	end
	maybe_finished(self)
end

--- r:stats() -> { state, subscribe_state, pending, dropped, failures,
-- outages, reconnects, errors, messages }
function methods:stats()
	local s = {}
	for k, v in pairs(self.counters) do s[k] = v end
	s.state = self.closed and "closed" or self.cmd.state
	s.subscribe_state = self.sub and self.sub.state or nil
	s.pending = self.cmd.rc and self.cmd.rc:pending() or 0
	return s
end

function mt.__tostring(c)
	return ("lws.redis (%s:%d, %s)"):format(c.opts.host, c.opts.port, c.closed and "closed" or c.cmd.state)
end

return M
