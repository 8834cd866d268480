--[[ lws.socketio.operator: the broadcast operator, io:to(room):except(other)
:emit(...), as Socket.IO's BroadcastOperator: it collects rooms, except
rooms and flags, and hands the operation to the namespace's adapter
(lws.socketio.adapter), which reaches the other nodes when it is a
cluster adapter.
]]
local core = require "lws.core"
local json = require "lws.json"
local common = require "lws.socketio.common"

local call, copy_set, check_event, event_args, check_callable =
	common.call, common.copy_set, common.check_event, common.event_args, common.check_callable

local Operator = {}
Operator.__name = "lws.socketio.broadcast"

local M = { Operator = Operator }

local function new_operator(adapter, rooms, except, flags)
	return setmetatable({ adapter = adapter, _rooms = rooms or {}, _except = except or {},
		_flags = flags or {} }, Operator)
end
M.new = new_operator

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

function Operator:_opts()
	return { rooms = self._rooms, except = self._except, flags = self._flags }
end

--- emit(event, ...[, ack(err, responses)]) -> true. With an ack (after
-- :timeout(ms)), every node counts its clients and forwards their answers;
-- ack runs once all came, or at the timeout with those that did.
function Operator:emit(name, ...)
	check_event(name, 2)
	local args, ack = event_args(name, ...)
	local opts = self:_opts()
	if not ack then
		self.adapter:broadcast(args, opts)
		return true
	end
	local ms = self._flags.timeout
	if not ms then error("an acknowledgement of a broadcast needs :timeout(ms) first", 2) end
	local adapter = self.adapter
	local nsp = adapter.nsp
	local responses, expected, servers, expected_servers = json.array {}, 0, 0, -1
	local done, id, timer = false, nil, nil
	local function finish(err)
		if done then return end
		done = true
		if timer then timer:stop() end
		if id then
			for _, s in pairs(nsp.sockets) do s.acks[id] = nil end
		end
		call(ack, err, responses)
	end
	local function check()
		if not done and servers == expected_servers and #responses == expected then finish(nil) end
	end
	timer = core.timer(ms, 0, function() timer = nil; finish("operation has timed out") end)
	id = adapter:broadcast_with_ack(args, opts, function(n)
		expected = expected + n
		servers = servers + 1
		check()
	end, function(first)
		if done then return end
		responses[#responses + 1] = first
		check()
	end)
	adapter:server_count(function(n)
		expected_servers = n
		check()
	end)
	return true
end
Operator.send = function(self, ...) return self:emit("message", ...) end

--- sockets() -> array of this node's matching sockets
function Operator:sockets()
	return self.adapter:_local_sockets(self:_opts())
end

-- A socket as fetch_sockets(fn) gives it, local or on another node
-- (Socket.IO's RemoteSocket): id, handshake, rooms (a list), data, and
-- socket (the lws.socketio.socket) when it is on this node; emit, join,
-- leave and disconnect reach it wherever it is.
local Remote = {}
Remote.__index = Remote
Remote.__name = "lws.socketio.remote_socket"
M.Remote = Remote

local function remote_socket(adapter, d)
	local r = setmetatable({ adapter = adapter }, Remote)
	if d.client then   -- an lws.socketio.socket of this node
		local rooms = json.array {}
		for room in pairs(adapter.sids[d.id] or {}) do rooms[#rooms + 1] = room end
		table.sort(rooms, function(a, b) return tostring(a) < tostring(b) end)
		r.id, r.handshake, r.rooms, r.data, r.socket = d.id, d.handshake, rooms, d.data, d
	else
		r.id, r.handshake, r.data = d.id, d.handshake, d.data
		r.rooms = type(d.rooms) == "table" and d.rooms or json.array {}
	end
	return r
end
M.remote_socket = remote_socket

function Remote:_op() return new_operator(self.adapter, { [self.id] = true }) end
function Remote:emit(...) return self:_op():emit(...) end
function Remote:timeout(ms) return self:_op():timeout(ms) end
function Remote:join(room) return self:_op():sockets_join(room) end
function Remote:leave(room) return self:_op():sockets_leave(room) end
function Remote:disconnect(close) return self:_op():disconnect_sockets(close) end
function Remote.__tostring(r)
	return ("lws.socketio.remote_socket (%s, %s)"):format(r.id, r.socket and "here" or "remote")
end

--- fetch_sockets([fn(err, sockets)]): with fn, the matching sockets of
-- every node, each a remote socket (above); err after the adapter's
-- request timeout, with those that answered. Without fn: this node's
-- lws.socketio.socket objects, returned at once.
function Operator:fetch_sockets(fn)
	if fn == nil then return self:sockets() end
	if not check_callable(fn) then error("bad argument #1 to 'fetch_sockets' (function expected)", 2) end
	local adapter = self.adapter
	adapter:fetch_sockets(self:_opts(), function(err, list)
		local out = json.array {}
		for i, d in ipairs(list or {}) do out[i] = remote_socket(adapter, d) end
		call(fn, err, out)
	end)
end

function Operator:sockets_join(room)
	self.adapter:add_sockets(self:_opts(), room)
end
function Operator:sockets_leave(room)
	self.adapter:del_sockets(self:_opts(), room)
end
function Operator:disconnect_sockets(close)
	self.adapter:disconnect_sockets(self:_opts(), close)
end

return M
