-- The API as the README spells it.
local H = require "helper"
local lws = H.lws

describe("the documented spelling", function()
	after_each(H.clean)

	it("lws.socketio is the module: callable, with binary() and the rest", function()
		local sio_mod = require "lws.socketio"
		assert.are.equal(sio_mod, lws.socketio)
		assert.is_function(lws.socketio.binary)
		local b = lws.socketio.binary("\0\1\2")
		assert.are.same(b, sio_mod.binary("\0\1\2"))
		local srv = H.server()
		local sio = lws.socketio(srv, {})
		assert.is_function(sio.on)
	end)

	it("no README example names a variable io (it would shadow Lua's io library)", function()
		local readme = H.read_file(H.ROOT .. "/README.md")
		for block in readme:gmatch("```lua\n(.-)```") do
			assert.is_nil(block:match("local%s+io%s*="), block)
			assert.is_nil(block:match("%f[%w_.]io:"), block)
		end
	end)

	it("ships the Socket.IO browser bundles equal to the npm packages the specs lock", function()
		for v, npm in pairs { ["2"] = "socket.io-client-v2", ["4"] = "socket.io-client" } do
			for _, name in ipairs { "socket.io.js", "socket.io.js.map" } do
				local ours = H.read_file(H.ROOT .. "/lua/lws/socketio/client" .. v .. "/" .. name)
				local theirs = H.read_file(H.ROOT .. "/node_modules/" .. npm .. "/dist/" .. name)
				assert.is_true(ours ~= nil and ours == theirs, "client" .. v .. "/" .. name)
			end
		end
	end)
end)
