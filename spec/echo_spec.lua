local H = require "helper"

describe("echo with the Node ws client", function()
	after_each(H.clean)

	it("echoes text and binary of every interesting size", function()
		local _, port = H.echo_server()
		local p = H.node()
		p:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
		p:wait("open")
		for _, size in ipairs { 0, 1, 125, 126, 65535, 65536, 1048576 } do
			for _, binary in ipairs { false, true } do
				p:cmd { cmd = "send", size = size, binary = binary }
				local ev = p:wait("message", 10000)
				assert.are.equal(size, ev.len)
				assert.are.equal(binary, ev.binary)
				assert.is_true(ev.match, "echo differs from what was sent")
			end
		end
		p:cmd { cmd = "close", code = 1000, reason = "done" }
		local ev = p:wait("close")
		assert.are.equal(1000, ev.code)
	end)
end)
