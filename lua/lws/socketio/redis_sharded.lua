--[[ lws.socketio.redis_sharded: the adapter of @socket.io/redis-adapter 8.x
createShardedAdapter (Redis 7 sharded pub/sub: SPUBLISH/SSUBSCRIBE), so a
Lua node joins a cluster of Node Socket.IO servers that use it. Made by

  lws.socketio.redis_adapter { host, port, key, sharded = true,
                               subscription_mode = "dynamic" }

and used as the classic one (fetch_sockets, server_side_emit, acks,
room operations): lws.socketio.redis_adapter owns the options, the
factory, the Redis client and what both protocols share.

Design criteria:
 - The wire is socket.io-adapter's ClusterAdapter (what the sharded
   adapter of 8.3 extends), read from its source: every message is
   {type, data, uid, nsp}, JSON, or notepack msgpack when it may carry
   binary and does (BROADCAST, BROADCAST_ACK, FETCH_SOCKETS_RESPONSE,
   SERVER_SIDE_EMIT(_RESPONSE)), keys in Node's order. Types: 1 INITIAL_HEARTBEAT,
   2 HEARTBEAT, 3 BROADCAST, 4 SOCKETS_JOIN, 5 SOCKETS_LEAVE,
   6 DISCONNECT_SOCKETS, 7 FETCH_SOCKETS, 8 FETCH_SOCKETS_RESPONSE,
   9 SERVER_SIDE_EMIT, 10 SERVER_SIDE_EMIT_RESPONSE,
   11 BROADCAST_CLIENT_COUNT, 12 BROADCAST_ACK, 13 ADAPTER_CLOSE.
   The sharded adapter sends neither heartbeats nor ADAPTER_CLOSE (it is
   not ClusterAdapterWithHeartbeat); those that come are ignored.
 - Channels, per namespace: <key>#<nsp># for everything, the answers to
   a node on <key>#<nsp>#<uid>#. subscription_mode "dynamic" (the
   default) also gives each public room (not a socket id) its channel
   <key>#<nsp>#<room>#, subscribed while the room exists here;
   "dynamic-private" every room, socket ids included; "static" none. A
   broadcast without acks to exactly one room goes on that room's
   channel (in "dynamic", unless the room looks like a socket id: 20
   UTF-16 units, as Node tests it), everything else on the main one.
 - The number of nodes is PUBSUB SHARDNUMSUB of the main channel (as
   Node); a request waits for that many answers less one and ends after
   request_timeout with an error and what came.
 - Each namespace's adapter has its own uid and drops its own messages.
   Room operations apply here at once (as Node does with its own).
 - all_rooms: the protocol has no such request; this node's rooms.
]]
local core = require "lws.core"
local json = require "lws.json"
local msgpack = require "lws.msgpack"
local parser = require "lws.socketio.parser"
local engine = require "lws.socketio.engine"
local adapter = require "lws.socketio.adapter"
local common = require "lws.socketio.common"
local classic = require "lws.socketio.redis_adapter"

local Base, Redis, Factory = adapter.Adapter, classic.Redis, classic.Factory
local null, list_of, call = json.null, common.list_of, common.call
local data_of, args_of, local_opts, wire_flags = classic.data_of, classic.args_of, classic.local_opts,
	classic.wire_flags
local report, count_nodes, room_list, is_local = classic.report, classic.count_nodes, classic.room_list,
	classic.is_local

local M = {}

local INITIAL_HEARTBEAT, HEARTBEAT, BROADCAST, SOCKETS_JOIN, SOCKETS_LEAVE, DISCONNECT_SOCKETS, FETCH_SOCKETS,
	FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT, SERVER_SIDE_EMIT_RESPONSE, BROADCAST_CLIENT_COUNT, BROADCAST_ACK,
	ADAPTER_CLOSE = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
M.types = {
	INITIAL_HEARTBEAT = INITIAL_HEARTBEAT, HEARTBEAT = HEARTBEAT, BROADCAST = BROADCAST,
	SOCKETS_JOIN = SOCKETS_JOIN, SOCKETS_LEAVE = SOCKETS_LEAVE, DISCONNECT_SOCKETS = DISCONNECT_SOCKETS,
	FETCH_SOCKETS = FETCH_SOCKETS, FETCH_SOCKETS_RESPONSE = FETCH_SOCKETS_RESPONSE,
	SERVER_SIDE_EMIT = SERVER_SIDE_EMIT, SERVER_SIDE_EMIT_RESPONSE = SERVER_SIDE_EMIT_RESPONSE,
	BROADCAST_CLIENT_COUNT = BROADCAST_CLIENT_COUNT, BROADCAST_ACK = BROADCAST_ACK, ADAPTER_CLOSE = ADAPTER_CLOSE,
}

-- map(keys, t): t written with its keys in that order by both codecs
-- (msgpack reads __keys, lws.json __tojson), so our bytes are Node's
local map
do
	local mts = {}
	map = function(keys, t)
		local mt = mts[keys]
		if not mt then
			mt = { __name = "msgpack.map", __keys = keys, __tojson = function(o)
				local parts = {}
				for _, k in ipairs(keys) do
					local v = o[k]
					if v ~= nil then parts[#parts + 1] = json.encode(k) .. ":" .. json.encode(v) end
				end
				return "{" .. table.concat(parts, ",") .. "}"
			end }
			mts[keys] = mt
		end
		return setmetatable(t, mt)
	end
end

-- the key orders Node writes
local MESSAGE_KEYS = { "type", "data", "uid", "nsp" }
local PACKET_KEYS = { "type", "data" }   -- Node sets packet.nsp after publishing
local OPTS_KEYS = { "rooms", "except", "flags" }
local BROADCAST_KEYS = { "packet", "requestId", "opts" }
local ROOMS_KEYS = { "opts", "rooms" }
local DISCONNECT_KEYS = { "opts", "close" }
local FETCH_KEYS = { "opts", "requestId" }
local FETCH_RESPONSE_KEYS = { "requestId", "sockets" }
local SSE_KEYS = { "requestId", "packet" }
local COUNT_KEYS = { "requestId", "clientCount" }

-- the types whose data may carry binary (Node's encode())
local MAY_BINARY = {
	[BROADCAST] = true, [BROADCAST_ACK] = true, [FETCH_SOCKETS_RESPONSE] = true, [SERVER_SIDE_EMIT] = true,
	[SERVER_SIDE_EMIT_RESPONSE] = true,
}

local function has_binary(v, depth)
	if type(v) ~= "table" then return false end
	if parser.is_binary(v) then return true end
	if depth > 1000 then return false end   -- json.encode refuses it anyway
	for _, x in pairs(v) do
		if has_binary(x, depth + 1) then return true end
	end
	return false
end

-- Node: notepack when it may and does carry binary, JSON otherwise
local function encode(message)
	if MAY_BINARY[message.type] and has_binary(message.data, 0) then return msgpack.encode(message) end
	return json.encode(message)
end

local function decode(msg)
	if msg:byte(1) == 0x7b then return json.try_decode(msg) end
	return msgpack.decode(msg)
end

local function wire_opts(opts)
	return map(OPTS_KEYS, { rooms = json.array(list_of(opts.rooms)), except = json.array(list_of(opts.except)),
		flags = wire_flags(opts.flags) })
end


-- Node's looksLikeASocketId: a string of 20 UTF-16 units
local function looks_like_socket_id(room)
	return type(room) == "string" and utf8.len(room) ~= nil and parser.utf16_len(room) == 20
end

-- Node's uids are 16 hex digits; any string will do
local function new_uid() return engine.generate_id():sub(1, 16) end

---------------------------------------------------------------------------
-- the adapter of one namespace

local Sharded = setmetatable({}, { __index = Redis })
Sharded.__index = Sharded
Sharded.__name = "lws.socketio.redis_sharded.nsp"
M.Sharded = Sharded


function Sharded:_publish(channel, payload)
	-- at most once, as Redis pub/sub itself: lost during an outage
	local ok, err, code = self.factory.redis:spublish(channel, payload)
	if not ok and code ~= "down" and code ~= "closed" then report(("spublish on %s: %s"):format(channel, err)) end
	return ok
end

-- a message of type t to the cluster (channel: the main one unless given)
function Sharded:_send(t, data, channel)
	local message = map(MESSAGE_KEYS, { type = t, data = data, uid = self.uid, nsp = self.nsp.name })
	return self:_publish(channel or self.channel, encode(message))
end

function Sharded:_respond_to(uid, t, data)
	if type(uid) ~= "string" then return end
	local message = map(MESSAGE_KEYS, { type = t, data = data, uid = self.uid, nsp = self.nsp.name })
	return self:_publish(self.channel .. uid .. "#", encode(message))
end

function Sharded:_dynamic_channel(room) return self.channel .. tostring(room) .. "#" end

-- Node's computeChannel for a broadcast without acks
function Sharded:_broadcast_channel(opts)
	local mode = self.factory.mode
	local only = next(opts.rooms or {})
	if only == nil or next(opts.rooms, only) ~= nil then return self.channel end
	if mode == "dynamic-private" or (mode == "dynamic" and not looks_like_socket_id(only)) then
		return self:_dynamic_channel(only)
	end
	return self.channel
end

local function packet_of(args)
	return map(PACKET_KEYS, { type = 2, data = data_of(args) })
end

function Sharded:broadcast(args, opts, ack_id)
	if not is_local(opts) then
		self:_send(BROADCAST, map(BROADCAST_KEYS, { packet = packet_of(args), opts = wire_opts(opts) }),
			self:_broadcast_channel(opts))
	end
	return Base.broadcast(self, args, opts, ack_id)
end

function Sharded:broadcast_with_ack(args, opts, on_count, on_ack)
	if not is_local(opts) then
		local id = new_uid()
		local entry = { on_count = on_count, on_ack = on_ack }
		self.ack_requests[id] = entry
		-- nothing says when every answer came: forget it after the timeout
		entry.timer = core.timer((opts.flags and opts.flags.timeout) or self.factory.timeout, 0,
			function() self.ack_requests[id] = nil end)
		self:_send(BROADCAST, map(BROADCAST_KEYS, { packet = packet_of(args), requestId = id,
			opts = wire_opts(opts) }))
	end
	return Base.broadcast_with_ack(self, args, opts, on_count, on_ack)
end

function Sharded:server_count(fn)
	count_nodes(self.factory.redis, "SHARDNUMSUB", self.channel, fn)
end

local function timeout_message(entry)
	return ("timeout reached: only %d responses received out of %d"):format(entry.current, entry.expected)
end

function Sharded:fetch_sockets(opts, fn)
	local here = self:_local_sockets(opts)
	if is_local(opts) then return fn(nil, here) end
	self:server_count(function(n)
		if n <= 1 then return fn(nil, here) end
		local id = new_uid()
		local entry = { type = FETCH_SOCKETS, expected = n - 1, current = 0, sockets = here }
		entry.finish = function(err)
			if err == true then err = timeout_message(entry) end
			fn(err, entry.sockets)
		end
		self:_wait(id, entry, true)
		self:_send(FETCH_SOCKETS, map(FETCH_KEYS, { opts = wire_opts(opts), requestId = id }))
	end)
end

--- all_rooms(fn(err, rooms)): this node's rooms (the cluster protocol has
-- no request for them)
function Sharded:all_rooms(fn)
	local rooms = {}
	for r in pairs(self.rooms) do rooms[r] = true end
	fn(nil, rooms)
end

function Sharded:add_sockets(opts, rooms)
	if not is_local(opts) then
		self:_send(SOCKETS_JOIN, map(ROOMS_KEYS, { opts = wire_opts(opts), rooms = room_list(rooms) }))
	end
	return Base.add_sockets(self, opts, rooms)
end

function Sharded:del_sockets(opts, rooms)
	if not is_local(opts) then
		self:_send(SOCKETS_LEAVE, map(ROOMS_KEYS, { opts = wire_opts(opts), rooms = room_list(rooms) }))
	end
	return Base.del_sockets(self, opts, rooms)
end

function Sharded:disconnect_sockets(opts, close)
	if not is_local(opts) then
		self:_send(DISCONNECT_SOCKETS, map(DISCONNECT_KEYS, { opts = wire_opts(opts), close = close == true }))
	end
	return Base.disconnect_sockets(self, opts, close)
end

function Sharded:server_side_emit(args, fn)
	local packet = data_of(args)
	if not fn then
		self:_send(SERVER_SIDE_EMIT, map(SSE_KEYS, { packet = packet }))
		return
	end
	self:server_count(function(n)
		n = n - 1   -- not this node
		if n <= 0 then return call(fn, nil, json.array {}) end
		local id = new_uid()
		local entry = { type = SERVER_SIDE_EMIT, expected = n, current = 0, responses = json.array {} }
		entry.finish = function(err)
			if err == true then err = timeout_message(entry) end
			call(fn, err, entry.responses)
		end
		self:_wait(id, entry, true)
		self:_send(SERVER_SIDE_EMIT, map(SSE_KEYS, { requestId = id, packet = packet }))
	end)
end

---------------------------------------------------------------------------
-- dynamic subscriptions: a room's channel while the room exists here

-- Node's shouldUseASeparateNamespace, asked when the room appears
function Sharded:_separate(room)
	local mode = self.factory.mode
	return mode == "dynamic-private" or (mode == "dynamic" and not self.sids[room])
end

function Sharded:add_all(id, rooms)
	if self.factory.mode == "static" then return Base.add_all(self, id, rooms) end
	local new
	for room in pairs(rooms) do
		if not self.rooms[room] then new = new or {}; new[#new + 1] = room end
	end
	Base.add_all(self, id, rooms)
	local redis = self.factory.redis
	if not redis or self.closed then return end
	for _, room in ipairs(new or {}) do
		if self.rooms[room] and not self.dynamic[room] and self:_separate(room) then
			self.dynamic[room] = true
			redis:ssubscribe(self:_dynamic_channel(room), self.on_message)
		end
	end
end

function Sharded:_gone(room)
	if self.dynamic[room] and not self.rooms[room] then
		self.dynamic[room] = nil
		local redis = self.factory.redis
		if redis then redis:sunsubscribe(self:_dynamic_channel(room), self.on_message) end
	end
end

function Sharded:del(id, room)
	Base.del(self, id, room)
	self:_gone(room)
end

function Sharded:del_all(id)
	local mine = self.sids[id]
	if not mine then return end
	local rooms = {}
	for room in pairs(mine) do rooms[#rooms + 1] = room end
	Base.del_all(self, id)
	for _, room in ipairs(rooms) do self:_gone(room) end
end

---------------------------------------------------------------------------
-- what comes from the cluster

local function socket_list(self, opts)
	local list = json.array {}
	for _, s in ipairs(self:_local_sockets(opts)) do list[#list + 1] = classic.socket_details(s) end
	return list
end

local function is_event(packet)
	return type(packet) == "table" and type(packet[1]) == "string"
end

function Sharded:_on_message(msg, channel)
	local m, err = decode(msg)
	if type(m) ~= "table" then return report("dropped a malformed message: " .. tostring(err)) end
	if channel == self.response_channel then return self:_on_response(m) end
	return self:_handle(m)
end

-- a broadcast without acks from another node, to this node's sockets
-- (offset: its place in a Redis stream, lws.socketio.redis_streams)
function Sharded:_remote_broadcast(args, opts)
	return Base.broadcast(self, args, opts)
end

--- _handle(m[, offset]): a decoded ClusterAdapter message {type, data,
-- uid, nsp} from another node
function Sharded:_handle(m, offset)
	if m.uid == self.uid or m.nsp ~= self.nsp.name then return end
	local t, data = m.type, m.data
	if type(data) ~= "table" then data = {} end
	if t == BROADCAST then
		local packet = data.packet
		if type(packet) ~= "table" or not is_event(packet.data) then
			return report("dropped a broadcast that is not an event")
		end
		local id = data.requestId
		if id == nil then return self:_remote_broadcast(args_of(packet.data), local_opts(data.opts), offset) end
		self:_answer_broadcast_with_ack(args_of(packet.data), local_opts(data.opts), function(n)
			self:_respond_to(m.uid, BROADCAST_CLIENT_COUNT, map(COUNT_KEYS, { requestId = id, clientCount = n }))
		end, function(first)
			self:_respond_to(m.uid, BROADCAST_ACK, map(SSE_KEYS, { requestId = id, packet = first }))
		end)
	elseif t == SOCKETS_JOIN or t == SOCKETS_LEAVE then
		if type(data.rooms) ~= "table" then return end
		local rooms = {}
		for _, r in ipairs(data.rooms) do
			if type(r) == "string" or math.type(r) == "integer" then rooms[#rooms + 1] = r end
		end
		if t == SOCKETS_JOIN then Base.add_sockets(self, local_opts(data.opts), rooms)
		else Base.del_sockets(self, local_opts(data.opts), rooms) end
	elseif t == DISCONNECT_SOCKETS then
		Base.disconnect_sockets(self, local_opts(data.opts), data.close == true)
	elseif t == FETCH_SOCKETS then
		self:_respond_to(m.uid, FETCH_SOCKETS_RESPONSE, map(FETCH_RESPONSE_KEYS, {
			requestId = data.requestId, sockets = socket_list(self, local_opts(data.opts)) }))
	elseif t == SERVER_SIDE_EMIT then
		if not is_event(data.packet) then return end
		local id, ack = data.requestId, nil
		if id ~= nil then
			local called = false
			ack = function(reply)
				if called then return end
				called = true
				self:_respond_to(m.uid, SERVER_SIDE_EMIT_RESPONSE, map(SSE_KEYS, { requestId = id, packet = reply }))
			end
		end
		self.nsp:_on_server_side_emit(args_of(data.packet), ack)
	elseif t == FETCH_SOCKETS_RESPONSE or t == SERVER_SIDE_EMIT_RESPONSE or t == BROADCAST_CLIENT_COUNT
		or t == BROADCAST_ACK then
		self:_on_response(m)
	end
	-- INITIAL_HEARTBEAT, HEARTBEAT, ADAPTER_CLOSE: not sent by the sharded
	-- adapter (ClusterAdapter); nothing to do
end

function Sharded:_on_response(m)
	local data = m.data
	if type(data) ~= "table" or data.requestId == nil then return end
	local id, t = data.requestId, m.type
	local ack = self.ack_requests[id]
	if ack then
		if t == BROADCAST_CLIENT_COUNT and math.tointeger(data.clientCount) then
			ack.on_count(math.tointeger(data.clientCount))
		elseif t == BROADCAST_ACK then
			local p = data.packet
			if p == nil then p = null end
			ack.on_ack(p)
		end
		return
	end
	local entry = self.requests[id]
	if not entry then return end
	if entry.type == FETCH_SOCKETS and t == FETCH_SOCKETS_RESPONSE then
		if type(data.sockets) ~= "table" then return end
		entry.current = entry.current + 1
		for _, s in ipairs(data.sockets) do
			if type(s) == "table" then entry.sockets[#entry.sockets + 1] = s end
		end
	elseif entry.type == SERVER_SIDE_EMIT and t == SERVER_SIDE_EMIT_RESPONSE then
		entry.current = entry.current + 1
		local p = data.packet
		if p == nil then p = null end
		entry.responses[#entry.responses + 1] = p
	else
		return
	end
	if entry.current == entry.expected then self:_done(id); entry.finish(nil) end
end

function Sharded:close()
	if self.closed then return end
	self.closed = true
	local redis = self.factory.redis
	if redis then
		redis:sunsubscribe(self.channel, self.on_message)
		redis:sunsubscribe(self.response_channel, self.on_message)
		for room in pairs(self.dynamic) do redis:sunsubscribe(self:_dynamic_channel(room), self.on_message) end
	end
	self.dynamic = {}
	self:_teardown()
end

---------------------------------------------------------------------------
-- the factory (lws.socketio.redis_adapter{ sharded = true, … } makes it)

-- shared with lws.socketio.redis_streams (the same ClusterAdapter messages)
M.map, M.has_binary, M.wire_opts, M.packet_of, M.new_uid, M.is_event = map, has_binary, wire_opts, packet_of,
	new_uid, is_event
M.MESSAGE_KEYS, M.BROADCAST_KEYS, M.MAY_BINARY = MESSAGE_KEYS, BROADCAST_KEYS, MAY_BINARY

local ShardedFactory = setmetatable({}, { __index = Factory })
ShardedFactory.__index = ShardedFactory
ShardedFactory.__name = "lws.socketio.redis_adapter"
M.Factory = ShardedFactory

function ShardedFactory:new(nsp)
	local a = self:_adapter(nsp, Sharded, new_uid())
	a.dynamic = {}
	a.channel = self.key .. "#" .. nsp.name .. "#"
	a.response_channel = a.channel .. a.uid .. "#"
	a.on_message = function(msg, channel) return a:_on_message(msg, channel) end
	self.redis:ssubscribe(a.channel, a.on_message)
	self.redis:ssubscribe(a.response_channel, a.on_message)
	return a
end

function ShardedFactory.__tostring(f)
	return ("lws.socketio.redis_adapter (%s:%d, key %q, sharded, %s)"):format(f.redis_opts.host or "127.0.0.1",
		f.redis_opts.port or 6379, f.key, f.mode)
end

return M
