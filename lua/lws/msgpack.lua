--[[ lws.msgpack: MessagePack for Socket.IO's Redis adapter and msgpack
parser (and anyone else); the codec is C (csrc/msgpack.c).

  local msgpack = require "lws.msgpack"
  local bytes = msgpack.encode { "uid", msgpack.map({ "type", "data" }, { type = 2, data = {} }) }
  local v, err = msgpack.decode(bytes)

Design criteria:
 - Kinds survive a round trip, as with lws.json: decoded arrays carry
   json.array_mt and maps json.object_mt (json.array{} encodes as [],
   json.object{} and the plain empty table as {}; a plain table that is
   exactly 1..n is an array); msgpack nil is json.null (nil at the top);
   integers are Lua integers (uint64 past 2^63-1 decodes as a float),
   floats stay floats (always written as float 64, where Node's notepack
   writes an integral number as an integer).
 - Binary (msgpack bin) is Socket.IO's binary value, a table tagged with
   lws.socketio.binary's metatable ({ data = bytes }): a Lua string is
   text (msgpack str). So attachments decoded from Redis go straight
   into an emit, and binary(bytes) goes out as bin.
 - Integers take the smallest form, strings str8/16/32 by length, as
   notepack.io (Node's Socket.IO) writes them; msgpack.map(keys, t) fixes a
   map's key order (otherwise keys are sorted, numbers then strings, so a
   table always gives the same bytes, as lws.json), so what we publish can match
   Node's bytes exactly.
 - notepack's undefined (fixext 1 of type 0) decodes as json.null,
   timestamps (ext -1) as milliseconds since the epoch (Date.getTime());
   other ext types are refused.
 - Hostile input: decode returns nil, "msgpack: … at byte N" (truncated,
   0xc1, trailing bytes, nesting deeper than 1000, nil/NaN map keys); it
   never allocates more than the input can fill. encode raises on
   functions, userdata, cycles (nesting deeper than 1000).
]]
local core = require "lws.core"
local json = require "lws.json"
local parser = require "lws.socketio.parser"

local M = {}
M.null = json.null
M.array, M.object = json.array, json.object
M.binary, M.is_binary = parser.binary, parser.is_binary

local encode, decode = core.msgpack_codec {
	null = json.null, array_mt = json.array_mt, object_mt = json.object_mt, binary_mt = parser.binary_mt,
}

--- encode(value) -> bytes (raises on what msgpack cannot hold)
function M.encode(v)
	if v == nil then error("bad argument #1 to 'encode' (value expected)", 2) end
	local ok, r = pcall(encode, v)
	if not ok then error((tostring(r):gsub("^[^:]*:%d+: ", "")), 2) end
	return r
end

--- decode(bytes) -> value | nil, message
function M.decode(s)
	if type(s) ~= "string" then error("bad argument #1 to 'decode' (string expected, got " .. type(s) .. ")", 2) end
	local v, err = decode(s)
	if v == json.null then return nil end
	if v == nil then return nil, err end
	return v
end

local order_mts = setmetatable({}, { __mode = "k" })

--- map(keys, t) -> t, written as a map with keys in that order (keys
-- missing from t are left out); the keys list is shared, not copied
function M.map(keys, t)
	local mt = order_mts[keys]
	if not mt then
		mt = { __name = "msgpack.map", __keys = keys }
		order_mts[keys] = mt
	end
	return setmetatable(t or {}, mt)
end

return M
