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
			for _, name in ipairs { "socket.io.js", "socket.io.js.map", v == "4" and "socket.io.msgpack.min.js" or nil } do
				local ours = H.read_file(H.ROOT .. "/lua/lws/socketio/client" .. v .. "/" .. name)
				local theirs = H.read_file(H.ROOT .. "/node_modules/" .. npm .. "/dist/" .. name)
				assert.is_true(ours ~= nil and ours == theirs, "client" .. v .. "/" .. name)
			end
		end
	end)

	describe("option tables", function()
		-- each check raises at the caller's line, names the option and the value
		local function raises_here(fn, pattern)
			local ok, err = pcall(fn)
			assert.is_false(ok)
			assert.is_string(err)
			assert.matches("^spec/api_spec%.lua:%d+: " .. pattern, err)
		end

		it("server:static refuses unknown keys and wrong values", function()
			local srv = H.server()
			local dir = H.ROOT .. "/examples"
			raises_here(function() srv:static("/a/", dir, { gzp = false }) end,
				"unknown option 'gzp' %(did you mean 'gzip'%?%)")
			raises_here(function() srv:static("/b/", dir, { header = {} }) end,
				"unknown option 'header' %(did you mean 'headers'%?%)")
			raises_here(function() srv:static("/c/", dir, { index = 5 }) end,
				"option 'index' must be a string, got number 5")
			raises_here(function() srv:static("/d/", dir, { cache_control = true }) end,
				"option 'cache_control' must be a string, got boolean true")
			srv:static("/e/", dir, { index = "index.html", cache_control = "max-age=60", gzip = false, headers = {} })
		end)

		it("every constructor points at its caller and shows the value", function()
			raises_here(function() local s = lws.server { port = "80x" }; return s end,
				"option 'port' must be an integer in 0%.%.65535, got string \"80x\"")
			raises_here(function() local s = lws.server { tls = { cert = "a", key = "b", kye = 1 } }; return s end,
				"unknown option 'tls%.kye' %(did you mean 'tls%.key'%?%)")
			local srv = H.server()
			raises_here(function() local s = lws.socketio(srv, { pingg = 1 }); return s end,
				"unknown option 'pingg'")
			raises_here(function() local s = require("lws.socketio").new(srv, { path = 1 }); return s end,
				"option 'path' must be a string, got number 1")
			raises_here(function() local c = lws.redis.connect { nope = 1 }; return c end, "unknown option 'nope'")
			raises_here(function() local c = lws.redis.connect { port = "x" }; return c end,
				"option 'port' must be a number, got string \"x\"")
			raises_here(function() local w = lws.WebSocket("ws://127.0.0.1:1/", nil, { insecure = 1 }); return w end,
				"option 'insecure' must be a boolean, got number 1")
			raises_here(function() local b = lws.bus { chanel = "x" }; return b end,
				"unknown option 'chanel' %(did you mean 'channel'%?%)")
			raises_here(function() srv:topic("t", { conflat = true }) end,
				"unknown option 'conflat' %(did you mean 'conflate'%?%)")
			raises_here(function() local s = lws.server { port = 0, heartbeat = { intervall = 5 } }; return s end,
				"unknown option 'heartbeat%.intervall' %(did you mean 'heartbeat%.interval'%?%)")
		end)

		it("a TLS certificate or key that cannot be used is named with the reason", function()
			local certs = require "certs"
			local C = certs.get()
			local s, err, code = lws.server { port = 0, tls = { cert = C.cert, key = C.dir .. "/missing.pem" } }
			assert.is_nil(s)
			assert.are.equal("tls", code)
			assert.are.equal("cannot read the TLS key " .. C.dir .. "/missing.pem: No such file or directory", err)
			s, err, code = lws.server { port = 0, tls = { cert = C.cert, key = C.other_key } }
			assert.is_nil(s)
			assert.are.equal("tls", code)
			assert.matches("^cannot use the TLS key " .. C.other_key:gsub("%p", "%%%0") .. ": .*mismatch", err)
			s, err = lws.server { port = 0, tls = { cert = C.key, key = C.key } }
			assert.is_nil(s)
			assert.matches("^cannot use the TLS certificate ", err)
		end)

		it("an error thrown as a table is reported with its fields", function()
			local reported
			local saved = H.errors
			local t = lws.set_timeout(function() error({ code = 42, message = "boom" }) end, 1)
			H.run_until(function()
				for i, m in ipairs(saved) do
					if m:find("error object", 1, true) then reported = table.remove(saved, i) return true end
				end
			end, 5000, "the error report")
			assert.is_not_nil(t)
			assert.matches("code = 42", reported)
			assert.matches('message = "boom"', reported)
		end)
	end)
end)
