--[[ lws.socketio.msgpack_parser: Socket.IO packets as socket.io-msgpack-parser
3 writes them (the parser of the official socket.io.msgpack.min.js bundle),
for lws.socketio(server, { parser = "msgpack" }).

Design criteria:
 - Each Socket.IO packet is one binary Engine.IO message: the msgpack
   (notepack) map { type, data, id, nsp }. There is no BINARY_EVENT and
   there are no attachments: binary values are msgpack bin inside the
   packet (lws.socketio.binary on this side). Over polling, EIO 4 sends
   it as "b" .. base64, as every binary message.
 - What the Node parser's checkPacket refuses, decode refuses: a type
   outside 0..4, a namespace that is not a string, CONNECT data that is
   not a map, DISCONNECT with data, CONNECT_ERROR data that is neither a
   string nor a map, EVENT/ACK data that is not an array, an id that is
   not an integer. The session of a client that sends such a packet, or
   bytes that are not msgpack, is closed; nobody else notices.
 - Same interface as the JSON parser's encode: encode(type, nsp, id,
   data, is_args) -> text (always nil here), { binary message }.
]]
local json = require "lws.json"
local msgpack = require "lws.msgpack"

local M = { name = "msgpack", binary_packets = true }

local KEYS = { "type", "data", "id", "nsp" }
local null = json.null

local function data_of(args)
	local data = json.array {}
	for i = 1, args.n or #args do
		local v = args[i]
		if v == nil then v = null end
		data[i] = v
	end
	return data
end

--- encode(ptype, nsp, id, data, is_args) -> nil, { bytes }
function M.encode(ptype, nsp, id, data, is_args)
	if is_args then data = data_of(data) end
	local t = { type = ptype, nsp = nsp or "/", data = data }
	if id ~= nil then t.id = math.tointeger(tonumber(id)) end
	return nil, { msgpack.encode(msgpack.map(KEYS, t)) }
end

--- decode(bytes) -> { type, nsp, data, id } | nil, err
function M.decode(bytes)
	local p, err = msgpack.decode(bytes)
	if p == nil then return nil, err or "invalid packet" end
	if not json.is_object(p) then return nil, "invalid packet" end
	local t = p.type
	if math.type(t) ~= "integer" or t < 0 or t > 4 then return nil, "invalid packet type" end
	if type(p.nsp) ~= "string" then return nil, "invalid namespace" end
	local d = p.data
	if d == null then d = nil end
	local ok
	if t == 0 then ok = d == nil or json.is_object(d)
	elseif t == 1 then ok = d == nil
	elseif t == 4 then ok = type(d) == "string" or json.is_object(d)
	else ok = json.is_array(d) end
	if not ok then return nil, "invalid payload" end
	local id = p.id
	if id == null then id = nil end
	if id ~= nil and math.type(id) ~= "integer" then return nil, "invalid packet id" end
	return { type = t, nsp = p.nsp, data = d, id = id }
end

return M
