-- The loop, timers, stop/shutdown and the log hook.
local H = require "helper"
local lws = require "lws"

describe("the loop and timers", function()
	after_each(H.clean)

	it("fires a timeout once, after its delay", function()
		local t0, fired = lws.now(), {}
		lws.set_timeout(function() fired[#fired + 1] = lws.now() - t0 end, 30)
		H.run_until(function() return #fired == 1 end)
		assert.is_true(fired[1] >= 29)
		H.run_for(60)
		assert.are.equal(1, #fired)
	end)

	it("repeats an interval from its due times, without drift", function()
		local t0, ticks = lws.now(), {}
		local iv
		iv = lws.set_interval(function()
			ticks[#ticks + 1] = lws.now() - t0
			if #ticks == 20 then lws.clear(iv) end
		end, 10)
		H.run_until(function() return #ticks == 20 end)
		for i, t in ipairs(ticks) do
			assert.is_true(t >= i * 10 - 1, ("tick %d at %.1f ms"):format(i, t))
		end
		-- each tick is scheduled from the intended due time, so the 20th is
		-- not 20 wake-up latencies late (loose bound: only drift fails it)
		assert.is_true(ticks[20] < 200 + 100 * H.SLOW, ("20th tick at %.1f ms"):format(ticks[20]))
		assert.is_false(iv:active())
	end)

	it("clears a timer before it fires, and a timer may stop itself", function()
		local fired = false
		local t = lws.set_timeout(function() fired = true end, 20)
		lws.clear(t)
		local n = 0
		local iv
		iv = lws.set_interval(function() n = n + 1; iv:stop() end, 5)
		H.run_for(60)
		assert.is_false(fired)
		assert.are.equal(1, n)
	end)

	it("run() returns when nothing is left to do", function()
		local n = 0
		lws.set_timeout(function() n = n + 1 end, 5)
		lws.set_timeout(function() n = n + 1 end, 10)
		assert.is_false(lws.run())
		assert.are.equal(2, n)
	end)

	it("run('nowait') returns at once; run('once') after one event", function()
		local fired = false
		lws.set_timeout(function() fired = true end, 20)
		assert.is_true(lws.run("nowait"))
		assert.is_false(fired)
		H.run_until(function() return fired end)
	end)

	it("stop() from a timer makes run() return promptly", function()
		local srv = H.server()   -- keeps the loop alive
		local t0 = lws.now()
		lws.set_timeout(function() lws.stop() end, 20)
		local guard = lws.set_timeout(function() error("stop() did not return from run()") end, 3000)
		lws.run()
		guard:stop()
		assert.is_true(lws.now() - t0 < 1000 * H.SLOW)
		assert.are.equal("lws.server", getmetatable(srv).__name)
	end)

	it("refuses to run the loop re-entrantly", function()
		local res
		lws.set_timeout(function() res = { lws.run() } end, 1)
		H.run_until(function() return res end)
		assert.are.same({ nil, "loop already running", "busy" }, res)
	end)

	it("checks timer arguments", function()
		assert.has_error(function() lws.set_timeout("x", 1) end,
			"bad argument #1 to 'set_timeout' (function expected, got string)")
		assert.has_error(function() lws.set_timeout(function() end, -1) end)
		assert.has_error(function() lws.set_interval(function() end, 0) end,
			"bad argument #2 to 'set_interval' (interval must be > 0 ms)")
	end)

	it("keeps running after an error in a timer, and reports it with a traceback", function()
		local n = 0
		local iv
		iv = lws.set_interval(function()
			n = n + 1
			if n == 1 then error("boom in timer") end
			if n == 3 then iv:stop() end
		end, 5)
		H.run_until(function() return n == 3 end)
		assert.are.equal(1, #H.errors)
		assert.matches("boom in timer", H.errors[1])
		assert.matches("stack traceback", H.errors[1])
	end)

	it("shutdown() from inside a callback ends the loop; a new server works after", function()
		local srv, port = H.echo_server()
		lws.set_timeout(function() lws.shutdown() end, 10)
		lws.run()
		assert.is_false(lws.stats().context)
		assert.are.same({ nil, "server is closed", "closed" }, { srv:port() })
		local _, port2 = H.echo_server()
		local p = H.node()
		p:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port2 .. "/" }
		p:wait("open")
		p:cmd { cmd = "send", data = "after shutdown" }
		assert.are.equal("after shutdown", p:wait("message").data)
		assert.is_true(port > 0)
	end)

	it("routes libwebsockets' own log through the log hook, quiet by default", function()
		lws.shutdown()
		local lines = {}
		lws.set_log(lws.LOG_ERR | lws.LOG_WARN | lws.LOG_NOTICE, function(level, line)
			lines[#lines + 1] = { level, line }
		end)
		H.server()   -- creating a context and a vhost logs notices
		lws.set_log(0)
		assert.is_true(#lines > 0)
		assert.are.equal("number", type(lines[1][1]))
		assert.are.equal("string", type(lines[1][2]))
		local n = #lines
		H.server { port = 0 }
		assert.are.equal(n, #lines)
	end)
end)
