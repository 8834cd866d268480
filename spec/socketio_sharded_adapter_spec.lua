-- lws.socketio.redis_adapter { sharded = true } in a mixed cluster: a Node
-- node (spec/peers/sio_redis_server.js with socket.io 4.8 and
-- @socket.io/redis-adapter 8.3's createShardedAdapter on redis@4), two
-- Lua nodes in this process (each its own server, factory and Redis
-- client), one redis-server 7 on a free port (SPUBLISH/SSUBSCRIBE), and
-- socket.io-client 4 and 2 on every node (spec/peers/sio_peer.js). Every
-- message reaches each client it is for exactly once, whichever node sends
-- it; fetchSockets, serverSideEmit with acks, socketsJoin/Leave,
-- disconnectSockets and broadcast acks work both ways; the node count is
-- PUBSUB SHARDNUMSUB on both kinds of node; the three subscription modes
-- use the channels Node uses.
local H = require "helper"
local json = require "lws.json"
local redis = require "lws.redis"
local socketio = require "lws.socketio"

local PEER = H.ROOT .. "/spec/peers/sio_peer.js"
local NODE = H.ROOT .. "/spec/peers/sio_redis_server.js"

if not H.has_redis then
	describe("socket.io sharded redis adapter", function()
		pending("redis-server is not installed (apt-get install redis-server; .ci/deps installs it)")
	end)
	return
end

local C = require "sio_cluster"
local expect, sorted, tag = C.expect, C.sorted, C.tag
-- how many connections are subscribed to the shard channel, once it is n
local function wait_shard_subscribers(port, channel, n)
	return C.wait_subscribers(port, channel, n, "SHARDNUMSUB")
end

describe("socket.io sharded redis adapter", function()
	local rs, node, node_port, p, spy
	local lua = {}   -- the two Lua nodes: { srv, sio, factory }
	local sids = {}
	local everyone = { "n1", "n2", "l1", "l2", "m1" }

	local function lua_node(mode)
		return C.lua_node(lua, socketio.redis_adapter { port = rs.port, sharded = true, subscription_mode = mode,
			redis = { reconnect = { min = 50, max = 300 } } })
	end

	-- the cluster: a Node node with n1, n2; Lua node A with l1, l2; Lua node B with m1
	local function start(mode)
		mode = mode or "dynamic"
		rs = H.redis_server()
		node = H.node(NODE, { tostring(rs.port), "sharded", mode })
		node:cmd { cmd = "listen" }
		node_port = math.tointeger(node:wait("listening", 15000).port)
		lua_node(mode)
		lua_node(mode)
		for _, ch in ipairs { "socket.io#/#", "socket.io#/admin#" } do wait_shard_subscribers(rs.port, ch, 3) end
		p = H.node(PEER)
		C.clients(p, sids, node_port, lua)
	end

	local function sio() return lua[1].sio end
	local function lua_socket(id) return C.lua_socket(lua, sids[id]) end
	local function node_fetch(rooms_) return C.node_fetch(node, rooms_) end
	local function cluster() return { lua = lua, node = node, p = p, sids = sids } end
	-- the rooms of the test: r1 = l1, n1; r2 = n2, l2, m1; then each room's
	-- channel has one subscriber per node that has the room
	local function rooms() return C.rooms(cluster()) end

	local function stop()
		C.stop(lua, function(n) return n.factory.redis == nil end)
		lua = {}
	end

	after_each(function()
		if #lua > 0 then pcall(stop) end   -- a test that failed half-way
		lua = {}
		if spy then spy:close(); spy = nil end
		H.clean()
	end)

	it("carries io.emit, to(room), except, socket.broadcast, namespaces and binary both ways", function()
		start()
		rooms()
		-- dynamic: a channel per public room, subscribed by the nodes that have it
		wait_shard_subscribers(rs.port, "socket.io#/#r1#", 2)
		wait_shard_subscribers(rs.port, "socket.io#/#r2#", 3)
		-- socket ids get none in "dynamic"
		wait_shard_subscribers(rs.port, "socket.io#/#" .. sids.l1 .. "#", 0)

		-- the bytes on r1's channel: ours are Node's (but the uid)
		local spied = {}
		spy = redis.connect { port = rs.port }
		spy:ssubscribe("socket.io#/#r1#", function(m) spied[#spied + 1] = m end)
		wait_shard_subscribers(rs.port, "socket.io#/#r1#", 3)
		sio():to("r1"):emit("msg", "same-bytes")
		expect(p, { "l1", "n1" }, "msg", "same-bytes")
		node:cmd { cmd = "emit", rooms = { "r1" }, event = "msg", args = { "same-bytes" } }
		expect(p, { "l1", "n1" }, "msg", "same-bytes")
		H.run_until(function() return #spied == 2 end, 5000, "both broadcasts on r1's channel")
		local function wire(uid)
			return '{"type":3,"data":{"packet":{"type":2,"data":["msg","same-bytes"]},' ..
				'"opts":{"rooms":["r1"],"except":[],"flags":{}}},"uid":"' .. uid .. '","nsp":"/"}'
		end
		assert.are.equal(wire(sio().sockets.adapter.uid), spied[1])
		local node_uid = json.decode(spied[2]).uid
		assert.matches("^%x+$", node_uid)
		assert.are.equal(wire(node_uid), spied[2])
		spy:close()

		C.check_broadcasts(cluster())

		-- a room left by all its sockets here loses its channel here
		lua_socket("m1"):leave("r2")
		wait_shard_subscribers(rs.port, "socket.io#/#r2#", 2)
		node:cmd { cmd = "emit", rooms = { "r2" }, event = "msg", args = { "r2-without-m1" } }
		expect(p, { "n2", "l2" }, "msg", "r2-without-m1")
		lua_socket("m1"):join("r2")
		wait_shard_subscribers(rs.port, "socket.io#/#r2#", 3)

		-- namespaces: /admin clients on each node, / clients do not see it
		C.check_namespaces(cluster(), node_port)

		-- binary attachments (notepack on the wire), nested too
		C.check_binary(cluster())
		stop()
	end)

	it("answers and asks fetchSockets, serverSideEmit with acks, socketsJoin/Leave, broadcast acks, disconnectSockets",
		function()
		start()
		rooms()
		wait_shard_subscribers(rs.port, "socket.io#/#r2#", 3)

		-- the node count: SHARDNUMSUB of the main channel, on both kinds of node
		C.check_server_count(cluster(), 3)
		local t

		-- fetchSockets from a Lua node: every node's sockets in r1 / r2
		C.check_fetch(cluster())

		-- serverSideEmit with acks, both ways, and without
		C.check_server_side_emit(cluster())

		-- socketsJoin / socketsLeave from either kind of node reach all
		sio():in_("r1"):sockets_join("r3")
		wait_shard_subscribers(rs.port, "socket.io#/#r3#", 2)   -- A's and Node's
		sio():to("r3"):emit("msg", "lua-r3")
		expect(p, { "l1", "n1" }, "msg", "lua-r3")
		node:cmd { cmd = "sockets_join", rooms = { "r2" }, room = "r4" }
		wait_shard_subscribers(rs.port, "socket.io#/#r4#", 3)
		assert.are.same(sorted { sids.l2, sids.m1, sids.n2 }, (node_fetch { "r4" }))
		lua[2].sio:to("r4"):emit("msg", "lua-b-r4")
		expect(p, { "l2", "n2", "m1" }, "msg", "lua-b-r4")
		node:cmd { cmd = "sockets_leave", rooms = { "r3" }, room = "r3" }
		wait_shard_subscribers(rs.port, "socket.io#/#r3#", 0)
		lua[2].sio:in_("r4"):sockets_leave("r4")
		wait_shard_subscribers(rs.port, "socket.io#/#r4#", 0)
		assert.are.same({}, (node_fetch { "r3", "r4" }))

		-- broadcast with acks: every client of every node answers once
		local acks
		sio():timeout(5000 * H.SLOW):emit("ask", "q", function(err, r) acks = { err = err, r = r } end)
		H.run_until(function() return acks end, 10000, "the broadcast acks")
		assert.is_nil(acks.err)
		assert.are.same(sorted(everyone), sorted(acks.r))
		acks = nil
		lua[2].sio:to("r1"):timeout(5000 * H.SLOW):emit("ask", "q", function(err, r) acks = { err = err, r = r } end)
		H.run_until(function() return acks end, 10000, "the broadcast acks to r1 from B")
		assert.is_nil(acks.err)
		assert.are.same({ "l1", "n1" }, sorted(acks.r))
		t = tag()
		node:cmd { cmd = "ask", timeout = 5000 * H.SLOW, event = "ask", args = { "q" }, tag = t }
		local a = node:wait("acks", 10000, function(e) return e.tag == t end)
		assert.is.falsy(a.error)
		assert.are.same(sorted(everyone), a.responses)
		t = tag()
		node:cmd { cmd = "ask", rooms = { "r2" }, timeout = 5000 * H.SLOW, event = "ask", args = { "q" }, tag = t }
		a = node:wait("acks", 10000, function(e) return e.tag == t end)
		assert.are.same({ "l2", "m1", "n2" }, a.responses)

		-- disconnectSockets from either kind of node
		sio():in_("r2"):disconnect_sockets()
		for _, id in ipairs { "l2", "n2", "m1" } do
			assert.are.equal("io server disconnect", p:wait("disconnect", 10000, function(e) return e.id == id end).reason)
		end
		node:cmd { cmd = "disconnect_sockets", rooms = { "r1" }, close = true }
		for _, id in ipairs { "l1", "n1" } do
			assert.are.equal("io server disconnect", p:wait("disconnect", 10000, function(e) return e.id == id end).reason)
		end
		assert.is_nil(p:has("disconnect"))
		-- the rooms went with their sockets, and their channels
		wait_shard_subscribers(rs.port, "socket.io#/#r1#", 0)
		wait_shard_subscribers(rs.port, "socket.io#/#r2#", 0)
		stop()
	end)

	it("resumes on both kinds of node after Redis restarts, room channels included", function()
		start()
		rooms()
		wait_shard_subscribers(rs.port, "socket.io#/#r1#", 2)
		sio():emit("msg", "before")
		expect(p, everyone, "msg", "before")
		rs.stop()
		-- local delivery never stops
		sio():emit("msg", "during")
		expect(p, { "l1", "l2" }, "msg", "during")
		rs = H.redis_server(rs.port)
		for _, ch in ipairs { "socket.io#/#", "socket.io#/admin#" } do wait_shard_subscribers(rs.port, ch, 3) end
		wait_shard_subscribers(rs.port, "socket.io#/#r1#", 2)
		wait_shard_subscribers(rs.port, "socket.io#/#r2#", 3)
		H.run_until(function() return lua[1].factory.redis:ready() and lua[2].factory.redis:ready() end, 15000,
			"the publishing connections")
		sio():to("r1"):emit("msg", "after-lua")
		expect(p, { "l1", "n1" }, "msg", "after-lua")
		node:cmd { cmd = "emit", rooms = { "r2" }, event = "msg", args = { "after-node" } }
		expect(p, { "n2", "l2", "m1" }, "msg", "after-node")
		local got
		lua[2].sio:fetch_sockets(function(err, sockets) got = { err = err, n = #sockets } end)
		H.run_until(function() return got end, 10000, "fetch_sockets after the restart")
		assert.are.same({ n = 5 }, got)
		-- the outage was reported once per Lua node, through lws.on_error
		assert.are.equal(2, #H.errors, table.concat(H.errors, "\n"))
		for _, e in ipairs(H.errors) do assert.matches("reconnecting", e, 1, true) end
		H.errors = {}
		stop()
	end)

	for _, mode in ipairs { "dynamic-private", "static" } do
		it("uses Node's channels in subscription mode " .. mode, function()
			start(mode)
			rooms()
			local want = mode == "static" and 0 or 1
			-- every room ("dynamic-private": socket ids too) or none ("static")
			wait_shard_subscribers(rs.port, "socket.io#/#" .. sids.l1 .. "#", want)
			wait_shard_subscribers(rs.port, "socket.io#/#" .. sids.n1 .. "#", want)
			wait_shard_subscribers(rs.port, "socket.io#/#r2#", want * 3)
			-- a broadcast to one socket: on its channel in "dynamic-private"
			local spied = {}
			spy = redis.connect { port = rs.port }
			spy:ssubscribe("socket.io#/#" .. sids.n1 .. "#", function(m) spied[#spied + 1] = m end)
			wait_shard_subscribers(rs.port, "socket.io#/#" .. sids.n1 .. "#", want + 1)
			sio():to(sids.n1):emit("msg", "lua-to-n1")
			expect(p, { "n1" }, "msg", "lua-to-n1")
			assert.are.equal(want, #spied)
			spy:close()
			node:cmd { cmd = "emit", rooms = { sids.m1 }, event = "msg", args = { "node-to-m1" } }
			expect(p, { "m1" }, "msg", "node-to-m1")
			node:cmd { cmd = "emit", rooms = { "r2" }, event = "msg", args = { "node-to-r2" } }
			expect(p, { "n2", "l2", "m1" }, "msg", "node-to-r2")
			lua[2].sio:to("r1"):emit("msg", "lua-b-to-r1")
			expect(p, { "l1", "n1" }, "msg", "lua-b-to-r1")
			local acks
			sio():to("r2"):timeout(5000 * H.SLOW):emit("ask", "q", function(err, r) acks = { err = err, r = r } end)
			H.run_until(function() return acks end, 10000, "the broadcast acks")
			assert.are.same({ "l2", "m1", "n2" }, sorted(acks.r))
			stop()
		end)
	end

	it("checks its options at the caller's line", function()
		local line = debug.getinfo(1, "l").currentline
		local ok, err = pcall(function() local a = socketio.redis_adapter { sharded = "yes" }; return a end)
		assert.is_false(ok)
		assert.matches("_spec.lua:" .. line + 1 .. ": option 'sharded' must be a boolean", err, 1, true)
		ok, err = pcall(function()
			local a = socketio.redis_adapter { sharded = true, subscription_mode = "dynamo" }; return a end)
		assert.is_false(ok)
		assert.matches("_spec.lua:" .. line + 5 .. ': option \'subscription_mode\' must be "dynamic", ' ..
			'"dynamic-private" or "static", got string "dynamo"', err, 1, true)
		ok, err = pcall(function() local a = socketio.redis_adapter { subscription_mode = "static" }; return a end)
		assert.is_false(ok)
		assert.matches("_spec.lua:" .. line + 9 .. ": option 'subscription_mode' needs sharded = true", err, 1, true)
		assert.matches("sharded, dynamic", tostring(socketio.redis_adapter { sharded = true }), 1, true)
	end)

	it("ends a request after request_timeout when a node stays silent, with what came", function()
		rs = H.redis_server()
		local srv = H.server()
		local factory = socketio.redis_adapter { port = rs.port, sharded = true, request_timeout = 300 }
		local s = socketio(srv, { adapter = factory })
		lua[1] = { srv = srv, sio = s, factory = factory }
		-- something subscribed to the main channel that never answers
		local mute = redis.connect { port = rs.port }
		mute:ssubscribe("socket.io#/#", function() end)
		wait_shard_subscribers(rs.port, "socket.io#/#", 2)
		local got, replies
		local t0 = H.lws.now()
		s:fetch_sockets(function(err, sockets) got = { err = err, n = #sockets } end)
		s:server_side_emit("anyone", function(err, r) replies = { err = err, r = r } end)
		H.run_until(function() return got and replies end, 5000, "the timeouts")
		assert.is_true(H.lws.now() - t0 >= 290)
		assert.are.same({ err = "timeout reached: only 0 responses received out of 1", n = 0 }, got)
		assert.are.equal("timeout reached: only 0 responses received out of 1", replies.err)
		assert.are.same({}, replies.r)
		mute:close()
		stop()
	end)
end)
