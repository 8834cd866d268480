-- lws.msgpack (csrc/msgpack.c): kinds kept both ways, the bytes Node's
-- notepack.io writes for the same values, hostile input refused with the
-- byte it stopped at.
local H = require "spec.helper"
local mp = require "lws.msgpack"
local json = require "lws.json"

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
local function unhex(s) return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)) end

describe("lws.msgpack", function()
	it("keeps integers, floats, text, binary, arrays, maps and null apart", function()
		for _, v in ipairs { 0, 1, 127, 128, 255, 256, 65535, 65536, 0xffffffff, 0x100000000, -1, -32, -33,
			-128, -129, -32768, -32769, -0x80000000, -0x80000001, math.mininteger, math.maxinteger } do
			local d = mp.decode(mp.encode(v))
			assert.are.equal(v, d)
			assert.are.equal("integer", math.type(d))
		end
		for _, v in ipairs { 1.5, 3.0, -0.25, 1e300, math.huge, -math.huge } do
			local d = mp.decode(mp.encode(v))
			assert.are.equal(v, d)
			assert.are.equal("float", math.type(d))
		end
		assert.is_true(mp.decode(mp.encode(0 / 0)) ~= mp.decode(mp.encode(0 / 0)))   -- NaN
		local v = mp.decode(mp.encode { "text", mp.binary("\0\1\255"), json.null, {}, json.array {},
			{ 1, 2 }, { a = { b = true } }, false })
		assert.is_true(json.is_array(v))
		assert.are.equal("text", v[1])
		assert.is_true(mp.is_binary(v[2]))
		assert.are.equal("\0\1\255", v[2].data)
		assert.are.equal(json.null, v[3])
		assert.is_true(json.is_object(v[4]))
		assert.is_true(json.is_array(v[5]))
		assert.is_true(json.is_array(v[6]))
		assert.are.equal(2, v[6][2])
		assert.is_true(v[7].a.b)
		assert.is_false(v[8])
		assert.are.equal(8, #v)
		-- a round trip gives the same bytes back
		local bytes = mp.encode(v)
		assert.are.equal(bytes, mp.encode(mp.decode(bytes)))
		assert.is_nil(mp.decode("\xc0"))
		assert.are.equal("\xc0", mp.encode(json.null))
	end)

	it("writes the bytes notepack.io writes (the captured Redis adapter broadcast, lengths at each boundary)", function()
		local msg = mp.encode { "8Np8-E", mp.map({ "type", "data", "nsp" }, { type = 2, data = { "all", "warm-1-5umxi9" },
			nsp = "/" }), mp.map({ "rooms", "except", "flags" }, { rooms = json.array {}, except = json.array {}, flags = {} }) }
		assert.are.equal("93a6384e70382d4583a47479706502a46461746192a3616c6cad7761726d2d312d35756d786939a36e7370a12f"
			.. "83a5726f6f6d7390a6657863657074" .. "90a5666c61677380", hex(msg))
		-- the same values through Node's notepack.io
		local cases = { 0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128, -129,
			-32768, -32769, -2147483648, -2147483649, 1.5, true, false, ("x"):rep(31), ("x"):rep(32), ("x"):rep(255),
			("x"):rep(256), ("x"):rep(65536), mp.binary(("b"):rep(255)), mp.binary(("b"):rep(256)),
			mp.binary(("b"):rep(65536)) }
		local arr = json.array {}
		for i = 1, 16 do arr[i] = i end
		cases[#cases + 1] = arr
		local js = {}
		for i, c in ipairs(cases) do
			local src
			if mp.is_binary(c) then src = ("Buffer.alloc(%d, 'b')"):format(#c.data)
			elseif type(c) == "string" then src = ("'x'.repeat(%d)"):format(#c)
			elseif type(c) == "table" then src = "Array.from({length: 16}, (_, i) => i + 1)"
			else src = tostring(c) end
			js[i] = src
		end
		local script = ("const e = require('notepack.io').encode; for (const v of [%s]) console.log(e(v).toString('hex'))")
			:format(table.concat(js, ","))
		local p = assert(io.popen("cd " .. H.shell_quote(H.ROOT) .. " && env -u LD_PRELOAD node -e " .. H.shell_quote(script)))
		local i = 0
		for line in p:lines() do
			i = i + 1
			assert.are.equal(line, hex(mp.encode(cases[i])), "case " .. i)
		end
		p:close()
		assert.are.equal(#cases, i)
		-- and what notepack writes, we read
		assert.are.equal(json.null, mp.decode("\x91\xd4\x00\x00")[1])   -- undefined
		assert.are.equal(1000, mp.decode("\xd6\xff\x00\x00\x00\x01"))   -- new Date(1000)
		-- notepack's timestamp 64 and 96 forms: new Date(1500), new Date(-1500), new Date(1e12 + 7)
		assert.are.equal(1500, mp.decode(unhex("d7ff7735940000000001")))
		assert.are.equal(-1500, mp.decode(unhex("c70cff1dcd6500fffffffffffffffe")))
		assert.are.equal(1000000000007, mp.decode(unhex("d7ff01ab3f003b9aca00")))
	end)

	it("writes a map's keys sorted (numbers, then strings), so a table always gives the same bytes", function()
		local t = { b = 1, a = 2, [10] = 3, [2] = 4, [1.5] = 5, ab = 6 }
		assert.are.equal("86cb3ff80000000000000502040a03a16102a2616206a16201", hex(mp.encode(t)))
		local big = {}
		for i = 1, 200 do big["k" .. i] = i end
		assert.are.equal(mp.encode(big), mp.encode(mp.decode(mp.encode(big))))
	end)

	it("keeps the key order mp.map gives", function()
		local keys = { "z", "a", "m" }
		assert.are.equal("83a17a01a16102a16d03", hex(mp.encode(mp.map(keys, { a = 2, m = 3, z = 1 }))))
		assert.are.equal("82a17a01a16d03", hex(mp.encode(mp.map(keys, { m = 3, z = 1 }))))
	end)

	it("refuses hostile input with the byte it stopped at", function()
		local rows = {
			{ "", "msgpack: truncated at byte 0" },
			{ "c1", "msgpack: a byte that is no msgpack type at byte 0" },
			{ "9201", "msgpack: truncated at byte 2" },
			{ "0102", "msgpack: bytes after the value at byte 1" },
			{ "ddffffffff", "msgpack: truncated at byte 5" },
			{ "dfffffffff", "msgpack: truncated at byte 5" },
			{ "c6ffffffff00", "msgpack: truncated at byte 6" },
			{ "db00000005616263", "msgpack: truncated at byte 8" },
			{ "81c001", "msgpack: a map key that is nil or NaN at byte 1" },
			{ "81cb7ff800000000000001", "msgpack: a map key that is nil or NaN at byte 1" },
			{ "d50100ff", "msgpack: unsupported ext type at byte 0" },
			{ "cd01", "msgpack: truncated at byte 2" },
		}
		for _, r in ipairs(rows) do
			local v, err = mp.decode(unhex(r[1]))
			assert.is_nil(v)
			assert.are.equal(r[2], err, r[1])
		end
		local deep = ("\x91"):rep(1001) .. "\x01"
		local v, err = mp.decode(deep)
		assert.is_nil(v)
		assert.are.equal("msgpack: nesting too deep at byte 1000", err)
		local ok = mp.decode(("\x91"):rep(1000) .. "\x01")
		assert.are.equal(("\x91"):rep(1000) .. "\x01", mp.encode(ok))
	end)

	it("raises at the caller's line on what msgpack cannot hold", function()
		local t = {}
		t.t = t
		local line = debug.getinfo(1, "l").currentline
		local ok, err = pcall(function() local r = mp.encode(t); return r end)
		assert.is_false(ok)
		assert.matches("msgpack_spec.lua:" .. line + 1 .. ": msgpack: nesting deeper than 1000", err, 1, true)
		ok, err = pcall(mp.encode, print)
		assert.is_false(ok)
		assert.matches("cannot encode a function", err, 1, true)
		assert.has_error(function() mp.decode(42) end, "bad argument #1 to 'decode' (string expected, got number)")
	end)
end)
