--[[ lws.websocket: a client shaped like the browser's WebSocket.

  local ws = lws.WebSocket("ws://127.0.0.1:9001/chat", { "chat.v1" }, opts)
  ws.onopen = function(ev) ws:send("hi") end
  ws.onmessage = function(ev) print(ev.data, ev.binary) end
  ws.onerror = function(ev) print(ev.message) end
  ws.onclose = function(ev) print(ev.code, ev.reason, ev.wasClean) end

Design criteria:
 - The browser's names and rules: readyState 0..3, close() accepts 1000
   or 3000-4999 and a reason of at most 123 bytes (anything else raises),
   every failure is an error event followed by close 1006.
 - ws:on("message", fn) works too, with the server side's arguments
   (data, is_binary), so one handler can serve both ends.
 - One object may live through many connections (reconnect): handlers
   and identity stay, readyState follows the current connection.
]]
local core = require "lws.core"
local emitter = require "lws.emitter"

local emit = emitter.emit
local M = {}

local methods = emitter.mixin({})
local mt = { __name = "lws.websocket" }

--- parse_url(url) -> { tls, host, port, path } | nil, err
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

local option_types = {
	headers = "table", origin = "string", ca = "string", insecure = "boolean",
	connect_timeout = "number", max_message_size = "number", max_queue_bytes = "number",
	close_timeout = "number",
}

local function check_options(opts)
	for k, v in pairs(opts) do
		local want = option_types[k]
		if not want then error("unknown option '" .. tostring(k) .. "'", 4) end
		if type(v) ~= want then
			error(("option '%s' must be a %s, got %s"):format(k, want, type(v)), 4)
		end
	end
end

local function header_string(headers)
	if not headers then return nil end
	local out = {}
	for k, v in pairs(headers) do
		k, v = tostring(k), tostring(v)
		if k:find("[^%w%-!#$%%&'*+.^_`|~]") or v:find("[\r\n%z]") then
			error("invalid request header " .. k, 4)
		end
		out[#out + 1] = k .. ": " .. v .. "\r\n"
	end
	table.sort(out)
	return table.concat(out)
end

local function fire(ws, prop, event, ev, ...)
	local fn = rawget(ws, prop)
	if fn then fn(ev) end
	emit(ws, event, ...)
end

local client_events = {}

function client_events.open(ws)
	local conn = ws._conn
	ws.protocol = conn.protocol
	ws.extensions = conn.extensions
	fire(ws, "onopen", "open", { type = "open", target = ws })
end

function client_events.message(ws, data, binary)
	fire(ws, "onmessage", "message", { type = "message", data = data, binary = binary, target = ws },
		data, binary)
end

function client_events.pong(ws, payload)
	emit(ws, "pong", payload)
end

function client_events.error(ws, msg)
	ws._error = msg
	fire(ws, "onerror", "error", { type = "error", message = msg, target = ws }, msg)
end

function client_events.close(ws, code, reason, clean)
	ws._closed_conn = ws._conn
	ws._conn = nil
	ws._final_state = 3
	if ws._timer then ws._timer:stop(); ws._timer = nil end
	fire(ws, "onclose", "close",
		{ type = "close", code = code, reason = reason, wasClean = clean, target = ws },
		code, reason, clean)
end

local function connect(ws)
	local u = ws._parsed
	local o = ws._options
	local conn = core.connect {
		address = u.host, port = u.port, path = u.path, tls = u.tls,
		host = u.host, origin = o.origin,
		protocols = #ws._protocols > 0 and table.concat(ws._protocols, ", ") or nil,
		headers = ws._headers, ca = o.ca, insecure = o.insecure,
		max_message_size = o.max_message_size and math.tointeger(o.max_message_size),
		max_queue_bytes = o.max_queue_bytes and math.tointeger(o.max_queue_bytes),
		close_timeout = o.close_timeout and math.tointeger(o.close_timeout),
	}
	conn:fields().owner = ws
	ws._conn = conn
	ws._final_state = nil
	if o.connect_timeout then
		ws._timer = core.timer(o.connect_timeout, 0, function()
			ws._timer = nil
			if ws._conn == conn and conn.readyState == 0 then
				conn:terminate("connect timeout")
				ws._timeout_pending = true
			end
		end)
	end
	return conn
end

--- new(url[, protocols[, options]]) -> ws (CONNECTING); raises on a bad URL
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
	options = options or {}
	if type(options) ~= "table" then
		error("bad argument #3 to 'WebSocket' (table expected, got " .. type(options) .. ")", 2)
	end
	check_options(options)
	local ws = setmetatable({
		url = url, protocol = "", extensions = "",
		_parsed = u, _protocols = protocols or {}, _options = options,
		_headers = header_string(options.headers),
	}, mt)
	connect(ws)
	return ws
end

function mt.__index(ws, k)
	local m = methods[k]
	if m then return m end
	if k == "readyState" then
		local c = rawget(ws, "_conn")
		if c then return c.readyState end
		return rawget(ws, "_final_state") or 3
	elseif k == "bufferedAmount" then
		local c = rawget(ws, "_conn")
		return c and c.bufferedAmount or 0
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
	if not c then return nil, "connection is closed", "closed" end
	return c:send(data, binary)
end

function methods.ping(ws, payload)
	local c = rawget(ws, "_conn")
	if not c then return nil, "connection is closed", "closed" end
	return c:ping(payload)
end

--- close([code[, reason]]): the browser's rules on codes and reasons
function methods.close(ws, code, reason)
	if code ~= nil and (math.type(code) ~= "integer" or (code ~= 1000 and (code < 3000 or code > 4999))) then
		error("bad argument #1 to 'close' (code must be 1000 or 3000-4999)", 2)
	end
	if reason ~= nil and (type(reason) ~= "string" or #reason > 123 or not utf8.len(reason)) then
		error("bad argument #2 to 'close' (reason must be UTF-8 of at most 123 bytes)", 2)
	end
	ws._user_closed = true
	local c = rawget(ws, "_conn")
	if not c then return end
	if c.readyState == 0 then
		-- the browser fails a connecting socket: error, then close 1006
		c:terminate("closed before the connection was established")
		return
	end
	c:close(code or 1000, reason or "")
end

function methods.terminate(ws)
	ws._user_closed = true
	local c = rawget(ws, "_conn")
	if c then c:terminate() end
end

function M.install(lws, handlers)
	handlers["lws.client"] = function(conn, event, ...)
		local ws = conn:fields().owner
		if not ws or rawget(ws, "_conn") ~= conn then return end
		if event == "close" and conn.readyState and ws._timeout_pending then
			ws._timeout_pending = nil
			client_events.error(ws, "connect timeout")
		end
		return client_events[event](ws, ...)
	end
	lws.parse_url = M.parse_url
end

M.methods = methods
M.mt = mt
return M
