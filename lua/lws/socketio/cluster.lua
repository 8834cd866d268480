--[[ lws.socketio.cluster: Socket.IO broadcasts and room operations across
nodes (worker processes, machines) over an lws.bus, like Socket.IO's Redis
adapter.

  local bus = lws.bus{ redis = { host = "10.0.0.5" }, channel = "chat" }
  local io = lws.socketio(server, { bus = bus })
  io:to("room1"):emit("news", n)     -- every node's sockets in room1

Design criteria:
 - What crosses: io:emit, io:to(...):except(...):emit, socket.broadcast /
   socket:to(...):emit (the sender's id is a room, so "everyone but the
   sender" holds on every node), volatile, and sockets_join /
   sockets_leave / disconnect_sockets. A node delivers its own broadcast
   locally at once and the bus drops its echo: exactly once per node while
   Redis is up, at most once across an outage (lws.bus).
 - It is the namespaces' adapter (lws.socketio.adapter's in-memory one,
   whose broadcasts and room operations also go on the bus).
 - Local-only, as documented: broadcasts with acknowledgements, fetch_sockets,
   server_side_emit, socket_count, and connection state recovery (a recovered session gets the
   packets this node sent or received while it was away).
 - io["local"] (or io.local_) skips the bus, as Socket.IO's io.local does.
 - Message kinds on the bus: "sio:emit" and "sio:op", with meta.io = the
   engine path (two Socket.IO servers on one bus stay apart) and meta.nsp.
   "sio:emit" carries the rooms as targets, the except rooms as except, and
   as payload the Socket.IO EVENT packet as socket.io-parser writes it,
   then its binary attachments: each a u32 big-endian length + bytes.
   The receiving node decodes it back to Lua values and broadcasts them
   to its own sockets (so on_any_outgoing and recovery see them too).
]]
local parser = require "lws.socketio.parser"
local json = require "lws.json"
local adapter = require "lws.socketio.adapter"

local pack, unpack = string.pack, string.unpack
local null = json.null

local M = {}

local function list_of(set)
	local l = {}
	for k in pairs(set or {}) do l[#l + 1] = k end
	table.sort(l)
	return l
end

local function set_of(list)
	local s = {}
	for _, k in ipairs(list) do s[k] = true end
	return s
end

local function encode_event(nsp_name, args)
	local text, atts = parser.encode(parser.EVENT, nsp_name, nil, args, true)
	local parts = { pack(">s4", text) }
	for _, a in ipairs(atts or {}) do parts[#parts + 1] = pack(">s4", a) end
	return table.concat(parts)
end

local function decode_event(payload, max_attachments)
	local text, pos = unpack(">s4", payload)
	local p, err = parser.decode(text, max_attachments)
	if not p then return nil, err end
	local data = p.data
	if p.attachments then
		local bufs = {}
		for i = 1, p.attachments do bufs[i], pos = unpack(">s4", payload, pos) end
		data, err = parser.reconstruct(data, bufs)
		if data == nil then return nil, err end
	end
	if type(data) ~= "table" or type(data[1]) ~= "string" then return nil, "not an event" end
	local n = #data
	local args = { n = n }
	for i = 1, n do
		local v = data[i]
		if v ~= null then args[i] = v end
	end
	return args
end

-- the adapter of a namespace on a bus: the in-memory adapter, whose
-- broadcasts and room operations (unless local) also go on the bus
local Base = adapter.Adapter
local Bus = setmetatable({}, { __index = Base })
Bus.__index = Bus
local function is_local(opts) return opts.flags and opts.flags["local"] end
function Bus:broadcast(args, opts, ack_id)
	if not is_local(opts) then self.cluster.relay_emit(self.nsp, args, opts) end
	return Base.broadcast(self, args, opts, ack_id)
end
function Bus:add_sockets(opts, rooms)
	if not is_local(opts) then self.cluster.relay_op(self.nsp, "join", opts.rooms, opts.except, rooms) end
	return Base.add_sockets(self, opts, rooms)
end
function Bus:del_sockets(opts, rooms)
	if not is_local(opts) then self.cluster.relay_op(self.nsp, "leave", opts.rooms, opts.except, rooms) end
	return Base.del_sockets(self, opts, rooms)
end
function Bus:disconnect_sockets(opts, close)
	if not is_local(opts) then
		self.cluster.relay_op(self.nsp, "disconnect", opts.rooms, opts.except, nil, close)
	end
	return Base.disconnect_sockets(self, opts, close)
end

--- attach(io, bus) -> cluster: io's broadcasts reach every node on bus
function M.attach(io, bus)
	local key = io.engine.opts.path
	local self = { io = io, bus = bus, key = key }

	local function namespace(env)
		if env.meta.io ~= key then return nil end
		return io._nsps[env.meta.nsp]
	end

	local function report(msg) require("lws.core").report("socketio cluster: " .. msg) end

	self.on_emit = function(payload, env)
		local nsp = namespace(env)
		if not nsp then return end
		local ok, args, err = pcall(decode_event, payload, io.opts.max_attachments)
		if not ok or not args then return report("dropped a malformed broadcast: " .. tostring(args or err)) end
		nsp.adapter:broadcast(args, { rooms = set_of(env.targets), except = set_of(env.except),
			flags = { volatile = env.meta.volatile == "1", ["local"] = true } })
	end

	self.on_op = function(_, env)
		local nsp = namespace(env)
		if not nsp then return end
		local m = env.meta
		local op = nsp:_local_operator(set_of(env.targets), set_of(env.except))
		local ok, room = pcall(json.decode, m.room or "null")
		if not ok or (type(room) ~= "string" and type(room) ~= "table") then
			return report("dropped a malformed room operation")
		end
		if m.op == "join" then op:sockets_join(room)
		elseif m.op == "leave" then op:sockets_leave(room)
		elseif m.op == "disconnect" then op:disconnect_sockets(m.close == "1")
		end
	end

	bus:on("sio:emit", self.on_emit)
	bus:on("sio:op", self.on_op)

	--- relay_emit(nsp, args, opts): the broadcast to the other nodes
	function self.relay_emit(nsp, args, opts)
		local flags = opts.flags or {}
		bus:emit("sio:emit", { targets = list_of(opts.rooms), except = list_of(opts.except),
			meta = { io = key, nsp = nsp.name, volatile = flags.volatile and "1" or nil } },
			encode_event(nsp.name, args))
	end

	--- relay_op(nsp, op, rooms, except, room, close): "join", "leave" (room:
	-- a name or a list) or "disconnect" (close) on the matching sockets
	-- of the other nodes
	function self.relay_op(nsp, op, rooms, except, room, close)
		bus:emit("sio:op", { targets = list_of(rooms), except = list_of(except),
			meta = { io = key, nsp = nsp.name, op = op, close = close and "1" or nil,
				room = room ~= nil and json.encode(room) or nil } }, "")
	end

	--- the adapter factory of io's namespaces
	function self.adapter(nsp)
		local a = adapter.Adapter.init(setmetatable({}, Bus), nsp)
		a.cluster = self
		return a
	end

	function self.detach()
		bus:off("sio:emit", self.on_emit)
		bus:off("sio:op", self.on_op)
	end
	return self
end

M.encode_event, M.decode_event = encode_event, decode_event

return M
