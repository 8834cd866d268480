-- Socket.IO across nodes over Redis (lws.socketio's bus option): two node
-- processes on two ports and a workers = 2 server share one redis-server,
-- standing in for three machines. The official clients (2.x and 4.x, on
-- websocket, polling and the upgrade) are spread over them and must get
-- every broadcast and room message exactly once, across a Redis restart.
-- The chatroom demo runs the same way with --redis (and --workers).
local H = require "helper"
local json = require "lws.json"
local redis = require "lws.redis"

local PEER = H.ROOT .. "/spec/peers/sio_peer.js"
local NODE = "spec/support/sio_node.lua"

if not H.has_redis then
	describe("socket.io across nodes", function()
		pending("redis-server is not installed (apt-get install redis-server; .ci/deps installs it)")
	end)
	return
end

-- waits until n connections are subscribed to channel (every node's bus is up)
local function wait_subscribers(port, channel, n)
	local r = redis.connect { port = port }
	local got, asked = -1, false
	local ok, err = pcall(H.run_until, function()
		if not asked and r:ready() then
			asked = true
			r:command({ "PUBSUB", "NUMSUB", channel }, function(reply)
				asked = false
				got = reply and tonumber(reply[2]) or -1
			end)
		end
		return got == n
	end, 15000, n .. " subscribers of " .. channel, 50)
	r:close()
	if not ok then error(err .. " (last count " .. got .. ")", 2) end
end

local function connect(p, id, version, port, transports, events)
	p:cmd { cmd = "connect", id = id, version = version, transports = transports,
		url = "http://127.0.0.1:" .. port, events = events or { "msg", "bin", "login", "logout", "message" } }
	p:wait("connect", 10000, function(e) return e.id == id end)
	if not transports then p:wait("upgrade", 10000, function(e) return e.id == id end) end
end

local tags = 0
-- emit(p, id, event, ...) and wait for the server's ack -> its args
local function call(p, id, event, ...)
	tags = tags + 1
	local tag = "t" .. tags
	p:cmd { cmd = "emit", id = id, event = event, argsJson = json.encode(json.array(table.pack(...))), ack = tag }
	return p:wait("ack", 10000, function(e) return e.tag == tag end).args
end

-- waits until the bus of the node (worker) serving each of ids can
-- publish and is subscribed
local function wait_buses(p, ids)
	for _, id in ipairs(ids) do
		local ok, err = pcall(H.run_until, function()
			if call(p, id, "whoami")[3] == true then return true end
			H.run_for(50)
		end, 15000, "the bus of " .. id .. "'s node")
		if not ok then error(err, 2) end
	end
end

local function send(p, id, event, ...)
	p:cmd { cmd = "emit", id = id, event = event, argsJson = json.encode(json.array(table.pack(...))) }
end

local expect = require("sio_cluster").expect

describe("socket.io across nodes", function()
	after_each(H.clean)

	it("delivers broadcasts and room messages exactly once on every node, across a Redis restart", function()
		local rs = H.redis_server()
		local a = H.demo(NODE, 0, { "--redis", tostring(rs.port) })
		local b = H.demo(NODE, 0, { "--redis", tostring(rs.port) })
		local c = H.demo(NODE, 0, { "--redis", tostring(rs.port), "--workers", "2" })
		wait_subscribers(rs.port, "sio-spec", 4)
		local p = H.node(PEER)
		connect(p, "a1", "4", a.port, { "websocket" })
		connect(p, "a2", "2", a.port, { "polling" })
		connect(p, "b1", "4", b.port, { "polling" })
		connect(p, "b2", "2", b.port)
		-- clients on C until both workers have some
		local on_worker, c_ids = {}, {}
		for i = 1, 30 do
			local id = "c" .. i
			connect(p, id, "4", c.port, { "websocket" })
			local node = call(p, id, "whoami")[1]
			on_worker[node] = on_worker[node] or {}
			table.insert(on_worker[node], id)
			c_ids[#c_ids + 1] = id
			local n = 0
			for _ in pairs(on_worker) do n = n + 1 end
			if n == 2 and i >= 3 then break end
		end
		local workers = {}
		for _, ids in pairs(on_worker) do workers[#workers + 1] = ids end
		assert.are.equal(2, #workers, "the connections reached both workers")
		local cx, cy = workers[1][1], workers[2][1]
		wait_buses(p, { "a1", "b1", cx, cy })
		local everyone = { "a1", "a2", "b1", "b2" }
		for _, id in ipairs(c_ids) do everyone[#everyone + 1] = id end

		-- io:emit from each node reaches everyone once
		send(p, "a1", "all", "from-a")
		expect(p, everyone, "msg", "from-a")
		send(p, cy, "all", "from-c")
		expect(p, everyone, "msg", "from-c")
		-- socket.broadcast: everyone but the sender, wherever they are
		local not_cx = {}
		for _, id in ipairs(everyone) do if id ~= cx then not_cx[#not_cx + 1] = id end end
		send(p, cx, "others", "not-cx")
		expect(p, not_cx, "msg", "not-cx")

		-- rooms spread over every node
		for _, id in ipairs { "a1", "b1", cx, cy } do assert.are.same({ true }, call(p, id, "join", "r1")) end
		for _, id in ipairs { "b2", cy } do assert.are.same({ true }, call(p, id, "join", "r2")) end
		send(p, "b2", "to", "r1", "to-r1")
		expect(p, { "a1", "b1", cx, cy }, "msg", "to-r1")
		send(p, "a2", "to_except", "r1", "r2", "r1-not-r2")
		expect(p, { "a1", "b1", cx }, "msg", "r1-not-r2")
		send(p, "a1", "socket_to", "r1", "r1-not-a1")
		expect(p, { "b1", cx, cy }, "msg", "r1-not-a1")
		-- io.local stays on the node
		send(p, "a2", "local", "only-a")
		expect(p, { "a1", "a2" }, "msg", "only-a")
		-- binary attachments cross too
		send(p, "b1", "bin", 1000)
		local bytes = {}
		for i = 0, 999 do bytes[#bytes + 1] = string.char(i % 256) end
		bytes = table.concat(bytes)
		for _, id in ipairs(everyone) do
			local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "bin" end)
			assert.are.equal(bytes, H.unbase64(ev.args[1]["$bin"]), id)
			assert.are.equal(1000, ev.args[2], id)
		end
		-- room operations on every node: r2's sockets join r3
		send(p, "a1", "move", "r2", "r3")
		send(p, "a1", "to", "r3", "in-r3")
		expect(p, { "b2", cy }, "msg", "in-r3")

		-- Redis restarts: local delivery never stops, cross-node resumes
		rs.stop()
		send(p, "b1", "all", "during")
		expect(p, { "b1", "b2" }, "msg", "during")
		rs = H.redis_server(rs.port)
		wait_subscribers(rs.port, "sio-spec", 4)
		wait_buses(p, { "a1", "b1", cx, cy })
		send(p, "b1", "all", "after")
		expect(p, everyone, "msg", "after")
		send(p, cx, "to", "r1", "r1-after")
		expect(p, { "a1", "b1", cx, cy }, "msg", "r1-after")

		-- disconnect_sockets across nodes
		send(p, "a2", "kick", "r3")
		for _, id in ipairs { "b2", cy } do
			local ev = p:wait("disconnect", 10000, function(e) return e.id == id end)
			assert.are.equal("io server disconnect", ev.reason)
		end
		assert.is_nil(p:has("disconnect"))
		assert.are.same({}, H.errors)
	end)

	it("runs the chatroom over Redis with sticky workers: one online list, messages once", function()
		local rs = H.redis_server()
		local args = { "--redis", "127.0.0.1:" .. rs.port, "--quiet" }
		local a = H.demo("chatroom", 0, args)
		local b = H.demo("chatroom", 0, { "--redis", "127.0.0.1:" .. rs.port, "--quiet", "--workers", "2" })
		wait_subscribers(rs.port, "chatroom", 3)
		local p = H.node(PEER)
		local clients = {
			{ id = "u1", version = "2", port = a.port, transports = { "polling" } },
			{ id = "u2", version = "4", port = b.port },   -- the upgrade, on sticky workers
			{ id = "u3", version = "2", port = b.port, transports = { "polling" } },
			{ id = "u4", version = "4", port = a.port },
		}
		local users, ids = {}, {}
		for i, cl in ipairs(clients) do
			connect(p, cl.id, cl.version, cl.port, cl.transports)
			ids[#ids + 1] = cl.id
			users[cl.id] = "name " .. i
			send(p, cl.id, "login", { userid = cl.id, username = "name " .. i })
			for _, id in ipairs(ids) do
				local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "login" end)
				local got = json.decode(ev.json)[1]
				assert.are.equal(i, got.onlineCount, id)
				assert.are.same(users, got.onlineUsers, id)
			end
		end
		for _, id in ipairs(ids) do send(p, id, "message", { userid = id, content = "hi from " .. id }) end
		for _, id in ipairs(ids) do
			local got = {}
			for _ = 1, #ids do
				local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "message" end)
				local content = ev.args[1].content
				assert.is_nil(got[content], id .. " twice: " .. content)
				got[content] = true
			end
		end
		H.run_for(300)
		assert.is_nil(p:has("event"))
		for i, cl in ipairs(clients) do
			p:cmd { cmd = "close", id = cl.id }
			users[cl.id] = nil
			for j = i + 1, #clients do
				local ev = p:wait("event", 10000, function(e) return e.id == clients[j].id and e.event == "logout" end)
				local got = json.decode(ev.json)[1]
				assert.are.equal(#clients - i, got.onlineCount)
				assert.are.same(users, json.decode(json.encode(got.onlineUsers)))
			end
		end
	end)
end)
