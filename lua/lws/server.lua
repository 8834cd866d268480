--[[ lws.server: a WebSocket server shaped like Node's `ws`.

  local server = assert(lws.server{ host = "127.0.0.1", port = 0 })
  server:on("connection", function(ws, req) ... end)

Options (unknown keys are an error):
  host, port            where to listen (port 0: any free port, see server:port())
  tls = { cert, key }   serve wss:// (and https://)
  http2                 with tls: offer h2 for HTTP (docs/http2.md; an RFC 8441
                        WebSocket is closed with 1008)
  max_message_size      bytes; a bigger message closes the connection with 1009
                        (default 16 MiB)
  max_queue_bytes       bytes a connection may have queued for sending; send()
                        beyond it returns nil, "send queue full …", "full"
                        (default 16 MiB; an empty queue always takes one message)
  slow_consumer         "error" (default: send() returns the error) or "close"
                        (close that connection with 1008 "slow consumer")
  close_timeout         seconds to wait for a closing handshake (default 10)
  verify                function(req, ws) -> true | false, status, message, headers
                        (ws's verifyClient: refuse an upgrade with an HTTP status)
  handle_protocols      function(offered, req) -> name | false (default: the
                        first offered subprotocol, as ws does)
  path                  only accept upgrades on this path (400 otherwise)
  backlog, reuseport    listen(2) backlog; SO_REUSEPORT for worker processes

Events: "connection"(ws, req), "close"() once the server is fully closed,
"error"(err) for errors of the server itself.
Connection events: "message"(data, is_binary), "close"(code, reason,
was_clean), "pong"(payload), "error"(message).
]]
local core = require "lws.core"
local emitter = require "lws.emitter"
local http = require "lws.http"
local pubsub = require "lws.pubsub"

local emit = emitter.emit
local M = {}

local options = require "lws.options"

local function one_of(...)
	local set, names = {}, {}
	for i, v in ipairs { ... } do set[v] = true; names[i] = ("%q"):format(v) end
	local phrase = table.concat(names, " or ")
	return function(v) if not set[v] then return phrase end end
end

local MAX_BYTES = 1 << 40
-- the options core.server reads (csrc/server.c l_server), with its ranges
local core_fields = {
	host = "string", port = { "integer", 0, 65535 }, tls = "table",
	max_message_size = { "integer", 0, MAX_BYTES }, max_queue_bytes = { "integer", 0, MAX_BYTES },
	close_timeout = { "integer", 1, 3600 }, backlog = { "integer", 1, 65535 }, reuseport = "boolean",
	slow_consumer = one_of("error", "close"), max_body_size = { "integer", 0, MAX_BYTES },
	request_timeout = { "integer", 0, 86400 }, compression = "boolean|table",
	handshake_timeout = { "integer", 1, 3600 }, keepalive_timeout = { "integer", 1, 3600 },
	workers = { "integer", 0, 256 }, sticky = "boolean", rx_buffer_size = { "integer", 128, 1 << 20 },
	http2 = "boolean",
}
local server_spec = {
	verify = "function", handle_protocols = "function", path = "string",
	heartbeat = "table", app_heartbeat = "table",
	max_connections = { "integer", 0 }, origins = "table", handshake_rate = { "number", 0 },
	idle_timeout = { "number", 0 },
}
for k, v in pairs(core_fields) do server_spec[k] = v end
local tls_spec = { cert = "string", key = "string", ca = "string" }
local compression_spec = {
	server_no_context_takeover = "boolean", level = { "integer", 1, 9 }, mem_level = { "integer", 1, 9 },
}

-- level: the user's call, seen from check_options' caller
local function check_options(opts, level)
	if type(opts) ~= "table" then
		error("bad argument #1 to 'server' (table expected, got " .. type(opts) .. ")", level + 1)
	end
	options.check(opts, server_spec, level + 1)
	if opts.tls then
		options.check(opts.tls, tls_spec, level + 1, "tls.")
		if not opts.tls.cert or not opts.tls.key then
			error("option 'tls' needs cert and key", level + 1)
		end
	end
	if type(opts.compression) == "table" then
		options.check(opts.compression, compression_spec, level + 1, "compression.")
	end
	if opts.sticky and not opts.workers then error("option 'sticky' needs 'workers'", level + 1) end
	-- browsers speak HTTP/2 over TLS only; h2c (cleartext) is not offered
	if opts.http2 and not opts.tls then error("option 'http2' needs 'tls'", level + 1) end
end

-- a certificate or key we cannot read: say which file and why (an I/O
-- failure, returned, not raised)
local function tls_files(tls)
	for _, k in ipairs { "cert", "key", "ca" } do
		local file = tls[k]
		if file then
			local f, err = io.open(file, "rb")
			if not f then
				return nil, ("cannot read the TLS %s %s"):format(k == "cert" and "certificate" or
					k == "ca" and "CA file" or "key", err)
			end
			f:close()
		end
	end
	return true
end

--- header_lines({ name = value, … }) -> "Name: value\r\n…"; refuses CR/LF
function M.header_lines(t)
	if t == nil then return nil end
	local out = {}
	for k, v in pairs(t) do
		k, v = tostring(k), tostring(v)
		if k:find("[^%w%-!#$%%&'*+.^_`|~]") or v:find("[\r\n%z]") then
			error("invalid response header " .. k, 3)
		end
		out[#out + 1] = k .. ": " .. v .. "\r\n"
	end
	table.sort(out)
	return table.concat(out)
end

-- C calls one "message" handler of a server connection directly, without
-- the generic dispatch (csrc/conn.c conn_message_handler): tell it which,
-- whenever the handlers change (none, several, or an application
-- heartbeat to answer first: the generic path)
local set_message_handler = core.conn_message_handler
local server_of = core.server_of   -- a connection's server (csrc/server_lua.c)
local function refresh_fast_path(ws)
	if ws.is_client then return end
	set_message_handler(ws, not ws:fields()._app_heartbeat and emitter.only(ws, "message") or nil)
end

local server_events = {}

-- Headers lws has no token for (X-Token, …) are looked up on first use,
-- while the request still holds its headers.
local custom_header = core.custom_header
local function lazy_headers(req, obj)
	setmetatable(req.headers, { __index = function(t, k)
		if type(k) ~= "string" then return nil end
		local v = custom_header(obj, k)
		if v then rawset(t, k:lower(), v) end
		return v
	end })
end

-- token bucket for handshake_rate (new handshakes per second)
local function rate_ok(f, rate)
	local now = core.now()
	local tokens = math.min(rate, (f._tokens or rate) + (now - (f._tokens_at or now)) * rate / 1000)
	f._tokens_at = now
	if tokens < 1 then
		f._tokens = tokens
		return false
	end
	f._tokens = tokens - 1
	return true
end

function server_events.upgrade(srv, ws, req)
	lazy_headers(req, ws)
	local f = srv:fields()
	local o = f.options
	if o.handshake_rate and not rate_ok(f, o.handshake_rate) then
		return false, 503, "Retry-After: 1\r\n", "too many new connections, retry later"
	end
	if o.max_connections and srv:connection_count() >= o.max_connections then
		return false, 503, "Retry-After: 5\r\n", "server is at its connection limit"
	end
	if o.origins then
		-- the defence against cross-site WebSocket hijacking: a browser always
		-- sends Origin; clients that send none are not browsers
		local origin = req.headers.origin
		if origin and not f._origins[origin:lower()] then
			return false, 403, nil, "origin not allowed"
		end
	end
	local ep
	if f._endpoints then
		ep = f._endpoints[req.path]
		if not ep then return false, 404, nil, "no WebSocket endpoint at " .. req.path end
	elseif o.path and req.path ~= o.path then
		return false, 400, nil, "no WebSocket endpoint at " .. req.path
	end
	for _, check in pairs { o.verify or false, ep and ep.verify or false } do
		if check then
			local ok, status, msg, headers = check(req, ws)
			if not ok then
				return false, status or 401, M.header_lines(headers), msg or "Unauthorized"
			end
		end
	end
	local chosen
	if #req.protocols > 0 then
		local hp = ep and ep.handle_protocols or o.handle_protocols
		if hp then
			chosen = hp(req.protocols, req) or nil
		else
			chosen = req.protocols[1]
		end
	end
	local wf = ws:fields()
	wf._endpoint = ep
	-- until the "connection" event; its slot then holds the first handler
	wf._req = req
	return true, chosen, nil
end

function server_events.request(srv, res, req)
	lazy_headers(req, res)
	return http.handle(srv, res, req)
end

function server_events.close(srv)
	emit(srv, "close")
	emitter.off(srv)
end

-- server.clients: the set of the server's open connections, as ws's
-- wss.clients; a view of the one registry, C's list (csrc/server.c
-- has_client, client_list), not a second one kept in step
local function clients_view(srv)
	return setmetatable({}, {
		__index = function(_, ws) return srv:has_client(ws) or nil end,
		__newindex = function() error("server.clients is read-only", 2) end,
		-- a snapshot: the loop may close connections
		__pairs = function()
			local list, i = srv:client_list(), 0
			return function()
				i = i + 1
				local ws = list[i]
				if ws ~= nil then return ws, true end
			end
		end,
		__len = function() return srv:connection_count() end,
	})
end

local conn_events = {}

function conn_events.open(ws)
	local f = ws:fields()
	local srv = server_of(ws)
	if not srv then return end
	local sf = srv:fields()
	f._app_heartbeat = sf.options.app_heartbeat
	refresh_fast_path(ws)
	local req = f._req
	f._req = nil
	emit(srv, "connection", ws, req)
	local ep = f._endpoint
	if ep and ws.readyState == 1 then ep.on_connection(ws, req) end
end

function conn_events.message(ws, data, binary)
	local ah = ws:fields()._app_heartbeat
	if ah and not binary and data == ah.ping then
		-- the application heartbeat never reaches "message" handlers
		ws:send(ah.pong)
		return
	end
	-- the connection last: one function can serve every connection,
	-- with no closure per connection (csrc/conn_read.c passes it too)
	emit(ws, "message", data, binary, ws)
end

function conn_events.pong(ws, payload)
	emit(ws, "pong", payload)
end

function conn_events.close(ws, code, reason, clean)
	local srv = server_of(ws)
	if srv then
		local sf = srv:fields()
		sf.closes[code] = (sf.closes[code] or 0) + 1
	end
	pubsub.forget(ws)
	-- handlers go after this event: nothing fires after close
	local ok, err = pcall(emit, ws, "close", code, reason, clean)
	emitter.off(ws)
	if not ok then error(err, 0) end
end

function conn_events.error(ws, msg, code)
	emit(ws, "error", msg, code)
end


function M.install(lws, handlers)
	local server_methods = emitter.mixin(core.server_methods)
	local conn_methods = emitter.mixin(core.conn_methods, function(ws, event)
		if event == "message" or event == nil then refresh_fast_path(ws) end
	end)

	handlers["lws.server"] = function(srv, event, ...)
		return server_events[event](srv, ...)
	end
	handlers["lws.request"] = function(res, event, ...)
		return emit(res, event, ...)   -- "abort": the client went away first
	end
	http.install(server_methods)
	pubsub.install(server_methods, conn_methods)
	require("lws.ops").install(lws, server_methods)

	--- server:websocket(path, on_connection[, { verify =, handle_protocols = }])
	-- A WebSocket endpoint: once one exists, upgrades to other paths get 404.
	function server_methods.websocket(srv, path, on_connection, opts)
		if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
			error("bad argument #1 to 'websocket' (path starting with / expected)", 2)
		end
		if type(on_connection) ~= "function" then
			error("bad argument #2 to 'websocket' (function expected, got " .. type(on_connection) .. ")", 2)
		end
		opts = opts or {}
		for k, v in pairs(opts) do
			if (k ~= "verify" and k ~= "handle_protocols") or type(v) ~= "function" then
				error("bad option '" .. tostring(k) .. "' for websocket endpoint", 2)
			end
		end
		local f = srv:fields()
		f._endpoints = f._endpoints or {}
		f._endpoints[path] = { on_connection = on_connection, verify = opts.verify,
			handle_protocols = opts.handle_protocols }
		return srv
	end

	local client_handler
	handlers["lws.conn"] = function(ws, event, ...)
		if ws.is_client then
			client_handler = client_handler or handlers["lws.client"]
			return client_handler(ws, event, ...)
		end
		return conn_events[event](ws, ...)
	end

	--- server:address() -> host, port
	function server_methods.address(srv)
		return srv:fields().options.host or "127.0.0.1", srv:port()
	end

	--- server:client_count() -> the open connections
	-- C counts them (the same set as srv.clients, kept in step at open and close)
	server_methods.client_count = core.server_methods.connection_count
	lws.header_lines = M.header_lines
end

--- new(opts) -> server | nil, err, code
function M.new(opts)
	check_options(opts, 2)
	-- policy options are checked before anything is opened
	if opts.heartbeat then require("lws.heartbeat").options(opts.heartbeat, "heartbeat", 2) end
	if opts.app_heartbeat then
		local ah = opts.app_heartbeat
		if type(ah.ping) ~= "string" or type(ah.pong) ~= "string" then
			error("option 'app_heartbeat' needs ping and pong strings", 2)
		end
	end
	if opts.idle_timeout and opts.idle_timeout <= 0 then
		error("option 'idle_timeout' must be > 0 seconds", 2)
	end
	if opts.tls then
		local ok, err = tls_files(opts.tls)
		if not ok then return nil, err, "tls" end
	end
	local copts = {}
	for k in pairs(core_fields) do copts[k] = opts[k] end
	local srv, err, code = core.server(copts)
	if not srv then return nil, err, code end
	local f = srv:fields()
	f.options = opts
	f.clients = clients_view(srv)
	f.closes = {}
	if opts.workers then
		-- a worker: SIGTERM from the supervisor closes with 1001 and exits
		f.worker = core.worker_index()
		require("lws.ops").worker_signals(srv)
	end
	if opts.origins then
		f._origins = {}
		for _, o in ipairs(opts.origins) do f._origins[tostring(o):lower()] = true end
	end
	if opts.idle_timeout then require("lws.ops").idle_sweep(srv, opts.idle_timeout) end
	if opts.heartbeat then require("lws.heartbeat").attach_server(srv, opts.heartbeat) end
	return srv
end

return M
