-- permessage-deflate (RFC 7692) on the server side, with Node ws.
local H = require "helper"

local url = H.ws_url

local function deflate_client(port, deflate)
	local p = H.node()
	p:cmd { cmd = "connect", url = url(port), deflate = deflate == nil and true or deflate }
	return p, p:wait("open")
end

describe("permessage-deflate", function()
	after_each(H.clean)

	it("is negotiated when enabled and echoes every size intact", function()
		local _, port = H.echo_server { compression = true, max_message_size = 16 << 20 }
		local p, open = deflate_client(port)
		assert.are.equal("permessage-deflate", open.extensions)
		for _, size in ipairs { 0, 1, 125, 126, 4096, 65535, 65536, 1 << 20, 16 << 20 } do
			for _, binary in ipairs { false, true } do
				p:cmd { cmd = "send", size = size, binary = binary }
				local ev = p:wait("message", 30000)
				assert.are.same({ size, binary, true }, { ev.len, ev.binary, ev.match }, size)
			end
		end
		p:cmd { cmd = "ping", data = "with payload" }
		assert.are.equal("with payload", p:wait("pong").data)
	end)

	it("is off unless enabled", function()
		local srv, port = H.echo_server()
		local conn
		srv:on("connection", function(ws) conn = ws end)
		local _, open = deflate_client(port)
		assert.are.equal("", open.extensions)
		H.run_until(function() return conn end)
		assert.are.equal("", conn.extensions)
	end)

	it("shares one buffer between compressed broadcast recipients safely", function()
		local srv, port = H.server { compression = true }
		srv:on("connection", function(ws)
			ws:on("message", function(d) if d == "go" then
				for i = 1, 20 do srv:broadcast(("%d:"):format(i) .. string.rep(string.char(65 + i % 26), 256 * 1024)) end
			end end)
		end)
		local peers = {}
		for i = 1, 5 do peers[i] = deflate_client(port) end
		peers[1]:cmd { cmd = "send", data = "go", track = false }
		for _, p in ipairs(peers) do
			for i = 1, 20 do
				local ev = p:wait("message", 20000)
				assert.are.equal(256 * 1024 + #tostring(i) + 1, ev.len)
			end
		end
	end)

	it("honours server_no_context_takeover asked by the client or configured", function()
		local _, port = H.echo_server { compression = true }
		local p = deflate_client(port, { serverNoContextTakeover = true })
		for i = 1, 5 do
			p:cmd { cmd = "send", size = 10000 + i, binary = false }
			assert.is_true(p:wait("message").match)
		end
		local _, port2 = H.echo_server { compression = { server_no_context_takeover = true, level = 9 } }
		p = deflate_client(port2, { clientNoContextTakeover = true })
		for i = 1, 5 do
			p:cmd { cmd = "send", size = 20000 + i, binary = true }
			assert.is_true(p:wait("message").match)
		end
	end)

	it("enforces max_message_size on the inflated size (1009)", function()
		local _, port = H.echo_server { compression = true, max_message_size = 100000 }
		local p = deflate_client(port)
		p:cmd { cmd = "send", size = 100000 }
		assert.is_true(p:wait("message").match)
		-- a pattern compresses well: the wire carries far less than the limit
		p:cmd { cmd = "send", size = 100001 }
		assert.are.equal(1009, p:wait("close").code)
	end)

	it("checks its options", function()
		assert.has_error(function() H.server { compression = { bogus = true } } end, "unknown option 'compression.bogus'")
		assert.has_error(function() H.server { compression = { level = 11 } } end)
	end)
end)
