-- Valid conversations written the way real clients write them: several
-- frames in one send(), fragmented messages with Pings between the
-- fragments, the byte stream chopped into arbitrary TCP writes. Every
-- echo must come back byte for byte and the Close must be answered.
-- (A write behind lws's own buffered tail once read as a failed write and
-- dropped the connection: csrc/conn.c conn_writeable.)
local H = require "spec.helper"

local ZERO = { 0, 0, 0, 0 }

-- read whole messages (reassembling fragments) and pongs from raw r
local function reader(r)
	local msgs, pongs, partial, ptype = {}, {}, nil, nil
	local closed
	local function pump(ms)
		local f = r:read_frame(ms)
		if not f then return false end
		assert.is_false(f.masked)
		assert.are.equal(0, f.rsv)
		if f.opcode == 10 then pongs[#pongs + 1] = f.payload
		elseif f.opcode == 8 then closed = f
		elseif f.opcode == 0 then
			assert.is_not_nil(partial, "continuation without a message")
			partial[#partial + 1] = f.payload
		else
			assert.is_nil(partial, "new message inside a fragmented one")
			partial, ptype = { f.payload }, f.opcode
		end
		if partial and f.fin and f.opcode ~= 10 and f.opcode ~= 8 then
			msgs[#msgs + 1] = { opcode = ptype, data = table.concat(partial) }
			partial = nil
		end
		return true
	end
	return { msgs = msgs, pongs = pongs, pump = pump, closed = function() return closed end }
end

local function payload(size, binary, seed)
	if binary then
		local t = {}
		for i = 1, math.min(size, 251) do t[i] = string.char((i * 31 + seed) % 256) end
		local block = table.concat(t)
		return string.rep(block, size // 251 + 1):sub(1, size)
	end
	return string.rep(string.char(97 + seed % 26), size)
end

-- write bytes in random pieces, letting the loop run between them
local function chopped_send(r, bytes, rng)
	local off = 1
	while off <= #bytes do
		local n = rng(1, 3) == 1 and rng(1, 7) or rng(1, 40000)
		r:send(bytes:sub(off, off + n - 1))
		off = off + n
		if rng(1, 4) == 1 then H.run_for(1) end
	end
end

local function check_echoes(rd, sent, what)
	H.run_until(function()
		while #rd.msgs < #sent do
			if not rd.pump(10000) then return true end
		end
		return true
	end, 30000, what)
	assert.are.equal(#sent, #rd.msgs, what .. ": echoes")
	for i, m in ipairs(sent) do
		local got = rd.msgs[i]
		assert.are.equal(m.opcode, got.opcode, what .. ": opcode of message " .. i)
		assert.are.equal(#m.data, #got.data, what .. ": length of message " .. i)
		assert.is_true(m.data == got.data, what .. ": bytes of message " .. i)
	end
end

local function clean_close(r, rd)
	r:send(H.frame(8, H.close_payload(1000, "bye"), { key = ZERO }))
	H.run_until(function() return rd.closed() or not rd.pump(5000) end, 10000, "the server's Close")
	local c = rd.closed()
	assert.is_not_nil(c, "the server answered our Close")
	assert.are.equal(1000, string.unpack(">I2", c.payload))
	r:wait_closed(5000)
end

describe("conversation", function()
	after_each(H.clean)

	it("echoes four frames written in one send (65,535 B, 15,358 B, 38,273 B, 75 B) and answers the Close", function()
		local _, port = H.echo_server()
		local r = H.raw(port)
		assert.are.equal(101, r:handshake("/"))
		local sent = {
			{ opcode = 2, data = payload(65535, true, 1) },
			{ opcode = 2, data = payload(15358, true, 2) },
			{ opcode = 1, data = string.rep("a", 38273) },
			{ opcode = 1, data = payload(75, false, 3) },
		}
		local bytes = {}
		for i, m in ipairs(sent) do bytes[i] = H.frame(m.opcode, m.data, { key = ZERO }) end
		r:send(table.concat(bytes))
		local rd = reader(r)
		check_echoes(rd, sent, "four frames")
		clean_close(r, rd)
	end)

	it("echoes many back-to-back sequences of mixed sizes, fragmented, chopped and with Pings between frames", function()
		local _, port = H.echo_server()
		local seed = tonumber(os.getenv("LWS_SEED") or "") or 14
		local state = seed
		local function rng(a, b)   -- deterministic: a failure replays with LWS_SEED
			state = (state * 1103515245 + 12345) % 2147483648
			return a + state % (b - a + 1)
		end
		local sizes = { 0, 1, 125, 126, 127, 65535, 65536, 65537, 16384, 100000 }
		local rounds = os.getenv("LWS_TEST_SLOW") and 4 or 12
		for round = 1, rounds do
			local r = H.raw(port)
			assert.are.equal(101, r:handshake("/"))
			local rd = reader(r)
			local sent, bytes, pings = {}, {}, 0
			for i = 1, rng(3, 8) do
				local size = rng(1, 2) == 1 and sizes[rng(1, #sizes)] or rng(0, 100000)
				local binary = rng(1, 2) == 1
				local m = { opcode = binary and 2 or 1, data = payload(size, binary, i + round) }
				sent[#sent + 1] = m
				local nfrag = (size > 1 and rng(1, 3) == 1) and rng(2, 5) or 1
				local off = 1
				for f = 1, nfrag do
					local last = f == nfrag
					local take = last and (#m.data - off + 1) or rng(0, (#m.data - off + 1) // 2)
					local piece = m.data:sub(off, off + take - 1)
					off = off + take
					bytes[#bytes + 1] = H.frame(f == 1 and m.opcode or 0, piece, { fin = last, key = ZERO })
					if rng(1, 3) == 1 then
						pings = pings + 1
						bytes[#bytes + 1] = H.frame(9, "p" .. pings, { key = ZERO })
					end
				end
			end
			chopped_send(r, table.concat(bytes), rng)
			check_echoes(rd, sent, ("seed %d round %d"):format(seed, round))
			-- every Pong answers a Ping we sent, in order. (libwebsockets
			-- 4.1.6 keeps one pending Pong and drops Pings that arrive
			-- while it waits: not every Ping is answered yet; issue 14)
			local last = 0
			for _, p in ipairs(rd.pongs) do
				local n = tonumber(p:match("^p(%d+)$"))
				assert.is_not_nil(n, "a Pong with a payload we sent")
				assert.is_true(n > last and n <= pings, "Pongs in order")
				last = n
			end
			clean_close(r, rd)
		end
	end)

	it("sends every ping(): three calls, three Pings in order, to Node's ws client", function()
		local srv, port = H.server()
		local results = {}
		srv:on("connection", function(ws)
			for _, p in ipairs { "a", "b", "c" } do results[#results + 1] = ws:ping(p) end
		end)
		local peer = H.node()
		peer:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
		peer:wait("open")
		for _, p in ipairs { "a", "b", "c" } do
			assert.are.equal(p, peer:wait("ping").data)
		end
		assert.are.same({ true, true, true }, results)
	end)

	it("sends every ping() of the client too, and says busy past its cap", function()
		local p = H.node(H.ROOT .. "/spec/peers/ws_server.js")
		p:cmd { cmd = "listen" }
		local port = math.tointeger(p:wait("listening").port)
		local ws = H.lws.WebSocket("ws://127.0.0.1:" .. port .. "/")
		local opened, res = false, {}
		ws:on("open", function()
			opened = true
			for _, d in ipairs { "x", "y", "z" } do res[#res + 1] = ws:ping(d) end
		end)
		H.run_until(function() return opened end, 5000, "open")
		for _, d in ipairs { "x", "y", "z" } do assert.are.equal(d, p:wait("ping").data) end
		assert.are.same({ true, true, true }, res)
		-- the cap: pings that cannot leave yet are refused, not merged
		local ok, err, code
		for _ = 1, 64 do
			ok, err, code = ws:ping("q")
			if not ok then break end
		end
		assert.is_nil(ok)
		assert.are.equal("busy", code)
		assert.is_string(err)
		ws:close()
	end)

	it("reports a server's protocol error after open with a string code, then closes 1007", function()
		local p = H.node(H.ROOT .. "/spec/peers/ws_server.js")
		p:cmd { cmd = "listen" }
		local port = math.tointeger(p:wait("listening").port)
		local ws = H.lws.WebSocket("ws://127.0.0.1:" .. port .. "/")
		local ev, closed
		ws.onopen = function() p:cmd { cmd = "send", b64 = H.base64("ok\xff\xfe") } end
		ws.onerror = function(e) ev = e end
		ws.onclose = function(e) closed = e end
		H.run_until(function() return closed end, 5000, "close")
		assert.is_not_nil(ev)
		assert.are.equal("invalid-utf8", ev.code)
		assert.are.equal(1007, ev.close_code)
		assert.are.equal("protocol error from 127.0.0.1:" .. port .. ": invalid UTF-8", ev.message)
		assert.are.equal(1007, closed.code)
		assert.are.equal(1007, p:wait("close").code)
	end)
end)
