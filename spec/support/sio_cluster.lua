--[[ spec/support/sio_cluster.lua: what the mixed-cluster Socket.IO specs
(spec/socketio_redis_adapter_spec.lua, spec/socketio_sharded_adapter_spec.lua,
spec/socketio_streams_adapter_spec.lua) share: waiting for Redis
subscribers, connecting an official client (spec/peers/sio_peer.js),
checking that each message arrives exactly once where it should, and the
checks a cluster of a Node node (spec/peers/sio_redis_server.js, clients n1
and n2) and two Lua nodes (A: l1, l2; B: m1) passes whatever the adapter.
Those take c = { lua = { {srv, sio, factory}, … }, node, p, sids }. ]]
local H = require "helper"
local json = require "lws.json"
local redis = require "lws.redis"
local socketio = require "lws.socketio"
local assert = require "luassert"

local M = {}

--- poll(port, argv, done(reply) -> ok, last, what): asks Redis argv
-- again and again until done(reply) holds (fails after 15 s, with what
-- last(reply) says of the last reply)
function M.poll(port, argv, done, what)
	local r = redis.connect { port = port }
	local seen, asked, ok_ = nil, false, false
	local ok, err = pcall(H.run_until, function()
		if not asked and r:ready() then
			asked = true
			r:command(argv, function(reply)
				asked = false
				ok_, seen = done(reply)
			end)
		end
		return ok_
	end, 15000, what, 50)
	r:close()
	if not ok then error(err .. " (last " .. tostring(seen) .. ")", 3) end
end

--- wait_subscribers(port, channel, n[, how]): until n connections are
-- subscribed to channel; how is "NUMSUB" (classic pub/sub, the default) or
-- "SHARDNUMSUB" (sharded)
function M.wait_subscribers(port, channel, n, how)
	how = how or "NUMSUB"
	M.poll(port, { "PUBSUB", how, channel }, function(reply)
		local got = reply and tonumber(reply[2]) or -1
		return got == n, got
	end, n .. " subscribers (" .. how .. ") of " .. channel)
end

--- wait_clients(port, pattern, n): until n lines of CLIENT LIST match pattern
function M.wait_clients(port, pattern, n)
	M.poll(port, { "CLIENT", "LIST" }, function(list)
		local got = 0
		for _ in tostring(list):gmatch(pattern) do got = got + 1 end
		return got == n, got
	end, n .. " clients with " .. pattern)
end

--- check_server_count(c, n): both kinds of node count n nodes
function M.check_server_count(c, n)
	local got
	c.lua[1].sio.sockets.adapter:server_count(function(x) got = x end)
	H.run_until(function() return got end, 5000, "the server count")
	assert.are.equal(n, got)
	local t = M.tag()
	c.node:cmd { cmd = "server_count", tag = t }
	assert.are.equal(n, c.node:wait("server-count", 5000, function(e) return e.tag == t end).n)
end

--- connect(p, id, version, port[, opts]) -> sid: a client on peer p, once it
-- is connected (and upgraded to websocket unless opts.transports is given)
function M.connect(p, id, version, port, opts)
	opts = opts or {}
	p:cmd { cmd = "connect", id = id, version = version, transports = opts.transports, nsp = opts.nsp,
		url = "http://127.0.0.1:" .. port, events = { "msg", "bin", "ask" }, ackReply = { id } }
	local ev = p:wait("connect", 10000, function(e) return e.id == id end)
	if not opts.transports then p:wait("upgrade", 10000, function(e) return e.id == id end) end
	return ev.sid
end

--- grace(): the time a copy that should not come has to show up. A
-- duplicate travels the route of a copy that already came, so this covers
-- the jitter between the two, not the slowdown of a whole run under
-- valgrind (LWS_TEST_SLOW=10 would make it 3 s per check).
function M.grace()
	H.run_for(300 * math.min(H.SLOW, 2))
end

--- expect(p, want, name[, text]): every id in want gets event name with
-- first argument text exactly once; nobody else gets it (within a grace
-- period after the last one came)
function M.expect(p, want, name, text)
	local set = {}
	for _, id in ipairs(want) do
		set[id] = true
		local ok, err = pcall(p.wait, p, "event", 10000, function(e)
			return e.id == id and e.event == name and (text == nil or e.args[1] == text)
		end)
		if not ok then error(("%s did not get '%s' %s: %s"):format(id, name, tostring(text), err), 2) end
	end
	M.grace()
	for _, ev in ipairs(p.events) do
		if ev.ev == "event" and ev.event == name and (text == nil or ev.args[1] == text) then
			error(("%s got '%s' %s"):format(ev.id, name, set[ev.id] and "twice" or "but should not have"), 2)
		end
	end
end

--- sorted(t) -> a sorted copy
function M.sorted(t)
	local c = {}
	for i, v in ipairs(t) do c[i] = v end
	table.sort(c)
	return c
end

--- lua_node(lua, factory[, sio_opts]) -> { srv, sio, factory }, appended to
-- lua; its "/" and "/admin" answer serverSideEmit("ping_sse", x, ack) with
-- "lua<index>:x"
function M.lua_node(lua, factory, sio_opts)
	local n, index = { factory = factory }, #lua + 1
	n.srv = H.server()
	local o = { adapter = factory }
	for k, v in pairs(sio_opts or {}) do o[k] = v end
	n.sio = socketio(n.srv, o)
	n.sio:on("connection", function() end)
	for _, nsp in ipairs { n.sio.sockets, n.sio:of("/admin") } do
		nsp:on("ping_sse", function(x, ack) if ack then ack("lua" .. index .. ":" .. x) end end)
	end
	lua[#lua + 1] = n
	return n
end

--- lua_socket(lua, sid[, nsp]) -> the socket of that id on a Lua node, the node
function M.lua_socket(lua, sid, nsp)
	for _, n in ipairs(lua) do
		local s = n.sio:of(nsp or "/").sockets[sid]
		if s then return s, n end
	end
end

--- node_join(node, sid, room): the Node node's socket sid joins room
function M.node_join(node, sid, room)
	local t = M.tag()
	node:cmd { cmd = "join", sid = sid, room = room, tag = t }
	node:wait("joined", 5000, function(e) return e.tag == t end)
end

--- node_fetch(node, rooms) -> sorted ids, sockets: the Node node's fetchSockets
function M.node_fetch(node, rooms)
	local t = M.tag()
	node:cmd { cmd = "fetch", rooms = rooms, tag = t }
	local f = node:wait("fetched", 10000, function(e) return e.tag == t end)
	assert.is_nil(f.error)
	local ids = {}
	for i, s in ipairs(f.sockets) do ids[i] = s.id end
	return M.sorted(ids), f.sockets
end

--- rooms(c): r1 = l1, n1; r2 = n2, l2, m1; l1's data { who = "l1" }
function M.rooms(c)
	local function lua_socket(id) return M.lua_socket(c.lua, c.sids[id]) end
	lua_socket("l1"):join("r1")
	lua_socket("l1").data = { who = "l1" }
	M.node_join(c.node, c.sids.n1, "r1")
	M.node_join(c.node, c.sids.n2, "r2")
	lua_socket("l2"):join("r2")
	lua_socket("m1"):join("r2")
end

--- stop(lua, gone(n)): closes the Lua nodes' servers, until gone(n) for each
function M.stop(lua, gone)
	for _, n in ipairs(lua) do n.sio:close() end
	for _, n in ipairs(lua) do
		H.run_until(function() return gone(n) end, 5000, "the adapter's redis clients to close")
	end
end

--- check_fetch(c): fetchSockets from each kind of node sees every node's
-- sockets, rooms, data and handshake; a remote socket's view reaches it
function M.check_fetch(c)
	local sids, sorted = c.sids, M.sorted
	local got
	c.lua[1].sio:in_("r1"):fetch_sockets(function(err, sockets) got = { err = err, sockets = sockets } end)
	H.run_until(function() return got end, 10000, "fetch_sockets")
	assert.is_nil(got.err)
	local by_id = {}
	for _, s in ipairs(got.sockets) do by_id[s.id] = s end
	assert.are.equal(2, #got.sockets)
	assert.are.same(sorted { sids.l1, sids.n1 }, sorted { got.sockets[1].id, got.sockets[2].id })
	assert.are.same(sorted { sids.n1, "r1" }, sorted(by_id[sids.n1].rooms))
	assert.are.same(sorted { sids.l1, "r1" }, sorted(by_id[sids.l1].rooms))
	assert.are.equal("l1", by_id[sids.l1].data.who)
	assert.are.equal(M.lua_socket(c.lua, sids.l1), by_id[sids.l1].socket)
	assert.matches("127%.0%.0%.1", by_id[sids.n1].handshake.address)
	-- a remote socket is reached through its view
	by_id[sids.n1]:emit("msg", "via-remote-view")
	M.expect(c.p, { "n1" }, "msg", "via-remote-view")
	got = nil
	c.lua[2].sio:in_("r2"):fetch_sockets(function(err, sockets) got = { err = err, sockets = sockets } end)
	H.run_until(function() return got end, 10000, "fetch_sockets from B")
	assert.is_nil(got.err)
	local ids = {}
	for i, s in ipairs(got.sockets) do ids[i] = s.id end
	assert.are.same(sorted { sids.n2, sids.l2, sids.m1 }, sorted(ids))
	-- from the Node node: both Lua nodes answer, with data and rooms
	local fids, fsockets = M.node_fetch(c.node, { "r1", "r2" })
	assert.are.same(sorted { sids.l1, sids.l2, sids.m1, sids.n1, sids.n2 }, fids)
	local remote
	for _, s in ipairs(fsockets) do if s.id == sids.l1 then remote = s end end
	assert.are.same(sorted { sids.l1, "r1" }, sorted(remote.rooms))
	assert.are.same({ who = "l1" }, remote.data)
	assert.are.equal("4", remote.query.EIO)
end

--- check_server_side_emit(c): serverSideEmit with acks both ways, and
-- without (binary too)
function M.check_server_side_emit(c)
	local lua, node = c.lua, c.node
	local replies
	lua[1].sio:server_side_emit("ping_sse", "x", function(err, r) replies = { err = err, r = r } end)
	H.run_until(function() return replies end, 10000, "server_side_emit replies")
	assert.is_nil(replies.err)
	assert.are.same({ "lua2:x", "node:x" }, M.sorted(replies.r))
	assert.are.equal("x", node:wait("sse", 5000).arg)
	local t = M.tag()
	node:cmd { cmd = "sse", event = "ping_sse", args = { "y" }, tag = t }
	local sr = node:wait("sse-replies", 10000, function(e) return e.tag == t end)
	assert.is_nil(sr.error)
	assert.are.same({ "lua1:y", "lua2:y" }, M.sorted(sr.replies))
	local noted = {}
	for i, n_ in ipairs(lua) do
		n_.sio:of("/admin"):on("note_sse", function(x) noted[#noted + 1] = { i, x } end)
	end
	node:cmd { cmd = "sse", nsp = "/admin", event = "note_sse", args = { { a = json.array { 1, 2 } } } }
	H.run_until(function() return #noted == 2 end, 10000, "the serverSideEmit from Node")
	for _, x in ipairs(noted) do assert.are.same({ 1, 2 }, x[2].a) end
	lua[1].sio:of("/admin"):server_side_emit("note_sse", socketio.binary("\1\2"))
	H.run_until(function() return #noted == 3 end, 10000, "the serverSideEmit from A to B")
	assert.are.equal(2, noted[3][1])
	assert.is_true(socketio.is_binary(noted[3][2]))
	assert.are.equal("AQI=", node:wait("sse", 5000, function(e) return e.nsp == "/admin" end).arg["$bin"])
end

--- check_broadcasts(c): io.emit, volatile, to(room), except,
-- to(socket id), socket.broadcast, socket.to from both kinds of node reach
-- exactly the clients they are for (see rooms())
function M.check_broadcasts(c)
	local lua, node, p, sids = c.lua, c.node, c.p, c.sids
	local everyone = { "n1", "n2", "l1", "l2", "m1" }
	local function socket(id) return M.lua_socket(lua, sids[id]) end
	lua[1].sio:emit("msg", "from-lua")
	M.expect(p, everyone, "msg", "from-lua")
	lua[2].sio:emit("msg", "from-lua-b")
	M.expect(p, everyone, "msg", "from-lua-b")
	node:cmd { cmd = "emit", event = "msg", args = { "from-node" } }
	M.expect(p, everyone, "msg", "from-node")
	-- volatile crosses too (every client is on a websocket by now, so writable)
	lua[1].sio.volatile:emit("msg", "volatile-lua")
	M.expect(p, everyone, "msg", "volatile-lua")
	node:cmd { cmd = "emit", volatile = true, event = "msg", args = { "volatile-node" } }
	M.expect(p, everyone, "msg", "volatile-node")

	lua[1].sio:to("r1"):emit("msg", "lua-to-r1")
	M.expect(p, { "l1", "n1" }, "msg", "lua-to-r1")
	lua[2].sio:to("r1"):emit("msg", "lua-b-to-r1")
	M.expect(p, { "l1", "n1" }, "msg", "lua-b-to-r1")
	node:cmd { cmd = "emit", rooms = { "r2" }, event = "msg", args = { "node-to-r2" } }
	M.expect(p, { "n2", "l2", "m1" }, "msg", "node-to-r2")
	node:cmd { cmd = "emit", rooms = { "r1" }, event = "msg", args = { "node-to-r1" } }
	M.expect(p, { "l1", "n1" }, "msg", "node-to-r1")
	lua[1].sio:to("r1"):to("r2"):emit("msg", "lua-to-r1-r2")
	M.expect(p, everyone, "msg", "lua-to-r1-r2")
	lua[1].sio:except("r2"):emit("msg", "lua-except-r2")
	M.expect(p, { "l1", "n1" }, "msg", "lua-except-r2")
	node:cmd { cmd = "emit", except = { "r1" }, event = "msg", args = { "node-except-r1" } }
	M.expect(p, { "l2", "n2", "m1" }, "msg", "node-except-r1")
	lua[1].sio:to("r2"):except("r1"):emit("msg", "lua-r2-not-r1")
	M.expect(p, { "l2", "n2", "m1" }, "msg", "lua-r2-not-r1")
	-- a room nobody has: nobody gets it
	lua[1].sio:to("nobody"):emit("msg", "to-nobody")
	-- one socket of another node
	lua[1].sio:to(sids.n1):emit("msg", "lua-to-n1")
	M.expect(p, { "n1" }, "msg", "lua-to-n1")
	node:cmd { cmd = "emit", rooms = { sids.m1 }, event = "msg", args = { "node-to-m1" } }
	M.expect(p, { "m1" }, "msg", "node-to-m1")
	-- socket.broadcast: everyone but the sender, on every node
	socket("l1").broadcast:emit("msg", "not-l1")
	M.expect(p, { "n1", "n2", "l2", "m1" }, "msg", "not-l1")
	node:cmd { cmd = "socket_emit", sid = sids.n2, event = "msg", args = { "not-n2" } }
	M.expect(p, { "n1", "l1", "l2", "m1" }, "msg", "not-n2")
	socket("m1"):to("r2"):emit("msg", "r2-not-m1")
	M.expect(p, { "n2", "l2" }, "msg", "r2-not-m1")
	for _, ev in ipairs(p.events) do assert.is_false(ev.ev == "event" and ev.args[1] == "to-nobody", ev.id) end
end

--- check_namespaces(c, node_port): /admin clients on each node (na, la,
-- ma) get /admin's broadcasts from both kinds of node
function M.check_namespaces(c, node_port)
	local p, sids, lua = c.p, c.sids, c.lua
	local o = { nsp = "/admin", transports = { "websocket" } }
	sids.na = M.connect(p, "na", "4", node_port, o)
	sids.la = M.connect(p, "la", "4", lua[1].srv:port(), o)
	sids.ma = M.connect(p, "ma", "4", lua[2].srv:port(), o)
	lua[1].sio:of("/admin"):emit("msg", "lua-admin")
	M.expect(p, { "na", "la", "ma" }, "msg", "lua-admin")
	c.node:cmd { cmd = "emit", nsp = "/admin", event = "msg", args = { "node-admin" } }
	M.expect(p, { "na", "la", "ma" }, "msg", "node-admin")
end

--- check_binary(c): binary attachments, nested too, from a Lua node to
-- every client and from the Node node to r2
function M.check_binary(c)
	local p = c.p
	local bytes = {}
	for i = 0, 999 do bytes[#bytes + 1] = string.char(i % 256) end
	bytes = table.concat(bytes)
	c.lua[1].sio:emit("bin", socketio.binary(bytes), { inner = socketio.binary("\0\1\2") })
	for _, id in ipairs { "n1", "n2", "l1", "l2", "m1" } do
		local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "bin" end)
		assert.are.equal(bytes, H.unbase64(ev.args[1]["$bin"]), id)
		assert.are.equal("\0\1\2", H.unbase64(ev.args[2].inner["$bin"]), id)
	end
	c.node:cmd { cmd = "emit", rooms = { "r2" }, event = "bin", args = { { ["$bin"] = H.base64(bytes) }, 7 } }
	for _, id in ipairs { "n2", "l2", "m1" } do
		local ev = p:wait("event", 10000, function(e) return e.id == id and e.event == "bin" end)
		assert.are.equal(bytes, H.unbase64(ev.args[1]["$bin"]), id)
		assert.are.equal(7, ev.args[2], id)
	end
	M.grace()
	assert.is_nil(p:has("event"))
end

--- clients(p, sids, node_port, lua): the five clients of the cluster
-- specs, their ids in sids: n1 (4.x, websocket) and n2 (2.x) on the Node
-- node, l1 (4.x, websocket) and l2 (2.x) on Lua node A, m1 (4.x,
-- websocket) on Lua node B
function M.clients(p, sids, node_port, lua)
	local ws = { transports = { "websocket" } }
	sids.n1 = M.connect(p, "n1", "4", node_port, ws)
	sids.n2 = M.connect(p, "n2", "2", node_port)
	sids.l1 = M.connect(p, "l1", "4", lua[1].srv:port(), ws)
	sids.l2 = M.connect(p, "l2", "2", lua[1].srv:port())
	sids.m1 = M.connect(p, "m1", "4", lua[2].srv:port(), ws)
end

local tags = 0
--- tag() -> a fresh message text
function M.tag()
	tags = tags + 1
	return "t" .. tags
end

return M
