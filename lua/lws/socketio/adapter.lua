--[[ lws.socketio.adapter: the rooms of one namespace and how a broadcast
reaches its sockets; the in-memory adapter (one process), which the
cluster adapters (lws.socketio.cluster over an lws.bus,
lws.socketio.redis_adapter) extend, as socket.io-adapter's Adapter is
extended by Node's Redis adapter.

The adapter interface (each namespace has one, made by the server's
adapter factory: factory(nsp) -> adapter):
  add_all(id, rooms) del(id, room) del_all(id)   room membership (local)
  rooms[room] = { [id] = true }, sids[id] = { [room] = true }  (local)
  apply(opts, fn)                    fn(socket) for the local matches
  broadcast(args, opts[, ack_id])    an EVENT to the matches, every node
  broadcast_with_ack(args, opts, on_count(n), on_ack(first)) -> packet id
                                     each node calls on_count once with
                                     its number of clients, on_ack per ack
  server_count(fn(n))                nodes in the cluster, this one included
  fetch_sockets(opts, fn(err, list)) sockets of every node (remote ones are
                                     plain tables: id, handshake, rooms, data)
  add_sockets(opts, rooms) del_sockets(opts, rooms)
  disconnect_sockets(opts, close)    room operations on every node
  server_side_emit(args[, fn(err, replies)])  to the other nodes' namespace
  persist_session(s) restore_session(pid, offset, fn(session))   recovery
  close()
opts = { rooms = set, except = set, flags = { volatile, local, timeout } };
flags["local"] keeps an operation on this node. args = { n, name, ... }.
]]
local core = require "lws.core"
local engine = require "lws.socketio.engine"
local parser = require "lws.socketio.parser"
local json = require "lws.json"

local P = parser

local Adapter = {}
Adapter.__index = Adapter
Adapter.__name = "lws.socketio.adapter"

local M = { Adapter = Adapter }

--- new(nsp) -> the in-memory adapter of nsp (also the factory itself)
function M.new(nsp)
	return Adapter.init(setmetatable({}, Adapter), nsp)
end

-- the fields every adapter has; subclasses call it on their own object
function Adapter.init(self, nsp)
	self.nsp, self.rooms, self.sids = nsp, {}, {}
	-- connection state recovery
	self.sessions, self.packets, self.first, self.last, self.index = {}, {}, 1, 0, {}
	return self
end

-- sio:instrument's observer (lws.socketio.admin), told of each room
-- joined or left as socket.io-adapter's join-room / leave-room events
local function admin_of(self)
	local server = self.nsp.server
	return server and server._admin
end

function Adapter:add_all(id, rooms)
	local mine = self.sids[id]
	if not mine then mine = {}; self.sids[id] = mine end
	local admin = admin_of(self)
	for room in pairs(rooms) do
		mine[room] = true
		local r = self.rooms[room]
		if not r then r = {}; self.rooms[room] = r end
		local was = r[id]
		r[id] = true
		if admin and not was then admin:joined(self.nsp, room, id) end
	end
end

function Adapter:del(id, room)
	local mine = self.sids[id]
	if mine then mine[room] = nil end
	local r = self.rooms[room]
	if r then
		local was = r[id]
		r[id] = nil
		if next(r) == nil then self.rooms[room] = nil end
		local admin = was and admin_of(self)
		if admin then admin:left(self.nsp, room, id) end
	end
end

function Adapter:del_all(id)
	local mine = self.sids[id]
	if not mine then return end
	local admin = admin_of(self)
	for room in pairs(mine) do
		local r = self.rooms[room]
		if r then
			local was = r[id]
			r[id] = nil
			if next(r) == nil then self.rooms[room] = nil end
			if admin and was then admin:left(self.nsp, room, id) end
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

local function binaries(atts)
	if not atts then return nil end
	local abin = {}
	for i, a in ipairs(atts) do abin[i] = { bin = a } end
	return abin
end

--- broadcast(args, opts[, ack_id]) -> sockets reached here. The in-memory
-- adapter keeps the packet for connection state recovery (its offset the
-- last argument), then delivers locally; cluster adapters publish first,
-- then call it (or _deliver, when the offset comes from elsewhere).
function Adapter:broadcast(args, opts, ack_id)
	if self.nsp.server.recovery and ack_id == nil and not (opts.flags and opts.flags.volatile) then
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
	return self:_deliver(args, opts, ack_id)
end

--- _deliver(args, opts[, ack_id]) -> sockets reached: the EVENT to this
-- node's matches, nothing kept
function Adapter:_deliver(args, opts, ack_id)
	local server = self.nsp.server
	local text, atts = server.codec.encode(P.EVENT, self.nsp.name, ack_id, args, true)
	local targets = {}
	self:apply(opts, function(s)
		targets[#targets + 1] = s.client.session
		if s._any_out then s:_notify_outgoing(args) end
	end)
	engine.Engine.broadcast(targets, text, binaries(atts), opts.flags and opts.flags.volatile)
	return #targets
end

--- broadcast_with_ack(args, opts, on_count, on_ack) -> the packet id: the
-- local sockets get the EVENT with an ack id; on_count(n) once, at once;
-- on_ack(first argument or json.null) per answer
function Adapter:broadcast_with_ack(args, opts, on_count, on_ack)
	local nsp = self.nsp
	local id = nsp._ids
	nsp._ids = id + 1
	local targets = {}
	self:apply(opts, function(s)
		targets[#targets + 1] = s.client.session
		s.acks[id] = function(first)
			if first == nil then first = json.null end
			on_ack(first)
		end
		if s._any_out then s:_notify_outgoing(args) end
	end)
	local text, atts = nsp.server.codec.encode(P.EVENT, nsp.name, id, args, true)
	engine.Engine.broadcast(targets, text, binaries(atts), opts.flags and opts.flags.volatile)
	on_count(#targets)
	return id
end

function Adapter:server_count(fn) fn(1) end

-- the local matches as a list
function Adapter:_local_sockets(opts)
	local list = {}
	self:apply(opts, function(s) list[#list + 1] = s end)
	return list
end

function Adapter:fetch_sockets(opts, fn) fn(nil, self:_local_sockets(opts)) end

function Adapter:add_sockets(opts, rooms)
	for _, s in ipairs(self:_local_sockets(opts)) do s:join(rooms) end
end

function Adapter:del_sockets(opts, rooms)
	for _, s in ipairs(self:_local_sockets(opts)) do
		if type(rooms) == "table" then
			for _, r in ipairs(rooms) do s:leave(r) end
		else
			s:leave(rooms)
		end
	end
end

function Adapter:disconnect_sockets(opts, close)
	for _, s in ipairs(self:_local_sockets(opts)) do s:disconnect(close) end
end

-- one process: no other node answers
function Adapter:server_side_emit(_, fn)
	if fn then fn(nil, json.array {}) end
end

function Adapter:close() end

function Adapter:persist_session(session)
	session.disconnected_at = core.now()
	self:_expire(session.disconnected_at)
	self.sessions[session.pid] = session
end

--- restore_session(pid, offset, fn(session | nil)): the session pid left
-- (sid, pid, rooms, data) with missed = the args of each packet after
-- offset it should have had; fn may run before this returns (here it
-- does) or later (an adapter that asks Redis)
function Adapter:restore_session(pid, offset, fn)
	return fn(self:_restore(pid, offset))
end

function Adapter:_restore(pid, offset)
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

return M
