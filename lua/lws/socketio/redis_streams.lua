--[[ lws.socketio.redis_streams: the adapter of
@socket.io/redis-streams-adapter 0.3 (createAdapter), so a Lua node joins a
cluster of Node Socket.IO servers that use it and, above all, a client that
reconnects to another node — Lua or Node — within the recovery window gets
its id, rooms, data and the packets it missed (connection state recovery
across nodes).

  local sio = lws.socketio(server, {
    adapter = lws.socketio.redis_streams_adapter { host = "127.0.0.1", port = 6379 },
    connection_state_recovery = { max_disconnection_duration = 120000 },
  })

Design criteria:
 - The messages are socket.io-adapter's ClusterAdapter's, the ones
   lws.socketio.redis_sharded speaks ({type, data, uid, nsp}, its handler
   is reused); what differs is where they travel, read from the adapter's
   source:
   * broadcasts without acks and room operations (types 3 without a
     requestId, 4, 5, 6) are XADDed to the stream (<stream_name>, or
     <stream_name>-<i> with stream_count > 1, i = Java's String.hashCode of
     the namespace name, as a signed 32-bit integer, JavaScript's remainder
     by stream_count) with MAXLEN ~ max_len, fields in Node's order: uid,
     nsp, type (decimal text), data (JSON; base64 of msgpack when it may
     carry binary and does, unless only_plaintext);
   * requests that wait for answers (fetch sockets, server-side emit,
     broadcasts with acks) go as msgpack on <channel_prefix>#<nsp># by
     PUBLISH (SPUBLISH with use_sharded_pubsub), the answers as msgpack on
     the requester's <channel_prefix>#<nsp>#<uid>#; every node subscribes
     both.
 - Every node reads every entry: one more Redis connection per stream
   (ping_interval off: XREAD BLOCK holds it) loops XREAD BLOCK block_time
   COUNT read_count from "$", then from the last id seen. After an outage
   it goes on from that id (stream ids are times, so a restarted Redis's
   new entries come after it).
 - The entry id is the packet's offset: a local broadcast that recovery
   would keep (an event without an ack id, not volatile) is delivered
   here once XADD answered, with the id as its last argument, exactly as
   the others get it from the stream; if Redis refuses it (an outage) it is
   delivered without one (Node drops it). Without recovery nothing waits.
 - A disconnected session (sid, pid, rooms, data) is SET at
   <session_key_prefix><pid> as base64 msgpack with PX
   max_disconnection_duration; restoring it is MULTI GET DEL EXEC (one
   node wins), XRANGE offset offset (the offset must still be in the
   stream), then XRANGE after it to the end (read_count * 10 per call, at
   most 100 calls), keeping this namespace's broadcasts (type 3) whose
   rooms/except match the session's rooms, volatile ones included (Node
   does).
 - The number of nodes is PUBSUB NUMSUB (SHARDNUMSUB) of the public
   channel, as Node's serverCount.
]]
local core = require "lws.core"
local json = require "lws.json"
local msgpack = require "lws.msgpack"
local options = require "lws.options"
local parser = require "lws.socketio.parser"
local adapter = require "lws.socketio.adapter"
local classic = require "lws.socketio.redis_adapter"
local sharded = require "lws.socketio.redis_sharded"

local Base, Sharded, Factory = adapter.Adapter, sharded.Sharded, classic.Factory
local map, has_binary, wire_opts, packet_of, new_uid = sharded.map, sharded.has_binary, sharded.wire_opts,
	sharded.packet_of, sharded.new_uid
local MESSAGE_KEYS, BROADCAST_KEYS, MAY_BINARY = sharded.MESSAGE_KEYS, sharded.BROADCAST_KEYS, sharded.MAY_BINARY
local T = sharded.types
local report, count_nodes, is_local, args_of = classic.report, classic.count_nodes, classic.is_local, classic.args_of

local M = {}

local SESSION_KEYS = { "sid", "pid", "rooms", "data" }
local MAX_RANGE_CALLS = 100   -- as Node's RESTORE_SESSION_MAX_XRANGE_CALLS

-- Node's isEphemeral: what waits for answers travels by pub/sub
local function ephemeral(t, data)
	return t == T.SERVER_SIDE_EMIT or t == T.FETCH_SOCKETS or (t == T.BROADCAST and data.requestId ~= nil)
end

-- Node's hashCode: over UTF-16 code units, int32 arithmetic
local function hash_code(s)
	local h = 0
	local function add(unit)
		h = (h * 31 + unit) & 0xffffffff
	end
	for _, c in utf8.codes(s, true) do
		if c >= 0x10000 then
			c = c - 0x10000
			add(0xd800 + (c >> 10))
			add(0xdc00 + (c & 0x3ff))
		else
			add(c)
		end
	end
	if h >= 0x80000000 then h = h - 0x100000000 end
	return h
end
M.hash_code = hash_code

local function stream_of(f, nsp_name)
	if f.stream_count == 1 then return f.stream_name end
	return f.stream_name .. "-" .. math.tointeger(math.fmod(hash_code(nsp_name), f.stream_count))
end
M.stream_of = stream_of

-- an entry's fields { k1, v1, k2, v2, … } -> { field = value }
local function fields_of(fields)
	if type(fields) ~= "table" then return nil end
	local raw = {}
	for i = 1, #fields - 1, 2 do raw[fields[i]] = fields[i + 1] end
	return raw
end

-- an entry's fields (the list, or fields_of's table) -> the message, or
-- nil, why
local function decode_entry(fields)
	local raw = fields
	if type(fields) == "table" and fields[1] ~= nil then raw = fields_of(fields) end
	if type(raw) ~= "table" then return nil, "no fields" end
	local t = math.tointeger(tonumber(raw.type))
	if type(raw.nsp) ~= "string" or not t then return nil, "no nsp or type" end
	local m = { uid = raw.uid, nsp = raw.nsp, type = t }
	local data = raw.data
	if type(data) == "string" and data ~= "" then
		local v, err
		if data:byte(1) == 0x7b then
			v, err = json.try_decode(data)
		else
			local bytes = parser.unbase64(data)
			if not bytes then return nil, "data is neither JSON nor base64" end
			v, err = msgpack.decode(bytes)
		end
		if v == nil then return nil, err end
		m.data = v
	end
	return m
end
M.decode_entry = decode_entry

---------------------------------------------------------------------------
-- the adapter of one namespace

local Streams = setmetatable({}, { __index = Sharded })
Streams.__index = Streams
Streams.__name = "lws.socketio.redis_streams.nsp"
M.Streams = Streams

function Streams:_publish(channel, payload)
	local f = self.factory
	local r = f.redis
	local ok, err, code
	if f.sharded_pubsub then ok, err, code = r:spublish(channel, payload)
	else ok, err, code = r:publish(channel, payload) end
	if not ok and code ~= "down" and code ~= "closed" then report(("publish on %s: %s"):format(channel, err)) end
	return ok
end

-- XADD message to this namespace's stream; fn(id | nil) once, if it
-- returns true
function Streams:_xadd(message, fn)
	local f = self.factory
	local data, text = message.data, nil
	if data ~= nil then
		if not f.only_plaintext and MAY_BINARY[message.type] and has_binary(data, 0) then
			text = parser.base64(msgpack.encode(data))
		else
			text = json.encode(data)
		end
	end
	local argv = { "XADD", self.stream, "MAXLEN", "~", tostring(f.max_len), "*",
		"uid", self.uid, "nsp", self.nsp.name, "type", tostring(message.type) }
	if text then argv[#argv + 1] = "data"; argv[#argv + 1] = text end
	local ok, err, code = f.redis:command(argv, function(id, e, c)
		if c == "redis" then report(("XADD to %s: %s"):format(self.stream, e)) end
		if fn then fn(type(id) == "string" and id or nil) end
	end)
	if not ok and code ~= "down" and code ~= "closed" then report(("XADD to %s: %s"):format(self.stream, err)) end
	return ok
end

function Streams:_send(t, data)
	local message = map(MESSAGE_KEYS, { type = t, data = data, uid = self.uid, nsp = self.nsp.name })
	if ephemeral(t, data) then return self:_publish(self.channel, msgpack.encode(message)) end
	return self:_xadd(message)
end

function Streams:_respond_to(uid, t, data)
	if type(uid) ~= "string" then return end
	local message = map(MESSAGE_KEYS, { type = t, data = data, uid = self.uid, nsp = self.nsp.name })
	return self:_publish(self.channel .. uid .. "#", msgpack.encode(message))
end

local function keeps_offset(self, opts, ack_id)
	return self.nsp.server.recovery and ack_id == nil and not (opts.flags and opts.flags.volatile)
end

function Streams:broadcast(args, opts, ack_id)
	if is_local(opts) then return Base._deliver(self, args, opts, ack_id) end
	local message = map(MESSAGE_KEYS, { type = T.BROADCAST, uid = self.uid, nsp = self.nsp.name,
		data = map(BROADCAST_KEYS, { packet = packet_of(args), opts = wire_opts(opts) }) })
	if not keeps_offset(self, opts, ack_id) then
		self:_xadd(message)
		return Base._deliver(self, args, opts, ack_id)
	end
	-- delivered here with the offset the other nodes read (see the top)
	local queued = self:_xadd(message, function(id)
		if self.closed then return end
		if id then
			args.n = args.n + 1
			args[args.n] = id
		end
		Base._deliver(self, args, opts)
	end)
	if not queued then return Base._deliver(self, args, opts) end
	return 0
end

function Streams:_remote_broadcast(args, opts, offset)
	if offset and keeps_offset(self, opts) then
		args.n = args.n + 1
		args[args.n] = offset
	end
	return Base._deliver(self, args, opts)
end

function Streams:server_count(fn)
	count_nodes(self.factory.redis, self.factory.sharded_pubsub and "SHARDNUMSUB" or "NUMSUB", self.channel, fn)
end

-- no room has a channel of its own
Streams.add_all, Streams.del, Streams.del_all = Base.add_all, Base.del, Base.del_all

---------------------------------------------------------------------------
-- connection state recovery in Redis

function Streams:persist_session(s)
	local f = self.factory
	local rooms = json.array {}
	for i, r in ipairs(s.rooms) do rooms[i] = r end
	local ok, bytes = pcall(msgpack.encode, map(SESSION_KEYS, { sid = s.sid, pid = s.pid, rooms = rooms,
		data = s.data }))
	if not ok then return report("cannot keep the session of " .. tostring(s.sid) .. ": " .. tostring(bytes)) end
	local ttl = self.nsp.server.recovery.max_disconnection_duration
	f.redis:command({ "SET", f.session_key_prefix .. s.pid, parser.base64(bytes), "PX", tostring(ttl) },
		function(_, err, code)
			if code == "redis" then report("SET of a session: " .. tostring(err)) end
		end)
end

-- shouldIncludePacket: the session's rooms against a broadcast's
local function included(rooms, opts)
	local want, except = opts.rooms, opts.except
	local inside = type(want) ~= "table" or #want == 0
	local set = {}
	for _, r in ipairs(rooms) do set[r] = true end
	if not inside then
		for _, r in ipairs(want) do
			if set[r] then inside = true break end
		end
	end
	if not inside then return false end
	for _, r in ipairs(type(except) == "table" and except or {}) do
		if set[r] then return false end
	end
	return true
end

-- "1-2" -> "1-3" (exclusive ranges need Redis 6.2; this works on any)
local function next_offset(offset)
	local ms, seq = offset:match("^(%d+)%-(%d+)$")
	return ms .. "-" .. (math.tointeger(seq) + 1)
end

function Streams:restore_session(pid, offset, fn)
	local f, name = self.factory, self.nsp.name
	local r = f.redis
	if type(offset) ~= "string" or not offset:match("^%d+%-%d+$") or #offset > 42 then return fn(nil) end
	local raw, exists, waiting, failed = nil, nil, 2, false
	local function fail() failed = true end
	local range
	-- both answers in: the session, then what it missed
	local function start()
		waiting = waiting - 1
		if waiting > 0 then return end
		if failed or type(raw) ~= "string" or not exists then return fn(nil) end
		local bytes = parser.unbase64(raw)
		local s = bytes and msgpack.decode(bytes)
		if type(s) ~= "table" or type(s.sid) ~= "string" or type(s.pid) ~= "string" or type(s.rooms) ~= "table" then
			report("dropped a malformed session " .. pid)
			return fn(nil)
		end
		local rooms = {}
		for _, room in ipairs(s.rooms) do
			if type(room) == "string" or math.type(room) == "integer" then rooms[#rooms + 1] = room end
		end
		local data = s.data
		if data == json.null then data = nil end
		range({ sid = s.sid, pid = s.pid, rooms = rooms, data = data, missed = {} }, offset, 1)
	end
	range = function(session, after, calls)
		local ok = r:command({ "XRANGE", self.stream, next_offset(after), "+", "COUNT", tostring(f.read_count * 10) },
			function(entries)
				if self.closed then return end
				if type(entries) ~= "table" then return fn(nil) end
				for _, e in ipairs(entries) do
					local id = type(e) == "table" and e[1]
					if type(id) ~= "string" then return fn(nil) end
					local m = decode_entry(e[2])
					if m and m.nsp == name and m.type == T.BROADCAST and type(m.data) == "table" then
						local packet, opts = m.data.packet, m.data.opts
						if type(packet) == "table" and sharded.is_event(packet.data)
							and included(session.rooms, type(opts) == "table" and opts or {}) then
							local args = args_of(packet.data)
							args.n = args.n + 1
							args[args.n] = id
							session.missed[#session.missed + 1] = args
						end
					end
					after = id
				end
				if #entries == 0 or calls >= MAX_RANGE_CALLS then return fn(session) end
				range(session, after, calls + 1)
			end)
		if not ok then fn(nil) end
	end
	local key = f.session_key_prefix .. pid
	-- GETDEL as Node writes it (MULTI GET DEL: any Redis), then the offset
	if not r:command({ "MULTI" }, function() end) then return fn(nil) end
	r:command({ "GET", key }, function() end)
	r:command({ "DEL", key }, function() end)
	r:command({ "EXEC" }, function(reply)
		if type(reply) == "table" then raw = reply[1] else fail() end
		start()
	end)
	r:command({ "XRANGE", self.stream, offset, offset }, function(reply)
		if type(reply) == "table" then exists = #reply > 0 else fail() end
		start()
	end)
end

function Streams:close()
	if self.closed then return end
	self.closed = true
	local f = self.factory
	local redis = f.redis
	if redis then
		local unsub = f.sharded_pubsub and redis.sunsubscribe or redis.unsubscribe
		unsub(redis, self.channel, self.on_message)
		unsub(redis, self.response_channel, self.on_message)
	end
	local list = f.adapters[self.nsp.name]
	if list then
		list[self] = nil
		if next(list) == nil then f.adapters[self.nsp.name] = nil end
	end
	self:_teardown()
end

---------------------------------------------------------------------------
-- the stream readers: one Redis connection per stream

local function dispatch(f, stream, entries)
	for _, e in ipairs(entries) do
		if type(e) == "table" and type(e[1]) == "string" then
			local raw = fields_of(e[2]) or {}
			local m, err
			for a in pairs(type(raw.nsp) == "string" and f.adapters[raw.nsp] or {}) do
				-- our own entries come back too: dropped before their data is decoded
				if a.stream == stream and raw.uid ~= a.uid then
					if not m and not err then
						m, err = decode_entry(raw)
						if not m then report(("dropped a malformed entry %s of %s: %s"):format(e[1], stream, err)) end
					end
					if m then a:_handle(m, e[1]) end
				end
			end
			f.readers[stream].offset = e[1]
		end
	end
end

local function start_reader(f, stream)
	local ropts = {}
	for k, v in pairs(f.redis_opts) do ropts[k] = v end
	ropts.ping_interval = false
	local r = { offset = "$", busy = false, client = require("lws.redis").connect(ropts) }
	f.readers[stream] = r
	local poll
	poll = function()
		if r.closed or r.busy then return end
		r.busy = true
		local ok = r.client:command({ "XREAD", "BLOCK", tostring(f.block_time), "COUNT", tostring(f.read_count),
			"STREAMS", stream, r.offset }, function(reply, err, code)
			r.busy = false
			if r.closed then return end
			if code == "redis" then
				-- not a stream (WRONGTYPE…): say so, try again later
				report(("XREAD of %s: %s"):format(stream, err))
				r.retry = core.timer(1000, 0, function() r.retry = nil; poll() end)
				return
			end
			if code then return end   -- connection lost: "ready" polls again
			if type(reply) == "table" and type(reply[1]) == "table" and type(reply[1][2]) == "table" then
				dispatch(f, stream, reply[1][2])
			end
			poll()
		end)
		if not ok then r.busy = false end   -- down: "ready" polls again
	end
	r.client:on("ready", poll)
	poll()
end

local StreamsFactory = setmetatable({}, { __index = Factory })
StreamsFactory.__index = StreamsFactory
StreamsFactory.__name = "lws.socketio.redis_streams_adapter"
M.Factory = StreamsFactory

function StreamsFactory:new(nsp)
	local a = self:_adapter(nsp, Streams, new_uid())
	local prefix = self.channel_prefix
	a.channel = prefix .. "#" .. nsp.name .. "#"
	a.response_channel = a.channel .. a.uid .. "#"
	a.stream = stream_of(self, nsp.name)
	a.on_message = function(msg, channel) return a:_on_message(msg, channel) end
	local sub = self.sharded_pubsub and self.redis.ssubscribe or self.redis.subscribe
	sub(self.redis, a.channel, a.on_message)
	sub(self.redis, a.response_channel, a.on_message)
	local list = self.adapters[nsp.name]
	if not list then list = {}; self.adapters[nsp.name] = list end
	list[a] = true
	if not self.readers[a.stream] then start_reader(self, a.stream) end
	return a
end

function StreamsFactory:_close_readers()
	for stream, r in pairs(self.readers) do
		r.closed = true
		if r.retry then r.retry:stop() end
		r.client:close()
		self.readers[stream] = nil
	end
end

function StreamsFactory:_release()
	Factory._release(self)
	if self.live == 0 then self:_close_readers() end
end

function StreamsFactory:close()
	Factory.close(self)
	self:_close_readers()
end

function StreamsFactory.__tostring(f)
	return ("lws.socketio.redis_streams_adapter (%s:%d, stream %q)"):format(f.redis_opts.host or "127.0.0.1",
		f.redis_opts.port or 6379, f.stream_name)
end

local option_types = {
	host = "string", port = { "integer", 1, 65535 }, redis = "table", request_timeout = { "number", 1 },
	stream_name = "string", stream_count = { "integer", 1, 1024 }, channel_prefix = "string",
	use_sharded_pubsub = "boolean", max_len = { "integer", 1 }, read_count = { "integer", 1 },
	block_time = { "integer", 1 }, session_key_prefix = "string", only_plaintext = "boolean",
}

--- new{ host, port, stream_name = "socket.io", stream_count = 1,
-- channel_prefix = "socket.io", use_sharded_pubsub = false, max_len = 10000,
-- read_count = 100, block_time = 5000, session_key_prefix = "sio:session:",
-- only_plaintext = false, request_timeout = 5000, redis = { … } }
function M.new(opts, level)
	level = level or 2
	opts = options.check(options.table_arg(opts, "redis_streams_adapter", 1, level), option_types, level)
	local ropts = {}
	for k, v in pairs(opts.redis or {}) do ropts[k] = v end
	ropts.host = opts.host or ropts.host
	ropts.port = opts.port or ropts.port
	return setmetatable({
		redis_opts = ropts, live = 0, timeout = opts.request_timeout or 5000, mode = "static",
		stream_name = opts.stream_name or "socket.io", stream_count = opts.stream_count or 1,
		channel_prefix = opts.channel_prefix or "socket.io", sharded_pubsub = opts.use_sharded_pubsub == true,
		max_len = opts.max_len or 10000, read_count = opts.read_count or 100, block_time = opts.block_time or 5000,
		session_key_prefix = opts.session_key_prefix or "sio:session:", only_plaintext = opts.only_plaintext == true,
		adapters = {}, readers = {},
	}, StreamsFactory)
end

return M
