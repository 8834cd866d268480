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
]]
local core = require "lws.core"
local emitter = require "lws.emitter"
local options = require "lws.options"
local json = require "lws.json"
local parser = require "lws.socketio.parser"
local engine = require "lws.socketio.engine"

local M = {}
M.json = json
M.binary = parser.binary
M.is_binary = parser.is_binary
M.parser = parser
M.engine = engine

local call = engine.call
local null = json.null
local pack = table.pack
local P = parser

local function fire(obj, event, ...)
	return call(emitter.emit, obj, event, ...)
end

local function check_callable(fn)
	if type(fn) == "function" then return true end
	local mt = getmetatable(fn)
	return type(mt) == "table" and mt.__call ~= nil
end

-- the args of an event: (name, ...) -> { n = , name, ... } and the ack
-- function when the last argument is one
local function event_args(name, ...)
	local args = pack(name, ...)
	local ack
	if args.n > 1 and type(args[args.n]) == "function" then
		ack = args[args.n]
		args[args.n] = nil
		args.n = args.n - 1
	end
	return args, ack
end

-- decoded args: top-level nulls become nil
local function lua_args(arr, from)
	local n = #arr
	local out = { n = n - from + 1 }
	for i = from, n do
		local v = arr[i]
		if v ~= null then out[i - from + 1] = v end
	end
	return out
end

local function set_of(x)
	local s = {}
	if type(x) == "table" then
		for _, v in ipairs(x) do s[v] = true end
	elseif x ~= nil then
		s[x] = true
	end
	return s
end

local function copy_set(s)
	local c = {}
	for k in pairs(s) do c[k] = true end
	return c
end

local RESERVED = {
	connect = true, connect_error = true, disconnect = true, disconnecting = true,
	newListener = true, removeListener = true,
}

local RECOVERABLE = {
	["transport error"] = true, ["transport close"] = true, ["forced close"] = true,
	["ping timeout"] = true, ["server shutting down"] = true, ["forced server close"] = true,
}

---------------------------------------------------------------------------
-- Adapter: rooms of one namespace (in memory), session recovery

local Adapter = {}
Adapter.__index = Adapter

local function new_adapter(nsp)
	return setmetatable({ nsp = nsp, rooms = {}, sids = {},
		-- connection state recovery
		sessions = {}, packets = {}, first = 1, last = 0, index = {} }, Adapter)
end

function Adapter:add_all(id, rooms)
	local mine = self.sids[id]
	if not mine then mine = {}; self.sids[id] = mine end
	for room in pairs(rooms) do
		mine[room] = true
		local r = self.rooms[room]
		if not r then r = {}; self.rooms[room] = r end
		r[id] = true
	end
end

function Adapter:del(id, room)
	local mine = self.sids[id]
	if mine then mine[room] = nil end
	local r = self.rooms[room]
	if r then
		r[id] = nil
		if next(r) == nil then self.rooms[room] = nil end
	end
end

function Adapter:del_all(id)
	local mine = self.sids[id]
	if not mine then return end
	for room in pairs(mine) do
		local r = self.rooms[room]
		if r then
			r[id] = nil
			if next(r) == nil then self.rooms[room] = nil end
		end
	end
	self.sids[id] = nil
end

-- apply(opts, fn): fn(socket) for every connected socket in opts.rooms
-- (all when empty) and in no room of opts.except
function Adapter:apply(opts, fn)
	local except
	if opts.except and next(opts.except) then
		except = {}
		for room in pairs(opts.except) do
			local r = self.rooms[room]
			if r then for id in pairs(r) do except[id] = true end end
		end
	end
	local sockets = self.nsp.sockets
	if opts.rooms and next(opts.rooms) then
		local seen = {}
		for room in pairs(opts.rooms) do
			local r = self.rooms[room]
			if r then
				for id in pairs(r) do
					if not seen[id] and not (except and except[id]) then
						seen[id] = true
						local s = sockets[id]
						if s then fn(s) end
					end
				end
			end
		end
	else
		for id in pairs(self.sids) do
			if not (except and except[id]) then
				local s = sockets[id]
				if s then fn(s) end
			end
		end
	end
end

local offset_counter = 0
local offset_prefix   -- made on first use: after a fork into workers

function Adapter:_expire(now)
	local max = self.nsp.server.recovery.max_disconnection_duration
	local threshold = now - max
	while self.first <= self.last and self.packets[self.first].at < threshold do
		local p = self.packets[self.first]
		self.index[p.id] = nil
		self.packets[self.first] = nil
		self.first = self.first + 1
	end
	for pid, s in pairs(self.sessions) do
		if s.disconnected_at < threshold then self.sessions[pid] = nil end
	end
end

-- broadcast(args, opts): args = { n, name, ... } of an EVENT
function Adapter:broadcast(args, opts, ack_id)
	local server = self.nsp.server
	local cluster = server.cluster
	if cluster and not (opts.flags and opts.flags["local"]) then cluster.relay_emit(self.nsp, args, opts) end
	if server.recovery and ack_id == nil and not (opts.flags and opts.flags.volatile) then
		offset_counter = offset_counter + 1
		offset_prefix = offset_prefix or engine.generate_id():sub(1, 6)
		local id = offset_prefix .. string.format("%x", offset_counter)
		args.n = args.n + 1
		args[args.n] = id
		local now = core.now()
		self:_expire(now)
		self.last = self.last + 1
		self.packets[self.last] = { id = id, opts = opts, args = args, at = now }
		self.index[id] = self.last
	end
	local text, atts = P.encode(P.EVENT, self.nsp.name, ack_id, args, true)
	local abin
	if atts then
		abin = {}
		for i, a in ipairs(atts) do abin[i] = { bin = a } end
	end
	local targets = {}
	self:apply(opts, function(s)
		targets[#targets + 1] = s.client.session
		if s._any_out then s:_notify_outgoing(args) end
	end)
	engine.Engine.broadcast(targets, text, abin, opts.flags and opts.flags.volatile)
	return #targets
end

function Adapter:persist_session(session)
	session.disconnected_at = core.now()
	self:_expire(session.disconnected_at)
	self.sessions[session.pid] = session
end

function Adapter:restore_session(pid, offset)
	local now = core.now()
	self:_expire(now)
	local session = self.sessions[pid]
	if not session then return nil end
	local at = self.index[offset]
	if not at then return nil end
	self.sessions[pid] = nil
	local missed = {}
	local rooms = session.rooms
	for i = at + 1, self.last do
		local p = self.packets[i]
		local included = not next(p.opts.rooms)
		if not included then
			for _, room in ipairs(rooms) do
				if p.opts.rooms[room] then included = true break end
			end
		end
		if included and p.opts.except then
			for _, room in ipairs(rooms) do
				if p.opts.except[room] then included = false break end
			end
		end
		if included then missed[#missed + 1] = p.args end
	end
	session.missed = missed
	return session
end

---------------------------------------------------------------------------
-- BroadcastOperator: io:to(room):except(other):emit(...)

local Operator = {}
Operator.__name = "lws.socketio.broadcast"

local function new_operator(adapter, rooms, except, flags)
	return setmetatable({ adapter = adapter, _rooms = rooms or {}, _except = except or {},
		_flags = flags or {} }, Operator)
end

Operator.__index = function(op, k)
	if k == "volatile" or k == "local" or k == "local_" then
		local f = {}
		for fk, fv in pairs(op._flags) do f[fk] = fv end
		f[k == "volatile" and "volatile" or "local"] = true
		return new_operator(op.adapter, op._rooms, op._except, f)
	end
	return Operator[k]
end

local function add_rooms(set, room)
	local s = copy_set(set)
	if type(room) == "table" then
		for _, r in ipairs(room) do s[r] = true end
	else
		s[room] = true
	end
	return s
end

function Operator:to(room)
	return new_operator(self.adapter, add_rooms(self._rooms, room), self._except, self._flags)
end
Operator["in"] = Operator.to
Operator.in_ = Operator.to

function Operator:except(room)
	return new_operator(self.adapter, self._rooms, add_rooms(self._except, room), self._flags)
end

function Operator:timeout(ms)
	local f = {}
	for k, v in pairs(self._flags) do f[k] = v end
	f.timeout = ms
	return new_operator(self.adapter, self._rooms, self._except, f)
end

function Operator:compress() return self end

local function check_event(name, level)
	if type(name) ~= "string" then
		error("bad argument #1 to 'emit' (event name expected, got " .. type(name) .. ")", level + 1)
	end
	if RESERVED[name] then error('"' .. name .. '" is a reserved event name', level + 1) end
end

--- emit(event, ...[, ack(err, responses)]) -> true
function Operator:emit(name, ...)
	check_event(name, 2)
	local args, ack = event_args(name, ...)
	local opts = { rooms = self._rooms, except = self._except, flags = self._flags }
	if not ack then
		self.adapter:broadcast(args, opts)
		return true
	end
	local ms = self._flags.timeout
	if not ms then error("an acknowledgement of a broadcast needs :timeout(ms) first", 2) end
	local nsp = self.adapter.nsp
	local id = nsp._ids
	nsp._ids = id + 1
	local responses, expected, done = json.array {}, 0, false
	local timer
	local sockets = {}
	local function finish(err)
		if done then return end
		done = true
		if timer then timer:stop() end
		for s in pairs(sockets) do s.acks[id] = nil end
		call(ack, err, responses)
	end
	self.adapter:apply(opts, function(s)
		expected = expected + 1
		sockets[s] = true
		s.acks[id] = function(first)
			sockets[s] = nil
			responses[#responses + 1] = first == nil and null or first
			if #responses == expected then finish(nil) end
		end
	end)
	local text, atts = P.encode(P.EVENT, nsp.name, id, args, true)
	local targets = {}
	for s in pairs(sockets) do targets[#targets + 1] = s.client.session end
	local abin
	if atts then
		abin = {}
		for i, a in ipairs(atts) do abin[i] = { bin = a } end
	end
	engine.Engine.broadcast(targets, text, abin, self._flags.volatile)
	if expected == 0 then
		finish(nil)
	else
		timer = core.timer(ms, 0, function() timer = nil; finish("operation has timed out") end)
	end
	return true
end
Operator.send = function(self, ...) return self:emit("message", ...) end

--- sockets() -> array of the matching sockets (fetchSockets)
function Operator:sockets()
	local list = {}
	self.adapter:apply({ rooms = self._rooms, except = self._except }, function(s) list[#list + 1] = s end)
	return list
end
Operator.fetch_sockets = Operator.sockets

-- room operations reach the other nodes too (unless local)
local function relay_op(op, name, room, close)
	local cluster = op.adapter.nsp.server.cluster
	if cluster and not op._flags["local"] then
		cluster.relay_op(op.adapter.nsp, name, op._rooms, op._except, room, close)
	end
end

function Operator:sockets_join(room)
	relay_op(self, "join", room)
	for _, s in ipairs(self:sockets()) do s:join(room) end
end
function Operator:sockets_leave(room)
	relay_op(self, "leave", room)
	for _, s in ipairs(self:sockets()) do s:leave(room) end
end
function Operator:disconnect_sockets(close)
	relay_op(self, "disconnect", nil, close)
	for _, s in ipairs(self:sockets()) do s:disconnect(close) end
end

---------------------------------------------------------------------------
-- Socket: one client in one namespace

local Socket = {}
Socket.__name = "lws.socketio.socket"
M.Socket = Socket
Socket.on, Socket.once, Socket.off, Socket.listener_count =
	emitter.on, emitter.once, emitter.off, emitter.listener_count

Socket.__index = function(s, k)
	if k == "broadcast" then
		return new_operator(s.nsp.adapter, {}, { [s.id] = true }, s:_take_flags())
	elseif k == "rooms" then
		return copy_set(s.nsp.adapter.sids[s.id] or {})
	elseif k == "volatile" then
		s._flags = s._flags or {}
		s._flags.volatile = true
		return s
	elseif k == "disconnected" then
		return not s.connected
	end
	return Socket[k]
end

function Socket.__tostring(s)
	return ("lws.socketio.socket (%s%s, %s)"):format(s.nsp.name ~= "/" and s.nsp.name .. " " or "",
		s.id, s.connected and "connected" or "disconnected")
end

function Socket:_take_flags()
	local f = self._flags or {}
	self._flags = nil
	return f
end

local function new_socket(nsp, client, auth, previous)
	local session = client.session
	local req = session.request
	local s = setmetatable({
		nsp = nsp, client = client, server = nsp.server, conn = session,
		connected = false, recovered = false, data = {}, acks = {},
		request = req,
	}, Socket)
	if previous then
		s.id, s.pid, s.data = previous.sid, previous.pid, previous.data or {}
		s.recovered, s._previous = true, previous
	else
		if session.protocol == 3 then
			s.id = nsp.name ~= "/" and nsp.name .. "#" .. session.id or session.id
		else
			s.id = engine.generate_id()   -- never the Engine.IO id: that one is a secret
		end
		if nsp.server.recovery then s.pid = engine.generate_id() end
	end
	s.handshake = {
		headers = req.headers, query = req.query, auth = auth, address = req.remote_address,
		url = req.url, time = os.date("!%a, %d %b %Y %H:%M:%S GMT"),
		issued = math.floor(os.time() * 1000), xdomain = req.headers.origin ~= nil,
		secure = false,
	}
	return s
end

-- the packet to this client in this namespace
function Socket:_packet(ptype, data, id, is_args, volatile)
	local client = self.client
	local session = client.session
	if session.state ~= "open" then return end
	if volatile and not session:writable() then return end
	local text, atts = P.encode(ptype, self.nsp.name, id, data, is_args)
	session:send("4" .. text)
	if atts then
		for _, a in ipairs(atts) do session:send({ bin = a }) end
	end
end

--- emit(event, ...[, ack]) -> true (raises on reserved names)
function Socket:emit(name, ...)
	check_event(name, 2)
	local args, ack = event_args(name, ...)
	local flags = self:_take_flags()
	local id
	if ack then
		-- one counter per namespace, shared with broadcasts that want acks
		id = self.nsp._ids
		self.nsp._ids = id + 1
		self:_register_ack(id, ack, flags.timeout)
	end
	if self.server.recovery and not id then
		self.nsp.adapter:broadcast(args, { rooms = { [self.id] = true }, except = {}, flags = flags })
	else
		if self._any_out then self:_notify_outgoing(args) end
		self:_packet(P.EVENT, args, id, true, flags.volatile)
	end
	return true
end

--- send(...): emit("message", ...)
function Socket:send(...) return self:emit("message", ...) end

--- timeout(ms): the next emit's ack gets (err, ...) and err =
-- "operation has timed out" when no answer came in time
function Socket:timeout(ms)
	if type(ms) ~= "number" or ms < 0 then error("bad argument #1 to 'timeout' (milliseconds expected)", 2) end
	self._flags = self._flags or {}
	self._flags.timeout = ms
	return self
end

function Socket:_register_ack(id, ack, ms)
	if not ms then
		self.acks[id] = ack
		return
	end
	local timed = self._timed or {}
	self._timed = timed
	local timer = core.timer(ms, 0, function()
		self.acks[id] = nil
		timed[id] = nil
		call(ack, "operation has timed out")
	end)
	timed[id] = { timer = timer, ack = ack }
	self.acks[id] = function(...)
		timer:stop()
		timed[id] = nil
		return ack(nil, ...)
	end
end

function Socket:join(rooms)
	if self._gone then return self end
	self.nsp.adapter:add_all(self.id, set_of(rooms))
	return self
end

function Socket:leave(room)
	self.nsp.adapter:del(self.id, room)
	return self
end

function Socket:to(room)
	return new_operator(self.nsp.adapter, {}, { [self.id] = true }, self:_take_flags()):to(room)
end
Socket["in"] = Socket.to
Socket.in_ = Socket.to

function Socket:except(room)
	return new_operator(self.nsp.adapter, {}, { [self.id] = true }, self:_take_flags()):except(room)
end

function Socket:compress() return self end

--- use(fn(args, next)): per-packet middleware; args = { n, event, ... }
function Socket:use(fn)
	self._fns = self._fns or {}
	self._fns[#self._fns + 1] = fn
	return self
end

function Socket:on_any(fn)
	self._any = self._any or {}
	self._any[#self._any + 1] = fn
	return self
end
function Socket:off_any(fn)
	if not self._any then return self end
	if not fn then self._any = nil return self end
	for i = #self._any, 1, -1 do if self._any[i] == fn then table.remove(self._any, i) end end
	return self
end
function Socket:on_any_outgoing(fn)
	self._any_out = self._any_out or {}
	self._any_out[#self._any_out + 1] = fn
	return self
end
function Socket:_notify_outgoing(args)
	for _, fn in ipairs(self._any_out) do call(fn, table.unpack(args, 1, args.n)) end
end

--- disconnect([close]): leave this namespace (DISCONNECT to the client,
-- which then does not reconnect); close = true ends the whole session.
function Socket:disconnect(close)
	if not self.connected then return self end
	if close then
		self.client:_disconnect()
	else
		self:_packet(P.DISCONNECT)
		self:_onclose("server namespace disconnect")
	end
	return self
end

function Socket:_onconnect()
	self.connected = true
	self:join(self.id)
	if self.client.session.protocol == 3 then
		self:_packet(P.CONNECT)
	else
		self:_packet(P.CONNECT, json.object { sid = self.id, pid = self.pid })
	end
end

function Socket:_onpacket(p)
	local t = p.type
	if t == P.EVENT or t == P.BINARY_EVENT then
		self:_onevent(p)
	elseif t == P.ACK or t == P.BINARY_ACK then
		local id = tonumber(p.id)
		local ack = id and self.acks[id]
		if ack then
			self.acks[id] = nil
			local args = lua_args(p.data or json.array {}, 1)
			call(ack, table.unpack(args, 1, args.n))
		end
	elseif t == P.DISCONNECT then
		self:_onclose("client namespace disconnect")
	end
end

function Socket:_onevent(p)
	local data = p.data
	if not data then return end
	local name = data[1]
	if type(name) == "number" then name = tostring(name) end
	local args = lua_args(data, 2)
	if p.id then
		local sent = false
		local id = p.id
		args.n = args.n + 1
		args[args.n] = function(...)
			if sent or not self.connected then return end
			sent = true
			self:_packet(P.ACK, pack(...), id, true)
		end
	end
	if self._any then
		for _, fn in ipairs({ table.unpack(self._any) }) do call(fn, name, table.unpack(args, 1, args.n)) end
	end
	local function dispatch(err)
		if err then
			fire(self, "error", err)
			return
		end
		if self.connected then fire(self, name, table.unpack(args, 1, args.n)) end
	end
	local fns = self._fns
	if not fns then return dispatch() end
	local packet = { n = args.n + 1, name, table.unpack(args, 1, args.n) }
	local i = 0
	local function run(err)
		if err then return dispatch(err) end
		i = i + 1
		if not fns[i] then return dispatch() end
		local ok = call(fns[i], packet, run)
		if not ok then dispatch("middleware error") end
	end
	run()
end

function Socket:_onclose(reason, description)
	if not self.connected then return end
	fire(self, "disconnecting", reason, description)
	local server = self.server
	if server.recovery and RECOVERABLE[reason] then
		local rooms = {}
		for room in pairs(self.nsp.adapter.sids[self.id] or {}) do rooms[#rooms + 1] = room end
		self.nsp.adapter:persist_session({ sid = self.id, pid = self.pid, rooms = rooms, data = self.data })
	end
	self:_cleanup()
	self.client:_remove(self)
	self.connected = false
	if self._timed then
		local timed = self._timed
		self._timed = nil
		for id, t in pairs(timed) do
			t.timer:stop()
			self.acks[id] = nil
			call(t.ack, "socket has been disconnected")
		end
	end
	fire(self, "disconnect", reason, description)
	emitter.off(self)
end

function Socket:_cleanup()
	self._gone = true
	self.nsp.adapter:del_all(self.id)
	self.nsp.sockets[self.id] = nil
	self.nsp._pre[self.id] = nil
end

---------------------------------------------------------------------------
-- Namespace

local Namespace = {}
Namespace.__name = "lws.socketio.namespace"
Namespace.on, Namespace.once, Namespace.off, Namespace.listener_count =
	emitter.on, emitter.once, emitter.off, emitter.listener_count
Namespace.__index = function(nsp, k)
	if k == "volatile" then return new_operator(nsp.adapter, {}, {}, { volatile = true }) end
	if k == "local" or k == "local_" then return new_operator(nsp.adapter, {}, {}, { ["local"] = true }) end
	return Namespace[k]
end
M.Namespace = Namespace

function Namespace.__tostring(n) return "lws.socketio.namespace (" .. n.name .. ")" end

local function new_namespace(server, name)
	local nsp = setmetatable({ server = server, name = name, sockets = {}, _pre = {}, _fns = {},
		_ids = 0 }, Namespace)
	nsp.adapter = new_adapter(nsp)
	return nsp
end

--- use(fn(socket, next)): connection middleware; next(err) refuses with
-- a CONNECT_ERROR (err: a message, or { message =, data = })
function Namespace:use(fn)
	if not check_callable(fn) then error("bad argument #1 to 'use' (function expected)", 2) end
	self._fns[#self._fns + 1] = fn
	return self
end

function Namespace:to(room) return new_operator(self.adapter):to(room) end
Namespace["in"] = Namespace.to
Namespace.in_ = Namespace.to
function Namespace:except(room) return new_operator(self.adapter):except(room) end
-- an operator that never crosses to other nodes (what the cluster delivers)
function Namespace:_local_operator(rooms, except)
	return new_operator(self.adapter, rooms, except, { ["local"] = true })
end
function Namespace:timeout(ms) return new_operator(self.adapter):timeout(ms) end
function Namespace:emit(...)
	check_event((...), 2)
	return new_operator(self.adapter):emit(...)
end
function Namespace:send(...) return self:emit("message", ...) end
function Namespace:fetch_sockets() return new_operator(self.adapter):sockets() end
function Namespace:sockets_join(room) return new_operator(self.adapter):sockets_join(room) end
function Namespace:sockets_leave(room) return new_operator(self.adapter):sockets_leave(room) end
function Namespace:disconnect_sockets(close) return new_operator(self.adapter):disconnect_sockets(close) end
function Namespace:compress() return self end

--- socket_count() -> connected sockets in this namespace
function Namespace:socket_count()
	local n = 0
	for _ in pairs(self.sockets) do n = n + 1 end
	return n
end

local function connect_error(socket, err)
	local message, data
	if type(err) == "table" then
		message, data = err.message, err.data
	else
		message = tostring(err)
	end
	message = message or "unknown error"
	if socket.client.session.protocol == 3 then
		socket:_packet(P.CONNECT_ERROR, data ~= nil and data or message)
	else
		socket:_packet(P.CONNECT_ERROR, json.object { message = message, data = data })
	end
end

function Namespace:_add(client, auth)
	local server = self.server
	local socket
	local rec = server.recovery
	if rec and type(auth.pid) == "string" and type(auth.offset) == "string" then
		local previous = self.adapter:restore_session(auth.pid, auth.offset)
		if previous then socket = new_socket(self, client, auth, previous) end
	end
	socket = socket or new_socket(self, client, auth)
	self._pre[socket.id] = socket
	if rec and rec.skip_middlewares and socket.recovered then
		return self:_do_connect(socket)
	end
	local fns = { table.unpack(self._fns) }
	local i, settled = 0, false
	local function finish(err)
		if settled then return end
		settled = true
		if client.session.state ~= "open" then return socket:_cleanup() end
		if err ~= nil then
			socket:_cleanup()
			return connect_error(socket, err)
		end
		self:_do_connect(socket)
	end
	local function run(err)
		if settled then return end
		if err ~= nil then return finish(err) end
		i = i + 1
		local fn = fns[i]
		if not fn then return finish() end
		local done = false
		local ok = call(fn, socket, function(e)
			if done then return end
			done = true
			run(e)
		end)
		if not ok and not done then
			done = true
			finish({ message = "server error" })
		end
	end
	run()
end

function Namespace:_do_connect(socket)
	self._pre[socket.id] = nil
	self.sockets[socket.id] = socket
	socket.client:_add(socket)
	socket:_onconnect()
	if socket.recovered then
		-- rooms and missed packets of the previous connection
		local prev = socket._previous
		if prev then
			for _, room in ipairs(prev.rooms) do self.adapter:add_all(socket.id, { [room] = true }) end
			for _, args in ipairs(prev.missed) do socket:_packet(P.EVENT, args, nil, true) end
			socket._previous = nil
		end
	end
	fire(self, "connect", socket)
	fire(self, "connection", socket)
end

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
		local text = P.encode(P.CONNECT_ERROR, name, nil, json.object { message = "Invalid namespace" })
		self.session:send("4" .. text)
		return
	end
	nsp:_add(self, auth)
end

function Client:_ondata(data, is_binary)
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
	return { here .. "/client" .. (opts.client_version == "4" and "4" or "2") }
end

local function serve_client(server, opts, srv, path)
	local cache = {}
	local function serve(name)
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
		"socket.io.min.js.map", "socket.io.esm.min.js", "socket.io.esm.min.js.map" } do
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
}

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
	local o = {}
	for k, v in pairs(opts) do o[k] = v end
	o.connect_timeout = o.connect_timeout or 45000
	o.max_attachments = o.max_attachments or 10
	local io = setmetatable({ srv = srv, opts = o, _nsps = {} }, Server)
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
	io.engine.on_session = function(session) new_client(io, session) end
	io._nsps["/"] = new_namespace(io, "/")
	if o.bus then
		io.cluster = require("lws.socketio.cluster").attach(io, o.bus)
	end
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
		nsp = new_namespace(self, name)
		self._nsps[name] = nsp
	end
	return nsp
end

-- the default namespace's API on the server itself
for _, m in ipairs { "on", "once", "off", "listener_count", "use", "to", "in_", "except",
	"timeout", "emit", "send", "fetch_sockets", "sockets_join", "sockets_leave",
	"disconnect_sockets", "socket_count", "compress" } do
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
end

--- client_count() -> open Engine.IO sessions
function Server:client_count() return self.engine.count end

return setmetatable(M, { __call = function(_, srv, opts)
	local sio = M.new(srv, opts, 3)   -- not a tail call: errors point at the caller
	return sio
end })
