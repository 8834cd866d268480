--[[ lws.json: a small, strict JSON encoder and decoder that keeps arrays
and objects apart (Debian's lua-cjson 2.1.0 turns `[]` and `{}` into the
same empty table and mangles integers past 14 digits).

  local json = require "lws.json"
  json.encode { a = json.array {}, b = json.null }   --> {"a":[],"b":null}
  local v = json.decode '[1, {"x": []}]'             --> json.is_array(v) == true

Design criteria:
 - Round trips keep their shape: decoded arrays carry json.array_mt and
   decoded objects json.object_mt, so `[]` stays `[]` and `{}` stays `{}`
   when echoed; JSON null is json.null (a key set to nil would vanish).
 - Plain Lua tables: 1..n with no other keys is an array, anything else
   (the empty table included) is an object. Use json.array{} for `[]`.
 - Integers are Lua integers both ways (no precision loss up to 2^63);
   floats are written with the fewest digits that read back the same.
   NaN and infinities become null, as JSON.stringify does.
 - Strings must be UTF-8 (encode raises, decode refuses): control
   characters, U+2028 and U+2029 are escaped, so the output is safe in a
   \x1e-separated payload and inside a <script>. Lone surrogates in
   \u escapes decode to U+FFFD.
 - Hostile input: nesting deeper than 1000 is refused; errors name the
   byte where parsing stopped. encode/decode raise; json.try_decode
   returns nil, message instead.
 - A table whose metatable has __tojson(t) -> string is written as that
   (already encoded) JSON text: json.raw(text) and Socket.IO's binary
   placeholders use it.
]]
local M = {}

local concat, byte, char, find, sub, format = table.concat, string.byte, string.char,
	string.find, string.sub, string.format
local utf8len, utf8char = utf8.len, utf8.char
local mtype, huge = math.type, math.huge

local MAX_DEPTH = 1000

M.null = setmetatable({}, {
	__name = "json.null",
	__tostring = function() return "null" end,
	__newindex = function() error("json.null is read-only", 2) end,
})
M.array_mt = { __name = "json.array" }
M.object_mt = { __name = "json.object" }

--- array(t) -> t marked as a JSON array (also for an empty t)
function M.array(t) return setmetatable(t or {}, M.array_mt) end
--- object(t) -> t marked as a JSON object
function M.object(t) return setmetatable(t or {}, M.object_mt) end
function M.is_array(v) return type(v) == "table" and getmetatable(v) == M.array_mt end
function M.is_object(v) return type(v) == "table" and getmetatable(v) == M.object_mt end

local raw_mt = { __name = "json.raw", __tojson = function(r) return r[1] end }
--- raw(text): already-encoded JSON, written as is
function M.raw(text)
	assert(type(text) == "string", "json.raw expects a string")
	return setmetatable({ text }, raw_mt)
end

---------------------------------------------------------------------------
-- encoding

local escapes = {
	['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
	["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
	["\226\128\168"] = "\\u2028", ["\226\128\169"] = "\\u2029",
}
for i = 0, 31 do
	local c = char(i)
	escapes[c] = escapes[c] or format("\\u%04x", i)
end

local function encode_string(s)
	if not find(s, '[%z\1-\31"\\\226]') then return '"' .. s .. '"' end
	s = s:gsub('[%z\1-\31"\\]', escapes)
	if find(s, "\226\128[\168\169]") then s = s:gsub("\226\128[\168\169]", escapes) end
	return '"' .. s .. '"'
end

local function check_utf8(s)
	if not utf8len(s) then
		local _, bad = utf8len(s)
		error(format("json: cannot encode a string that is not UTF-8 (byte %d)", bad), 0)
	end
end

local function encode_number(n)
	if mtype(n) == "integer" then return format("%d", n) end
	if n ~= n or n == huge or n == -huge then return "null" end
	if n == math.floor(n) and n > -2^53 and n < 2^53 then return format("%d", n) end
	local s
	for digits = 15, 17 do
		s = format("%." .. digits .. "g", n)
		if tonumber(s) == n then break end
	end
	local mant, sign, exp = s:match("^(-?[%d.]+)e([-+])(%d+)$")
	if mant then
		exp = tonumber(exp)
		if sign == "+" and exp < 21 then
			-- big integral floats read like JavaScript's: 12345678901234567000
			local neg, int, frac = mant:match("^(-?)(%d+)%.?(%d*)$")
			return neg .. int .. frac .. string.rep("0", exp - #frac)
		end
		return mant .. "e" .. sign .. exp
	end
	return s
end
M.encode_number = encode_number

local encode_value

local function encode_key(k)
	local tk = type(k)
	if tk == "string" then check_utf8(k) return encode_string(k) end
	if tk == "number" then return '"' .. encode_number(k) .. '"' end
	error("json: cannot encode a table key of type " .. tk, 0)
end

local function encode_table(t, out, n, depth)
	if depth > MAX_DEPTH then error("json: cannot encode, nesting deeper than " .. MAX_DEPTH .. " (a cycle?)", 0) end
	local mt = getmetatable(t)
	if mt then
		if mt == M.array_mt then
			out[n + 1] = "["
			n = n + 1
			for i = 1, #t do
				if i > 1 then n = n + 1; out[n] = "," end
				n = encode_value(t[i], out, n, depth + 1)
			end
			out[n + 1] = "]"
			return n + 1
		elseif mt ~= M.object_mt and mt.__tojson then
			out[n + 1] = mt.__tojson(t)
			return n + 1
		end
	end
	local is_array = mt ~= M.object_mt and t[1] ~= nil
	if is_array then
		local count, max = 0, 0
		for k in pairs(t) do
			if mtype(k) ~= "integer" or k < 1 then is_array = false break end
			count = count + 1
			if k > max then max = k end
		end
		is_array = is_array and count == max
	end
	if is_array then
		out[n + 1] = "["
		n = n + 1
		for i = 1, #t do
			if i > 1 then n = n + 1; out[n] = "," end
			n = encode_value(t[i], out, n, depth + 1)
		end
		out[n + 1] = "]"
		return n + 1
	end
	-- an object: keys sorted, so the same table always gives the same bytes
	local keys = {}
	for k in pairs(t) do keys[#keys + 1] = k end
	if #keys > 1 then
		local ok = pcall(table.sort, keys)
		if not ok then
			table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
		end
	end
	out[n + 1] = "{"
	n = n + 1
	for i, k in ipairs(keys) do
		if i > 1 then n = n + 1; out[n] = "," end
		out[n + 1] = encode_key(k)
		out[n + 2] = ":"
		n = encode_value(t[k], out, n + 2, depth + 1)
	end
	out[n + 1] = "}"
	return n + 1
end

encode_value = function(v, out, n, depth)
	local tv = type(v)
	if tv == "string" then
		if find(v, "[\128-\255]") then check_utf8(v) end
		out[n + 1] = encode_string(v)
	elseif tv == "number" then
		out[n + 1] = encode_number(v)
	elseif tv == "boolean" then
		out[n + 1] = v and "true" or "false"
	elseif v == nil or v == M.null then
		out[n + 1] = "null"
	elseif tv == "table" then
		return encode_table(v, out, n, depth)
	else
		error("json: cannot encode a value of type " .. tv, 0)
	end
	return n + 1
end

--- encode(value) -> JSON text (raises on what JSON cannot express)
function M.encode(v)
	local tv = type(v)
	if tv == "string" then
		if find(v, "[\128-\255]") then check_utf8(v) end
		return encode_string(v)
	elseif tv == "number" then
		return encode_number(v)
	end
	local out = {}
	local n = encode_value(v, out, 0, 1)
	return concat(out, "", 1, n)
end

---------------------------------------------------------------------------
-- decoding

local decode_value

local function fail(s, pos, what)
	if pos > #s then error(format("json: %s at the end of the text", what), 0) end
	error(format("json: %s at character %d", what, pos), 0)
end

local function skip(s, pos)
	local _, e = find(s, "^[ \t\r\n]*", pos)
	return e + 1
end

local hexval = {}
for i = 0, 9 do hexval[48 + i] = i end
for i = 0, 5 do hexval[65 + i] = 10 + i; hexval[97 + i] = 10 + i end

local function hex4(s, pos)
	local a, b, c, d = byte(s, pos, pos + 3)
	a, b, c, d = hexval[a], hexval[b], hexval[c], hexval[d]
	if not (a and b and c and d) then return nil end
	return ((a * 16 + b) * 16 + c) * 16 + d
end

local simple_escapes = {
	[34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n",
	[114] = "\r", [116] = "\t",
}

local function decode_string(s, pos)
	-- pos is just after the opening quote
	local e = find(s, '[%z\1-\31"\\]', pos)
	if not e then fail(s, #s + 1, "unterminated string") end
	local c = byte(s, e)
	if c == 34 then return sub(s, pos, e - 1), e + 1 end
	local parts, np = {}, 0
	while true do
		if c == 34 then
			np = np + 1
			parts[np] = sub(s, pos, e - 1)
			return concat(parts, "", 1, np), e + 1
		elseif c ~= 92 then
			fail(s, e, "control character in string")
		end
		np = np + 1
		parts[np] = sub(s, pos, e - 1)
		local x = byte(s, e + 1)
		local simple = simple_escapes[x]
		if simple then
			np = np + 1
			parts[np] = simple
			pos = e + 2
		elseif x == 117 then   -- \uXXXX
			local cp = hex4(s, e + 2)
			if not cp then fail(s, e, "bad \\u escape") end
			pos = e + 6
			if cp >= 0xD800 and cp <= 0xDBFF then
				local lo = byte(s, pos) == 92 and byte(s, pos + 1) == 117 and hex4(s, pos + 2)
				if lo and lo >= 0xDC00 and lo <= 0xDFFF then
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
					pos = pos + 6
				else
					cp = 0xFFFD
				end
			elseif cp >= 0xDC00 and cp <= 0xDFFF then
				cp = 0xFFFD
			end
			np = np + 1
			parts[np] = utf8char(cp)
		else
			fail(s, e, "bad escape")
		end
		e = find(s, '[%z\1-\31"\\]', pos)
		if not e then fail(s, #s + 1, "unterminated string") end
		c = byte(s, e)
	end
end

local function decode_number(s, pos)
	local _, e = find(s, "^-?%d+", pos)
	if not e then fail(s, pos, "unexpected character") end
	local digits_at = byte(s, pos) == 45 and pos + 1 or pos
	if byte(s, digits_at) == 48 and e > digits_at then fail(s, pos, "leading zero in number") end
	local is_float = false
	if byte(s, e + 1) == 46 then
		local _, fe = find(s, "^%d+", e + 2)
		if not fe then fail(s, e + 1, "bad number") end
		e, is_float = fe, true
	end
	local x = byte(s, e + 1)
	if x == 101 or x == 69 then
		local _, xe = find(s, "^[-+]?%d+", e + 2)
		if not xe then fail(s, e + 1, "bad number") end
		e, is_float = xe, true
	end
	local text = sub(s, pos, e)
	local v = tonumber(text)
	if is_float then v = v + 0.0 end
	return v, e + 1
end

local function decode_array(s, pos, depth)
	if depth > MAX_DEPTH then fail(s, pos, "nesting deeper than " .. MAX_DEPTH) end
	local t, n = setmetatable({}, M.array_mt), 0
	pos = skip(s, pos)
	if byte(s, pos) == 93 then return t, pos + 1 end
	while true do
		local v
		v, pos = decode_value(s, pos, depth)
		n = n + 1
		t[n] = v
		pos = skip(s, pos)
		local c = byte(s, pos)
		if c == 93 then return t, pos + 1 end
		if c ~= 44 then fail(s, pos, "expected ',' or ']'") end
		pos = pos + 1
	end
end

local function decode_object(s, pos, depth)
	if depth > MAX_DEPTH then fail(s, pos, "nesting deeper than " .. MAX_DEPTH) end
	local t = setmetatable({}, M.object_mt)
	pos = skip(s, pos)
	if byte(s, pos) == 125 then return t, pos + 1 end
	while true do
		if byte(s, pos) ~= 34 then fail(s, pos, "expected a string key") end
		local k
		k, pos = decode_string(s, pos + 1)
		pos = skip(s, pos)
		if byte(s, pos) ~= 58 then fail(s, pos, "expected ':'") end
		local v
		v, pos = decode_value(s, pos + 1, depth)
		t[k] = v
		pos = skip(s, pos)
		local c = byte(s, pos)
		if c == 125 then return t, pos + 1 end
		if c ~= 44 then fail(s, pos, "expected ',' or '}'") end
		pos = skip(s, pos + 1)
	end
end

decode_value = function(s, pos, depth)
	pos = skip(s, pos)
	local c = byte(s, pos)
	if c == 34 then return decode_string(s, pos + 1)
	elseif c == 123 then return decode_object(s, pos + 1, depth + 1)
	elseif c == 91 then return decode_array(s, pos + 1, depth + 1)
	elseif c == 116 then
		if sub(s, pos, pos + 3) == "true" then return true, pos + 4 end
	elseif c == 102 then
		if sub(s, pos, pos + 4) == "false" then return false, pos + 5 end
	elseif c == 110 then
		if sub(s, pos, pos + 3) == "null" then return M.null, pos + 4 end
	elseif c == 45 or (c and c >= 48 and c <= 57) then
		return decode_number(s, pos)
	elseif not c then
		fail(s, pos, "unexpected end of text")
	end
	fail(s, pos, "unexpected character")
end

--- decode(text[, init]) -> value: the whole text (from byte init) must be
-- one JSON value, with only whitespace around it. Raises on bad input.
function M.decode(s, init)
	if type(s) ~= "string" then error("json: decode expects a string, got " .. type(s), 2) end
	init = init or 1
	if find(s, "[\128-\255]", init) then
		local ok, bad = utf8len(s, init)
		if not ok then error(format("json: text is not UTF-8 (byte %d)", bad), 0) end
	end
	local v, pos = decode_value(s, init, 0)
	pos = skip(s, pos)
	if pos <= #s then fail(s, pos, "trailing garbage") end
	return v
end

--- try_decode(text[, init]) -> value | nil, message
function M.try_decode(s, init)
	local ok, v = pcall(M.decode, s, init)
	if ok then return v end
	return nil, v
end

return M
