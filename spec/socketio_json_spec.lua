-- lws.json: arrays and objects kept apart, exact integers, escaping, and
-- hostile input refused with the byte where it went wrong.
local json = require "lws.json"

describe("lws.json", function()
	local function rt(s) return json.encode(json.decode(s)) end

	it("keeps [] and {} apart through a round trip", function()
		for _, s in ipairs { "[]", "{}", "[[],{}]", '{"a":[],"b":{},"c":[{}],"d":[[]]}', "[{},[{}]]" } do
			assert.are.equal(s, rt(s))
		end
		assert.is_true(json.is_array(json.decode("[]")))
		assert.is_true(json.is_object(json.decode("{}")))
	end)

	it("encodes plain tables: sequences as arrays, the rest (and {}) as objects", function()
		assert.are.equal("[1,2,3]", json.encode { 1, 2, 3 })
		assert.are.equal("{}", json.encode {})
		assert.are.equal("[]", json.encode(json.array {}))
		assert.are.equal("{}", json.encode(json.object {}))
		assert.are.equal('{"a":1,"b":[true,false]}', json.encode { b = { true, false }, a = 1 })
		assert.are.equal('{"1":"x","3":"y"}', json.encode { [1] = "x", [3] = "y" })
		assert.are.equal('{"1":"x","k":"v"}', json.encode { "x", k = "v" })
		assert.are.equal("[1,null,3]", json.encode { 1, json.null, 3 })
		assert.are.equal("null", json.encode(nil))
		assert.are.equal("[[1,2]]", json.encode { json.raw("[1,2]") })
	end)

	it("keeps integers exact and writes floats like JavaScript", function()
		assert.are.equal(9007199254740993, json.decode("9007199254740993"))
		assert.are.equal("9007199254740993", rt("9007199254740993"))
		assert.are.equal("9223372036854775807", rt("9223372036854775807"))
		assert.are.equal("-9223372036854775808", rt("-9223372036854775808"))
		assert.are.equal(math.maxinteger, json.decode("9223372036854775807"))
		assert.are.equal("12345678901234567000", rt("12345678901234567890"))
		assert.are.equal("1e+21", rt("1e21"))
		assert.are.equal("0.1", rt("0.1"))
		assert.are.equal("1e-7", rt("1e-7"))
		assert.are.equal("3", rt("3.0"))
		assert.are.equal("-1.25", rt("-1.25"))
		assert.are.equal("null", json.encode(0 / 0))
		assert.are.equal("null", json.encode(math.huge))
		assert.are.equal("float", math.type(json.decode("1.0")))
		assert.are.equal("integer", math.type(json.decode("-12")))
	end)

	it("escapes control characters, quotes, backslashes, U+2028 and U+2029", function()
		assert.are.equal('"\\u0000\\u001e\\n\\t\\"\\\\/\\u2028\\u2029€😀"',
			json.encode("\0\30\n\t\"\\/\u{2028}\u{2029}€😀"))
		assert.are.equal("\0\30\n\t\"\\/\u{2028}€😀", json.decode('"\\u0000\\u001e\\n\\t\\"\\\\\\/\\u2028€\\ud83d\\ude00"'))
		assert.are.equal("\u{FFFD}x", json.decode('"\\ud800x"'))   -- a lone surrogate
		assert.are.equal("\u{FFFD}", json.decode('"\\udc00"'))
	end)

	it("refuses what is not JSON, saying where", function()
		local rows = {
			{ "[1,]", "json: unexpected character at character 4" },
			{ '{"a":1,}', "json: expected a string key at character 8" },
			{ "01", "json: leading zero in number at character 1" },
			{ "[", "json: unexpected end of text at the end of the text" },
			{ '"\1"', "json: control character in string at character 2" },
			{ "nul", "json: unexpected character at character 1" },
			{ "1.", "json: bad number at character 2" },
			{ ".5", "json: unexpected character at character 1" },
			{ "{a:1}", "json: expected a string key at character 2" },
			{ "[1] x", "json: trailing garbage at character 5" },
			{ '"\255"', "json: text is not UTF-8 (byte 2)" },
			{ '"\\x"', "json: bad escape at character 2" },
			{ '"\\u12"', "json: bad \\u escape at character 2" },
			{ '"abc', "json: unterminated string at the end of the text" },
			{ "", "json: unexpected end of text at the end of the text" },
			{ "NaN", "json: unexpected character at character 1" },
			{ string.rep("[", 1001) .. string.rep("]", 1001), "json: nesting deeper than 1000 at character 1002" },
		}
		for _, row in ipairs(rows) do
			local v, err = json.try_decode(row[1])
			assert.is_nil(v, row[1])
			assert.are.equal(row[2], err)
		end
		assert.are.equal(1000, #json.encode(json.decode(string.rep("[", 1000) .. string.rep("]", 1000))) // 2)
	end)

	it("refuses to encode what JSON cannot say", function()
		local function err(v)
			local ok, e = pcall(json.encode, v)
			assert.is_false(ok)
			return e
		end
		assert.are.equal("json: cannot encode a string that is not UTF-8 (byte 2)", err { "a\255" })
		assert.are.equal("json: cannot encode a value of type function", err { f = print })
		assert.are.equal("json: cannot encode a table key of type boolean", err { [true] = 1 })
		local cycle = {}
		cycle.self = cycle
		assert.are.equal("json: cannot encode, nesting deeper than 1000 (a cycle?)", err(cycle))
	end)

	it("decodes with an offset, and big strings quickly", function()
		assert.are.same({ 1 }, json.decode('42["x"][1]', 8))
		local big = string.rep("é😀", 200000)
		local s = json.encode { content = big }
		assert.are.equal(big, json.decode(s).content)
	end)
end)
