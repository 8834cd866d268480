--[[ lws.websocket: a client shaped like the browser's WebSocket, with
heartbeat and automatic reconnect.

  local ws = lws.WebSocket("wss://example.test/chat", { "chat.v1" }, {
    headers = { Authorization = "Bearer abc", Cookie = "sid=42" },
    heartbeat = { interval = 30000, timeout = 10000 },
    reconnect = { min = 1000, max = 30000 },
  })
  ws.onopen = function(ev) ws:send("hi") end
  ws.onmessage = function(ev) print(ev.data, ev.binary) end
  ws.onerror = function(ev) print(ev.message, ev.code, ev.status) end
  ws.onclose = function(ev) print(ev.code, ev.reason, ev.wasClean, ev.reconnecting) end
  ws.onreconnect = function(ev) print(ev.attempt, ev.delay) end
  -- or ws:on("message", function(data, is_binary) … end), like the server side

Design criteria:
 - The browser's names and rules: readyState 0..3, bufferedAmount,
   protocol, extensions, url; close() accepts 1000 or 3000-4999 and a
   reason of at most 123 bytes of UTF-8 (anything else raises); closing a
   connecting socket fails it.
 - Failures are events, never silence: a refused port, an unresolvable
   host, a TLS verification failure (the message names the check), an
   HTTP status instead of 101, a connect timeout each fire "error" with a
   clear message and a stable code, then "close" with 1006 and
   wasClean = false.
 - One connection at a time per object. Reconnect (opt-in) makes a new
   connection on the same object after a close: handlers, identity and
   options stay, readyState follows the current connection and is
   CONNECTING while a reconnect is pending. close() by the user ends it
   for good. The last event an object fires is a close with
   reconnecting = false.
 - Policy lives here, mechanism in C (lws.core.connect): the error text,
   the connect timeout, backoff, heartbeat and the send queue while
   reconnecting are Lua; sockets, TLS and framing are C.
 - The client never offers permessage-deflate: an lws 4.1.6 client with
   it spins on a PONG with payload (docs/libwebsockets-4.1.md §6.1).
 - Known cost: lws 4.1.6 (Debian's build has no async DNS) resolves a host
   name with a blocking getaddrinfo() inside connect, so an unreachable
   DNS server stalls the loop for the resolver's timeout. IP literals and
   /etc/hosts names do not wait.

Options (unknown keys are an error):
  headers          request headers { name = value } (Authorization, Cookie, …);
                   Origin may be given here or as `origin`; the handshake's
                   own headers (Host, Upgrade, Sec-WebSocket-*) may not
  origin           the Origin header
  ca               PEM file of the CA(s) to trust for wss:// (a private CA);
                   the system's CAs otherwise. Certificate and hostname
                   verification is always on, SNI and Host come from the URL
  insecure         true: accept self-signed, expired, untrusted certificates
                   and any hostname (test setups only)
  connect_timeout  ms until a connection that has not opened fails (10000)
  max_message_size bytes; a bigger message closes with 1009 (16 MiB)
  max_queue_bytes  bytes queued for sending before send() refuses (16 MiB)
  close_timeout    seconds a closing handshake may take (10)
  heartbeat        { interval = ms, timeout = ms }: a ping every interval; no
                   pong or other traffic within timeout after it closes the
                   connection as dead (1006 "heartbeat timeout"). Off unless
                   given; {} means 30000 / 10000. ws.rtt is the last round trip
  reconnect        true or { min = 1000, max = 30000, factor = 2, jitter = 0.5,
                   attempts = math.huge, reset_after = 5000 }: after a close
                   not asked for by close(), reconnect after min*factor^(n-1)
                   ms (at most max) minus up to jitter of it at random (1 =
                   full jitter); n counts attempts since the last connection
                   that stayed open reset_after ms; give up after `attempts`
  final_codes      close codes (and HTTP statuses of a refused handshake) that
                   end reconnecting, e.g. { 1008, 4001, 401, 403 }
  queue_while_reconnecting  N: up to N messages sent while not open are
                   queued and sent in order at the next open, ahead of what
                   onopen sends (default 0: send() returns nil, err,
                   "reconnecting"); dropped if the object closes for good

Events (property or ws:on(name, fn) with positional arguments):
  onopen(ev)                      "open"()
  onmessage(ev: data, binary)     "message"(data, is_binary)
  onerror(ev: message, code, status)  "error"(message, code, status)
  onclose(ev: code, reason, wasClean, reconnecting)
                                  "close"(code, reason, was_clean, reconnecting)
  onreconnect(ev: attempt, delay) "reconnect"(attempt, delay)
  "pong"(payload), "heartbeat"(rtt)
Error codes: "dns", "refused", "tls", "tls-verify", "http" (with status),
"timeout", "closed", "handshake", "aborted", "connect", "queue".
]]
local core = require "lws.core"
local emitter = require "lws.emitter"
local heartbeat = require "lws.heartbeat"

local emit = emitter.emit
local M = {}

local methods = emitter.mixin({})
local mt = { __name = "lws.websocket" }
local CONNECTING, CLOSED = 0, 3

M.reconnect_defaults = {
	min = 1000, max = 30000, factor = 2, jitter = 0.5, attempts = math.huge, reset_after = 5000,
}
M.connect_timeout = 10000

--- parse_url(url) -> { tls, host, port, path, scheme } | nil, err
function M.parse_url(url)
	if type(url) ~= "string" then return nil, "URL must be a string" end
	local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
	if not scheme then return nil, "invalid URL: " .. url end
	scheme = scheme:lower()
	local tls
	if scheme == "ws" or scheme == "http" then tls = false
	elseif scheme == "wss" or scheme == "https" then tls = true
	else return nil, "unsupported URL scheme: " .. scheme end
	if rest:find("#", 1, true) then return nil, "URL must not contain a fragment" end
	local authority, path = rest:match("^([^/?]*)(.*)$")
	if path == "" then path = "/" elseif path:sub(1, 1) == "?" then path = "/" .. path end
	if authority:find("@", 1, true) then return nil, "URL must not contain credentials" end
	local host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
	if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
	if not host or host == "" then return nil, "URL has no host: " .. url end
	port = tonumber(port) or (tls and 443 or 80)
	if port < 1 or port > 65535 then return nil, "invalid port in URL: " .. url end
	return { tls = tls, host = host, port = port, path = path, scheme = tls and "wss" or "ws" }
end

--- backoff(attempt, r[, rand]) -> ms: min*factor^(attempt-1), capped at max,
-- minus up to `jitter` of it at random
function M.backoff(attempt, r, rand)
	local base = r.min * r.factor ^ (attempt - 1)
	if base > r.max then base = r.max end
	local d = base * (1 - r.jitter * (rand or math.random)())
	return math.floor(d + 0.5)
end

---------------------------------------------------------------------------
-- options

-- option errors carry no position here: new() re-raises them at its caller
local function opt_error(msg) error(msg, 0) end

local function check_number(k, v, min, integer)
	if type(v) ~= "number" or v ~= v or v < min or (integer and math.type(v) ~= "integer" and v ~= math.huge) then
		opt_error(("option '%s' must be a%s number >= %s, got %s"):format(k, integer and "n integer" or "",
			tostring(min), type(v) == "number" and tostring(v) or type(v)))
	end
	return v
end

local function check_reconnect(v)
	if v == true then v = {} end
	if type(v) ~= "table" then opt_error("option 'reconnect' must be true or a table, got " .. type(v)) end
	local r = {}
	for k, d in pairs(M.reconnect_defaults) do r[k] = d end
	for k, x in pairs(v) do
		if r[k] == nil then opt_error("unknown option 'reconnect." .. tostring(k) .. "'") end
		r[k] = x
	end
	check_number("reconnect.min", r.min, 1)
	check_number("reconnect.max", r.max, r.min)
	check_number("reconnect.factor", r.factor, 1)
	check_number("reconnect.jitter", r.jitter, 0)
	if r.jitter > 1 then opt_error("option 'reconnect.jitter' must be between 0 and 1") end
	check_number("reconnect.attempts", r.attempts, 0, true)
	check_number("reconnect.reset_after", r.reset_after, 0)
	return r
end

-- headers the handshake sets itself
local reserved_headers = {
	host = true, upgrade = true, connection = true, ["sec-websocket-key"] = true,
	["sec-websocket-version"] = true, ["sec-websocket-protocol"] = true,
	["sec-websocket-extensions"] = true, ["sec-websocket-accept"] = true,
}

local function header_string(headers, o)
	local out = {}
	for k, v in pairs(headers) do
		if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
			opt_error("option 'headers' must map names to strings")
		end
		v = tostring(v)
		if k:find("[^%w%-!#$%%&'*+.^_`|~]") or k == "" or v:find("[\r\n%z]") then
			opt_error("invalid request header " .. k)
		end
		local lk = k:lower()
		if reserved_headers[lk] then
			opt_error(("request header %s is set by the WebSocket handshake"):format(k))
		elseif lk == "origin" then
			if o.origin and o.origin ~= v then opt_error("Origin given twice (headers and origin)") end
			o.origin = v
		else
			out[#out + 1] = k .. ": " .. v .. "\r\n"
		end
	end
	table.sort(out)
	return #out > 0 and table.concat(out) or nil
end

-- a number >= min (an integer, or math.huge, with integer)
local function at_least(min, integer)
	return function(v)
		if type(v) ~= "number" or v ~= v or v < min or (integer and math.type(v) ~= "integer" and v ~= math.huge) then
			return ("a%s number >= %s"):format(integer and "n integer" or "", min)
		end
	end
end

local option_spec = {
	headers = "table", origin = "string", ca = "string", insecure = "boolean",
	connect_timeout = at_least(1), max_message_size = at_least(0, true),
	max_queue_bytes = at_least(0, true), close_timeout = at_least(1, true),
	heartbeat = "table", reconnect = "boolean|table", final_codes = "table",
	queue_while_reconnecting = at_least(0, true),
}

local function check_options(options)
	-- no position here: new() re-raises at its caller
	local o = {}
	for k, v in pairs(require("lws.options").check(options, option_spec, 0)) do o[k] = v end
	o.connect_timeout = o.connect_timeout or M.connect_timeout
	o.headers = o.headers and header_string(o.headers, o)
	if o.reconnect == false then o.reconnect = nil end
	if o.reconnect ~= nil then o.reconnect = check_reconnect(o.reconnect) end
	if o.heartbeat then o.heartbeat = heartbeat.options(o.heartbeat, "heartbeat", -1) end
	local final = {}
	for _, code in ipairs(o.final_codes or {}) do
		if math.type(code) ~= "integer" then opt_error("option 'final_codes' must list integer codes") end
		final[code] = true
	end
	o.final_codes = final
	o.queue_while_reconnecting = o.queue_while_reconnecting or 0
	return o
end

---------------------------------------------------------------------------
-- events

local function fire(ws, prop, event, ev, ...)
	local fn = rawget(ws, prop)
	if fn then fn(ev) end
	emit(ws, event, ...)
end

local function where(ws)
	local u = ws._u
	return (u.host:find(":", 1, true) and "[" .. u.host .. "]" or u.host) .. ":" .. u.port
end

-- C's (detail, kind, status) -> the message users read
local function failure_message(ws, detail, kind, status)
	local at = where(ws)
	if kind == "dns" then
		return ("cannot resolve host '%s'"):format(ws._u.host)
	elseif kind == "refused" then
		return ("cannot connect to %s: connection refused or unreachable"):format(at)
	elseif kind == "http" then
		return ("%s refused the WebSocket upgrade: HTTP %d"):format(at, status or 0)
	elseif kind == "tls-verify" then
		return ("TLS certificate verification failed for %s: %s"):format(at, detail)
	elseif kind == "tls" then
		return ("TLS error with %s: %s"):format(at, detail)
	elseif kind == "timeout" then
		return ("connect timeout: no WebSocket handshake with %s within %d ms"):format(at, ws._opts.connect_timeout)
	elseif kind == "closed" then
		return ("%s closed the connection during the handshake%s"):format(at,
			ws._u.tls and "" or " (is it a wss:// server?)")
	elseif kind == "handshake" then
		return ("invalid WebSocket handshake from %s: %s"):format(at, detail)
	elseif kind == "aborted" or kind == "queue" then
		return detail
	end
	return ("cannot connect to %s: %s"):format(at, detail)
end

local client_events = {}
local connect

local function stop_timer(ws, field)
	local t = rawget(ws, field)
	if t then t:stop(); ws[field] = nil end
end

local function flush_queue(ws, conn)
	local q = ws._queue
	if not q or #q == 0 then return end
	ws._queue, ws._queued_bytes = {}, 0
	for i = 1, #q do
		local ok, err = conn:send(q[i][1], q[i][2])
		if not ok then
			client_events.error(ws, "queued message not sent: " .. tostring(err), "queue")
			break
		end
	end
end

function client_events.open(ws)
	local conn = ws._conn
	stop_timer(ws, "_connect_timer")
	ws.protocol = conn.protocol
	ws.extensions = conn.extensions
	ws._opened_at = core.now()
	ws._fail = nil
	flush_queue(ws, conn)
	if ws._hb then ws._hb:start() end
	fire(ws, "onopen", "open", { type = "open", target = ws, attempt = ws._attempt })
end

function client_events.message(ws, data, binary)
	fire(ws, "onmessage", "message", { type = "message", data = data, binary = binary, target = ws },
		data, binary, ws)
end

function client_events.pong(ws, payload)
	if ws._hb then ws._hb:pong(ws._conn, payload) end
	emit(ws, "pong", payload)
end

-- the close code a protocol failure after open sends (csrc/conn.c
-- protocol_error) -> its documented string code
local after_open = { [1002] = "protocol", [1007] = "invalid-utf8", [1009] = "too-big" }

-- detail, kind, status from C (or from this file)
function client_events.error(ws, detail, kind, status, retry_after)
	if math.type(kind) == "integer" then
		-- the server broke the protocol on an open connection: not a
		-- connect failure; the close that follows carries the number
		local msg = ("protocol error from %s: %s"):format(where(ws), detail)
		local code = after_open[kind] or "protocol"
		fire(ws, "onerror", "error", { type = "error", message = msg, code = code, close_code = kind,
			target = ws }, msg, code)
		return
	end
	local abort = rawget(ws, "_abort")
	if kind == "aborted" and abort then kind = abort end
	local msg = failure_message(ws, detail, kind, status)
	if kind ~= "queue" then
		ws._fail = { message = msg, code = kind, status = status, retry_after = retry_after }
	end
	fire(ws, "onerror", "error", { type = "error", message = msg, code = kind, status = status, target = ws },
		msg, kind, status)
end

-- should this close be followed by a reconnect?
local function will_reconnect(ws, code)
	local o = ws._opts
	local r = o.reconnect
	if not r or ws._done then return false end
	if o.final_codes[code] then return false end
	local fail = ws._fail
	if fail and fail.status and o.final_codes[fail.status] then return false end
	local opened = ws._opened_at
	if opened and core.now() - opened >= r.reset_after then ws._attempt = 0 end
	return ws._attempt < r.attempts
end

local function schedule_reconnect(ws, retry_after)
	local r = ws._opts.reconnect
	local attempt = ws._attempt + 1
	ws._attempt = attempt
	local delay = M.backoff(attempt, r)
	-- a server that refused with Retry-After (503 in a reconnect storm) is
	-- not asked again sooner; jitter on top spreads the returning crowd
	if retry_after and retry_after > 0 then
		local floor = math.min(retry_after, 3600) * 1000
		if delay < floor then delay = math.floor(floor * (1 + r.jitter * math.random())) end
	end
	ws._retry_timer = core.timer(delay, 0, function()
		ws._retry_timer = nil
		if not ws._done then connect(ws) end
	end)
	fire(ws, "onreconnect", "reconnect",
		{ type = "reconnect", attempt = attempt, delay = delay, target = ws }, attempt, delay)
end

function client_events.close(ws, code, reason, clean)
	ws._conn = nil
	ws._abort = nil
	stop_timer(ws, "_connect_timer")
	if ws._hb then ws._hb:stop() end
	local fail = ws._fail
	if fail and not ws._opened_at then reason = fail.message end
	local again = will_reconnect(ws, code)
	if not again then
		ws._done = true
		ws._queue, ws._queued_bytes = nil, 0
	end
	ws._opened_at = nil
	ws._awaiting = again   -- until the next connect: a close() must end it with a final close
	fire(ws, "onclose", "close",
		{ type = "close", code = code, reason = reason, wasClean = clean, reconnecting = again, target = ws },
		code, reason, clean, again)
	local retry_after = fail and fail.retry_after
	ws._fail = nil
	-- a close() inside the handlers ends it here
	if again and not ws._done then schedule_reconnect(ws, retry_after) end
	if ws._done then ws._queue, ws._queued_bytes = nil, 0 end
end

function connect(ws)
	local u = ws._u
	local o = ws._opts
	local conn = core.connect {
		address = u.host, port = u.port, path = u.path, tls = u.tls,
		host = ws._host_header, origin = o.origin,
		protocols = #ws._protocols > 0 and table.concat(ws._protocols, ", ") or nil,
		headers = o.headers, ca = o.ca, insecure = o.insecure,
		max_message_size = o.max_message_size, max_queue_bytes = o.max_queue_bytes,
		close_timeout = o.close_timeout,
	}
	conn:fields().owner = ws
	ws._conn = conn
	ws._awaiting = false
	ws._connect_timer = core.timer(o.connect_timeout, 0, function()
		ws._connect_timer = nil
		if ws._conn == conn and conn.readyState == CONNECTING then
			ws._abort = "timeout"
			conn:terminate("connect timeout")
		end
	end)
	return conn
end

---------------------------------------------------------------------------
-- the object

--- new(url[, protocols[, options]]) -> ws (CONNECTING); raises on a bad URL
-- or bad options, reports every connection failure as events
function M.new(url, protocols, options)
	local u, err = M.parse_url(url)
	if not u then error(err, 2) end
	if type(protocols) == "string" then protocols = { protocols } end
	if protocols ~= nil and type(protocols) ~= "table" then
		error("bad argument #2 to 'WebSocket' (table or string expected, got " .. type(protocols) .. ")", 2)
	end
	local seen = {}
	for _, p in ipairs(protocols or {}) do
		if type(p) ~= "string" or not p:match("^[%w!#$%%&'*+.^_`|~-]+$") or seen[p] then
			error("invalid or duplicate subprotocol: " .. tostring(p), 2)
		end
		seen[p] = true
	end
	if options ~= nil and type(options) ~= "table" then
		error("bad argument #3 to 'WebSocket' (table expected, got " .. type(options) .. ")", 2)
	end
	local ok, o = pcall(check_options, options or {})
	if not ok then error(o, 2) end
	local ws = setmetatable({
		url = url, protocol = "", extensions = "",
		_u = u, _protocols = protocols or {}, _opts = o, _attempt = 0, _queued_bytes = 0,
	}, mt)
	-- the Host header names the port unless it is the scheme's default; lws
	-- strips ":port" for SNI and the certificate check (not for IPv6 literals)
	ws._host_header = u.host
	if u.port ~= (u.tls and 443 or 80) and not u.host:find(":", 1, true) then
		ws._host_header = u.host .. ":" .. u.port
	end
	if o.heartbeat then
		ws._hb = heartbeat.client(o.heartbeat, function() return rawget(ws, "_conn") end,
			function(rtt)
				ws.rtt = rtt
				emit(ws, "heartbeat", rtt)
			end)
	end
	connect(ws)
	return ws
end

function mt.__index(ws, k)
	local m = methods[k]
	if m then return m end
	if k == "readyState" then
		local c = rawget(ws, "_conn")
		if c then return c.readyState end
		if rawget(ws, "_retry_timer") then return CONNECTING end
		return CLOSED
	elseif k == "bufferedAmount" then
		local c = rawget(ws, "_conn")
		return (c and c.bufferedAmount or 0) + rawget(ws, "_queued_bytes")
	end
	return nil
end

function mt.__tostring(ws)
	return ("lws.websocket (%s, %s)"):format(ws.url, ({ [0] = "CONNECTING", "OPEN",
		"CLOSING", "CLOSED" })[ws.readyState])
end

--- send(data[, binary]) -> true | nil, err, code
function methods.send(ws, data, binary)
	if type(data) ~= "string" then
		error("bad argument #1 to 'send' (string expected, got " .. type(data) .. ")", 2)
	end
	local c = rawget(ws, "_conn")
	if c and c.readyState ~= CONNECTING then return c:send(data, binary) end
	if ws._done then return nil, "connection is closed", "closed" end
	local max = ws._opts.queue_while_reconnecting
	if max > 0 then
		local q = ws._queue or {}
		ws._queue = q
		if #q >= max then
			return nil, ("send queue full while not connected (%d messages)"):format(max), "full"
		end
		q[#q + 1] = { data, binary and true or false }
		ws._queued_bytes = ws._queued_bytes + #data
		return true
	end
	if c then return nil, "connection is not open yet", "connecting" end
	return nil, "not connected (reconnecting)", "reconnecting"
end

function methods.ping(ws, payload)
	local c = rawget(ws, "_conn")
	if not c then return nil, "connection is closed", "closed" end
	return c:ping(payload)
end

-- ends reconnecting for good; fires the final close when nothing else will
local function finish(ws, code, reason)
	ws._done = true
	ws._queue, ws._queued_bytes = nil, 0
	stop_timer(ws, "_retry_timer")
	if rawget(ws, "_awaiting") then
		ws._awaiting = false
		-- the last close said a reconnect would follow and there is no
		-- connection to close: the final close event comes on the next turn
		core.timer(0, 0, function()
			fire(ws, "onclose", "close", { type = "close", code = code, reason = reason, wasClean = false,
				reconnecting = false, target = ws }, code, reason, false, false)
		end)
	end
end

--- close([code[, reason]]): the browser's rules on codes and reasons; also
-- stops reconnecting for good
function methods.close(ws, code, reason)
	if code ~= nil and (math.type(code) ~= "integer" or (code ~= 1000 and (code < 3000 or code > 4999))) then
		error("bad argument #1 to 'close' (code must be 1000 or 3000-4999)", 2)
	end
	if reason ~= nil and (type(reason) ~= "string" or #reason > 123 or not utf8.len(reason)) then
		error("bad argument #2 to 'close' (reason must be UTF-8 of at most 123 bytes)", 2)
	end
	if ws._done then return end
	finish(ws, 1006, "closed while waiting to reconnect")
	local c = rawget(ws, "_conn")
	if not c then return end
	if c.readyState == CONNECTING then
		-- the browser fails a connecting socket: error, then close 1006
		ws._abort = "aborted"
		c:terminate("closed before the connection was established")
		return
	end
	c:close(code or 1000, reason or "")
end

--- terminate(): drop the connection now (close 1006) and stop reconnecting
function methods.terminate(ws)
	if ws._done then return end
	finish(ws, 1006, "terminated while waiting to reconnect")
	local c = rawget(ws, "_conn")
	if c then
		if c.readyState == CONNECTING then ws._abort = "aborted" end
		c:terminate("terminated")
	end
end

function M.install(lws, handlers)
	handlers["lws.client"] = function(conn, event, ...)
		local ws = conn:fields().owner
		if not ws or rawget(ws, "_conn") ~= conn then return end
		return client_events[event](ws, ...)
	end
	lws.parse_url = M.parse_url
end

M.methods = methods
M.mt = mt
return M
