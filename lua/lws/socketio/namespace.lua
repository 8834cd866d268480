--[[ lws.socketio.namespace: one namespace of a Socket.IO server, as
Socket.IO's Namespace: its sockets, connection middleware, the broadcast
operators it starts, the events other nodes send with server_side_emit,
and the adapter (lws.socketio.adapter) that keeps its rooms.
]]
local emitter = require "lws.emitter"
local json = require "lws.json"
local parser = require "lws.socketio.parser"
local common = require "lws.socketio.common"
local operator = require "lws.socketio.operator"
local socket_mod = require "lws.socketio.socket"

local P = parser
local call, fire, check_callable, check_event, event_args =
	common.call, common.fire, common.check_callable, common.check_event, common.event_args
local new_operator, new_socket = operator.new, socket_mod.new

local Namespace = {}
Namespace.__name = "lws.socketio.namespace"
Namespace.on, Namespace.once, Namespace.off, Namespace.listener_count =
	emitter.on, emitter.once, emitter.off, emitter.listener_count
Namespace.__index = function(nsp, k)
	if k == "volatile" then return new_operator(nsp.adapter, {}, {}, { volatile = true }) end
	if k == "local" or k == "local_" then return new_operator(nsp.adapter, {}, {}, { ["local"] = true }) end
	return Namespace[k]
end
local M = { Namespace = Namespace }

function Namespace.__tostring(n) return "lws.socketio.namespace (" .. n.name .. ")" end

--- new(server, name, adapter_factory) -> the namespace
function M.new(server, name, adapter_factory)
	local nsp = setmetatable({ server = server, name = name, sockets = {}, _pre = {}, _fns = {},
		_ids = 0 }, Namespace)
	nsp.adapter = adapter_factory(nsp)
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
function Namespace:fetch_sockets(fn) return new_operator(self.adapter):fetch_sockets(fn) end
function Namespace:sockets_join(room) return new_operator(self.adapter):sockets_join(room) end
function Namespace:sockets_leave(room) return new_operator(self.adapter):sockets_leave(room) end
function Namespace:disconnect_sockets(close) return new_operator(self.adapter):disconnect_sockets(close) end
function Namespace:compress() return self end

--- server_side_emit(event, ...[, fn(err, replies)]): the event reaches
-- this namespace on every other node (nsp:on(event, fn(..., ack)) there);
-- with fn, one reply per other node (the first argument of its ack), or
-- err after the adapter's request timeout with the replies that came
function Namespace:server_side_emit(name, ...)
	check_event(name, 2, "server_side_emit")
	local args, fn = event_args(name, ...)
	self.adapter:server_side_emit(args, fn)
	return true
end

-- an event another node sent with server_side_emit; ack(reply) when it
-- wants an answer
function Namespace:_on_server_side_emit(args, ack)
	if ack then
		args.n = args.n + 1
		args[args.n] = ack
	end
	fire(self, table.unpack(args, 1, args.n))
end

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
	local rec = self.server.recovery
	if rec and type(auth.pid) == "string" and type(auth.offset) == "string" then
		-- the adapter may answer later (lws.socketio.redis_streams asks Redis)
		return self.adapter:restore_session(auth.pid, auth.offset, function(previous)
			if client.session.state ~= "open" then return end
			self:_admit(client, auth, previous)
		end)
	end
	return self:_admit(client, auth)
end

-- the socket of a CONNECT (previous: the session it takes over), through
-- the middlewares (unless recovered and skip_middlewares) to _do_connect
function Namespace:_admit(client, auth, previous)
	local rec = self.server.recovery
	local socket = new_socket(self, client, auth, previous)
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
	if self.server._admin then self.server._admin:connected(socket) end   -- sio:instrument
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

return M
