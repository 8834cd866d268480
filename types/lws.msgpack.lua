---@meta lws.msgpack
-- lua-language-server definitions of lws.msgpack, the MessagePack codec
-- (C, csrc/msgpack.c) of Socket.IO's Redis adapter and msgpack parser,
-- which keeps arrays and maps, integers and floats, text and binary apart
-- (docs/reference/msgpack.md).

---@class lws.msgpack
---@field null table msgpack nil inside a value (lws.json.null); decode gives nil at the top
local msgpack = {}

--- Raises on what msgpack cannot hold ("msgpack: cannot encode a function",
--- userdata, threads; nesting deeper than 1000, a cycle). Integers take
--- the smallest form, floats are always float 64, strings are str, binary
--- values (msgpack.binary) are bin; plain tables that are exactly 1..n are
--- arrays, other tables maps with sorted keys (numbers, then strings)
--- unless msgpack.map fixed their order.
---@param value any not nil (msgpack.null is nil)
---@return string bytes
function msgpack.encode(value) end
--- The whole string must be one msgpack value. Arrays come back marked
--- with lws.json.array_mt, maps with lws.json.object_mt, bin as
--- msgpack.binary values, nil inside as msgpack.null; notepack's undefined
--- (fixext 1, type 0) is msgpack.null, a timestamp (ext -1) ms since the
--- epoch; other ext types are refused.
---@param bytes string
---@return any value nil for a top-level msgpack nil, and on bad input
---@return string? err "msgpack: truncated at byte 3", "… bytes after the value at byte N", …
function msgpack.decode(bytes) end
--- t (default a new table), written as a map with its keys in that order
--- (keys missing from t are left out), so bytes can match Node's; the
--- keys list is shared, not copied.
---@generic T: table
---@param keys any[]
---@param t? T
---@return T
function msgpack.map(keys, t) end
--- Mark t (default a new table) as an array (lws.json.array): `msgpack.array {}` is an empty array.
---@generic T: table
---@param t? T
---@return T
function msgpack.array(t) end
--- Mark t (default a new table) as a map (lws.json.object): `msgpack.object {}` is an empty map.
---@generic T: table
---@param t? T
---@return T
function msgpack.object(t) end
--- Bytes written as msgpack bin (lws.socketio.binary); bin decodes as such a value.
---@param bytes string
---@return lws.socketio.Binary
function msgpack.binary(bytes) end
---@param v any
---@return boolean
function msgpack.is_binary(v) end

return msgpack
