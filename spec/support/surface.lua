-- The public surface of lws as the code has it at run time, for
-- spec/types_spec.lua (types/*.lua) and spec/reference_spec.lua
-- (docs/reference/*.md): every module's functions and fields, every
-- class's methods, and every option table's names, read from the checker
-- itself (lws.options.check sees each schema when it refuses a probe key).
local H = require "helper"
local lws = H.lws
local core = require "lws.core"
local options = require "lws.options"

local S = {}

local function public(tab, want)
	local set = {}
	for k, v in pairs(tab) do
		if type(k) == "string" and not k:match("^_") then
			local f = type(v) == "function"
			if want == nil or (want == "function") == f then set[k] = true end
		end
	end
	return set
end
S.public = public

local function union(...)
	local u = {}
	for _, s in ipairs { ... } do for k in pairs(s) do u[k] = true end end
	return u
end
S.union = union

-- Lua objects keep their metamethods in the same table as their methods
local function methods_of(tab)
	local set = public(tab, "function")
	for k in pairs(set) do if k:match("^__") then set[k] = nil end end
	return set
end

S.EMITTER = { on = true, once = true, off = true, emit = true, listener_count = true }

--- modules() -> { { name, file, alias, page, functions = set, fields = set } }
-- alias: the local the types file declares the module as
function S.modules()
	local sio = require "lws.socketio"
	local fields = public(lws, "value")
	fields.socketio = true   -- loaded on first use
	return {
		{ name = "lws", file = "lws.lua", alias = "lws", page = "lws.md",
			functions = public(lws, "function"), fields = fields },
		{ name = "lws.json", file = "lws.json.lua", alias = "json", page = "json.md",
			functions = public(require "lws.json", "function"), fields = public(require "lws.json", "value") },
		{ name = "lws.redis", file = "lws.redis.lua", alias = "redis", page = "redis.md",
			functions = public(require "lws.redis", "function"), fields = public(require "lws.redis", "value") },
		{ name = "lws.bus", file = "lws.bus.lua", alias = "bus", page = "bus.md",
			functions = public(require "lws.bus", "function"), fields = public(require "lws.bus", "value") },
		{ name = "lws.socketio", file = "lws.socketio.lua", alias = "socketio", page = "socketio.md",
			functions = public(sio, "function"), fields = public(sio, "value") },
		{ name = "lws.msgpack", file = "lws.msgpack.lua", alias = "msgpack", page = "msgpack.md",
			functions = public(require "lws.msgpack", "function"), fields = public(require "lws.msgpack", "value") },
	}
end

--- classes() -> { { class, file, alias, pages, methods = set, inherits = set } }
-- Needs the loop (a server, a timer, a watch, a Socket.IO operator);
-- H.clean() afterwards.
function S.classes()
	local sio = require "lws.socketio"
	local srv = assert(H.server())
	local io = sio(srv)
	local op = io:to("room")
	local timer = lws.set_timeout(function() end, 60000)
	local watch = lws.watch(0, function() end)
	local list = {
		{ class = "lws.Server", file = "lws.lua", alias = "Server", pages = { "server.md", "http.md", "pubsub.md" },
			methods = public(core.server_methods, "function"), inherits = S.EMITTER },
		{ class = "lws.Conn", file = "lws.lua", alias = "Conn", pages = { "connection.md", "pubsub.md" },
			methods = public(core.conn_methods, "function"), inherits = S.EMITTER },
		{ class = "lws.WebSocket", file = "lws.lua", alias = "WebSocket", pages = { "client.md" },
			methods = public(require("lws.websocket").methods, "function"), inherits = S.EMITTER },
		{ class = "lws.Timer", file = "lws.lua", alias = "Timer", pages = { "lws.md" },
			methods = methods_of(getmetatable(timer).__index) },
		{ class = "lws.Watch", file = "lws.lua", alias = "Watch", pages = { "lws.md" },
			methods = methods_of(getmetatable(watch).__index) },
		{ class = "lws.Emitter", file = "lws.lua", alias = "Emitter", pages = { "lws.md" },
			methods = S.EMITTER },
		{ class = "lws.Response", file = "lws.http.lua", alias = "Response", pages = { "http.md" },
			methods = public(core.request_methods, "function"), inherits = S.EMITTER },
		{ class = "lws.RedisClient", file = "lws.redis.lua", alias = "Redis", pages = { "redis.md" },
			methods = public(require("lws.redis").methods, "function"), inherits = S.EMITTER },
		{ class = "lws.Bus", file = "lws.bus.lua", alias = "Bus", pages = { "bus.md" },
			methods = public(require("lws.bus").methods, "function") },
		{ class = "lws.socketio.Server", file = "lws.socketio.lua", alias = "Server", pages = { "socketio.md" },
			methods = methods_of(sio.Server) },
		{ class = "lws.socketio.Namespace", file = "lws.socketio.lua", alias = "Namespace", pages = { "socketio.md" },
			methods = methods_of(sio.Namespace) },
		{ class = "lws.socketio.Socket", file = "lws.socketio.lua", alias = "Socket", pages = { "socketio.md" },
			methods = methods_of(sio.Socket) },
		{ class = "lws.socketio.BroadcastOperator", file = "lws.socketio.lua", alias = "Operator",
			pages = { "socketio.md" }, methods = methods_of(getmetatable(op)) },
		{ class = "lws.socketio.RemoteSocket", file = "lws.socketio.lua", alias = "RemoteSocket",
			pages = { "socketio.md" }, methods = methods_of(require("lws.socketio.operator").Remote) },
		{ class = "lws.socketio.RedisAdapter", file = "lws.socketio.lua", alias = "RedisAdapter",
			pages = { "socketio.md" }, methods = methods_of(getmetatable(sio.redis_adapter())) },
	}
	io:close()
	timer:stop()
	watch:close()
	return list
end

local PROBE = "probe!"

-- the schema options.check saw with this prefix while fn() raised
local function probe(fn, prefix)
	local seen
	local check = options.check
	options.check = function(opts, spec, level, pfx)
		if (pfx or "") == prefix then seen = spec end
		return check(opts, spec, level, pfx)
	end
	local ok, err = pcall(fn)
	options.check = check
	assert(not ok and tostring(err):find("unknown option '" .. prefix .. PROBE, 1, true),
		"the probe was not refused as an unknown option: " .. tostring(err))
	assert(seen, "options.check never saw the schema of " .. prefix)
	local set = {}
	for k in pairs(seen) do set[k] = true end
	return set
end

local function keys(t)
	local set = {}
	for k in pairs(t) do set[k] = true end
	return set
end

--- option_tables() -> { { class, file, page, prefix, names = set, defaults = { name = value } } }
-- prefix: how the reference names a nested option ("tls." for tls.cert)
function S.option_tables()
	local srv = assert(H.server())
	local p = { [PROBE] = true }
	local websocket = require "lws.websocket"
	local redis = require "lws.redis"
	local heartbeat = require "lws.heartbeat"
	local engine = require "lws.socketio.engine"
	local sio_defaults = {}
	for k, v in pairs(engine.defaults) do sio_defaults[k] = v end
	sio_defaults.connect_timeout, sio_defaults.max_attachments = 45000, 10
	-- lws.socketio.redis_adapter{}: host and port are lws.redis's
	local ra_defaults = { host = redis.defaults.host, port = redis.defaults.port, key = "socket.io",
		request_timeout = 5000 }
	local list = {
		{ class = "lws.ServerOptions", file = "lws.lua", page = "server.md", prefix = "",
			names = probe(function() lws.server(p) end, "") },
		{ class = "lws.TlsOptions", file = "lws.lua", page = "server.md", prefix = "tls.",
			names = probe(function() lws.server { tls = p } end, "tls.") },
		{ class = "lws.CompressionOptions", file = "lws.lua", page = "server.md", prefix = "compression.",
			names = probe(function() lws.server { compression = p } end, "compression.") },
		{ class = "lws.HeartbeatOptions", file = "lws.lua", page = "heartbeat.md", prefix = "heartbeat.",
			names = probe(function() lws.server { heartbeat = p } end, "heartbeat."), defaults = heartbeat.defaults },
		{ class = "lws.WebSocketOptions", file = "lws.lua", page = "client.md", prefix = "",
			names = probe(function() lws.WebSocket("ws://127.0.0.1:9/", nil, p) end, ""),
			defaults = { connect_timeout = websocket.connect_timeout } },
		{ class = "lws.ReconnectOptions", file = "lws.lua", page = "heartbeat.md", prefix = "reconnect.",
			names = keys(websocket.reconnect_defaults), defaults = websocket.reconnect_defaults },
		{ class = "lws.TopicOptions", file = "lws.lua", page = "pubsub.md", prefix = "",
			names = probe(function() srv:topic("t", p) end, "") },
		{ class = "lws.StaticOptions", file = "lws.http.lua", page = "http.md", prefix = "",
			names = probe(function() srv:static("/s/", H.ROOT .. "/docs", p) end, "") },
		{ class = "lws.RedisOptions", file = "lws.redis.lua", page = "redis.md", prefix = "",
			names = probe(function() redis.connect(p) end, ""), defaults = redis.defaults },
		{ class = "lws.RedisReconnectOptions", file = "lws.redis.lua", page = "redis.md", prefix = "reconnect.",
			names = keys(redis.reconnect_defaults), defaults = redis.reconnect_defaults },
		{ class = "lws.BusOptions", file = "lws.bus.lua", page = "bus.md", prefix = "",
			names = probe(function() lws.bus(p) end, "") },
		{ class = "lws.socketio.Options", file = "lws.socketio.lua", page = "socketio.md", prefix = "",
			names = probe(function() require "lws.socketio"(srv, p) end, ""), defaults = sio_defaults },
		{ class = "lws.socketio.RedisAdapterOptions", file = "lws.socketio.lua", page = "socketio.md", prefix = "",
			names = probe(function() require("lws.socketio").redis_adapter(p) end, ""), defaults = ra_defaults },
		{ class = "lws.socketio.InstrumentOptions", file = "lws.socketio.lua", page = "socketio.md", prefix = "",
			names = probe(function() require "lws.socketio"(srv):instrument(p) end, ""),
			defaults = require("lws.socketio.admin").defaults },
	}
	return list
end

--- show(v): a default as the docs write it ("/socket.io", 1000000, math.huge)
function S.show(v)
	if v == math.huge then return "math.huge" end
	if type(v) == "string" then return ('"%s"'):format(v) end
	if math.type(v) == "float" and v == math.floor(v) then return ("%d"):format(v) end
	return tostring(v)
end

--- block(text, class) -> the ---@class block of class (up to the first non-comment line)
function S.block(text, class)
	local start = text:find("\n%-%-%-@class " .. class:gsub("%p", "%%%0") .. "[%s:]")
	if not start then return nil end
	local lines = {}
	for line in text:sub(start + 1):gmatch("([^\n]*)\n") do
		if not line:match("^%-%-%-") then break end
		lines[#lines + 1] = line
	end
	return table.concat(lines, "\n")
end

--- fields(block) -> set of ---@field names
function S.fields(block)
	local set = {}
	for name in (block or ""):gmatch("%-%-%-@field ([%w_]+)") do set[name] = true end
	return set
end

--- the sorted differences of two sets
function S.diff(runtime, declared)
	local missing, extra = {}, {}
	for k in pairs(runtime) do if not declared[k] then missing[#missing + 1] = k end end
	for k in pairs(declared) do if not runtime[k] then extra[#extra + 1] = k end end
	table.sort(missing)
	table.sort(extra)
	return missing, extra
end

return S
