--[[ lws.socketio.redis_adapter: the adapter of @socket.io/redis-adapter 8.x
(classic pub/sub), so a Lua node joins a cluster of Node Socket.IO servers
on one Redis, and @socket.io/redis-emitter reaches its clients.

  local io = lws.socketio(server, {
    adapter = lws.socketio.redis_adapter { host = "127.0.0.1", port = 6379, key = "socket.io" },
  })
  io:fetch_sockets(function(err, sockets) end)           -- every node's
  io:server_side_emit("hello", 1, function(err, replies) end)
  io:on("hello", function(n, ack) ack("hi") end)          -- from other nodes

With sharded = true (and subscription_mode) the factory is that of
lws.socketio.redis_sharded (createShardedAdapter's protocol), which reuses
this file's adapter class, factory and helpers.

Design criteria:
 - The wire is Node's, byte for byte (read from the adapter's source):
   per namespace, broadcasts are published on <key>#<nsp># (on
   <key>#<nsp>#<room># for exactly one room) as notepack msgpack
   [uid, {type = 2, data, nsp}, {rooms, except, flags}], and every node
   PSUBSCRIBEs <key>#<nsp>#*; requests go on <key>-request#<nsp>#,
   answers on <key>-response#<nsp>#, both JSON except the broadcast with
   acks (type 7) and its per-client answers (type 9), which are msgpack.
   Request types: 0 sockets, 1 all rooms, 2/3 remote join/leave, 4 remote
   disconnect, 5 fetch sockets, 6 server-side emit (answers: the first ack
   argument), 7 broadcast with acks, 8 its client count per node.
 - The number of nodes is PUBSUB NUMSUB of the request channel; a request
   waits for that many answers (server_side_emit: one less) and ends after
   request_timeout (5 s, as Node) with an error and what came.
 - Each namespace's adapter has its own uid (6 characters) and drops its
   own broadcasts; the emitter's uid is "emitter". Room operations apply
   here at once and the echo of our own request is dropped (Node applies
   its own on the echo): io:sockets_join(r) then io:to(r):emit() reaches
   this node's sockets even while Redis is away.
 - One lws.redis client per redis_adapter{} (its command connection
   publishes, its subscription connection receives), opened by the first
   namespace and closed with the last one (io:close() closes them all).
   Redis outages are lws.redis's: at most once, resumed after reconnects.
 - Binary arguments travel as msgpack bin (lws.socketio.binary on this
   side, Buffer on Node's). Requests in JSON carry no binary, as in Node.
]]
local json = require "lws.json"
local msgpack = require "lws.msgpack"
local options = require "lws.options"
local core = require "lws.core"
local engine = require "lws.socketio.engine"
local adapter = require "lws.socketio.adapter"
local common = require "lws.socketio.common"

local Base = adapter.Adapter
local null = json.null
local map, list_of, set_of, call = msgpack.map, common.list_of, common.set_of, common.call

local SOCKETS, ALL_ROOMS, REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT, REMOTE_FETCH, SERVER_SIDE_EMIT,
	BROADCAST, BROADCAST_CLIENT_COUNT, BROADCAST_ACK = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9

local M = {}

-- the key order Node writes (so our bytes are its bytes)
local PACKET_KEYS = { "type", "data", "nsp" }
local OPTS_KEYS = { "rooms", "except", "flags" }
local REQUEST_KEYS = { "uid", "requestId", "type", "packet", "opts" }
local ACK_KEYS = { "type", "requestId", "packet" }

local function report(msg) core.report("socketio redis adapter: " .. msg) end

local function new_uid() return engine.generate_id():sub(1, 6) end

-- args { n, name, ... } -> the packet's data array (nil -> null)
local function data_of(args)
	local data = json.array {}
	for i = 1, args.n do
		local v = args[i]
		if v == nil then v = null end
		data[i] = v
	end
	return data
end

-- a decoded data array -> args (top-level nulls nil)
local function args_of(data)
	local n = #data
	local args = { n = n }
	for i = 1, n do
		local v = data[i]
		if v ~= null then args[i] = v end
	end
	return args
end

local function wire_flags(flags)
	local f = json.object {}
	for _, k in ipairs { "volatile", "compress", "timeout" } do
		if flags and flags[k] ~= nil then f[k] = flags[k] end
	end
	return f
end

local function wire_opts(opts)
	return json.object { rooms = json.array(list_of(opts.rooms)), except = json.array(list_of(opts.except)) }
end

-- decoded wire opts -> ours, always local (what arrives is never relayed)
local function local_opts(o, extra_flags)
	o = type(o) == "table" and o or {}
	local flags = { ["local"] = true }
	if type(o.flags) == "table" then
		flags.volatile = o.flags.volatile == true or nil
		flags.timeout = math.tointeger(o.flags.timeout) or nil
	end
	for k, v in pairs(extra_flags or {}) do flags[k] = v end
	local rooms = type(o.rooms) == "table" and o.rooms or {}
	local except = type(o.except) == "table" and o.except or {}
	return { rooms = set_of(rooms), except = set_of(except), flags = flags }
end

local function parse(msg)
	if msg:byte(1) == 0x7b then return json.try_decode(msg) end
	return msgpack.decode(msg)
end

---------------------------------------------------------------------------
-- the adapter of one namespace

local Redis = setmetatable({}, { __index = Base })
Redis.__index = Redis
Redis.__name = "lws.socketio.redis_adapter.nsp"

local function is_local(opts) return opts.flags and opts.flags["local"] end

function Redis:_publish(channel, payload)
	-- during an outage (lws.redis reports it) what is published is lost:
	-- at most once, as Redis pub/sub itself
	local ok, err, code = self.factory.redis:publish(channel, payload)
	if not ok and code ~= "down" and code ~= "closed" then report(("publish on %s: %s"):format(channel, err)) end
	return ok
end

function Redis:_request(t)
	return self:_publish(self.request_channel, json.encode(json.object(t)))
end

function Redis:_respond(payload)
	return self:_publish(self.response_channel, payload)
end

function Redis:broadcast(args, opts, ack_id)
	if not is_local(opts) then
		local msg = msgpack.encode(json.array {
			self.uid,
			map(PACKET_KEYS, { type = 2, data = data_of(args), nsp = self.nsp.name }),
			map(OPTS_KEYS, { rooms = json.array(list_of(opts.rooms)), except = json.array(list_of(opts.except)),
				flags = wire_flags(opts.flags) }),
		})
		local channel = self.channel
		local only = next(opts.rooms or {})
		if only ~= nil and next(opts.rooms, only) == nil then channel = channel .. tostring(only) .. "#" end
		self:_publish(channel, msg)
	end
	return Base.broadcast(self, args, opts, ack_id)
end

function Redis:broadcast_with_ack(args, opts, on_count, on_ack)
	if not is_local(opts) then
		local id = new_uid()
		self:_publish(self.request_channel, msgpack.encode(map(REQUEST_KEYS, {
			uid = self.uid, requestId = id, type = BROADCAST,
			packet = map(PACKET_KEYS, { type = 2, data = data_of(args), nsp = self.nsp.name }),
			opts = map(OPTS_KEYS, { rooms = json.array(list_of(opts.rooms)), except = json.array(list_of(opts.except)),
				flags = wire_flags(opts.flags) }),
		})))
		local entry = { on_count = on_count, on_ack = on_ack }
		self.ack_requests[id] = entry
		-- nothing says when every answer came: forget it after the timeout
		entry.timer = core.timer((opts.flags and opts.flags.timeout) or self.factory.timeout, 0, function()
			self.ack_requests[id] = nil
		end)
	end
	return Base.broadcast_with_ack(self, args, opts, on_count, on_ack)
end

-- fn(n): the nodes subscribed to channel (at least this one), by PUBSUB
-- how ("NUMSUB"; the sharded adapter's "SHARDNUMSUB")
local function count_nodes(redis, how, channel, fn)
	local ok = redis:command({ "PUBSUB", how, channel }, function(reply)
		local n = type(reply) == "table" and math.tointeger(reply[2]) or nil
		fn(n and n > 0 and n or 1)
	end)
	if not ok then fn(1) end
end

function Redis:server_count(fn)
	count_nodes(self.factory.redis, "NUMSUB", self.request_channel, fn)
end

-- a request that waits for answers: fn(err, result) once
function Redis:_wait(id, entry, what)
	self.requests[id] = entry
	entry.timer = core.timer(self.factory.timeout, 0, function()
		if self.requests[id] ~= entry then return end
		self.requests[id] = nil
		entry.finish(what)
	end)
end

function Redis:_done(id)
	local entry = self.requests[id]
	self.requests[id] = nil
	if entry and entry.timer then entry.timer:stop() end
end

function Redis:fetch_sockets(opts, fn)
	local here = self:_local_sockets(opts)
	if is_local(opts) then return fn(nil, here) end
	self:server_count(function(n)
		if n <= 1 then return fn(nil, here) end
		local id = new_uid()
		local entry = { type = REMOTE_FETCH, num_sub = n, count = 1, sockets = here }
		entry.finish = function(err) fn(err, entry.sockets) end
		self:_wait(id, entry, "timeout reached while waiting for fetchSockets response")
		self:_request { uid = self.uid, requestId = id, type = REMOTE_FETCH, opts = wire_opts(opts) }
	end)
end

--- all_rooms(fn(err, rooms)): every room of every node (as a set)
function Redis:all_rooms(fn)
	local rooms = {}
	for r in pairs(self.rooms) do rooms[r] = true end
	self:server_count(function(n)
		if n <= 1 then return fn(nil, rooms) end
		local id = new_uid()
		local entry = { type = ALL_ROOMS, num_sub = n, count = 1, rooms = rooms }
		entry.finish = function(err) fn(err, entry.rooms) end
		self:_wait(id, entry, "timeout reached while waiting for allRooms response")
		self:_request { uid = self.uid, requestId = id, type = ALL_ROOMS }
	end)
end

local function room_list(rooms)
	if type(rooms) == "table" then return json.array { table.unpack(rooms) } end
	return json.array { rooms }
end

function Redis:add_sockets(opts, rooms)
	if not is_local(opts) then
		self:_request { uid = self.uid, type = REMOTE_JOIN, opts = wire_opts(opts), rooms = room_list(rooms) }
	end
	return Base.add_sockets(self, opts, rooms)
end

function Redis:del_sockets(opts, rooms)
	if not is_local(opts) then
		self:_request { uid = self.uid, type = REMOTE_LEAVE, opts = wire_opts(opts), rooms = room_list(rooms) }
	end
	return Base.del_sockets(self, opts, rooms)
end

function Redis:disconnect_sockets(opts, close)
	if not is_local(opts) then
		self:_request { uid = self.uid, type = REMOTE_DISCONNECT, opts = wire_opts(opts), close = close == true }
	end
	return Base.disconnect_sockets(self, opts, close)
end

function Redis:server_side_emit(args, fn)
	local data = data_of(args)
	if not fn then
		self:_request { uid = self.uid, type = SERVER_SIDE_EMIT, data = data }
		return
	end
	self:server_count(function(n)
		n = n - 1   -- not this node
		if n <= 0 then return call(fn, nil, json.array {}) end
		local id = new_uid()
		local entry = { type = SERVER_SIDE_EMIT, num_sub = n, responses = json.array {} }
		entry.finish = function(err)
			if err then err = ("timeout reached: only %d responses received out of %d"):format(#entry.responses, n) end
			call(fn, err, entry.responses)
		end
		self:_wait(id, entry, true)
		self:_request { uid = self.uid, requestId = id, type = SERVER_SIDE_EMIT, data = data }
	end)
end

-- a broadcast from another node (or an emitter)
function Redis:_on_message(msg, channel)
	if channel:sub(1, #self.channel) ~= self.channel then return end
	local room = channel:sub(#self.channel + 1, -2)
	if room ~= "" and not self.rooms[room] then return end
	local v, err = msgpack.decode(msg)
	if type(v) ~= "table" then return report("dropped a malformed broadcast: " .. tostring(err)) end
	local uid, packet, opts = v[1], v[2], v[3]
	if uid == self.uid then return end
	if type(packet) ~= "table" then return report("dropped a broadcast without a packet") end
	local nsp = packet.nsp
	if nsp == nil then nsp = "/" end
	if nsp ~= self.nsp.name then return end
	if type(packet.data) ~= "table" or type(packet.data[1]) ~= "string" then
		return report("dropped a broadcast that is not an event")
	end
	Base.broadcast(self, args_of(packet.data), local_opts(opts))
end

local function object_copy(t)
	local o = json.object {}
	for k, v in pairs(t or {}) do o[k] = v end
	return o
end

local function socket_details(s)
	local rooms = json.array {}
	for room in pairs(s.nsp.adapter.sids[s.id] or {}) do rooms[#rooms + 1] = room end
	table.sort(rooms, function(a, b) return tostring(a) < tostring(b) end)
	local hs = s.handshake
	return json.object {
		id = s.id, rooms = rooms, data = s.data == nil and null or s.data,
		handshake = json.object {
			headers = object_copy(hs.headers), time = hs.time, address = hs.address, xdomain = hs.xdomain,
			secure = hs.secure, issued = hs.issued, url = hs.url, query = object_copy(hs.query),
			auth = object_copy(hs.auth),
		},
	}
end

function Redis:_on_request(msg, channel)
	if channel:sub(1, #self.response_channel) == self.response_channel then
		return self:_on_response(msg)
	elseif channel ~= self.request_channel then
		return
	end
	local r = parse(msg)
	if type(r) ~= "table" then return end
	local t, id = r.type, r.requestId
	if t == SOCKETS then
		if self.requests[id] then return end
		local ids = json.array {}
		Base.apply(self, { rooms = set_of(type(r.rooms) == "table" and r.rooms or {}) }, function(s)
			ids[#ids + 1] = s.id
		end)
		self:_respond(json.encode(json.object { requestId = id, sockets = ids }))
	elseif t == ALL_ROOMS then
		if self.requests[id] then return end
		self:_respond(json.encode(json.object { requestId = id, rooms = json.array(list_of(self.rooms)) }))
	elseif t == REMOTE_JOIN or t == REMOTE_LEAVE or t == REMOTE_DISCONNECT then
		if r.uid == self.uid then return end   -- applied when we sent it
		if type(r.opts) == "table" then
			local opts = local_opts(r.opts)
			if t == REMOTE_JOIN then
				if type(r.rooms) == "table" then Base.add_sockets(self, opts, { table.unpack(r.rooms) }) end
			elseif t == REMOTE_LEAVE then
				if type(r.rooms) == "table" then Base.del_sockets(self, opts, { table.unpack(r.rooms) }) end
			else
				Base.disconnect_sockets(self, opts, r.close == true)
			end
			return
		end
		local s = self.nsp.sockets[r.sid]
		if not s then return end
		if t == REMOTE_JOIN then s:join(r.room)
		elseif t == REMOTE_LEAVE then s:leave(r.room)
		else s:disconnect(r.close == true) end
		self:_respond(json.encode(json.object { requestId = id }))
	elseif t == REMOTE_FETCH then
		if self.requests[id] then return end
		local list = json.array {}
		for _, s in ipairs(self:_local_sockets(local_opts(r.opts))) do list[#list + 1] = socket_details(s) end
		self:_respond(json.encode(json.object { requestId = id, sockets = list }))
	elseif t == SERVER_SIDE_EMIT then
		if r.uid == self.uid or type(r.data) ~= "table" or type(r.data[1]) ~= "string" then return end
		local ack
		if id ~= nil then
			local called = false
			ack = function(reply)
				if called then return end
				called = true
				self:_respond(json.encode(json.object { type = SERVER_SIDE_EMIT, requestId = id,
					data = reply }))
			end
		end
		self.nsp:_on_server_side_emit(args_of(r.data), ack)
	elseif t == BROADCAST then
		if self.ack_requests[id] then return end   -- ours
		local packet = r.packet
		if type(packet) ~= "table" or type(packet.data) ~= "table" or type(packet.data[1]) ~= "string" then return end
		self:_answer_broadcast_with_ack(args_of(packet.data), local_opts(r.opts), function(n)
			self:_respond(json.encode(json.object { type = BROADCAST_CLIENT_COUNT, requestId = id, clientCount = n }))
		end, function(first)
			self:_respond(msgpack.encode(map(ACK_KEYS, { type = BROADCAST_ACK, requestId = id, packet = first })))
		end)
	end
end

-- another node's broadcast with acks, to our sockets (both protocols)
function Redis:_answer_broadcast_with_ack(args, opts, on_count, on_ack)
	local pid = Base.broadcast_with_ack(self, args, opts, on_count, on_ack)
	-- the acks of our sockets stop counting when the requester stops waiting
	local timer
	timer = core.timer(opts.flags.timeout or self.factory.timeout, 0, function()
		for _, s in pairs(self.nsp.sockets) do s.acks[pid] = nil end
		self.timers[timer] = nil
	end)
	self.timers[timer] = true
end

function Redis:_on_response(msg)
	local r = parse(msg)
	if type(r) ~= "table" then return end
	local id = r.requestId
	local ack = id ~= nil and self.ack_requests[id]
	if ack then
		if r.type == BROADCAST_CLIENT_COUNT and math.tointeger(r.clientCount) then
			ack.on_count(math.tointeger(r.clientCount))
		elseif r.type == BROADCAST_ACK then
			local p = r.packet
			if p == nil then p = null end
			ack.on_ack(p)
		end
		return
	end
	local entry = id ~= nil and self.requests[id]
	if not entry then return end
	if entry.type == REMOTE_FETCH or entry.type == SOCKETS then
		entry.count = entry.count + 1
		if type(r.sockets) ~= "table" then return end
		for _, s in ipairs(r.sockets) do entry.sockets[#entry.sockets + 1] = s end
		if entry.count == entry.num_sub then self:_done(id); entry.finish(nil) end
	elseif entry.type == ALL_ROOMS then
		entry.count = entry.count + 1
		if type(r.rooms) ~= "table" then return end
		for _, room in ipairs(r.rooms) do entry.rooms[room] = true end
		if entry.count == entry.num_sub then self:_done(id); entry.finish(nil) end
	elseif entry.type == SERVER_SIDE_EMIT then
		local d = r.data
		if d == nil then d = null end
		entry.responses[#entry.responses + 1] = d
		if #entry.responses == entry.num_sub then self:_done(id); entry.finish(nil) end
	end
end

function Redis:close()
	if self.closed then return end
	self.closed = true
	local redis = self.factory.redis
	if redis then
		redis:punsubscribe(self.channel .. "*", self.on_message)
		for _, ch in ipairs { self.request_channel, self.response_channel, self.specific_channel } do
			redis:unsubscribe(ch, self.on_request)
		end
	end
	self:_teardown()
end

-- what every closing adapter does once unsubscribed (both protocols)
function Redis:_teardown()
	for id, entry in pairs(self.requests) do
		self:_done(id)
		entry.finish("adapter closed")
	end
	for _, entry in pairs(self.ack_requests) do entry.timer:stop() end
	self.ack_requests = {}
	for timer in pairs(self.timers) do timer:stop() end
	self.timers = {}
	self.factory:_release()
end

---------------------------------------------------------------------------
-- the factory: lws.socketio.redis_adapter{ … }

local Factory = {}
Factory.__index = Factory
Factory.__name = "lws.socketio.redis_adapter"

local option_types = {
	host = "string", port = { "integer", 1, 65535 }, key = "string", request_timeout = { "number", 1 },
	redis = "table", sharded = "boolean",
	subscription_mode = function(v)
		if v ~= "dynamic" and v ~= "dynamic-private" and v ~= "static" then
			return '"dynamic", "dynamic-private" or "static"'
		end
	end,
}

--- redis_adapter{ host, port, key = "socket.io", request_timeout = 5000,
-- redis = { more lws.redis options }[, sharded = true,
-- subscription_mode = "dynamic"] } -> the adapter option's value
-- (sharded: lws.socketio.redis_sharded, createShardedAdapter's protocol)
function M.new(opts, level)
	level = level or 2
	opts = options.check(options.table_arg(opts, "redis_adapter", 1, level), option_types, level)
	if opts.subscription_mode ~= nil and not opts.sharded then
		error("option 'subscription_mode' needs sharded = true", level)
	end
	local ropts = {}
	for k, v in pairs(opts.redis or {}) do ropts[k] = v end
	ropts.host = opts.host or ropts.host
	ropts.port = opts.port or ropts.port
	local f = { key = opts.key or "socket.io", timeout = opts.request_timeout or 5000, redis_opts = ropts, live = 0 }
	if opts.sharded then
		f.mode = opts.subscription_mode or "dynamic"
		return setmetatable(f, require("lws.socketio.redis_sharded").Factory)
	end
	return setmetatable(f, Factory)
end

-- a new adapter of class for nsp, the Redis client open (both protocols)
function Factory:_adapter(nsp, class, uid)
	if not self.redis then self.redis = require("lws.redis").connect(self.redis_opts) end
	self.live = self.live + 1
	local a = Base.init(setmetatable({}, class), nsp)
	a.factory, a.uid = self, uid or new_uid()
	a.requests, a.ack_requests, a.timers = {}, {}, {}
	return a
end

--- factory:new(nsp) -> the adapter of nsp (the Socket.IO server calls it)
function Factory:new(nsp)
	local a = self:_adapter(nsp, Redis)
	local key, name = self.key, nsp.name
	a.channel = key .. "#" .. name .. "#"
	a.request_channel = key .. "-request#" .. name .. "#"
	a.response_channel = key .. "-response#" .. name .. "#"
	a.specific_channel = a.response_channel .. a.uid .. "#"
	a.on_message = function(msg, channel) return a:_on_message(msg, channel) end
	a.on_request = function(msg, channel) return a:_on_request(msg, channel) end
	self.redis:psubscribe(a.channel .. "*", a.on_message)
	for _, ch in ipairs { a.request_channel, a.response_channel, a.specific_channel } do
		self.redis:subscribe(ch, a.on_request)
	end
	return a
end

function Factory:_release()
	self.live = self.live - 1
	if self.live == 0 and self.redis then
		self.redis:close()
		self.redis = nil
	end
end

--- close(): the Redis client goes now (io:close() does it too)
function Factory:close()
	if self.redis then self.redis:close(); self.redis = nil end
end

function Factory.__tostring(f)
	return ("lws.socketio.redis_adapter (%s:%d, key %q)"):format(f.redis_opts.host or "127.0.0.1",
		f.redis_opts.port or 6379, f.key)
end

M.Redis, M.Factory = Redis, Factory
M.data_of, M.args_of = data_of, args_of
-- shared with lws.socketio.redis_sharded
M.wire_flags, M.local_opts, M.socket_details, M.report = wire_flags, local_opts, socket_details, report
M.count_nodes, M.room_list, M.is_local = count_nodes, room_list, is_local

return M
