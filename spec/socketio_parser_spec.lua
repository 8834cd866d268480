-- lws.socketio.parser: Engine.IO payloads (v3 lengths in UTF-16 units,
-- v4 \x1e, binary forms) and Socket.IO packets, byte for byte.
local P = require "lws.socketio.parser"
local json = require "lws.json"

describe("lws.socketio.parser", function()
	it("counts UTF-16 code units like JavaScript", function()
		assert.are.equal(0, P.utf16_len(""))
		assert.are.equal(3, P.utf16_len("abc"))
		assert.are.equal(1, P.utf16_len("€"))
		assert.are.equal(2, P.utf16_len("😀"))
		assert.are.equal(44, P.utf16_len('42["login",{"userid":"u1","username":"€😀"}]'))
		local s = "a😀b"
		assert.are.equal(2, P.utf16_take(s, 1, 1))
		assert.are.equal(6, P.utf16_take(s, 1, 3))
		assert.is_nil(P.utf16_take(s, 1, 2))   -- half a surrogate pair
		assert.are.equal(7, P.utf16_take(s, 1, 4))
		assert.is_nil(P.utf16_take(s, 1, 5))
	end)

	it("does base64 both ways", function()
		for _, s in ipairs { "", "\1", "\1\2", "\1\2\3", "\0\255\128abc" } do
			assert.are.equal(s, P.unbase64(P.base64(s)))
		end
		assert.are.equal("AQID", P.base64("\1\2\3"))
		assert.is_nil(P.unbase64("A"))
		assert.is_nil(P.unbase64("AQ!D"))
	end)

	it("encodes polling payloads for each protocol", function()
		local pk = { '42["a"]', { bin = "\1\2\3" }, "3" }
		assert.are.equal('42["a"]\x1ebAQID\x1e3', (P.encode_payload(pk, 4)))
		assert.are.equal('7:42["a"]6:b4AQID1:3', (P.encode_payload(pk, 3, false)))
		local body, ctype = P.encode_payload(pk, 3, true)
		assert.are.equal("application/octet-stream", ctype)
		assert.are.equal('\0\7\255' .. '42["a"]' .. '\1\4\255\4\1\2\3' .. '\0\1\2553', body)
		assert.are.equal("4:4€😀", (P.encode_payload({ "4€😀" }, 3)))
		assert.are.equal("3:4😀", (P.encode_payload({ "4😀" }, 3, true)))
		assert.are.equal("0:", (P.encode_payload({}, 3)))
	end)

	it("decodes polling payloads and refuses broken ones", function()
		assert.are.same({ '42["a"]', { bin = "\1\2\3" }, "3" }, P.decode_payload('42["a"]\x1ebAQID\x1e3', 4))
		assert.are.same({ "4€😀", "2" }, P.decode_payload("4:4€😀1:2", 3))
		assert.are.same({ '42["a"]', { bin = "\1\2\3" } },
			P.decode_payload('\0\7\255' .. '42["a"]' .. '\1\4\255\4\1\2\3', 3, true))
		assert.are.same({ { bin = "\1\2\3" } }, P.decode_payload("6:b4AQID", 3))
		for _, bad in ipairs { "", "5:abc", "x:4", "2:9x", "1:4:", "2:4😀" } do
			assert.is_nil((P.decode_payload(bad, 3)), bad)
		end
		for _, bad in ipairs { "", "9", "4\x1e", "b!!" } do
			assert.is_truthy(select(2, P.decode_payload(bad, 4)), bad)
		end
		-- EIO 4 keeps what came before the bad packet
		local good, err = P.decode_payload('42["a"]\x1ezz\x1e3', 4)
		assert.are.same({ '42["a"]' }, good)
		assert.are.equal("bad packet", err)
		assert.is_nil((P.decode_payload("4\255", 4)))
		assert.is_nil((P.decode_payload("\0\9\255abc", 3, true)))
	end)

	it("encodes Socket.IO packets with namespaces, ack ids and attachments", function()
		assert.are.equal('2["hi"]', (P.encode(P.EVENT, "/", nil, { n = 1, "hi" }, true)))
		assert.are.equal('2/admin,7["hi",null,[]]',
			(P.encode(P.EVENT, "/admin", 7, { n = 3, "hi", nil, json.array {} }, true)))
		assert.are.equal("3/x,12[]", (P.encode(P.ACK, "/x", "12", { n = 0 }, true)))
		assert.are.equal("1/admin,", (P.encode(P.DISCONNECT, "/admin")))
		assert.are.equal('0{"sid":"abc"}', (P.encode(P.CONNECT, "/", nil, json.object { sid = "abc" })))
		local text, atts = P.encode(P.EVENT, "/", nil, { n = 3, "bin", P.binary("\1\2"), { deep = { P.binary("x") } } }, true)
		assert.are.equal('52-["bin",{"_placeholder":true,"num":0},{"deep":[{"_placeholder":true,"num":1}]}]', text)
		assert.are.same({ "\1\2", "x" }, atts)
		assert.has_error(function() json.encode { P.binary("x") } end,
			"a socket.io binary can only be sent as an event argument")
	end)

	it("decodes Socket.IO packets as socket.io-parser does", function()
		local p = P.decode('2/admin,12["ev",1]')
		assert.are.equal(P.EVENT, p.type)
		assert.are.equal("/admin", p.nsp)
		assert.are.equal("12", p.id)
		assert.are.equal("ev", p.data[1])
		p = P.decode('51-["x",{"_placeholder":true,"num":0}]')
		assert.are.equal(1, p.attachments)
		local data = P.reconstruct(p.data, { "\9" })
		assert.are.equal("\9", data[2].data)
		assert.is_nil((P.reconstruct(json.decode('[{"_placeholder":true,"num":1}]'), { "a" })))
		local rows = {
			{ "9", "unknown packet type" },
			{ '2{"a":1}', "invalid payload" },
			{ '2["disconnect"]', "invalid payload" },
			{ "2[]", "invalid payload" },
			{ '2["a"', "invalid payload (json: expected ',' or ']' at the end of the text)" },
			{ "0[]", "invalid payload" },
			{ "1{}", "invalid payload" },
			{ "3{}", "invalid payload" },
			{ '5-["x"]', "illegal attachments" },
			{ '50-["x"]', "illegal attachments" },
			{ '511-["x"]', "too many attachments" },
		}
		for _, row in ipairs(rows) do
			local v, err = P.decode(row[1])
			assert.is_nil(v, row[1])
			assert.are.equal(row[2], err)
		end
		assert.is_truthy(P.decode("0"))
		assert.is_truthy(P.decode('0{"token":"x"}'))
		assert.is_truthy(P.decode('4"refused"'))
		assert.is_truthy(P.decode('2[1,"numeric event names"]'))
	end)
end)
