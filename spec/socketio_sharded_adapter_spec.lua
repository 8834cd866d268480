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
local connect, expect, sorted, tag = C.connect, C.expect, C.sorted, C.tag
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
		local n, index = {}, #lua + 1
		n.srv = H.server()
		n.factory = socketio.redis_adapter { port = rs.port, sharded = true, subscription_mode = mode,
			redis = { reconnect = { min = 50, max = 300 } } }
		n.sio = socketio(n.srv, { adapter = n.factory })
		n.sio:on("connection", function() end)
		for _, nsp in ipairs { n.sio.sockets, n.sio:of("/admin") } do
			nsp:on("ping_sse", function(x, ack) if ack then ack("lua" .. index .. ":" .. x) end end)
		end
		lua[#lua + 1] = n
		return n
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
		sids.n1 = connect(p, "n1", "4", node_port, { transports = { "websocket" } })
		sids.n2 = connect(p, "n2", "2", node_port)
		sids.l1 = connect(p, "l1", "4", lua[1].srv:port(), { transports = { "websocket" } })
		sids.l2 = connect(p, "l2", "2", lua[1].srv:port())
		sids.m1 = connect(p, "m1", "4", lua[2].srv:port(), { transports = { "websocket" } })
	end

	local function sio() return lua[1].sio end
	local function lua_socket(id)
		for _, n in ipairs(lua) do
			local s = n.sio.sockets.sockets[sids[id]]
			if s then return s end
		end
	end
	local function node_join(id, room)
		local t = tag()
		node:cmd { cmd = "join", sid = sids[id], room = room, tag = t }
		node:wait("joined", 5000, function(e) return e.tag == t end)
	end
	-- the rooms of the test: r1 = l1, n1; r2 = n2, l2, m1; then each room's
	-- channel has one subscriber per node that has the room
	local function rooms()
		lua_socket("l1"):join("r1")
		lua_socket("l1").data = { who = "l1" }
		node_join("n1", "r1")
		node_join("n2", "r2")
		lua_socket("l2"):join("r2")
		lua_socket("m1"):join("r2")
	end

	local function node_fetch(rooms_)
		local t = tag()
		node:cmd { cmd = "fetch", rooms = rooms_, tag = t }
		local f = node:wait("fetched", 10000, function(e) return e.tag == t end)
		assert.is_nil(f.error)
		local ids = {}
		for i, s in ipairs(f.sockets) do ids[i] = s.id end
		return sorted(ids), f.sockets
	end

	local function stop()
		for _, n in ipairs(lua) do n.sio:close() end
		for _, n in ipairs(lua) do
			H.run_until(function() return n.factory.redis == nil end, 5000, "the adapter's redis client to close")
		end
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

		sio():emit("msg", "from-lua")
		expect(p, everyone, "msg", "from-lua")
		lua[2].sio:emit("msg", "from-lua-b")
		expect(p, everyone, "msg", "from-lua-b")
		node:cmd { cmd = "emit", event = "msg", args = { "from-node" } }
		expect(p, everyone, "msg", "from-node")
		-- volatile crosses too (every client is on a websocket by now, so writable)
		sio().volatile:emit("msg", "volatile-lua")
		expect(p, everyone, "msg", "volatile-lua")
		node:cmd { cmd = "emit", volatile = true, event = "msg", args = { "volatile-node" } }
		expect(p, everyone, "msg", "volatile-node")

		sio():to("r1"):emit("msg", "lua-to-r1")
		expect(p, { "l1", "n1" }, "msg", "lua-to-r1")
		lua[2].sio:to("r1"):emit("msg", "lua-b-to-r1")
		expect(p, { "l1", "n1" }, "msg", "lua-b-to-r1")
		node:cmd { cmd = "emit", rooms = { "r2" }, event = "msg", args = { "node-to-r2" } }
		expect(p, { "n2", "l2", "m1" }, "msg", "node-to-r2")
		node:cmd { cmd = "emit", rooms = { "r1" }, event = "msg", args = { "node-to-r1" } }
		expect(p, { "l1", "n1" }, "msg", "node-to-r1")
		sio():to("r1"):to("r2"):emit("msg", "lua-to-r1-r2")
		expect(p, everyone, "msg", "lua-to-r1-r2")
		sio():except("r2"):emit("msg", "lua-except-r2")
		expect(p, { "l1", "n1" }, "msg", "lua-except-r2")
		node:cmd { cmd = "emit", except = { "r1" }, event = "msg", args = { "node-except-r1" } }
		expect(p, { "l2", "n2", "m1" }, "msg", "node-except-r1")
		sio():to("r2"):except("r1"):emit("msg", "lua-r2-not-r1")
		expect(p, { "l2", "n2", "m1" }, "msg", "lua-r2-not-r1")
		-- a room nobody has: Lua publishes on its channel, nobody listens
		sio():to("nobody"):emit("msg", "to-nobody")
		-- one socket of another node (its id: the main channel in "dynamic")
		sio():to(sids.n1):emit("msg", "lua-to-n1")
		expect(p, { "n1" }, "msg", "lua-to-n1")
		node:cmd { cmd = "emit", rooms = { sids.m1 }, event = "msg", args = { "node-to-m1" } }
		expect(p, { "m1" }, "msg", "node-to-m1")
		-- socket.broadcast: everyone but the sender, on every node
		lua_socket("l1").broadcast:emit("msg", "not-l1")
		expect(p, { "n1", "n2", "l2", "m1" }, "msg", "not-l1")
		node:cmd { cmd = "socket_emit", sid = sids.n2, event = "msg", args = { "not-n2" } }
		expect(p, { "n1", "l1", "l2", "m1" }, "msg", "not-n2")
		lua_socket("m1"):to("r2"):emit("msg", "r2-not-m1")
		expect(p, { "n2", "l2" }, "msg", "r2-not-m1")
		for _, ev in ipairs(p.events) do assert.is_false(ev.ev == "event" and ev.args[1] == "to-nobody", ev.id) end

		-- a room left by all its sockets here loses its channel here
		lua_socket("m1"):leave("r2")
		wait_shard_subscribers(rs.port, "socket.io#/#r2#", 2)
		node:cmd { cmd = "emit", rooms = { "r2" }, event = "msg", args = { "r2-without-m1" } }
		expect(p, { "n2", "l2" }, "msg", "r2-without-m1")
		lua_socket("m1"):join("r2")
		wait_shard_subscribers(rs.port, "socket.io#/#r2#", 3)

		-- namespaces: /admin clients on each node, / clients do not see it
		sids.na = connect(p, "na", "4", node_port, { nsp = "/admin", transports = { "websocket" } })
		sids.la = connect(p, "la", "4", lua[1].srv:port(), { nsp = "/admin", transports = { "websocket" } })
		sids.ma = connect(p, "ma", "4", lua[2].srv:port(), { nsp = "/admin", transports = { "websocket" } })
		sio():of("/admin"):emit("msg", "lua-admin")
		expect(p, { "na", "la", "ma" }, "msg", "lua-admin")
		node:cmd { cmd = "emit", nsp = "/admin", event = "msg", args = { "node-admin" } }
		expect(p, { "na", "la", "ma" }, "msg", "node-admin")

		-- binary attachments (notepack on the wire), nested too
		local bytes = {}
		for i = 0, 999 do bytes[#bytes + 1] = string.char(i % 256) end
		bytes = table.concat(bytes)
		local all = { "n1", "n2", "l1", "l2", "m1" }
		sio():emit("bin", socketio.binary(bytes), { inner = socketio.binary("\0\1\2") })
		for _, id in ipairs(all) do
			local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "bin" end)
			assert.are.equal(bytes, H.unbase64(ev.args[1]["$bin"]), id)
			assert.are.equal("\0\1\2", H.unbase64(ev.args[2].inner["$bin"]), id)
		end
		node:cmd { cmd = "emit", rooms = { "r2" }, event = "bin", args = { { ["$bin"] = H.base64(bytes) }, 7 } }
		for _, id in ipairs { "n2", "l2", "m1" } do
			local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "bin" end)
			assert.are.equal(bytes, H.unbase64(ev.args[1]["$bin"]), id)
			assert.are.equal(7, ev.args[2], id)
		end
		H.run_for(300 * H.SLOW)
		assert.is_nil(p:has("event"))
		stop()
	end)

	it("answers and asks fetchSockets, serverSideEmit with acks, socketsJoin/Leave, broadcast acks, disconnectSockets",
		function()
		start()
		rooms()
		wait_shard_subscribers(rs.port, "socket.io#/#r2#", 3)

		-- the node count: SHARDNUMSUB of the main channel, on both kinds of node
		local n
		sio().sockets.adapter:server_count(function(c) n = c end)
		H.run_until(function() return n end, 5000, "the server count")
		assert.are.equal(3, n)
		local t = tag()
		node:cmd { cmd = "server_count", tag = t }
		assert.are.equal(3, node:wait("server-count", 5000, function(e) return e.tag == t end).n)

		-- fetchSockets from a Lua node: every node's sockets in r1 / r2
		local got
		sio():in_("r1"):fetch_sockets(function(err, sockets) got = { err = err, sockets = sockets } end)
		H.run_until(function() return got end, 10000, "fetch_sockets")
		assert.is_nil(got.err)
		local by_id = {}
		for _, s in ipairs(got.sockets) do by_id[s.id] = s end
		assert.are.equal(2, #got.sockets)
		assert.are.same(sorted { sids.l1, sids.n1 }, sorted { got.sockets[1].id, got.sockets[2].id })
		assert.are.same(sorted { sids.n1, "r1" }, sorted(by_id[sids.n1].rooms))
		assert.are.same(sorted { sids.l1, "r1" }, sorted(by_id[sids.l1].rooms))
		assert.are.equal("l1", by_id[sids.l1].data.who)
		assert.are.equal(lua_socket("l1"), by_id[sids.l1].socket)
		assert.matches("127%.0%.0%.1", by_id[sids.n1].handshake.address)
		-- a remote socket is reached through its view
		by_id[sids.n1]:emit("msg", "via-remote-view")
		expect(p, { "n1" }, "msg", "via-remote-view")
		got = nil
		lua[2].sio:in_("r2"):fetch_sockets(function(err, sockets) got = { err = err, sockets = sockets } end)
		H.run_until(function() return got end, 10000, "fetch_sockets from B")
		assert.is_nil(got.err)
		local ids = {}
		for i, s in ipairs(got.sockets) do ids[i] = s.id end
		assert.are.same(sorted { sids.n2, sids.l2, sids.m1 }, sorted(ids))
		-- from the Node node: both Lua nodes answer, with data and rooms
		local fids, fsockets = node_fetch { "r1", "r2" }
		assert.are.same(sorted { sids.l1, sids.l2, sids.m1, sids.n1, sids.n2 }, fids)
		local remote
		for _, s in ipairs(fsockets) do if s.id == sids.l1 then remote = s end end
		assert.are.same(sorted { sids.l1, "r1" }, sorted(remote.rooms))
		assert.are.same({ who = "l1" }, remote.data)
		assert.are.equal("4", remote.query.EIO)

		-- serverSideEmit with acks, both ways, and without
		local replies
		sio():server_side_emit("ping_sse", "x", function(err, r) replies = { err = err, r = r } end)
		H.run_until(function() return replies end, 10000, "server_side_emit replies")
		assert.is_nil(replies.err)
		assert.are.same({ "lua2:x", "node:x" }, sorted(replies.r))
		assert.are.equal("x", node:wait("sse", 5000).arg)
		t = tag()
		node:cmd { cmd = "sse", event = "ping_sse", args = { "y" }, tag = t }
		local sr = node:wait("sse-replies", 10000, function(e) return e.tag == t end)
		assert.is_nil(sr.error)
		assert.are.same({ "lua1:y", "lua2:y" }, sorted(sr.replies))
		local noted = {}
		for i, n_ in ipairs(lua) do
			n_.sio:of("/admin"):on("note_sse", function(x) noted[#noted + 1] = { i, x } end)
		end
		node:cmd { cmd = "sse", nsp = "/admin", event = "note_sse", args = { { a = json.array { 1, 2 } } } }
		H.run_until(function() return #noted == 2 end, 10000, "the serverSideEmit from Node")
		for _, x in ipairs(noted) do assert.are.same({ 1, 2 }, x[2].a) end
		sio():of("/admin"):server_side_emit("note_sse", socketio.binary("\1\2"))
		H.run_until(function() return #noted == 3 end, 10000, "the serverSideEmit from A to B")
		assert.are.equal(2, noted[3][1])
		assert.is_true(socketio.is_binary(noted[3][2]))
		assert.are.equal("AQI=", node:wait("sse", 5000, function(e) return e.nsp == "/admin" end).arg["$bin"])

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
