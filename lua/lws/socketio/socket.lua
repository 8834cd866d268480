--[[ lws.socketio.socket: one client in one namespace, as Socket.IO's
Socket: emit with acks and timeouts, rooms (kept by the namespace's
adapter), per-packet middleware, catch-all listeners, disconnect, and the
state a recovered connection takes over.
]]
local core = require "lws.core"
local emitter = require "lws.emitter"
local json = require "lws.json"
local parser = require "lws.socketio.parser"
local engine = require "lws.socketio.engine"
local common = require "lws.socketio.common"
local operator = require "lws.socketio.operator"

local P = parser
local call, fire, pack = common.call, common.fire, table.pack
local event_args, lua_args, set_of, copy_set, check_event =
	common.event_args, common.lua_args, common.set_of, common.copy_set, common.check_event
local new_operator = operator.new

local RECOVERABLE = {
	["transport error"] = true, ["transport close"] = true, ["forced close"] = true,
	["ping timeout"] = true, ["server shutting down"] = true, ["forced server close"] = true,
}

local Socket = {}
Socket.__name = "lws.socketio.socket"
local M = { Socket = Socket }
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

function M.new(nsp, client, auth, previous)
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
	local text, atts = self.server.codec.encode(ptype, self.nsp.name, id, data, is_args)
	if text then session:send("4" .. text) end
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
	if server._admin then server._admin:disconnected(self, reason) end   -- sio:instrument
	fire(self, "disconnect", reason, description)
	emitter.off(self)
end

function Socket:_cleanup()
	self._gone = true
	self.nsp.adapter:del_all(self.id)
	self.nsp.sockets[self.id] = nil
	self.nsp._pre[self.id] = nil
end

return M

