--[[ lws.socketio.parser: the Engine.IO and Socket.IO wire formats, as pure
functions (no I/O) so the specs can check them byte by byte.

Engine.IO packets are handled as strings that start with their type digit
("4…" message, "2" ping, "3probe", …); a binary message is a table
{ bin = bytes }. Polling payloads:
 - EIO 4: packets joined by \x1e, binary as "b" .. base64.
 - EIO 3, text: "<len>:<packet>…" with len in UTF-16 code units (what
   JavaScript's string.length says), binary as "b4" .. base64 (b64=1).
 - EIO 3, XHR2 binary payload (a batch holding binary, client without
   b64): per packet 0|1, the byte length as digit bytes, 0xFF, the bytes.
Socket.IO packets: <type>[<attachments>-][<nsp>,][<ack id>][<JSON>], the
attachments following as binary messages with {"_placeholder":true,"num":k}
in the JSON where they go.
]]
local json = require "lws.json"

local M = {}

local byte, char, sub, find, concat = string.byte, string.char, string.sub, string.find,
	table.concat

---------------------------------------------------------------------------
-- base64 (RFC 4648, with padding)

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local pair = {}     -- 12 bits -> two characters
for i = 0, 4095 do
	local a, b = (i >> 6) + 1, (i & 63) + 1
	pair[i] = sub(alphabet, a, a) .. sub(alphabet, b, b)
end
local rev = {}
for i = 1, 64 do rev[byte(alphabet, i)] = i - 1 end

function M.base64(s)
	local out, n, len = {}, 0, #s
	local full = len - len % 3
	for i = 1, full, 3 do
		local a, b, c = byte(s, i, i + 2)
		local v = (a << 16) | (b << 8) | c
		out[n + 1] = pair[v >> 12]
		out[n + 2] = pair[v & 4095]
		n = n + 2
	end
	local rest = len - full
	if rest == 1 then
		local v = byte(s, len) << 16
		out[n + 1] = pair[v >> 12] .. "=="
		n = n + 1
	elseif rest == 2 then
		local a, b = byte(s, len - 1, len)
		local v = (a << 16) | (b << 8)
		out[n + 1] = pair[v >> 12] .. sub(pair[v & 4095], 1, 1) .. "="
		n = n + 1
	end
	return concat(out, "", 1, n)
end

--- unbase64(s) -> bytes | nil (invalid characters or length)
function M.unbase64(s)
	s = s:gsub("[\r\n ]", "")
	local len = #s
	if len % 4 == 1 then return nil end
	local pad = 0
	if sub(s, -2) == "==" then pad = 2 elseif sub(s, -1) == "=" then pad = 1 end
	local body = len - pad
	local out, n = {}, 0
	local full = body - body % 4
	for i = 1, full, 4 do
		local a, b, c, d = byte(s, i, i + 3)
		a, b, c, d = rev[a], rev[b], rev[c], rev[d]
		if not (a and b and c and d) then return nil end
		local v = (a << 18) | (b << 12) | (c << 6) | d
		n = n + 1
		out[n] = char(v >> 16, (v >> 8) & 255, v & 255)
	end
	local rest = body - full
	if rest == 2 then
		local a, b = rev[byte(s, full + 1)], rev[byte(s, full + 2)]
		if not (a and b) then return nil end
		n = n + 1
		out[n] = char(((a << 18) | (b << 12)) >> 16)
	elseif rest == 3 then
		local a, b, c = rev[byte(s, full + 1)], rev[byte(s, full + 2)], rev[byte(s, full + 3)]
		if not (a and b and c) then return nil end
		local v = (a << 18) | (b << 12) | (c << 6)
		n = n + 1
		out[n] = char(v >> 16, (v >> 8) & 255)
	elseif rest == 1 then
		return nil
	end
	return concat(out, "", 1, n)
end

---------------------------------------------------------------------------
-- UTF-16 lengths (EIO 3 polling)

--- utf16_len(s) -> JavaScript's s.length for the UTF-8 string s
function M.utf16_len(s)
	local n = utf8.len(s)
	if not n then return nil end
	local i = find(s, "[\240-\244]")
	while i do
		n = n + 1
		i = find(s, "[\240-\244]", i + 4)
	end
	return n
end

--- utf16_take(s, start, units) -> the byte index just after `units` UTF-16
-- code units of s from byte start, or nil (short, invalid, or a surrogate
-- pair cut in half)
function M.utf16_take(s, start, units)
	local pos, left = start, units
	while true do
		local q = find(s, "[\240-\244]", pos)
		local limit = q or #s + 1
		local n = utf8.len(s, pos, limit - 1)
		if not n then return nil end
		if n >= left then return utf8.offset(s, left + 1, pos) end
		left = left - n
		if not q or left < 2 then return nil end
		if not utf8.len(s, q, q) then return nil end
		left = left - 2
		pos = q + 4
	end
end

---------------------------------------------------------------------------
-- Engine.IO payloads

local function digits_as_bytes(n)
	return (tostring(n):gsub("%d", function(d) return char(byte(d) - 48) end))
end

local function has_binary(packets, n)
	for i = 1, n do
		if type(packets[i]) == "table" then return true end
	end
	return false
end

--- encode_payload(packets, protocol, supports_binary) -> body, content_type
function M.encode_payload(packets, protocol, supports_binary)
	local n = #packets
	local out = {}
	if protocol == 4 then
		for i = 1, n do
			local p = packets[i]
			out[i] = type(p) == "table" and "b" .. M.base64(p.bin) or p
		end
		return concat(out, "\30", 1, n), "text/plain; charset=UTF-8"
	end
	if supports_binary and has_binary(packets, n) then
		for i = 1, n do
			local p = packets[i]
			if type(p) == "table" then
				out[i] = "\1" .. digits_as_bytes(#p.bin + 1) .. "\255\4" .. p.bin
			else
				out[i] = "\0" .. digits_as_bytes(#p) .. "\255" .. p
			end
		end
		return concat(out, "", 1, n), "application/octet-stream"
	end
	if n == 0 then return "0:", "text/plain; charset=UTF-8" end
	for i = 1, n do
		local p = packets[i]
		if type(p) == "table" then p = "b4" .. M.base64(p.bin) end
		out[i] = M.utf16_len(p) .. ":" .. p
	end
	return concat(out, "", 1, n), "text/plain; charset=UTF-8"
end

-- a text packet from a payload: its type digit must be 0-6
local function check_text(p)
	local t = byte(p, 1)
	return t and t >= 48 and t <= 54
end

-- a text packet of an EIO 3 payload ("b4" + base64 is binary) onto packets
local function add_text_packet(packets, p)
	if byte(p, 1) == 98 then
		local bin = byte(p, 2) == 52 and M.unbase64(sub(p, 3))
		if not bin then return nil, "bad base64 packet" end
		packets[#packets + 1] = { bin = bin }
	elseif check_text(p) then
		packets[#packets + 1] = p
	else
		return nil, "bad packet"
	end
	return true
end

--- decode_payload(body, protocol, is_binary) -> packets | nil, err
-- Binary packets come back as { bin = bytes }. As engine.io does: in EIO 3
-- an error anywhere refuses the whole payload; in EIO 4 the packets before
-- the bad one are returned with the error (packets, err).
function M.decode_payload(body, protocol, is_binary)
	local packets = {}
	if protocol == 4 then
		if not utf8.len(body) then return nil, "payload is not UTF-8" end
		local pos = 1
		while true do
			local e = find(body, "\30", pos, true)
			local p = sub(body, pos, (e or #body + 1) - 1)
			if byte(p, 1) == 98 then   -- "b"
				local bin = M.unbase64(sub(p, 2))
				if not bin then return packets, "bad base64" end
				packets[#packets + 1] = { bin = bin }
			elseif check_text(p) then
				packets[#packets + 1] = p
			else
				return packets, "bad packet"
			end
			if not e then break end
			pos = e + 1
		end
		return packets
	end
	if is_binary then
		local pos, len = 1, #body
		while pos <= len do
			local kind = byte(body, pos)
			if kind ~= 0 and kind ~= 1 then return nil, "bad binary payload" end
			local n, i = 0, pos + 1
			while true do
				local d = byte(body, i)
				if d == 255 then break end
				if not d or d > 9 or i - pos > 10 then return nil, "bad binary payload length" end
				n = n * 10 + d
				i = i + 1
			end
			local p = sub(body, i + 1, i + n)
			if #p ~= n or n == 0 then return nil, "short binary payload" end
			if kind == 1 then
				if byte(p, 1) ~= 4 then return nil, "binary packet that is not a message" end
				packets[#packets + 1] = { bin = sub(p, 2) }
			else
				if not utf8.len(p) then return nil, "payload is not UTF-8" end
				local ok, err = add_text_packet(packets, p)
				if not ok then return nil, err end
			end
			pos = i + 1 + n
		end
		return packets
	end
	local pos, len = 1, #body
	if len == 0 then return nil, "empty payload" end
	while pos <= len do
		local colon = find(body, ":", pos, true)
		if not colon or colon == pos or colon - pos > 16 then return nil, "bad length" end
		local n = tonumber(sub(body, pos, colon - 1))
		if not n or math.type(n) ~= "integer" or not find(sub(body, pos, colon - 1), "^%d+$") then
			return nil, "bad length"
		end
		local e = M.utf16_take(body, colon + 1, n)
		if not e then return nil, "length does not match" end
		local p = sub(body, colon + 1, e - 1)
		if n > 0 then
			local ok, err = add_text_packet(packets, p)
			if not ok then return nil, err end
		end
		pos = e
	end
	return packets
end

---------------------------------------------------------------------------
-- Socket.IO packets

M.CONNECT, M.DISCONNECT, M.EVENT, M.ACK, M.CONNECT_ERROR, M.BINARY_EVENT, M.BINARY_ACK =
	0, 1, 2, 3, 4, 5, 6

-- Binary arguments: Lua strings are text, so binary data is wrapped.
local binary_mt = {}
binary_mt.__name = "socketio.binary"
binary_mt.__index = binary_mt
binary_mt.__len = function(b) return #b.data end
binary_mt.__tostring = function(b) return b.data end
binary_mt.__eq = function(a, b) return a.data == b.data end
M.binary_mt = binary_mt

--- binary(bytes) -> a value that travels as a binary attachment
function M.binary(bytes)
	if type(bytes) ~= "string" then
		error("bad argument #1 to 'binary' (string expected, got " .. type(bytes) .. ")", 2)
	end
	return setmetatable({ data = bytes }, binary_mt)
end
function M.is_binary(v) return getmetatable(v) == binary_mt end

-- While a packet is encoded, binaries go here and leave a placeholder.
local attachments
binary_mt.__tojson = function(b)
	if not attachments then error("a socket.io binary can only be sent as an event argument", 0) end
	local n = #attachments
	attachments[n + 1] = b.data
	return '{"_placeholder":true,"num":' .. n .. "}"
end

--- encode(type, nsp, id, data) -> text, attachments (nil when none)
-- data: a Lua value, or for events and acks { n = count, ... } (args may be
-- nil: they become null). id: digits (string) or integer, or nil.
function M.encode(ptype, nsp, id, data, is_args)
	local body
	local att
	if data ~= nil then
		attachments = {}
		local ok, res
		if is_args then
			ok, res = pcall(function()
				local parts = {}
				for i = 1, data.n do parts[i] = json.encode(data[i]) end
				return "[" .. concat(parts, ",", 1, data.n) .. "]"
			end)
		else
			ok, res = pcall(json.encode, data)
		end
		att = attachments
		attachments = nil
		if not ok then error(res, 0) end
		body = res
		if #att == 0 then att = nil end
	end
	if att then
		if ptype == M.EVENT then ptype = M.BINARY_EVENT elseif ptype == M.ACK then ptype = M.BINARY_ACK end
	end
	local out = { tostring(ptype) }
	if att then out[#out + 1] = #att .. "-" end
	if nsp and nsp ~= "/" then out[#out + 1] = nsp .. "," end
	if id ~= nil then out[#out + 1] = tostring(id) end
	if body then out[#out + 1] = body end
	return concat(out), att
end

local RESERVED = {
	connect = true, connect_error = true, disconnect = true, disconnecting = true,
	newListener = true, removeListener = true,
}
M.RESERVED = RESERVED

local function is_object(v) return type(v) == "table" and getmetatable(v) == json.object_mt end

--- decode(str[, max_attachments]) -> packet | nil, err
-- packet = { type, nsp, id (digits string or nil), data, attachments }
function M.decode(str, max_attachments)
	local t = byte(str, 1)
	if not t or t < 48 or t > 54 then return nil, "unknown packet type" end
	t = t - 48
	local p = { type = t, nsp = "/" }
	local i = 2
	if t == M.BINARY_EVENT or t == M.BINARY_ACK then
		local _, e, digits = find(str, "^(%d+)%-", i)
		if not e then return nil, "illegal attachments" end
		local n = tonumber(digits)
		if not n or n < 1 then return nil, "illegal attachments" end
		if n > (max_attachments or 10) then return nil, "too many attachments" end
		p.attachments = n
		i = e + 1
	end
	if byte(str, i) == 47 then   -- "/"
		local c = find(str, ",", i, true)
		p.nsp = sub(str, i, (c or #str + 1) - 1)
		i = c and c + 1 or #str + 1
	end
	local _, e = find(str, "^%d+", i)
	if e then
		p.id = sub(str, i, e)
		if #p.id > 16 then return nil, "ack id too long" end
		i = e + 1
	end
	if i <= #str then
		local data, err = json.try_decode(str, i)
		if data == nil then return nil, "invalid payload (" .. err .. ")" end
		local ok
		if t == M.CONNECT then ok = is_object(data)
		elseif t == M.DISCONNECT then ok = false
		elseif t == M.CONNECT_ERROR then ok = type(data) == "string" or is_object(data)
		elseif t == M.EVENT or t == M.BINARY_EVENT then
			local first = json.is_array(data) and data[1]
			ok = type(first) == "number" or (type(first) == "string" and not RESERVED[first])
		else
			ok = json.is_array(data)
		end
		if not ok then return nil, "invalid payload" end
		p.data = data
	end
	return p
end

--- reconstruct(data, buffers) -> data with placeholders replaced by
-- binary values | nil, err
function M.reconstruct(data, buffers)
	local function walk(v, depth)
		if type(v) ~= "table" or getmetatable(v) == binary_mt or v == json.null then return v end
		if v._placeholder == true then
			local num = v.num
			if math.type(num) ~= "integer" or num < 0 or num >= #buffers then
				error("illegal attachments", 0)
			end
			return M.binary(buffers[num + 1])
		end
		for k, x in pairs(v) do
			if type(x) == "table" then v[k] = walk(x, depth + 1) end
		end
		return v
	end
	local ok, res = pcall(walk, data, 0)
	if not ok then return nil, res end
	return res
end

return M
