--[[ lws.bus: broadcasts, topics and application messages across nodes
(processes or machines) that share a Redis.

  local bus = lws.bus{ redis = { host = "10.0.0.5", port = 6379 }, channel = "chat" }
  bus:attach(server)        -- server:broadcast / server:publish now reach
                            -- the clients of every node attached to "chat"
  bus:on("kick", function(payload, env) ... end)
  bus:emit("kick", { targets = { "room1" }, meta = { by = "admin" } }, "bye")

Design criteria:
 - One Redis pub/sub channel per bus carries envelopes. A node delivers
   its own messages locally at once (pubsub.lua does it before asking the
   bus to relay) and ignores their echo from Redis by origin node id, so
   every node delivers each message exactly once as long as its Redis
   connections stay up. Across a Redis outage delivery is at most once:
   what is published while a node's subscription is down is lost for that
   node (Redis pub/sub keeps nothing); local delivery never stops.
 - While Redis is down, relays are dropped and counted (stats().dropped,
   and the redis client's own counters); nothing is queued (see lws.redis).
 - Received messages are delivered with pubsub's local-only functions, so
   they are never relayed again (no loops between nodes). A broadcast's
   `except` is a local connection: it applies on the sending node only.
   Several servers attached to one bus on one node act as one: each gets
   what the others send.
 - The envelope is a small binary header followed by the raw payload:
   cheap to parse with string.unpack, binary-safe, no escaping of big
   payloads (format below, pure encode/decode exported for specs).
 - The bus is policy over lws.redis: it holds no sockets of its own.

Envelope (all integers big-endian):
  "LWB1"           4 bytes magic and version
  flags            u8: bit 0 = the payload is binary
  origin           u8 length + bytes: node id of the sender
  kind             u8 length + bytes: "broadcast", "topic" or an application kind
  targets          u16 count, then each u16 length + bytes (topics, rooms)
  except           u16 count, then each u16 length + bytes (rooms, ids to skip)
  meta             u16 count, then each u8 length + key, u16 length + value
  payload          the rest of the message, as is

Options (unknown keys are an error):
  redis         options for lws.redis.connect, or a connected lws.redis client
                (then the bus neither closes it nor owns its events)
  channel       Redis channel and key prefix ("lws")
  node_id       this node's id (1..200 bytes, no newline); default
                "<hostname>:<pid>:<random>"
  presence_ttl  ms a node's presence survives without a refresh (15000)

Presence (optional): bus:join(room, member[, info]), bus:leave(room, member),
bus:members(room, fn(list | nil, err, code)) with list = { { node =,
member =, info = }, … }. Stored in the Redis hash "<channel>:presence:<room>"
under "<node_id>\n<member>", with a liveness key "<channel>:node:<node_id>"
that this node refreshes every presence_ttl/3 ms (SET PX presence_ttl).
Consistency: eventual. A join or leave is visible to other nodes after
one round trip to Redis. A node that dies without close() stays listed
until its liveness key expires (at most presence_ttl), then readers drop
its members and delete them. After Redis restarts empty, or an outage,
each node registers its members again when it reconnects (and sends the
leaves it could not send); until every node has, lists are incomplete.
During an outage members() fails with code "down".
]]
local core = require "lws.core"
local emitter = require "lws.emitter"
local redis = require "lws.redis"
local pubsub = require "lws.pubsub"

local pack, unpack = string.pack, string.unpack
local M = {}
local methods = {}
local mt = { __name = "lws.bus", __index = methods }
M.methods, M.mt = methods, mt

local MAGIC = "LWB1"
local EMPTY = {}

---------------------------------------------------------------------------
-- envelope

local function check_list(t, what)
	if t == nil then return EMPTY end
	if type(t) ~= "table" or #t > 65535 then
		error(what .. " must be a list of at most 65535 strings", 3)
	end
	for i = 1, #t do
		if type(t[i]) ~= "string" or #t[i] > 65535 then
			error(what .. " must be a list of strings of at most 65535 bytes", 3)
		end
	end
	return t
end

--- encode{ origin, kind, binary, targets, except, meta } , payload -> string
function M.encode(env, payload)
	local origin, kind = env.origin, env.kind
	if type(origin) ~= "string" or #origin == 0 or #origin > 255 then
		error("envelope origin must be a string of 1..255 bytes", 2)
	end
	if type(kind) ~= "string" or #kind == 0 or #kind > 255 then
		error("envelope kind must be a string of 1..255 bytes", 2)
	end
	if type(payload) ~= "string" then error("envelope payload must be a string", 2) end
	local parts = { pack(">c4Bs1s1", MAGIC, env.binary and 1 or 0, origin, kind) }
	for _, list in ipairs { check_list(env.targets, "targets"), check_list(env.except, "except") } do
		parts[#parts + 1] = pack(">I2", #list)
		for i = 1, #list do parts[#parts + 1] = pack(">s2", list[i]) end
	end
	local meta, keys = env.meta or EMPTY, {}
	for k, v in pairs(meta) do
		if type(k) ~= "string" or #k > 255 or type(v) ~= "string" or #v > 65535 then
			error("meta must map keys of at most 255 bytes to strings of at most 65535 bytes", 2)
		end
		keys[#keys + 1] = k
	end
	if #keys > 65535 then error("too many meta entries", 2) end
	table.sort(keys)
	parts[#parts + 1] = pack(">I2", #keys)
	for _, k in ipairs(keys) do parts[#parts + 1] = pack(">s1s2", k, meta[k]) end
	parts[#parts + 1] = payload
	return table.concat(parts)
end

local function parse(msg)
	local magic, flags, origin, kind, pos = unpack(">c4Bs1s1", msg)
	if magic ~= MAGIC then return nil end
	local env = { origin = origin, kind = kind, binary = flags & 1 == 1 }
	for _, name in ipairs { "targets", "except" } do
		local n
		n, pos = unpack(">I2", msg, pos)
		local list = {}
		for i = 1, n do list[i], pos = unpack(">s2", msg, pos) end
		env[name] = list
	end
	local n
	n, pos = unpack(">I2", msg, pos)
	local meta = {}
	for _ = 1, n do
		local k, v
		k, v, pos = unpack(">s1s2", msg, pos)
		meta[k] = v
	end
	env.meta = meta
	return env, msg:sub(pos)
end

--- decode(message) -> envelope, payload | nil, err
function M.decode(msg)
	if type(msg) ~= "string" or msg:sub(1, 4) ~= MAGIC then return nil, "not an lws bus envelope" end
	local ok, env, payload = pcall(parse, msg)
	if not ok or not env then return nil, "truncated lws bus envelope" end
	return env, payload
end

---------------------------------------------------------------------------

local function read_first_line(path)
	local f = io.open(path)
	if not f then return nil end
	local l = f:read("l")
	f:close()
	return l
end

--- default_node_id() -> "<hostname>:<pid>:<random>"
function M.default_node_id()
	local host = read_first_line("/proc/sys/kernel/hostname") or os.getenv("HOSTNAME") or "node"
	local pid = (read_first_line("/proc/self/stat") or ""):match("^(%d+)") or "0"
	return ("%s:%s:%08x"):format(host:sub(1, 100), pid, math.random(0, 0x7fffffff))
end

-- local-only delivery (never relayed again); pubsub.lua provides these
-- once it relays through the bus, before that its methods are local-only
local function local_broadcast(srv, data, binary)
	local f = pubsub.local_broadcast or core.server_methods.broadcast
	return f(srv, data, binary)
end

local function local_publish(srv, topic, data, binary)
	local f = pubsub.local_publish or core.server_methods.publish
	return f(srv, topic, data, binary)
end

local function report(msg) core.report(msg) end

local function check_string(v, what, level)
	if type(v) ~= "string" or v == "" then
		error(("bad argument (%s: non-empty string expected, got %s)"):format(what, type(v)), level + 1)
	end
end

---------------------------------------------------------------------------
-- the bus

local function incoming(self, msg)
	local env, payload = M.decode(msg)
	local st = self.counters
	if not env then st.malformed = st.malformed + 1; return end
	if env.origin == self.node_id then st.echoes = st.echoes + 1; return end
	st.received = st.received + 1
	if env.kind == "broadcast" then
		for srv in pairs(self.servers) do local_broadcast(srv, payload, env.binary) end
	elseif env.kind == "topic" then
		for srv in pairs(self.servers) do
			for _, t in ipairs(env.targets) do local_publish(srv, t, payload, env.binary) end
		end
	end
	local ok, err = xpcall(emitter.emit, debug.traceback, self, env.kind, payload, env)
	if not ok then report(err) end
end

local presence_register

-- the values are checked below with their own messages; redis: an
-- lws.redis client or its connect options
local function any() end
local bus_spec = { redis = "table", channel = any, node_id = any, presence_ttl = any }

--- new(opts) -> bus
function M.new(opts)
	if type(opts) ~= "table" then
		error("bad argument #1 to 'bus' (table expected, got " .. type(opts) .. ")", 2)
	end
	require("lws.options").check(opts, bus_spec, 2)
	local channel = opts.channel or "lws"
	check_string(channel, "option 'channel'", 2)
	local node_id = opts.node_id or M.default_node_id()
	if type(node_id) ~= "string" or #node_id == 0 or #node_id > 200 or node_id:find("\n", 1, true) then
		error("option 'node_id' must be a string of 1..200 bytes without a newline", 2)
	end
	local ttl = opts.presence_ttl or 15000
	if type(ttl) ~= "number" or ttl < 30 then error("option 'presence_ttl' must be >= 30 ms", 2) end
	local client, owned = opts.redis, false
	if getmetatable(client) ~= redis.mt then
		client = redis.connect(opts.redis or {})
		owned = true
	end
	local self = setmetatable({
		redis = client, owned = owned, channel = channel, node_id = node_id,
		servers = {}, subscribed = false, closed = false, presence_ttl = ttl,
		present = {}, left = {},
		counters = { sent = 0, received = 0, echoes = 0, dropped = 0, malformed = 0 },
	}, mt)
	self._on_message = function(msg) incoming(self, msg) end
	self._on_subscribe = function(ch) if ch == channel then self.subscribed = true end end
	self._on_disconnect = function(role) if role == "subscribe" then self.subscribed = false end end
	self._on_ready = function() presence_register(self) end
	client:on("subscribe", self._on_subscribe)
	client:on("disconnect", self._on_disconnect)
	client:on("ready", self._on_ready)
	client:subscribe(channel, self._on_message)
	return self
end

--- bus:ready() -> true once messages can cross (publishing and subscribed)
function methods:ready()
	return not self.closed and self.subscribed and self.redis:ready()
end

local function send(self, env, payload)
	if self.closed then return nil, "bus is closed", "closed" end
	env.origin = self.node_id
	local ok, err, code = self.redis:publish(self.channel, M.encode(env, payload))
	if not ok then
		self.counters.dropped = self.counters.dropped + 1
		return nil, err, code
	end
	self.counters.sent = self.counters.sent + 1
	return true
end

--- bus:emit(kind, { targets =, except =, binary =, meta = }, payload)
-- -> true | nil, err, code: to every other node (not delivered here)
function methods:emit(kind, fields, payload)
	check_string(kind, "kind", 2)
	if fields ~= nil and type(fields) ~= "table" then
		error("bad argument #2 to 'emit' (table expected, got " .. type(fields) .. ")", 2)
	end
	if type(payload) ~= "string" then
		error("bad argument #3 to 'emit' (string expected, got " .. type(payload) .. ")", 2)
	end
	fields = fields or EMPTY
	return send(self, { kind = kind, targets = fields.targets, except = fields.except,
		binary = fields.binary, meta = fields.meta }, payload)
end

--- bus:on(kind, fn(payload, envelope)) / bus:off(kind[, fn]): messages of
-- that kind from other nodes ("broadcast" and "topic" included)
function methods:on(kind, fn)
	check_string(kind, "kind", 2)
	emitter.on(self, kind, fn)
	return self
end

function methods:off(kind, fn)
	emitter.off(self, kind, fn)
	return self
end

--- bus:attach(server): its broadcasts and publishes reach every node, and
-- theirs reach its clients
function methods:attach(srv)
	if self.closed then error("bus is closed", 2) end
	local f = srv:fields()
	if f._bus and f._bus ~= self then error("server is attached to another bus", 2) end
	if f._bus == self then return self end
	f._bus = self
	local function gone() self:detach(srv) end
	self.servers[srv] = gone
	srv:on("close", gone)
	return self
end

function methods:detach(srv)
	local gone = self.servers[srv]
	if not gone then return self end
	self.servers[srv] = nil
	local f = srv:fields()
	if f._bus == self then f._bus = nil end
	if type(gone) == "function" then srv:off("close", gone) end
	return self
end

-- the hooks pubsub.lua calls after delivering locally on srv
function methods:relay_broadcast(srv, data, binary)
	for other in pairs(self.servers) do
		if other ~= srv then local_broadcast(other, data, binary) end
	end
	return send(self, { kind = "broadcast", binary = binary }, data)
end

function methods:relay_publish(srv, topic, data, binary)
	for other in pairs(self.servers) do
		if other ~= srv then local_publish(other, topic, data, binary) end
	end
	return send(self, { kind = "topic", targets = { topic }, binary = binary }, data)
end

---------------------------------------------------------------------------
-- presence

local function room_key(self, room) return self.channel .. ":presence:" .. room end
local function node_key(self, node) return self.channel .. ":node:" .. node end

local function refresh(self)
	self.redis:command({ "SET", node_key(self, self.node_id), "1", "PX", math.floor(self.presence_ttl) })
end

-- (re)register everything this node holds: after a reconnect Redis may
-- have restarted empty, and leaves made while down are still to be sent
function presence_register(self)
	if not self.presence_timer then return end
	refresh(self)
	for room, members in pairs(self.left) do
		local argv = { "HDEL", room_key(self, room) }
		for m in pairs(members) do argv[#argv + 1] = self.node_id .. "\n" .. m end
		if self.redis:command(argv) then self.left[room] = nil end
	end
	for room, members in pairs(self.present) do
		local argv = { "HSET", room_key(self, room) }
		for m, info in pairs(members) do
			argv[#argv + 1] = self.node_id .. "\n" .. m
			argv[#argv + 1] = info
		end
		if #argv > 2 then self.redis:command(argv) end
	end
end

--- bus:join(room, member[, info]) -> true | nil, err, code (kept locally
-- and registered again on reconnect either way)
function methods:join(room, member, info)
	check_string(room, "room", 2)
	check_string(member, "member", 2)
	if info ~= nil and type(info) ~= "string" then
		error("bad argument #3 to 'join' (string expected, got " .. type(info) .. ")", 2)
	end
	if self.closed then return nil, "bus is closed", "closed" end
	info = info or ""
	local room_members = self.present[room]
	if not room_members then room_members = {}; self.present[room] = room_members end
	room_members[member] = info
	if self.left[room] then self.left[room][member] = nil end
	if not self.presence_timer then
		local every = math.max(10, math.floor(self.presence_ttl / 3))
		self.presence_timer = core.timer(every, every, function() refresh(self) end)
		refresh(self)
	end
	return self.redis:command({ "HSET", room_key(self, room), self.node_id .. "\n" .. member, info })
end

--- bus:leave(room, member) -> true | nil, err, code
function methods:leave(room, member)
	check_string(room, "room", 2)
	check_string(member, "member", 2)
	local room_members = self.present[room]
	if not room_members or room_members[member] == nil then return true end
	room_members[member] = nil
	if next(room_members) == nil then self.present[room] = nil end
	local ok, err, code = self.redis:command({ "HDEL", room_key(self, room), self.node_id .. "\n" .. member })
	if not ok then
		self.left[room] = self.left[room] or {}
		self.left[room][member] = true
	end
	return ok, err, code
end

--- bus:members(room, fn(list | nil, err, code)) -> true | nil, err, code
function methods:members(room, fn)
	check_string(room, "room", 2)
	if type(fn) ~= "function" then
		error("bad argument #2 to 'members' (function expected, got " .. type(fn) .. ")", 2)
	end
	local key = room_key(self, room)
	local r = self.redis
	return r:command({ "HGETALL", key }, function(reply, err, code)
		if not reply then return fn(nil, err, code) end
		local entries, nodes, order = {}, {}, {}
		for i = 1, #reply - 1, 2 do
			local node, member = reply[i]:match("^(.-)\n(.*)$")
			if node then
				entries[#entries + 1] = { node = node, member = member, info = reply[i + 1], field = reply[i] }
				if not nodes[node] then nodes[node] = true; order[#order + 1] = node end
			end
		end
		if #order == 0 then return fn({}) end
		local argv = { "MGET" }
		for i, node in ipairs(order) do argv[i + 1] = node_key(self, node) end
		local ok, e2, c2 = r:command(argv, function(alive, e3, c3)
			if not alive then return fn(nil, e3, c3) end
			local live = {}
			for i, node in ipairs(order) do live[node] = alive[i] ~= redis.null end
			local list, dead = {}, { "HDEL", key }
			for _, e in ipairs(entries) do
				if live[e.node] then
					list[#list + 1] = { node = e.node, member = e.member, info = e.info }
				else
					dead[#dead + 1] = e.field
				end
			end
			if #dead > 2 then r:command(dead) end   -- readers clean up after dead nodes
			table.sort(list, function(a, b)
				if a.node ~= b.node then return a.node < b.node end
				return a.member < b.member
			end)
			fn(list)
		end)
		if not ok then fn(nil, e2, c2) end
	end)
end

---------------------------------------------------------------------------

--- bus:stats() -> { sent, received, echoes, dropped, malformed, ready }
function methods:stats()
	local s = {}
	for k, v in pairs(self.counters) do s[k] = v end
	s.ready = self:ready()
	return s
end

--- bus:close(): detach every server, withdraw this node's presence, and
-- close the Redis client if the bus made it
function methods:close()
	if self.closed then return end
	local r = self.redis
	for srv in pairs(self.servers) do self:detach(srv) end
	if self.presence_timer then
		self.presence_timer:stop()
		self.presence_timer = nil
		for room, members in pairs(self.present) do
			local argv = { "HDEL", room_key(self, room) }
			for m in pairs(members) do argv[#argv + 1] = self.node_id .. "\n" .. m end
			r:command(argv)
		end
		r:command({ "DEL", node_key(self, self.node_id) })
	end
	self.closed = true
	self.subscribed = false
	r:unsubscribe(self.channel, self._on_message)
	r:off("subscribe", self._on_subscribe)
	r:off("disconnect", self._on_disconnect)
	r:off("ready", self._on_ready)
	emitter.off(self)
	if self.owned then r:close(1000) end
end

function mt.__tostring(b)
	return ("lws.bus (%s, node %s, %s)"):format(b.channel, b.node_id,
		b.closed and "closed" or b:ready() and "ready" or "connecting")
end

return M
