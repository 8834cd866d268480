--[[ lws.socketio: a Socket.IO server (protocol 4 and 5, over Engine.IO 3
and 4) on an lws server, shaped like Socket.IO's Node API.

  local sio = require("lws.socketio")(server, { ping_interval = 25000 })
  sio:on("connection", function(socket)
    socket:on("message", function(obj, ack) sio:emit("message", obj) end)
    socket:on("disconnect", function(reason) end)
  end)

Design criteria:
 - socket.io-client 1.x/2.x (EIO 3) and 3.x/4.x (EIO 4) in the same
   rooms at the same time; the protocol differences (implicit "/"
   connect, CONNECT replies, connect errors, socket ids) stay in here.
 - Arguments are Lua values: tables encode as JSON through lws.json
   (json.array{} for an empty array; decoded arrays and objects keep
   their kind, so echoing gives the same JSON back), top-level null
   arguments are nil, nested nulls json.null, binary data is
   socketio.binary(bytes) both ways. A function as the last argument of
   emit is the acknowledgement callback; handlers get an ack function as
   their last argument when the client asked for one.
 - A broadcast is encoded once and written as the same bytes to every
   session (one shared buffer for all sessions on a websocket).
 - Errors in user handlers are reported through lws.on_error and do not
   disturb the protocol: the session goes on.
 - Restarting the server never sends DISCONNECT: clients reconnect by
   themselves. Connection state recovery (Socket.IO 4.6+) is opt-in.

The pieces, as Node's socket.io splits them: engine.lua (Engine.IO
sessions) -> parser.lua (wire formats) -> this file (the server, the
Engine.IO client of each session, the bundle) -> namespace.lua ->
socket.lua; operator.lua (io:to(room):emit) -> adapter.lua (rooms, and how
a broadcast reaches sockets: in memory, over an lws.bus in cluster.lua, or
over Socket.IO's own Redis protocol in redis_adapter.lua).
]]
local core = require "lws.core"
local options = require "lws.options"
local json = require "lws.json"
local parser = require "lws.socketio.parser"
local engine = require "lws.socketio.engine"
local common = require "lws.socketio.common"
local adapter = require "lws.socketio.adapter"
local namespace = require "lws.socketio.namespace"
local socket_mod = require "lws.socketio.socket"

local M = {}
M.json = json
M.binary = parser.binary
M.is_binary = parser.is_binary
M.parser = parser
M.engine = engine
M.adapter = adapter
M.Socket = socket_mod.Socket
M.Namespace = namespace.Namespace

--- redis_adapter{ host, port, key, request_timeout, redis[, sharded,
-- subscription_mode] } -> the value of the adapter option that speaks
-- @socket.io/redis-adapter's protocol (sharded: createShardedAdapter's)
function M.redis_adapter(opts)
	local a = require("lws.socketio.redis_adapter").new(opts, 3)   -- errors point at the caller
	return a
end

--- redis_streams_adapter{ host, port, stream_name, … } -> the value of the
-- adapter option that speaks @socket.io/redis-streams-adapter's protocol:
-- connection state recovery across nodes (lws.socketio.redis_streams)
function M.redis_streams_adapter(opts)
	return require("lws.socketio.redis_streams").new(opts, 3)   -- errors point at the caller
end

local fire = common.fire
local P = parser
local Namespace = namespace.Namespace
local new_namespace = namespace.new

---------------------------------------------------------------------------
-- Client: one Engine.IO session and its sockets

local Client = {}
Client.__index = Client

local function new_client(server, session)
	local c = setmetatable({ server = server, session = session, sockets = {}, nsps = {} }, Client)
	session.on_message = function(data, is_binary) return c:_ondata(data, is_binary) end
	session.on_close = function(reason, description) return c:_onclose(reason, description) end
	if session.protocol == 3 then
		c:connect("/", json.object {})
	else
		session.connect_deadline = core.now() + server.opts.connect_timeout
		session.on_connect_timeout = function()
			if next(c.nsps) == nil then c:close() end
		end
	end
	return c
end

function Client:_add(socket)
	self.sockets[socket.id] = socket
	self.nsps[socket.nsp.name] = socket
	self.session.connect_deadline = nil
end

function Client:_remove(socket)
	if self.sockets[socket.id] then
		self.sockets[socket.id] = nil
		self.nsps[socket.nsp.name] = nil
	end
end

function Client:connect(name, auth)
	local nsp = self.server._nsps[name]
	if not nsp then
		local text, bins = self.server.codec.encode(P.CONNECT_ERROR, name, nil, json.object { message = "Invalid namespace" })
		if text then self.session:send("4" .. text) end
		for _, b in ipairs(bins or {}) do self.session:send({ bin = b }) end
		return
	end
	nsp:_add(self, auth)
end

function Client:_ondata(data, is_binary)
	local codec = self.server.codec
	if codec.binary_packets then   -- the msgpack parser: one binary message per packet
		if not is_binary then return self:_onerror("got plaintext data with the msgpack parser") end
		local p, err = codec.decode(data)
		if not p then return self:_onerror(err) end
		return self:_ondecoded(p)
	end
	local pending = self.pending
	if is_binary then
		if not pending then return self:_onerror("got binary data when not reconstructing a packet") end
		local bufs = self.pending_bufs
		bufs[#bufs + 1] = data
		if #bufs < pending.attachments then return end
		self.pending, self.pending_bufs = nil, nil
		local restored, err = P.reconstruct(pending.data, bufs)
		if restored == nil and err then return self:_onerror(err) end
		pending.data = restored
		return self:_ondecoded(pending)
	end
	if pending then return self:_onerror("got plaintext data when reconstructing a packet") end
	local p, err = P.decode(data, self.server.opts.max_attachments)
	if not p then return self:_onerror(err) end
	if p.attachments then
		self.pending, self.pending_bufs = p, {}
		return
	end
	return self:_ondecoded(p)
end

local function parse_nsp_v4(nsp)
	local path, query = nsp:match("^([^?]*)%??(.*)$")
	local auth = json.object {}
	for pair in query:gmatch("[^&]+") do
		local k, v = pair:match("^([^=]*)=?(.*)$")
		local function unesc(x)
			return (x:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
		end
		auth[unesc(k)] = unesc(v)
	end
	return path, auth
end

function Client:_ondecoded(p)
	local name, auth = p.nsp, p.data
	if self.session.protocol == 3 then
		name, auth = parse_nsp_v4(name)
	end
	local socket = self.nsps[name]
	if not socket and p.type == P.CONNECT then
		self:connect(name, auth or json.object {})
	elseif socket and p.type ~= P.CONNECT and p.type ~= P.CONNECT_ERROR then
		socket:_onpacket(p)
	else
		self:close()   -- socket.io: "invalid state"
	end
end

function Client:_onerror(err)
	for _, s in pairs(self.sockets) do fire(s, "error", err) end
	self.session:close_gracefully()
end

-- the server ends the whole session
function Client:close()
	if self.session.state == "open" then
		self:_onclose("forced server close")
		self.session:close_gracefully()
	end
end

function Client:_disconnect()
	local list = {}
	for _, s in pairs(self.sockets) do list[#list + 1] = s end
	for _, s in ipairs(list) do s:disconnect() end
	self.sockets, self.nsps = {}, {}
	self:close()
end

function Client:_onclose(reason, description)
	self.session.on_message = nil
	local list = {}
	for _, s in pairs(self.sockets) do list[#list + 1] = s end
	for _, s in ipairs(list) do s:_onclose(reason, description) end
	self.sockets, self.nsps = {}, {}
	self.pending, self.pending_bufs = nil, nil
end

---------------------------------------------------------------------------
-- the client bundle (/socket.io/socket.io.js)

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

local function bundle_dirs(opts)
	if opts.client_dir then return { opts.client_dir } end
	-- beside this file, in the checkout and in a rock (lws-scm-1.rockspec)
	local v4 = opts.client_version == "4" or opts.parser == "msgpack"
	return { here .. "/client" .. (v4 and "4" or "2") }
end

local function serve_client(server, opts, srv, path)
	local cache = {}
	-- with the msgpack parser only the msgpack build can talk to us: it is
	-- also what /socket.io/socket.io.js serves
	local alias = opts.parser == "msgpack" and { ["socket.io.js"] = "socket.io.msgpack.min.js" } or {}
	local function serve(route)
		local name = alias[route] or route
		return function(req, res)
			local entry = cache[name]
			if not entry then
				for _, dir in ipairs(bundle_dirs(opts)) do
					local f = io.open(dir .. "/" .. name, "rb")
					if f then
						local data = f:read("a")
						f:close()
						local st = core.stat(dir .. "/" .. name) or { mtime = 0 }
						entry = { data = data, etag = ('W/"%x-%x"'):format(#data, st.mtime) }
						cache[name] = entry
						break
					end
				end
			end
			if not entry then return res:error(404, "not found") end
			res:header("Cache-Control", "public, max-age=0")
			res:header("ETag", entry.etag)
			local inm = req.headers["if-none-match"]
			if inm and (inm == entry.etag or inm == entry.etag:sub(3)) then
				res:status(304)
				return res:send("")
			end
			local ctype = name:match("%.map$") and "application/json; charset=utf-8"
				or "application/javascript; charset=utf-8"
			return res:send(require("lws.http").gzip_body(req, res, entry.data, ctype, entry, "gz"), ctype)
		end
	end
	for _, name in ipairs { "socket.io.js", "socket.io.js.map", "socket.io.min.js",
		"socket.io.min.js.map", "socket.io.esm.min.js", "socket.io.esm.min.js.map",
		"socket.io.msgpack.min.js", "socket.io.msgpack.min.js.map" } do
		srv:route("GET", path .. name, serve(name))
	end
	server._bundle_dirs = bundle_dirs(opts)
end

---------------------------------------------------------------------------
-- the Server (io)

local Server = {}
Server.__name = "lws.socketio.server"
M.Server = Server
Server.__index = function(io, k)
	if k == "sockets" then return io._nsps["/"] end
	if k == "volatile" then return io._nsps["/"].volatile end
	if k == "local" or k == "local_" then return io._nsps["/"]["local"] end
	return Server[k]
end
function Server.__tostring(io)
	return ("lws.socketio.server (%s, %d sessions)"):format(io.engine.opts.path, io.engine.count)
end

local option_types = {
	path = "string", ping_interval = "number", ping_timeout = "number",
	upgrade_timeout = "number", connect_timeout = "number", max_http_buffer_size = "number",
	transports = "table", allow_upgrades = "boolean", allow_eio3 = "boolean", cors = "table",
	allow_request = "function", serve_client = "boolean", client_version = "string",
	client_dir = "string", connection_state_recovery = "table", max_attachments = "number",
	close_timeout = "number", bus = "table", http_compression = "boolean|table",
	adapter = "function|table", parser = "string",
}

-- the adapter option: a factory function(nsp) -> adapter, or an object
-- with :new(nsp) (lws.socketio.redis_adapter{…})
local function adapter_factory(a, level)
	if a == nil then return adapter.new end
	if type(a) == "function" then return a end
	if type(a.new) ~= "function" then
		error("option 'adapter' must be a function(nsp) or have a new(nsp) method, got " .. options.show(a), level + 1)
	end
	return function(nsp) return a:new(nsp) end
end

--- new(server, opts) -> io
-- (level: internal, where option errors point; the module's __call is one
-- frame deeper than a direct new())
function M.new(srv, opts, level)
	level = level or 2
	opts = options.check(options.table_arg(opts, "socketio", 2, level), option_types, level)
	if opts.client_version and opts.client_version ~= "2" and opts.client_version ~= "4" then
		error("option 'client_version' must be \"2\" or \"4\", got " .. options.show(opts.client_version), level)
	end
	if opts.bus and getmetatable(opts.bus) ~= require("lws.bus").mt then
		error("option 'bus' must be an lws.bus, got " .. options.show(opts.bus), level)
	end
	if opts.bus and opts.adapter then error("options 'bus' and 'adapter' exclude each other", level) end
	if opts.parser ~= nil and opts.parser ~= "json" and opts.parser ~= "msgpack" then
		error("option 'parser' must be \"json\" or \"msgpack\", got " .. options.show(opts.parser), level)
	end
	local factory = adapter_factory(opts.adapter, level)
	local o = {}
	for k, v in pairs(opts) do o[k] = v end
	o.connect_timeout = o.connect_timeout or 45000
	o.max_attachments = o.max_attachments or 10
	local io = setmetatable({ srv = srv, opts = o, _nsps = {}, _adapter = factory,
		codec = o.parser == "msgpack" and require("lws.socketio.msgpack_parser") or P }, Server)
	if o.connection_state_recovery then
		local r = o.connection_state_recovery
		io.recovery = {
			max_disconnection_duration = r.max_disconnection_duration or 2 * 60 * 1000,
			skip_middlewares = r.skip_middlewares ~= false,
		}
	end
	local eopts = {}
	for _, k in ipairs { "path", "ping_interval", "ping_timeout", "upgrade_timeout",
		"max_http_buffer_size", "transports", "allow_upgrades", "allow_eio3", "cors",
		"allow_request", "close_timeout", "http_compression" } do
		eopts[k] = o[k]
	end
	io.engine = engine.new(srv, eopts)
	io.engine.on_session = function(session)
		if io._admin then io._admin:session(session) end   -- sio:instrument (admin.lua)
		new_client(io, session)
	end
	if o.bus then
		io.cluster = require("lws.socketio.cluster").attach(io, o.bus)
		io._adapter = io.cluster.adapter
	end
	io._nsps["/"] = new_namespace(io, "/", io._adapter)
	if o.serve_client ~= false then serve_client(io, o, srv, io.engine.opts.path) end
	srv:on("close", function() io.engine:close_all("server shutting down") end)
	return io
end

--- of(name) -> the namespace called name (created on first use)
function Server:of(name)
	if type(name) ~= "string" then error("bad argument #1 to 'of' (namespace name expected)", 2) end
	if name:sub(1, 1) ~= "/" then name = "/" .. name end
	local nsp = self._nsps[name]
	if not nsp then
		nsp = new_namespace(self, name, self._adapter)
		self._nsps[name] = nsp
	end
	return nsp
end

-- the default namespace's API on the server itself
for _, m in ipairs { "on", "once", "off", "listener_count", "use", "to", "in_", "except",
	"timeout", "emit", "send", "fetch_sockets", "sockets_join", "sockets_leave",
	"disconnect_sockets", "socket_count", "compress", "server_side_emit" } do
	Server[m] = function(io, ...)
		local nsp = io._nsps["/"]
		local r = Namespace[m](nsp, ...)
		if r == nsp then return io end
		return r
	end
end
Server["in"] = Server.in_

--- close(): every session ends with "server shutting down" (no DISCONNECT
-- is sent, so clients reconnect); new handshakes are refused
function Server:close()
	for _, nsp in pairs(self._nsps) do
		local list = {}
		for _, s in pairs(nsp.sockets) do list[#list + 1] = s end
		for _, s in ipairs(list) do s:_onclose("server shutting down") end
	end
	self.engine.closed = true
	self.engine:close_all("server shutting down")
	if self.cluster then self.cluster.detach(); self.cluster = nil end
	for _, nsp in pairs(self._nsps) do nsp.adapter:close() end
	if self._admin then self._admin:close() end
end

--- instrument(opts): the Socket.IO Admin UI's protocol on a namespace
-- (@socket.io/admin-ui's instrument(); lws.socketio.admin)
function Server:instrument(opts)
	require("lws.socketio.admin").instrument(self, opts, 3)
end

--- client_count() -> open Engine.IO sessions
function Server:client_count() return self.engine.count end

return setmetatable(M, { __call = function(_, srv, opts)
	local sio = M.new(srv, opts, 3)   -- not a tail call: errors point at the caller
	return sio
end })
