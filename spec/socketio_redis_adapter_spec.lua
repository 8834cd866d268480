-- lws.socketio.redis_adapter in a mixed cluster: this process is a Lua
-- node, spec/peers/sio_redis_server.js a Node node (socket.io 4.8 with
-- @socket.io/redis-adapter 8.3 on redis@4), one redis-server on a free
-- port, and the official socket.io-client 4 and 2 on both nodes
-- (spec/peers/sio_peer.js). Every message reaches each client it is for
-- exactly once, whichever node sends it; the requests (fetchSockets,
-- serverSideEmit with acks, socketsJoin/Leave, disconnectSockets,
-- broadcast acks) work both ways; @socket.io/redis-emitter 5 reaches the
-- Lua node's clients.
local H = require "helper"
local json = require "lws.json"
local redis = require "lws.redis"
local socketio = require "lws.socketio"

local PEER = H.ROOT .. "/spec/peers/sio_peer.js"
local NODE = H.ROOT .. "/spec/peers/sio_redis_server.js"

if not H.has_redis then
	describe("socket.io redis adapter", function()
		pending("redis-server is not installed (apt-get install redis-server; .ci/deps installs it)")
	end)
	return
end

local C = require "sio_cluster"
local wait_subscribers, connect, expect, sorted, tag =
	C.wait_subscribers, C.connect, C.expect, C.sorted, C.tag

describe("socket.io redis adapter", function()
	local rs, node, node_port, srv, sio, p, factory
	local sids = {}
	local everyone = { "n1", "n2", "l1", "l2" }

	-- the cluster: a Node node and this Lua node, two clients on each
	local function start()
		rs = H.redis_server()
		node = H.node(NODE, { tostring(rs.port) })
		node:cmd { cmd = "listen" }
		node_port = math.tointeger(node:wait("listening", 15000).port)
		srv = H.server()
		factory = socketio.redis_adapter { port = rs.port, redis = { reconnect = { min = 50, max = 300 } } }
		sio = socketio(srv, { adapter = factory })
		sio:of("/admin")
		sio:on("connection", function() end)
		for _, nsp in ipairs { sio.sockets, sio:of("/admin") } do
			nsp:on("ping_sse", function(x, ack) if ack then ack("lua:" .. x) end end)
		end
		for _, ch in ipairs { "socket.io-request#/#", "socket.io-request#/admin#" } do
			wait_subscribers(rs.port, ch, 2)
		end
		p = H.node(PEER)
		sids.n1 = connect(p, "n1", "4", node_port, { transports = { "websocket" } })
		sids.n2 = connect(p, "n2", "2", node_port)
		sids.l1 = connect(p, "l1", "4", srv:port(), { transports = { "websocket" } })
		sids.l2 = connect(p, "l2", "2", srv:port())
	end

	local function lua_socket(id) return sio.sockets.sockets[sids[id]] end
	local function node_join(id, room)
		local t = tag()
		node:cmd { cmd = "join", sid = sids[id], room = room, tag = t }
		node:wait("joined", 5000, function(e) return e.tag == t end)
	end

	-- the ids of the sockets in rooms, as the Node node's fetchSockets sees them
	local function node_fetch(rooms)
		local t = tag()
		node:cmd { cmd = "fetch", rooms = rooms, tag = t }
		local f = node:wait("fetched", 10000, function(e) return e.tag == t end)
		assert.is_nil(f.error)
		local ids = {}
		for i, s in ipairs(f.sockets) do ids[i] = s.id end
		return sorted(ids)
	end

	-- asks until the Node node's fetchSockets of rooms gives want
	local function node_fetch_until(rooms, want)
		local last
		local ok = pcall(H.run_until, function()
			last = node_fetch(rooms)
			return table.concat(last, ",") == table.concat(want, ",")
		end, 10000, "the Node node to see the room operation")
		assert.are.same(want, last)
		assert.is_true(ok)
	end

	local function stop()
		sio:close()
		H.run_until(function() return factory.redis == nil end, 5000, "the adapter's redis client to close")
		sio = nil
	end

	after_each(function()
		if sio then pcall(stop) end   -- a test that failed half-way
		H.clean()
	end)

	it("carries sio.emit, rooms, except, socket.broadcast, namespaces and binary both ways", function()
		start()
		-- sio.emit from each side
		sio:emit("msg", "from-lua")
		expect(p, everyone, "msg", "from-lua")
		node:cmd { cmd = "emit", event = "msg", args = { "from-node" } }
		expect(p, everyone, "msg", "from-node")

		-- volatile crosses too (every client here is on a websocket, so writable)
		sio.volatile:emit("msg", "volatile-lua")
		expect(p, everyone, "msg", "volatile-lua")
		node:cmd { cmd = "emit", volatile = true, event = "msg", args = { "volatile-node" } }
		expect(p, everyone, "msg", "volatile-node")

		-- rooms on both nodes
		lua_socket("l1"):join("r1")
		node_join("n1", "r1")
		node_join("n2", "r2")
		lua_socket("l2"):join("r2")
		sio:to("r1"):emit("msg", "lua-to-r1")
		expect(p, { "l1", "n1" }, "msg", "lua-to-r1")
		node:cmd { cmd = "emit", rooms = { "r1" }, event = "msg", args = { "node-to-r1" } }
		expect(p, { "l1", "n1" }, "msg", "node-to-r1")
		sio:to("r1"):to("r2"):emit("msg", "lua-to-r1-r2")
		expect(p, everyone, "msg", "lua-to-r1-r2")
		sio:except("r2"):emit("msg", "lua-except-r2")
		expect(p, { "l1", "n1" }, "msg", "lua-except-r2")
		node:cmd { cmd = "emit", except = { "r1" }, event = "msg", args = { "node-except-r1" } }
		expect(p, { "l2", "n2" }, "msg", "node-except-r1")
		-- socket.broadcast: everyone but the sender, on every node
		lua_socket("l1").broadcast:emit("msg", "not-l1")
		expect(p, { "n1", "n2", "l2" }, "msg", "not-l1")
		node:cmd { cmd = "socket_emit", sid = sids.n2, event = "msg", args = { "not-n2" } }
		expect(p, { "n1", "l1", "l2" }, "msg", "not-n2")
		-- socket.to(room): the room but the sender
		lua_socket("l1"):to("r1"):emit("msg", "r1-not-l1")
		expect(p, { "n1" }, "msg", "r1-not-l1")

		-- namespaces: /admin clients on both nodes, / clients do not see it
		sids.na = connect(p, "na", "4", node_port, { nsp = "/admin", transports = { "websocket" } })
		sids.la = connect(p, "la", "4", srv:port(), { nsp = "/admin", transports = { "websocket" } })
		sio:of("/admin"):emit("msg", "lua-admin")
		expect(p, { "na", "la" }, "msg", "lua-admin")
		node:cmd { cmd = "emit", nsp = "/admin", event = "msg", args = { "node-admin" } }
		expect(p, { "na", "la" }, "msg", "node-admin")

		-- binary attachments, nested too
		local bytes = {}
		for i = 0, 999 do bytes[#bytes + 1] = string.char(i % 256) end
		bytes = table.concat(bytes)
		sio:emit("bin", socketio.binary(bytes), { inner = socketio.binary("\0\1\2") })
		for _, id in ipairs(everyone) do
			local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "bin" end)
			assert.are.equal(bytes, H.unbase64(ev.args[1]["$bin"]), id)
			assert.are.equal("\0\1\2", H.unbase64(ev.args[2].inner["$bin"]), id)
		end
		node:cmd { cmd = "emit", event = "bin", args = { { ["$bin"] = H.base64(bytes) }, 7 } }
		for _, id in ipairs(everyone) do
			local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "bin" end)
			assert.are.equal(bytes, H.unbase64(ev.args[1]["$bin"]), id)
			assert.are.equal(7, ev.args[2], id)
		end
		assert.is_nil(p:has("event"))
		stop()
	end)

	it("answers and asks fetchSockets, serverSideEmit with acks, socketsJoin/Leave, broadcast acks, disconnectSockets", function()
		start()
		lua_socket("l1"):join("r1")
		lua_socket("l1").data = { who = "l1" }
		node_join("n1", "r1")
		node_join("n2", "r2")
		lua_socket("l2"):join("r2")

		-- fetchSockets from the Lua node: both nodes' sockets in r1
		local got
		sio:in_("r1"):fetch_sockets(function(err, sockets) got = { err = err, sockets = sockets } end)
		H.run_until(function() return got end, 10000, "fetch_sockets")
		assert.is_nil(got.err)
		local by_id = {}
		for _, s in ipairs(got.sockets) do by_id[s.id] = s end
		assert.are.same(sorted { sids.l1, sids.n1 }, sorted { got.sockets[1].id, got.sockets[2].id })
		assert.are.equal(2, #got.sockets)
		assert.are.same(sorted { sids.n1, "r1" }, sorted(by_id[sids.n1].rooms))
		assert.are.same(sorted { sids.l1, "r1" }, sorted(by_id[sids.l1].rooms))
		assert.are.equal("l1", by_id[sids.l1].data.who)
		assert.are.equal(lua_socket("l1"), by_id[sids.l1].socket)
		assert.are.equal("127.0.0.1", by_id[sids.n1].handshake.address:match("127%.0%.0%.1"))
		-- a remote socket can be reached through its view
		by_id[sids.n1]:emit("msg", "via-remote-view")
		expect(p, { "n1" }, "msg", "via-remote-view")
		-- from the Node node: the Lua node answers (type 5)
		local t = tag()
		node:cmd { cmd = "fetch", rooms = { "r1" }, tag = t }
		local f = node:wait("fetched", 10000, function(e) return e.tag == t end)
		assert.is_nil(f.error)
		local remote
		for _, s in ipairs(f.sockets) do if s.id == sids.l1 then remote = s end end
		assert.are.equal(2, #f.sockets)
		assert.are.same(sorted { sids.l1, "r1" }, sorted(remote.rooms))
		assert.are.same({ who = "l1" }, remote.data)
		assert.are.equal("4", remote.query.EIO)

		-- serverSideEmit with acks, both ways, and without
		local replies
		sio:server_side_emit("ping_sse", "x", function(err, r) replies = { err = err, r = r } end)
		H.run_until(function() return replies end, 10000, "server_side_emit replies")
		assert.is_nil(replies.err)
		assert.are.same({ "node:x" }, replies.r)
		assert.are.equal("x", node:wait("sse", 5000).arg)
		t = tag()
		node:cmd { cmd = "sse", event = "ping_sse", args = { "y" }, tag = t }
		local sr = node:wait("sse-replies", 10000, function(e) return e.tag == t end)
		assert.is_nil(sr.error)
		assert.are.same({ "lua:y" }, sr.replies)
		local noted = {}
		sio:of("/admin"):on("note_sse", function(x) noted[#noted + 1] = x end)
		node:cmd { cmd = "sse", nsp = "/admin", event = "note_sse", args = { { a = json.array { 1, 2 } } } }
		sio:of("/admin"):server_side_emit("note_sse", "from-lua")
		H.run_until(function() return #noted == 1 end, 10000, "the serverSideEmit from Node")
		assert.are.same({ 1, 2 }, noted[1].a)
		assert.are.equal("from-lua", node:wait("sse", 5000, function(e) return e.nsp == "/admin" end).arg)

		-- socketsJoin / socketsLeave from either node reach both
		sio:in_("r1"):sockets_join("r3")
		sio:to("r3"):emit("msg", "lua-r3")
		expect(p, { "l1", "n1" }, "msg", "lua-r3")
		-- (a Node node applies its own room operations when their echo comes
		-- back from Redis: its fetchSockets, asked after, sees them done)
		node:cmd { cmd = "sockets_join", rooms = { "r2" }, room = "r4" }
		node_fetch_until({ "r4" }, sorted { sids.l2, sids.n2 })
		node:cmd { cmd = "emit", rooms = { "r4" }, event = "msg", args = { "node-r4" } }
		expect(p, { "l2", "n2" }, "msg", "node-r4")
		node:cmd { cmd = "sockets_leave", rooms = { "r3" }, room = "r3" }
		node_fetch_until({ "r3" }, {})
		node:cmd { cmd = "emit", rooms = { "r3" }, event = "msg", args = { "nobody-r3" } }
		sio:in_("r4"):sockets_leave("r4")
		sio:to("r4"):emit("msg", "nobody-r4")
		node:cmd { cmd = "emit", event = "msg", args = { "marker" } }
		expect(p, everyone, "msg", "marker")
		for _, ev in ipairs(p.events) do
			assert.is_false(ev.ev == "event" and (ev.args[1] == "nobody-r3" or ev.args[1] == "nobody-r4"), ev.id)
		end

		-- broadcast with acks: every client of both nodes answers once
		local acks
		sio:timeout(5000 * H.SLOW):emit("ask", "q", function(err, r) acks = { err = err, r = r } end)
		H.run_until(function() return acks end, 10000, "the broadcast acks")
		assert.is_nil(acks.err)
		assert.are.same(sorted(everyone), sorted(acks.r))
		t = tag()
		node:cmd { cmd = "ask", timeout = 5000 * H.SLOW, event = "ask", args = { "q" }, tag = t }
		local a = node:wait("acks", 10000, function(e) return e.tag == t end)
		assert.is.falsy(a.error)
		assert.are.same(sorted(everyone), a.responses)
		t = tag()
		node:cmd { cmd = "ask", rooms = { "r2" }, timeout = 5000 * H.SLOW, event = "ask", args = { "q" }, tag = t }
		a = node:wait("acks", 10000, function(e) return e.tag == t end)
		assert.are.same({ "l2", "n2" }, a.responses)

		-- every room of both nodes, asked from either
		t = tag()
		node:cmd { cmd = "all_rooms", tag = t }
		local ar = node:wait("all-rooms", 10000, function(e) return e.tag == t end)
		local rooms_set = {}
		for _, r in ipairs(ar.rooms) do rooms_set[r] = true end
		for _, r in ipairs { "r1", "r2", sids.l1, sids.n1, sids.l2, sids.n2 } do assert.is_true(rooms_set[r], r) end
		assert.is_nil(rooms_set.r3 or rooms_set.r4)
		local lrooms
		sio.sockets.adapter:all_rooms(function(err, set) lrooms = { err = err, set = set } end)
		H.run_until(function() return lrooms end, 10000, "all_rooms")
		assert.is_nil(lrooms.err)
		for _, r in ipairs { "r1", "r2", sids.l1, sids.n1, sids.l2, sids.n2 } do assert.is_true(lrooms.set[r], r) end
		assert.is_nil(lrooms.set.r3 or lrooms.set.r4)

		-- server count: NUMSUB of the request channel
		local n
		sio.sockets.adapter:server_count(function(c) n = c end)
		H.run_until(function() return n end, 5000, "the server count")
		assert.are.equal(2, n)

		-- disconnectSockets from either node
		sio:in_("r2"):disconnect_sockets()
		for _, id in ipairs { "l2", "n2" } do
			assert.are.equal("io server disconnect", p:wait("disconnect", 10000, function(e) return e.id == id end).reason)
		end
		node:cmd { cmd = "disconnect_sockets", rooms = { "r1" }, close = true }
		for _, id in ipairs { "l1", "n1" } do
			assert.are.equal("io server disconnect", p:wait("disconnect", 10000, function(e) return e.id == id end).reason)
		end
		assert.is_nil(p:has("disconnect"))
		stop()
	end)

	it("checks its options at the caller's line", function()
		local line = debug.getinfo(1, "l").currentline
		local ok, err = pcall(function() local a = socketio.redis_adapter { port = "6379" }; return a end)
		assert.is_false(ok)
		assert.matches("_spec.lua:" .. line + 1 .. ": option 'port' must be", err, 1, true)
		ok, err = pcall(function() local a = socketio.redis_adapter { hots = "x" }; return a end)
		assert.is_false(ok)
		assert.matches("unknown option 'hots'", err, 1, true)
		local server = H.server()
		assert.has_error(function() socketio(server, { adapter = {} }) end,
			"option 'adapter' must be a function(nsp) or have a new(nsp) method, got table")
	end)

	it("ends a request after request_timeout when a node stays silent, with what came", function()
		rs = H.redis_server()
		srv = H.server()
		factory = socketio.redis_adapter { port = rs.port, request_timeout = 300 }
		sio = socketio(srv, { adapter = factory })
		-- something subscribed to the request channel that never answers
		local mute = redis.connect { port = rs.port }
		mute:subscribe("socket.io-request#/#", function() end)
		wait_subscribers(rs.port, "socket.io-request#/#", 2)
		local got, replies
		local t0 = H.lws.now()
		sio:fetch_sockets(function(err, sockets) got = { err = err, n = #sockets } end)
		sio:server_side_emit("anyone", function(err, r) replies = { err = err, r = r } end)
		H.run_until(function() return got and replies end, 5000, "the timeouts")
		assert.is_true(H.lws.now() - t0 >= 290)
		assert.are.same({ err = "timeout reached while waiting for fetchSockets response", n = 0 }, got)
		assert.are.equal("timeout reached: only 0 responses received out of 1", replies.err)
		assert.are.same({}, replies.r)
		mute:close()
		stop()
	end)

	it("resumes on both kinds of node after Redis restarts", function()
		start()
		sio:emit("msg", "before")
		expect(p, everyone, "msg", "before")
		local patterns = {}
		factory.redis:on("psubscribe", function(pattern) patterns[#patterns + 1] = pattern end)
		rs.stop()
		-- local delivery never stops
		sio:emit("msg", "during")
		expect(p, { "l1", "l2" }, "msg", "during")
		rs = H.redis_server(rs.port)
		for _, ch in ipairs { "socket.io-request#/#", "socket.io-request#/admin#" } do
			wait_subscribers(rs.port, ch, 2)
		end
		-- and the pattern subscriptions: two connections (Node's and ours) with
		-- both namespaces' patterns again, and our publishing connection up
		H.run_until(function() return #patterns >= 2 end, 15000, "our pattern subscriptions")
		C.wait_clients(rs.port, "psub=2 ", 2)
		H.run_until(function() return factory.redis:ready() end, 15000, "our publishing connection")
		sio:emit("msg", "after-lua")
		expect(p, everyone, "msg", "after-lua")
		node:cmd { cmd = "emit", event = "msg", args = { "after-node" } }
		expect(p, everyone, "msg", "after-node")
		local got
		sio:fetch_sockets(function(err, sockets) got = { err = err, n = #sockets } end)
		H.run_until(function() return got end, 10000, "fetch_sockets after the restart")
		assert.are.same({ n = 4 }, got)
		-- the outage was reported once, through lws.on_error
		assert.is_true(#H.errors >= 1)
		assert.matches("reconnecting", H.errors[1], 1, true)
		stop()
	end)

	it("lets @socket.io/redis-emitter 5 reach the Lua node's clients, rooms and namespaces included", function()
		start()
		sids.la = connect(p, "la", "4", srv:port(), { nsp = "/admin", transports = { "websocket" } })
		sids.na = connect(p, "na", "4", node_port, { nsp = "/admin", transports = { "websocket" } })
		lua_socket("l1"):join("r1")
		node_join("n1", "r1")
		local script = ([[
const path = require('path');
const nm = path.resolve(%q, 'node_modules');
const { Emitter } = require(path.join(nm, '@socket.io', 'redis-emitter'));
const { createClient } = require(path.join(nm, 'redis'));
(async () => {
  const c = createClient({ url: 'redis://127.0.0.1:%d' });
  await c.connect();
  const e = new Emitter(c);
  e.emit('msg', 'emitter-all');
  e.to('r1').emit('msg', 'emitter-r1');
  e.except('r1').emit('msg', 'emitter-not-r1');
  e.of('/admin').emit('msg', 'emitter-admin');
  e.emit('bin', Buffer.from([1, 2, 3]));
  await c.quit();
})().catch((err) => { console.error(err); process.exit(1); });
]]):format(H.ROOT, rs.port)
		local path = os.tmpname()
		local fh = assert(io.open(path, "w"))
		fh:write(script)
		fh:close()
		local ok = os.execute("env -u LD_PRELOAD node " .. H.shell_quote(path))
		os.remove(path)
		assert.is_true(ok)
		expect(p, everyone, "msg", "emitter-all")
		expect(p, { "l1", "n1" }, "msg", "emitter-r1")
		expect(p, { "l2", "n2" }, "msg", "emitter-not-r1")
		expect(p, { "la", "na" }, "msg", "emitter-admin")
		for _, id in ipairs(everyone) do
			local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "bin" end)
			assert.are.equal("\1\2\3", H.unbase64(ev.args[1]["$bin"]), id)
		end
		stop()
	end)
end)
