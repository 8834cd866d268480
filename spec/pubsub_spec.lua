-- Broadcast, topics, slow consumers and conflation.
local H = require "helper"
local lws = require "lws"

local url = H.ws_url

-- stop reading a raw client's socket (the kernel buffers fill, then the
-- server's queue for it grows)
local function stall(r)
	if r.watch then r.watch:close(); r.watch = nil end
end
local function unstall(r)
	r.watch = lws.watch(r.sock:getfd(), function() r:_read() end)
end

describe("broadcast and pub/sub", function()
	after_each(H.clean)

	it("fans one publisher out to 500 clients, exactly once and in order", function()
		local srv, port = H.server()
		local subscribed = 0
		srv:on("connection", function(ws)
			ws:on("message", function(d)
				if d == "sub" then ws:subscribe("news"); subscribed = subscribed + 1 end
			end)
		end)
		local p = H.node()
		p:cmd { cmd = "fanout", url = url(port), clients = 500, hello = "sub", expect = 200 }
		p:wait("fanout-open", 30000)
		H.run_until(function() return subscribed == 500 end, 10000)
		assert.are.equal(500, srv:subscribers("news"))
		for i = 1, 200 do
			local queued, refused = srv:publish("news", "news:" .. i)
			assert.are.same({ 500, 0 }, { queued, refused })
		end
		local ev = p:wait("fanout-done", 60000)
		assert.are.same({ 500, 0 }, { ev.finished, ev.nerrors }, table.concat(ev.errors, "\n"))
		p:cmd { cmd = "fanout_close" }
		H.run_until(function() return srv:subscribers("news") == 0 end, 10000)
	end)

	it("broadcasts to everyone, or everyone but the sender", function()
		local srv, port = H.server()
		srv:on("connection", function(ws)
			ws:on("message", function(d)
				if d == "all" then srv:broadcast("to-all")
				else srv:broadcast("to-others", false, { except = ws }) end
			end)
		end)
		local a, b = H.node(), H.node()
		for _, p in ipairs { a, b } do
			p:cmd { cmd = "connect", url = url(port) }
			p:wait("open")
		end
		a:cmd { cmd = "send", data = "all", track = false }
		assert.are.equal("to-all", a:wait("message").data)
		assert.are.equal("to-all", b:wait("message").data)
		a:cmd { cmd = "send", data = "others", track = false }
		assert.are.equal("to-others", b:wait("message").data)
		H.run_for(100)
		assert.is_nil(a:has("message"))
		assert.has_error(function() srv:broadcast(42) end)
	end)

	it("fails a reader that never reads with 1008; the others get everything", function()
		local srv, port = H.server { max_queue_bytes = 256 * 1024, slow_consumer = "close" }
		local closes, max_buffered = {}, 0
		local stalled_conn
		srv:on("connection", function(ws, req)
			ws:subscribe("feed")
			if req.query.stall then stalled_conn = ws end
			ws:on("close", function(code) closes[#closes + 1] = { code, req.query.stall ~= nil } end)
		end)
		local p = H.node()
		p:cmd { cmd = "fanout", url = url(port), clients = 3, expect = 2000, progress = 50 }
		p:wait("fanout-open")
		local r = H.raw(port)
		assert.are.equal(101, (r:handshake("/?stall=1")))
		stall(r)
		H.run_until(function() return stalled_conn and srv:subscribers("feed") == 4 end)
		local payload = string.rep("x", 4000)
		-- batches of 200 KB: within a reading client's 256 KiB queue
		for batch = 0, 39 do
			for i = 1, 50 do srv:publish("feed", "feed:" .. (batch * 50 + i) .. ":" .. payload) end
			if stalled_conn.readyState == lws.OPEN then
				max_buffered = math.max(max_buffered, stalled_conn.bufferedAmount)
			end
			-- the readers keep up before the next batch
			for _ = 1, 3 do p:wait("fanout-progress", 20000) end
		end
		local ev = p:wait("fanout-done", 30000)
		assert.are.same({ 3, 0 }, { ev.finished, ev.nerrors }, table.concat(ev.errors, "\n"))
		assert.is_true(max_buffered <= 256 * 1024, "queue grew to " .. max_buffered)
		unstall(r)
		H.run_until(function() return #closes >= 1 end, 20000)
		assert.are.same({ 1008, true }, closes[1])
		assert.is_true(stalled_conn:stats().dropped > 0)
	end)

	it("keeps only the newest message of a conflating topic for a slow reader", function()
		local srv, port = H.server()
		srv:topic("prices", { conflate = true })
		local conn
		srv:on("connection", function(ws) ws:subscribe("prices"); conn = ws end)
		local r = H.raw(port)
		assert.are.equal(101, (r:handshake("/")))
		H.run_until(function() return conn end)
		stall(r)
		local big = string.rep("p", 8000)
		-- fill the socket buffers first so later prices must wait in our queue
		for i = 1, 2000 do srv:publish("prices", "price:" .. i .. ":" .. big) end
		assert.is_true(conn.bufferedAmount <= 8000 + 20, "queue holds " .. conn.bufferedAmount)
		unstall(r)
		local last, count = nil, 0
		H.run_until(function()
			while true do
				local ok, f = pcall(r.read_frame, r, 50)
				if not ok or not f then return last == 2000 end
				count = count + 1
				last = tonumber(f.payload:match("^price:(%d+)"))
				if last == 2000 then return true end
			end
		end, 20000, "the newest price")
		assert.are.equal(2000, last)
		assert.is_true(count < 2000, "got " .. count .. " frames: nothing was conflated")
	end)

	it("evicts the oldest messages of a drop_oldest topic instead of failing the reader", function()
		local srv, port = H.server { max_queue_bytes = 64 * 1024, slow_consumer = "close" }
		srv:topic("ticks", { drop_oldest = true })
		local conn, closed
		srv:on("connection", function(ws)
			conn = ws
			ws:subscribe("ticks")
			ws:on("close", function() closed = true end)
		end)
		local r = H.raw(port)
		assert.are.equal(101, (r:handshake("/")))
		H.run_until(function() return conn end)
		stall(r)
		local chunk = string.rep("t", 4000)
		for i = 1, 3000 do srv:publish("ticks", "tick:" .. i .. ":" .. chunk) end
		assert.are.equal(lws.OPEN, conn.readyState)
		assert.is_true(conn.bufferedAmount <= 64 * 1024)
		assert.is_true(conn:stats().dropped > 0)
		assert.is_nil(closed)
	end)

	it("conflates per key on a single connection's send", function()
		local srv, port = H.server()
		local conn
		srv:on("connection", function(ws) conn = ws end)
		local r = H.raw(port)
		assert.are.equal(101, (r:handshake("/")))
		H.run_until(function() return conn end)
		stall(r)
		local big = string.rep("q", 16000)
		for i = 1, 500 do assert(conn:send("q:" .. i .. ":" .. big, false, "quote")) end
		assert.is_true(conn.bufferedAmount <= 16000 + 20)
		unstall(r)
	end)

	it("forgets subscriptions when connections close", function()
		local srv, port = H.server()
		srv:on("connection", function(ws) ws:subscribe("a"); ws:subscribe("b"); ws:unsubscribe("b") end)
		local p = H.node()
		p:cmd { cmd = "connect", url = url(port) }
		p:wait("open")
		H.run_until(function() return srv:subscribers("a") == 1 end)
		assert.are.equal(0, srv:subscribers("b"))
		p:cmd { cmd = "close", code = 1000 }
		H.run_until(function() return srv:subscribers("a") == 0 end)
		assert.are.same({ 0, 0 }, { srv:publish("a", "nobody") })
	end)
end)
