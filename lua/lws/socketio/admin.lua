--[[ lws.socketio.admin: sio:instrument(opts), what @socket.io/admin-ui's
instrument() (0.5) speaks on its namespace, so the Admin UI (its ui/dist,
or the hosted one) can watch and steer a Lua server:

  sio:instrument { auth = { type = "basic", username = "admin",
                            password = "$2b$10$..." },   -- a bcrypt hash
                   mode = "development" }

On the admin namespace ("/admin" unless namespace_name says otherwise):
 - authentication: auth = false, or basic: the handshake's auth carries
   username and password (checked against the bcrypt hash with crypt(3),
   csrc/crypt.c), and the "session" event gives a session id that later
   handshakes may show instead (auth.sessionId);
 - "config" { supportedFeatures } to each admin socket on connection;
 - "server_stats" every 2 s: serverId, hostname, pid, uptime (s),
   clientsCount, pollingClientsCount, aggregatedEvents (per second:
   rawConnection, rawDisconnection by reason, packetsIn/Out, bytesIn/Out),
   namespaces [{ name, socketsCount }];
 - in development mode: "all_sockets" on connection, then the stream
   socket_connected, socket_updated (transport upgrade; data changes, seen
   at each stats tick), socket_disconnected, room_joined, room_left,
   event_received, event_sent;
 - the UI's commands, unless readonly: emit(nsp, filter, event, ...),
   join(nsp, room, filter), leave(nsp, room, filter),
   _disconnect(nsp, close, filter) (filter: a room, or all sockets).

Like instrument(), development mode keeps the UI's clientId and transport
in socket.data._admin (not shown as data), so fetch_sockets across a
cluster carries them, and the events go through the admin namespace's
adapter: a UI on one node of a cluster sees them all.

The hooks in the other files are one line each: init.lua (sessions,
close), namespace.lua (connected), socket.lua (disconnected), adapter.lua
(room joined / left), engine.lua (traffic counts).
]]
local core = require "lws.core"
local json = require "lws.json"
local options = require "lws.options"
local engine = require "lws.socketio.engine"
local parser = require "lws.socketio.parser"
local common = require "lws.socketio.common"
local adapter = require "lws.socketio.adapter"

local call = common.call
local null = json.null

local M = {}

local Admin = {}
Admin.__index = Admin
Admin.__name = "lws.socketio.admin"
M.Admin = Admin

---------------------------------------------------------------------------
-- clocks: wall-clock milliseconds (Date's) and process uptime (process.uptime())

local function first_line(path)
	local f = io.open(path)
	if not f then return nil end
	local l = f:read("l")
	f:close()
	return l
end

-- os.time() has whole seconds: the monotonic core.now() gives the rest
-- (the offset is taken once, so a date may be up to a second early)
local wall0, mono0 = os.time() * 1000, core.now()
local function now_ms() return math.floor(wall0 + (core.now() - mono0)) end
M.now_ms = now_ms

local function iso_date(ms)
	return os.date("!%Y-%m-%dT%H:%M:%S", ms // 1000) .. (".%03dZ"):format(ms % 1000)
end

-- seconds since this process started (Linux: /proc/self/stat's start time
-- in clock ticks of 1/100 s, against /proc/uptime), else since this module
local function process_age()
	local up = tonumber((first_line("/proc/uptime") or ""):match("^([%d.]+)"))
	local stat = first_line("/proc/self/stat") or ""
	-- field 22, counted after the command name, which may hold spaces
	local rest = stat:match("^%d+ %b() (.*)$")
	if up and rest then
		local i = 3
		for field in rest:gmatch("%S+") do
			if i == 22 then return math.max(0, up - tonumber(field) / 100) end
			i = i + 1
		end
	end
	return 0
end
local age0, age_mono = process_age(), core.now()
local function uptime() return age0 + (core.now() - age_mono) / 1000 end

local function hostname()
	return first_line("/proc/sys/kernel/hostname") or first_line("/etc/hostname") or os.getenv("HOSTNAME")
		or "localhost"
end

local function pid()
	return math.tointeger(tonumber((first_line("/proc/self/stat") or ""):match("^(%d+)"))) or 0
end

---------------------------------------------------------------------------
-- values as the UI gets them

-- what of a Lua value can reach JSON: functions, userdata and cycles
-- (past a depth) left out; arrays stay arrays, objects objects
local function plain(v, depth)
	local t = type(v)
	if t == "string" or t == "number" or t == "boolean" then return v end
	if v == null or parser.is_binary(v) then return v end
	if t ~= "table" or depth > 32 then return nil end
	local mt = getmetatable(v)
	if mt ~= nil and mt ~= json.array_mt and mt ~= json.object_mt then return nil end
	local out = setmetatable({}, mt)
	for k, x in pairs(v) do
		if type(k) == "string" or math.type(k) == "integer" then out[k] = plain(x, depth + 1) end
	end
	return out
end

-- socket.data without the admin's own _admin
local function serialize_data(data)
	local out = json.object {}
	if type(data) ~= "table" then return out end
	for k, v in pairs(data) do
		if k ~= "_admin" and (type(k) == "string" or math.type(k) == "integer") then out[k] = plain(v, 1) end
	end
	return out
end

local function object_of(t)
	local o = json.object {}
	if type(t) == "table" then for k, v in pairs(t) do o[k] = plain(v, 1) end end
	return o
end

-- a socket as instrument()'s serialize() gives it; s is a remote socket
-- of fetch_sockets (id, handshake, rooms, data; .socket when local) or an
-- lws.socketio.socket
local function serialize(s, nsp_name, rooms)
	local data = s.data
	local admin = type(data) == "table" and type(data._admin) == "table" and data._admin or {}
	local hs = type(s.handshake) == "table" and s.handshake or {}
	local headers = type(hs.headers) == "table" and hs.headers or {}
	return json.object {
		id = s.id,
		clientId = admin.clientId,
		transport = admin.transport,
		nsp = nsp_name,
		data = serialize_data(data),
		handshake = json.object {
			address = headers["cf-connecting-ip"] or headers["x-forwarded-for"] or hs.address,
			headers = object_of(headers),
			query = object_of(hs.query),
			issued = hs.issued,
			secure = hs.secure,
			time = hs.time,
			url = hs.url,
			xdomain = hs.xdomain,
		},
		rooms = rooms,
	}
end

-- the rooms of a local socket, its own room first (a Set's order in Node)
local function rooms_of(socket)
	local list = json.array {}
	local own = socket.id
	local mine = socket.nsp.adapter.sids[own] or {}
	if mine[own] then list[1] = own end
	local rest = {}
	for room in pairs(mine) do if room ~= own then rest[#rest + 1] = room end end
	table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
	for _, r in ipairs(rest) do list[#list + 1] = r end
	return list
end

-- event arguments { n, name, ... } as a JSON array (nil -> null), without
-- a trailing ack function
local function event_array(args)
	local n = args.n
	if n > 0 and type(args[n]) == "function" then n = n - 1 end
	local a = json.array {}
	for i = 1, n do
		local v = plain(args[i], 1)
		if v == nil then v = null end
		a[i] = v
	end
	return a
end

---------------------------------------------------------------------------
-- aggregated events: per second, per type and subtype (instrument()'s EventBuffer)

function Admin:_push(kind, sub, count)
	local ts = now_ms() // 1000 * 1000
	local key = ts .. ";" .. kind .. ";" .. (sub or "")
	local e = self.buffer[key]
	if e then
		e.count = e.count + count
	else
		self.buffer[key] = json.object { timestamp = ts, type = kind, subType = sub, count = count }
		self.order[#self.order + 1] = key
	end
end

function Admin:_take_events()
	local list = json.array {}
	for i, key in ipairs(self.order) do list[i] = self.buffer[key] end
	self.buffer, self.order = {}, {}
	return list
end

---------------------------------------------------------------------------
-- the admin namespace's outgoing events

-- an event to every admin socket (every node's); a failure is reported
-- through lws.on_error, never raised into the hook's caller
-- nobody to tell: no admin socket here, and no other node to reach (the
-- stream's events are not even made then)
function Admin:_idle()
	return self.alone and next(self.nsp.sockets) == nil
end

function Admin:_emit(...)
	if self:_idle() then return end
	call(self.nsp.emit, self.nsp, ...)
end

function Admin:_stats()
	local io = self.io
	local names = {}
	for name in pairs(io._nsps) do names[#names + 1] = name end
	table.sort(names)
	local namespaces = json.array {}
	for i, name in ipairs(names) do
		namespaces[i] = json.object { name = name, socketsCount = io._nsps[name]:socket_count() }
	end
	local polling = 0
	for _, s in pairs(io.engine.sessions) do
		if s.transport == "polling" and not s.upgraded then polling = polling + 1 end
	end
	if self.dev then self:_data_changes() end
	self:_emit("server_stats", json.object {
		serverId = self.server_id, hostname = self.hostname, pid = self.pid,
		uptime = uptime(),
		clientsCount = io.engine.count,
		pollingClientsCount = polling,
		aggregatedEvents = self:_take_events(),
		namespaces = namespaces,
	})
end

-- socket_updated with data for the sockets whose data changed since the
-- last look (instrument() watches socket.data through a Proxy; a Lua
-- table has no such hook, so the stats tick compares)
function Admin:_data_changes()
	for _, nsp in pairs(self.io._nsps) do
		for id, s in pairs(nsp.sockets) do
			local data = serialize_data(s.data)
			local ok, text = pcall(json.encode, data)
			if ok and self.seen[s] ~= nil and self.seen[s] ~= text then
				self:_emit("socket_updated", json.object { id = id, nsp = nsp.name, data = data })
			end
			if ok then self.seen[s] = text end
		end
	end
end

---------------------------------------------------------------------------
-- hooks (called from init.lua, namespace.lua, socket.lua, adapter.lua, engine.lua)

-- a new Engine.IO session
function Admin:session(session)
	self:_push("rawConnection", nil, 1)
	session:on("close", function(reason) self:_push("rawDisconnection", reason, 1) end)
end

-- engine traffic: packets and bytes, "in" or "out"
function Admin:traffic(dir, packets, bytes)
	if dir == "in" then
		self:_push("packetsIn", nil, packets)
		self:_push("bytesIn", nil, bytes)
	else
		self:_push("packetsOut", nil, packets)
		self:_push("bytesOut", nil, bytes)
	end
end

-- a socket connected (after it joined its own room, before the
-- namespace's connection handlers)
function Admin:connected(socket)
	if not self.dev then return end
	local session = socket.client.session
	if type(socket.data) ~= "table" then socket.data = {} end
	socket.data._admin = { clientId = session.id:sub(1, 12), transport = session.transport }
	local nsp = socket.nsp
	-- instrument() copies data set before the connection (in a middleware)
	-- into its Proxy, which reports each key as an update: the same here
	for k in pairs(socket.data) do
		if k ~= "_admin" then
			self:_emit("socket_updated", json.object { id = socket.id, nsp = nsp.name, data = serialize_data(socket.data) })
		end
	end
	self:_emit("socket_connected", serialize(socket, nsp.name, rooms_of(socket)), iso_date(now_ms()))
	local ok, text = pcall(json.encode, serialize_data(socket.data))   -- data may hold text JSON refuses
	if ok then self.seen[socket] = text end
	session:on("upgrade", function(transport)
		if not socket.connected then return end
		if type(socket.data) == "table" and type(socket.data._admin) == "table" then
			socket.data._admin.transport = transport
		end
		self:_emit("socket_updated", json.object { id = socket.id, nsp = nsp.name, transport = transport })
	end)
	if nsp ~= self.nsp then
		socket:on_any(function(...)
			if self:_idle() then return end
			self:_emit("event_received", nsp.name, socket.id, event_array(table.pack(...)), iso_date(now_ms()))
		end)
		socket:on_any_outgoing(function(...)
			if self:_idle() then return end
			self:_emit("event_sent", nsp.name, socket.id, event_array(table.pack(...)), iso_date(now_ms()))
		end)
	end
end

function Admin:disconnected(socket, reason)
	if not self.dev then return end
	self.seen[socket] = nil
	if self:_idle() then return end
	self:_emit("socket_disconnected", socket.nsp.name, socket.id, reason, iso_date(now_ms()))
end

function Admin:joined(nsp, room, id)
	if not self.dev or self:_idle() then return end
	self:_emit("room_joined", nsp.name, room, id, iso_date(now_ms()))
end

-- instrument() defers room_left a tick (process.nextTick), so that a
-- disconnection's socket_disconnected comes before the rooms it left
function Admin:left(nsp, room, id)
	if not self.dev or self:_idle() then return end
	local q = self.left_queue
	q[#q + 1] = { nsp.name, room, id, iso_date(now_ms()) }
	if not self.left_timer then
		self.left_timer = core.timer(0, 0, function()
			self.left_timer = nil
			local list = self.left_queue
			self.left_queue = {}
			for _, e in ipairs(list) do self:_emit("room_left", e[1], e[2], e[3], e[4]) end
		end)
	end
end

function Admin:close()
	if self.timer then self.timer:stop(); self.timer = nil end
	if self.left_timer then self.left_timer:stop(); self.left_timer = nil end
end

---------------------------------------------------------------------------
-- the admin socket: authentication, config, all_sockets, commands

local function is_bcrypt(h)
	return type(h) == "string" and h:match("^%$2[abxy]%$%d%d%$[./A-Za-z0-9]+$") ~= nil and #h == 60
end

function Admin:_authenticate(socket, next_fn)
	local auth = socket.handshake.auth or {}
	local basic = self.auth
	local sid = auth.sessionId
	if type(sid) == "string" and self.sessions[sid] then return next_fn() end
	if type(auth.username) == "string" and auth.username == basic.username and type(auth.password) == "string"
		and core.crypt_check(auth.password, basic.password) then
		local new_id = engine.generate_id()
		self.sessions[new_id] = true
		socket:emit("session", new_id)
		return next_fn()
	end
	next_fn("invalid credentials")
end

-- the operator a command names: the namespace, and a room when filter is one
local function target(io, nsp, filter)
	if type(nsp) ~= "string" or nsp == "" then return nil end
	local n = io:of(nsp)
	if type(filter) == "string" or math.type(filter) == "integer" then return n:in_(filter) end
	return n
end

local function is_room(r) return type(r) == "string" or math.type(r) == "integer" end

function Admin:_commands(socket)
	local io = self.io
	socket:on("emit", function(nsp, filter, ev, ...)
		local op = target(io, nsp, filter)
		if not op or type(ev) ~= "string" or common.RESERVED[ev] then return end
		local args = table.pack(...)
		if args.n > 0 and type(args[args.n]) == "function" then args.n = args.n - 1 end
		op:emit(ev, table.unpack(args, 1, args.n))
	end)
	socket:on("join", function(nsp, room, filter)
		local op = target(io, nsp, filter)
		if op and is_room(room) then op:sockets_join(room) end
	end)
	socket:on("leave", function(nsp, room, filter)
		local op = target(io, nsp, filter)
		if op and is_room(room) then op:sockets_leave(room) end
	end)
	socket:on("_disconnect", function(nsp, close, filter)
		local op = target(io, nsp, filter)
		if op then op:disconnect_sockets(close == true) end
	end)
end

-- all_sockets: every namespace's sockets on every node (fetch_sockets)
function Admin:_all_sockets(socket)
	local io = self.io
	local names = {}
	for name in pairs(io._nsps) do names[#names + 1] = name end
	table.sort(names)
	local results, pending = {}, #names
	local function done()
		local all = json.array {}
		for _, name in ipairs(names) do
			for _, s in ipairs(results[name] or {}) do all[#all + 1] = s end
		end
		if socket.connected then socket:emit("all_sockets", all) end
	end
	for _, name in ipairs(names) do
		io._nsps[name]:fetch_sockets(function(_, list)
			local out = {}
			for i, r in ipairs(list or {}) do
				out[i] = serialize(r, name, r.socket and rooms_of(r.socket) or r.rooms)
			end
			results[name] = out
			pending = pending - 1
			if pending == 0 then done() end
		end)
	end
end

function Admin:_on_admin_connection(socket)
	if not self.readonly then self:_commands(socket) end
	socket:emit("config", json.object { supportedFeatures = self.features })
	if self.dev then self:_all_sockets(socket) end
end

---------------------------------------------------------------------------
-- instrument(io, opts)

-- instrument()'s defaults (mode: its default when NODE_ENV is not set;
-- server_id: the host name)
M.defaults = { mode = "development", namespace_name = "/admin", readonly = false }

local option_types = {
	auth = function(v)
		if v == false then return nil end
		if type(v) ~= "table" then return "false or { type = \"basic\", username, password }" end
		if v.type ~= "basic" then return "false or a table with type = \"basic\"" end
		if type(v.username) ~= "string" then return "a table whose username is a string" end
		if not is_bcrypt(v.password) then return "a table whose password is a bcrypt hash ($2b$...)" end
		return nil
	end,
	mode = function(v)
		if v == "development" or v == "production" then return nil end
		return '"development" or "production"'
	end,
	namespace_name = "string", server_id = "string", readonly = "boolean",
}

--- instrument(io, opts, level): what sio:instrument(opts) does (level:
-- where option errors point, counted from here)
function M.instrument(io, opts, level)
	opts = options.check(options.table_arg(opts, "instrument", 1, level), option_types, level)
	if opts.auth == nil then
		error("option 'auth' must be given: false, or { type = \"basic\", username, password }", level)
	end
	if io._admin then error("instrument: this server is already instrumented", level) end
	local name = opts.namespace_name or M.defaults.namespace_name
	if name:sub(1, 1) ~= "/" then name = "/" .. name end
	local features = json.array {}
	if not opts.readonly then
		for _, f in ipairs { "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT" } do
			features[#features + 1] = f
		end
	end
	features[#features + 1] = "AGGREGATED_EVENTS"
	local dev = (opts.mode or M.defaults.mode) == "development"
	if dev then features[#features + 1] = "ALL_EVENTS" end
	local host = hostname()
	local a = setmetatable({
		io = io, dev = dev, readonly = opts.readonly == true, features = features,
		auth = opts.auth, sessions = {}, server_id = opts.server_id or host, hostname = host, pid = pid(),
		buffer = {}, order = {}, left_queue = {}, seen = setmetatable({}, { __mode = "k" }),
	}, Admin)
	local nsp = io:of(name)
	a.nsp = nsp
	-- the in-memory adapter reaches this process only (not a bus, not Redis)
	a.alone = getmetatable(nsp.adapter) == adapter.Adapter
	if opts.auth then nsp:use(function(socket, next_fn) return a:_authenticate(socket, next_fn) end) end
	nsp:on("connection", function(socket) a:_on_admin_connection(socket) end)
	io._admin = a
	io.srv:on("close", function() a:close() end)
	io.engine.on_traffic = function(dir, packets, bytes) a:traffic(dir, packets, bytes) end
	a.timer = core.timer(2000, 2000, function() call(a._stats, a) end)
	a.timer:unref()   -- as instrument()'s interval: it does not keep run() going
	a:_stats()
	return a
end

return M
