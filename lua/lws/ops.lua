--[[ lws.ops: what operators need — stats, Prometheus metrics, idle
timeouts, graceful shutdown and signals.

  server:stats()               counters (see below)
  server:metrics("/metrics")   the same in Prometheus text format
  server:shutdown(grace_s[, on_done])
  lws.on_signal("SIGTERM", function(name) server:shutdown(5) end)

Design criteria:
 - Counters live where the events happen (C for bytes, messages and
   handshakes, Lua for closes by code); stats() adds them up on demand,
   so nothing is counted per message in Lua.
 - Signals never run Lua inside the handler: C writes the signal number
   to a pipe the loop watches, and the Lua handler runs from the loop.
]]
local core = require "lws.core"

local M = {}

--- server:stats() -> { connections, handshakes, handshakes_refused,
-- http_requests, messages_in, messages_out, bytes_in, bytes_out,
-- queued_bytes, dropped, closes = { [code] = n }, callback_errors }
local function server_stats(srv)
	local s = srv:c_stats()
	local closes = {}
	for code, n in pairs(srv:fields().closes or {}) do closes[code] = n end
	s.closes = closes
	s.callback_errors = core.stats().callback_errors
	return s
end

local function prometheus(srv)
	local s = server_stats(srv)
	local out = {}
	local function metric(name, kind, help, value, labels)
		out[#out + 1] = ("# HELP lws_%s %s\n# TYPE lws_%s %s\n"):format(name, help, name, kind)
		if type(value) == "table" then
			for _, row in ipairs(value) do
				out[#out + 1] = ("lws_%s{%s} %s\n"):format(name, row[1], row[2])
			end
		else
			out[#out + 1] = ("lws_%s%s %s\n"):format(name, labels or "", value)
		end
	end
	metric("connections", "gauge", "Open WebSocket connections.", s.connections)
	metric("handshakes_total", "counter", "WebSocket upgrades accepted.", s.handshakes)
	metric("handshakes_refused_total", "counter", "WebSocket upgrades refused.", s.handshakes_refused)
	metric("http_requests_total", "counter", "HTTP requests received.", s.http_requests)
	metric("messages_received_total", "counter", "WebSocket messages received.", s.messages_in)
	metric("messages_sent_total", "counter", "WebSocket messages sent.", s.messages_out)
	metric("bytes_received_total", "counter", "WebSocket payload bytes received.", s.bytes_in)
	metric("bytes_sent_total", "counter", "WebSocket payload bytes sent.", s.bytes_out)
	metric("queued_bytes", "gauge", "Bytes waiting in send queues.", s.queued_bytes)
	metric("dropped_messages_total", "counter", "Messages refused or evicted by full send queues.", s.dropped)
	metric("callback_errors_total", "counter", "Lua errors caught in callbacks.", s.callback_errors)
	local rows = {}
	for code, n in pairs(s.closes) do rows[#rows + 1] = { ('code="%d"'):format(code), n } end
	table.sort(rows, function(a, b) return a[1] < b[1] end)
	if #rows > 0 then
		metric("closes_total", "counter", "Closed connections by close code.", rows)
	end
	return table.concat(out)
end
M.prometheus = prometheus

--- server:metrics([path]): serve stats in Prometheus text format
local function server_metrics(srv, path)
	srv:route("GET", path or "/metrics", function(_, res)
		res:send(prometheus(srv), "text/plain; version=0.0.4; charset=utf-8")
	end)
	return srv
end

--- server:shutdown(grace_s[, on_done]): stop accepting, close every
-- connection with 1001 after its queued messages, let in-flight HTTP
-- requests finish, and force what is left after grace_s. on_done() runs
-- when everything is closed. Called outside the loop, it runs the loop
-- until then and returns.
local function server_shutdown(srv, grace, on_done)
	if grace ~= nil and type(grace) ~= "number" then
		error("bad argument #1 to 'shutdown' (seconds expected, got " .. type(grace) .. ")", 2)
	end
	local done = false
	srv:once("close", function()
		done = true
		if on_done then on_done() end
	end)
	srv:close(grace)
	if not core.stats().running then
		-- not inside the loop: run it until the server is gone
		while not done do
			if not core.run("once") then break end
		end
	end
	return true
end

--- one timer per server closes connections silent for idle_timeout seconds
function M.idle_sweep(srv, seconds)
	if seconds <= 0 then error("option 'idle_timeout' must be > 0 seconds", 3) end
	local limit = seconds * 1000
	local t = core.timer(math.min(limit, 1000), math.min(limit, 1000), function()
		local now = core.now()
		for ws in pairs(srv:fields().clients) do
			if ws.readyState == 1 and now - ws.last_activity > limit then
				ws:close(1001, "idle timeout")
			end
		end
	end)
	t:unref()
	srv:once("close", function() t:stop() end)
end

-- signals ---------------------------------------------------------------

local sig_handlers, sig_watch = {}, nil
local names = {}
for name, no in pairs(core.signals) do names[no] = name end

local function deliver()
	for _, no in ipairs(core.signals_pending()) do
		local fn = sig_handlers[no]
		if fn then fn(names[no] or no) end
	end
end

--- on_signal(sig, fn): fn(name) runs from the loop when the signal arrives
-- (sig: "SIGTERM", "SIGINT", … or a number); fn nil restores the default.
function M.on_signal(sig, fn)
	local no = type(sig) == "number" and sig or core.signals[sig]
	if not no then error("bad argument #1 to 'on_signal' (unknown signal " .. tostring(sig) .. ")", 2) end
	if fn ~= nil and type(fn) ~= "function" then
		error("bad argument #2 to 'on_signal' (function expected, got " .. type(fn) .. ")", 2)
	end
	local fd, err = core.signal(no, fn ~= nil)
	if not fd then return nil, err end
	sig_handlers[no] = fn
	if fn and not sig_watch then
		sig_watch = core.watch(fd, deliver)
		sig_watch:unref()   -- a handler alone does not keep run() alive
	end
	return true
end

--- in a worker process: SIGTERM/SIGINT close every connection with 1001
-- (queued messages first), then the worker exits
function M.worker_signals(srv)
	local function stop()
		srv:shutdown(5, function() os.exit(0, true) end)
	end
	M.on_signal("SIGTERM", stop)
	M.on_signal("SIGINT", stop)
end

function M.install(lws, server_methods)
	server_methods.stats = server_stats
	server_methods.metrics = server_metrics
	server_methods.shutdown = server_shutdown
	lws.on_signal = M.on_signal
	lws.worker_index = core.worker_index
end

return M
