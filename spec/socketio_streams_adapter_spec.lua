-- lws.socketio.redis_streams_adapter in a mixed cluster: a Node node
-- (spec/peers/sio_redis_server.js with socket.io 4.8 and
-- @socket.io/redis-streams-adapter 0.3 on redis@4, connectionStateRecovery
-- on), two Lua nodes in this process (recovery on too), one redis-server on
-- a free port, and socket.io-client 4 and 2 on every node
-- (spec/peers/sio_peer.js). Broadcasts and room operations go through the
-- stream with Node's fields and bytes, requests through pub/sub; every
-- message reaches each client it is for exactly once; and a 4.x client
-- that loses its connection and comes back to ANOTHER node (Node -> Lua,
-- Lua -> Node, Lua -> Lua) gets its id, rooms, data and the packets it
-- missed, once each.
local H = require "helper"
local json = require "lws.json"
local redis = require "lws.redis"
local socketio = require "lws.socketio"
local streams = require "lws.socketio.redis_streams"

local PEER = H.ROOT .. "/spec/peers/sio_peer.js"
local NODE = H.ROOT .. "/spec/peers/sio_redis_server.js"

describe("socket.io redis streams adapter: stream names", function()
	it("hashes namespace names as Node's computeStreamName does", function()
		-- the values Node's hashCode gives (node -e, see the adapter's util.js)
		assert.are.equal(47, streams.hash_code("/"))
		assert.are.equal(1438238848, streams.hash_code("/admin"))
		assert.are.equal(3396989, streams.hash_code("/é😀"))
		assert.are.equal(-1014064871, streams.hash_code("/notifications"))
		local f = { stream_name = "socket.io", stream_count = 1 }
		assert.are.equal("socket.io", streams.stream_of(f, "/admin"))
		f.stream_count = 3
		assert.are.equal("socket.io-2", streams.stream_of(f, "/"))
		assert.are.equal("socket.io-1", streams.stream_of(f, "/admin"))
		assert.are.equal("socket.io--2", streams.stream_of(f, "/notifications"))
		f.stream_count = 7
		assert.are.equal("socket.io--1", streams.stream_of(f, "/notifications"))
	end)

	it("checks its options, pointing at the caller", function()
		assert.has_error(function() socketio.redis_streams_adapter { max_len = "x" } end,
			"option 'max_len' must be an integer >= 1, got string \"x\"")
		local ok, err = pcall(socketio.redis_streams_adapter, { stream_nam = "x" })
		assert.is_false(ok)
		assert.matches("socketio_streams_adapter_spec.lua:%d+: .*stream_nam", err)
	end)

	it("decodes entries as Node writes them and refuses malformed ones", function()
		local m = streams.decode_entry { "uid", "abc", "nsp", "/", "type", "4",
			"data", '{"opts":{"rooms":["r"],"except":[]},"rooms":["x"]}' }
		assert.are.same({ uid = "abc", nsp = "/", type = 4, data = { opts = { rooms = { "r" }, except = {} },
			rooms = { "x" } } }, m)
		assert.is_nil((streams.decode_entry { "uid", "abc", "type", "3" }))
		assert.is_nil((streams.decode_entry { "nsp", "/", "type", "x" }))
		assert.is_nil((streams.decode_entry { "nsp", "/", "type", "3", "data", "!!not base64" }))
		assert.is_nil((streams.decode_entry { "nsp", "/", "type", "3", "data", "{broken" }))
		assert.is_nil((streams.decode_entry "nope"))
	end)
end)

if not H.has_redis then
	describe("socket.io redis streams adapter", function()
		pending("redis-server is not installed (apt-get install redis-server; .ci/deps installs it)")
	end)
	return
end

local C = require "sio_cluster"
local expect, sorted, tag = C.expect, C.sorted, C.tag

describe("socket.io redis streams adapter", function()
	local rs, node, node_port, p
	local lua = {}   -- the two Lua nodes: { srv, sio, factory }
	local sids = {}
	local everyone = { "n1", "n2", "l1", "l2", "m1" }

	local function lua_node(sharded)
		return C.lua_node(lua, socketio.redis_streams_adapter { port = rs.port, use_sharded_pubsub = sharded,
			redis = { reconnect = { min = 50, max = 300 } } },
			{ connection_state_recovery = { max_disconnection_duration = 60000 } })
	end

	-- n connections blocked in XREAD on the stream (every node reads it)
	local function wait_readers(n) C.wait_clients(rs.port, "cmd=xread", n) end

	-- the cluster: a Node node with n1, n2; Lua node A with l1, l2; Lua node B with m1
	-- (sharded: requests and answers by SPUBLISH, useShardedPubSub)
	local function start(sharded)
		rs = H.redis_server()
		node = H.node(NODE, { tostring(rs.port), "streams", sharded and "sharded" or "classic" })
		node:cmd { cmd = "listen" }
		node_port = math.tointeger(node:wait("listening", 15000).port)
		lua_node(sharded)
		lua_node(sharded)
		for _, ch in ipairs { "socket.io#/#", "socket.io#/admin#" } do
			C.wait_subscribers(rs.port, ch, 3, sharded and "SHARDNUMSUB" or "NUMSUB")
		end
		wait_readers(3)
		p = H.node(PEER)
		C.clients(p, sids, node_port, lua)
	end

	local function sio() return lua[1].sio end
	local function lua_socket(id) return C.lua_socket(lua, sids[id]) end
	local function node_join(id, room) return C.node_join(node, sids[id], room) end
	local function node_fetch(rooms_) return C.node_fetch(node, rooms_) end
	local function cluster() return { lua = lua, node = node, p = p, sids = sids } end
	-- r1 = l1, n1; r2 = n2, l2, m1
	local function rooms() return C.rooms(cluster()) end

	-- fn(reply) for one command on a fresh connection
	local function ask(argv)
		local r = redis.connect { port = rs.port }
		local got
		r:command(argv, function(reply, err) got = { reply = reply, err = err } end)
		H.run_until(function() return got end, 5000, argv[1])
		r:close()
		assert.is_nil(got.err)
		return got.reply
	end

	local function stop()
		C.stop(lua, function(n) return n.factory.redis == nil and next(n.factory.readers) == nil end)
		lua = {}
	end

	after_each(function()
		if #lua > 0 then pcall(stop) end   -- a test that failed half-way
		lua = {}
		H.clean()
	end)

	it("carries io.emit, to(room), except, socket.broadcast, namespaces and binary through the stream", function()
		start()
		rooms()
		-- the entries: ours have Node's fields, in Node's order, with Node's data
		local before = ask { "XREVRANGE", "socket.io", "+", "-", "COUNT", "1" }
		local last = before[1] and before[1][1] or "0-0"
		-- the offset each client gets is the entry's id (recovery is on everywhere)
		local got = {}
		local function offsets()
			for _, id in ipairs { "l1", "n1" } do
				local ev = p:wait("event", 10000, function(e) return e.id == id and e.args[1] == "same-bytes" end)
				got[#got + 1] = ev.args[2]
			end
		end
		sio():to("r1"):emit("msg", "same-bytes")
		offsets()
		node:cmd { cmd = "emit", rooms = { "r1" }, event = "msg", args = { "same-bytes" } }
		offsets()
		expect(p, {}, "msg", "same-bytes")
		local entries = ask { "XRANGE", "socket.io", "(" .. last, "+" }
		assert.are.equal(2, #entries)
		local function fields(uid)
			return { "uid", uid, "nsp", "/", "type", "3", "data",
				'{"packet":{"type":2,"data":["msg","same-bytes"]},"opts":{"rooms":["r1"],"except":[],"flags":{}}}' }
		end
		assert.are.same(fields(sio().sockets.adapter.uid), entries[1][2])
		assert.matches("^%x+$", entries[2][2][2])
		assert.are.same(fields(entries[2][2][2]), entries[2][2])
		assert.are.same(sorted { entries[1][1], entries[1][1], entries[2][1], entries[2][1] }, sorted(got))

		C.check_broadcasts(cluster())

		-- namespaces
		C.check_namespaces(cluster(), node_port)

		-- binary: base64 msgpack in the entry's data, both ways
		C.check_binary(cluster())
		local e = ask { "XREVRANGE", "socket.io", "+", "-", "COUNT", "2" }
		assert.are.same({ "uid", "nsp", "type", "data" }, { e[1][2][1], e[1][2][3], e[1][2][5], e[1][2][7] })
		for _, entry in ipairs(e) do
			assert.is_truthy(entry[2][8]:match("^[A-Za-z0-9+/=]+$"), "base64, not JSON")
			assert.are.equal("bin", streams.decode_entry(entry[2]).data.packet.data[1])
		end
		stop()
	end)

	it("answers and asks fetchSockets, serverSideEmit with acks, socketsJoin/Leave, broadcast acks, disconnectSockets",
		function()
		start()
		rooms()
		-- the node count: NUMSUB of the public channel, on both kinds of node
		C.check_server_count(cluster(), 3)

		C.check_fetch(cluster())
		C.check_server_side_emit(cluster())

		-- room operations travel in the stream
		sio():in_("r1"):sockets_join("r3")
		H.run_until(function() return #(node_fetch { "r3" }) == 2 end, 10000, "r3 on the Node node")
		sio():to("r3"):emit("msg", "lua-r3")
		expect(p, { "l1", "n1" }, "msg", "lua-r3")
		node:cmd { cmd = "sockets_join", rooms = { "r2" }, room = "r4" }
		H.run_until(function() return lua_socket("m1").rooms["r4"] and lua_socket("l2").rooms["r4"] end, 10000,
			"r4 on A and B")
		lua[2].sio:to("r4"):emit("msg", "lua-b-r4")
		expect(p, { "l2", "n2", "m1" }, "msg", "lua-b-r4")
		node:cmd { cmd = "sockets_leave", rooms = { "r4" }, room = "r4" }
		H.run_until(function() return not lua_socket("m1").rooms["r4"] and not lua_socket("l2").rooms["r4"] end, 10000,
			"r4 left on A and B")
		-- Node leaves its own once its XADD is answered (ClusterAdapter.delSockets)
		H.run_until(function() return #(node_fetch { "r4" }) == 0 end, 10000, "r4 empty on the Node node")

		local acks
		sio():timeout(5000 * H.SLOW):emit("ask", "q", function(err, r) acks = { err = err, r = r } end)
		H.run_until(function() return acks end, 10000, "the broadcast acks")
		assert.is_nil(acks.err)
		assert.are.same(sorted(everyone), sorted(acks.r))
		local t = tag()
		node:cmd { cmd = "ask", rooms = { "r2" }, timeout = 5000 * H.SLOW, event = "ask", args = { "q" }, tag = t }
		local na = node:wait("acks", 10000, function(e) return e.tag == t end)
		assert.is_nil(na.error)
		assert.are.same(sorted { "n2", "l2", "m1" }, na.responses)

		node:cmd { cmd = "disconnect_sockets", rooms = { "r1" }, close = true }
		for _, id in ipairs { "l1", "n1" } do
			p:wait("disconnect", 10000, function(e) return e.id == id end)
		end
		stop()
	end)

	it("sends requests and answers by sharded pub/sub with use_sharded_pubsub", function()
		start(true)
		rooms()
		C.wait_subscribers(rs.port, "socket.io#/#", 0)   -- nothing on classic channels
		C.check_server_count(cluster(), 3)               -- SHARDNUMSUB
		C.check_fetch(cluster())
		C.check_server_side_emit(cluster())
		local acks
		sio():timeout(5000 * H.SLOW):emit("ask", "q", function(err, r) acks = { err = err, r = r } end)
		H.run_until(function() return acks end, 10000, "the broadcast acks")
		assert.is_nil(acks.err)
		assert.are.same(sorted(everyone), sorted(acks.r))
		node:cmd { cmd = "emit", rooms = { "r2" }, event = "msg", args = { "node-to-r2" } }
		expect(p, { "n2", "l2", "m1" }, "msg", "node-to-r2")
		stop()
	end)

	-- the client id disconnects and comes back to url (after a second: its
	-- reconnection delay); meanwhile gap() sends what it misses and returns
	-- how many stream entries that makes, all in before it reconnects.
	-- Returns the connect event.
	local function move(id, url, gap)
		local len = ask { "XLEN", "socket.io" }
		p:cmd { cmd = "move", id = id, url = url }
		p:wait("disconnect", 10000, function(e) return e.id == id end)
		-- its session is in Redis (the node saw the close) before anything is sent
		H.run_until(function() return #ask { "KEYS", "sio:session:*" } == 1 end, 5000,
			"the session of " .. id .. " in Redis", 20)
		local n = gap()
		H.run_until(function() return ask { "XLEN", "socket.io" } == len + n end, 5000, "the missed entries", 20)
		local ev = p:wait("connect", 15000, function(e) return e.id == id end)
		return ev
	end

	local function got_once(id, texts)
		for _, text in ipairs(texts) do
			p:wait("event", 10000, function(e) return e.id == id and e.event == "msg" and e.args[1] == text end)
		end
		C.grace()
		for _, ev in ipairs(p.events) do
			assert.is_false(ev.ev == "event" and ev.id == id, "more for " .. id .. ": " .. json.encode(ev.args))
		end
	end

	it("recovers a session on another node: Node -> Lua, Lua -> Lua, Lua -> Node", function()
		start()
		rooms()
		local url = function(port) return "http://127.0.0.1:" .. port end
		-- c1 starts on the Node node, in room rr, with data
		p:cmd { cmd = "connect", id = "c1", version = "4", url = url(node_port), transports = { "websocket" },
			reconnectionDelay = 1000 * H.SLOW, reconnectionDelayMax = 1000 * H.SLOW, events = { "msg" } }
		sids.c1 = p:wait("connect", 10000, function(e) return e.id == "c1" end).sid
		node_join("c1", "rr")
		local t = tag()
		node:cmd { cmd = "set_data", sid = sids.c1, data = { who = "c1" }, tag = t }
		node:wait("data-set", 5000, function(e) return e.tag == t end)
		sio():to("rr"):emit("msg", "before")
		got_once("c1", { "before" })

		-- Node -> Lua A, missing one broadcast of each node (and not one of another room)
		local ev = move("c1", url(lua[1].srv:port()), function()
			node:cmd { cmd = "emit", rooms = { "rr" }, event = "msg", args = { "gap1-node" } }
			sio():emit("msg", "gap1-lua-a")
			lua[2].sio:to("rr"):except("r1"):emit("msg", "gap1-lua-b")
			lua[2].sio:to("r2"):emit("msg", "gap1-not-for-c1")
			sio().volatile:to("rr"):emit("msg", "gap1-volatile")
			node:cmd { cmd = "emit", rooms = { "rr" }, except = { "rr" }, event = "msg", args = { "gap1-excluded" } }
			return 6
		end)
		assert.is_true(ev.recovered)
		assert.are.equal(sids.c1, ev.sid)
		-- volatile ones are kept too, as Node does
		got_once("c1", { "gap1-node", "gap1-lua-a", "gap1-lua-b", "gap1-volatile" })
		expect(p, { "n2", "l2", "m1" }, "msg", "gap1-not-for-c1")
		expect(p, everyone, "msg", "gap1-lua-a")
		expect(p, {}, "msg", "gap1-volatile")   -- rr is c1's alone: nobody else
		expect(p, {}, "msg", "gap1-excluded")
		local s = lua_socket("c1")
		assert.is_truthy(s, "c1 is on a Lua node")
		assert.is_true(s.recovered)
		assert.are.same({ who = "c1" }, s.data)
		assert.is_true(s.rooms["rr"])
		assert.are.equal(0, #ask { "KEYS", "sio:session:*" })
		node:cmd { cmd = "emit", rooms = { "rr" }, event = "msg", args = { "rr-after-1" } }
		got_once("c1", { "rr-after-1" })

		-- Lua A -> Lua B
		s.data.hops = 1
		ev = move("c1", url(lua[2].srv:port()), function()
			node:cmd { cmd = "emit", event = "msg", args = { "gap2-node" } }
			sio():to("rr"):emit("msg", "gap2-lua-a")
			return 2
		end)
		assert.is_true(ev.recovered)
		assert.are.equal(sids.c1, ev.sid)
		got_once("c1", { "gap2-node", "gap2-lua-a" })
		expect(p, everyone, "msg", "gap2-node")
		local s2, owner = lua_socket("c1")
		assert.are.equal(lua[2], owner)
		assert.are.same({ who = "c1", hops = 1 }, s2.data)

		-- Lua B -> Node
		ev = move("c1", url(node_port), function()
			sio():to("rr"):emit("msg", "gap3-lua-a")
			lua[2].sio:emit("msg", "gap3-lua-b")
			return 2
		end)
		assert.is_true(ev.recovered)
		assert.are.equal(sids.c1, ev.sid)
		got_once("c1", { "gap3-lua-a", "gap3-lua-b" })
		expect(p, everyone, "msg", "gap3-lua-b")
		local conn = node:wait("connection", 5000, function(e) return e.sid == sids.c1 and e.recovered end)
		assert.are.same(sorted { sids.c1, "rr" }, conn.rooms)
		assert.are.same({ who = "c1", hops = 1 }, conn.data)
		stop()
	end)

	it("starts a new session when the pid, the offset or the session is unknown or malformed", function()
		start()
		sio():emit("msg", "x")
		expect(p, everyone, "msg", "x")
		local last = ask { "XREVRANGE", "socket.io", "+", "-", "COUNT", "1" }[1][1]
		local r = redis.connect { port = rs.port }
		local set
		r:command({ "SET", "sio:session:p-garbage", "garbage!", "PX", "60000" }, function() end)
		r:command({ "SET", "sio:session:p-old", "garbage!", "PX", "60000" }, function(ok) set = ok end)
		H.run_until(function() return set end, 5000, "SET")
		r:close()
		for i, auth in ipairs {
			{ pid = "nobody", offset = last },           -- no such session
			{ pid = "nobody", offset = "x" },            -- not an offset
			{ pid = 1, offset = "1-1" },                 -- not a pid
			{ pid = "p-old", offset = "1-0" },           -- the offset is not in the stream
		} do
			local id = "u" .. i
			p:cmd { cmd = "connect", id = id, version = "4", url = "http://127.0.0.1:" .. lua[1].srv:port(),
				transports = { "websocket" }, auth = auth }
			local ev = p:wait("connect", 10000, function(e) return e.id == id end)
			assert.is_false(ev.recovered, id)
			sids[id] = ev.sid
			assert.is_false(lua_socket(id).recovered, id)
		end
		-- a session that is not base64 msgpack, with a good offset: a new one, and a report
		p:cmd { cmd = "connect", id = "u5", version = "4", url = "http://127.0.0.1:" .. lua[1].srv:port(),
			transports = { "websocket" }, auth = { pid = "p-garbage", offset = last } }
		assert.is_false(p:wait("connect", 10000, function(e) return e.id == "u5" end).recovered)
		assert.are.equal(1, #H.errors)
		assert.matches("malformed session", H.errors[1], 1, true)
		stop()
	end)

	it("resumes on both kinds of node after Redis restarts", function()
		start()
		sio():emit("msg", "before")
		expect(p, everyone, "msg", "before")
		rs.stop()
		-- local delivery never stops (without an offset while Redis is away)
		sio():emit("msg", "during")
		expect(p, { "l1", "l2" }, "msg", "during")
		rs = H.redis_server(rs.port)
		for _, ch in ipairs { "socket.io#/#", "socket.io#/admin#" } do C.wait_subscribers(rs.port, ch, 3) end
		wait_readers(3)
		H.run_until(function() return lua[1].factory.redis:ready() and lua[2].factory.redis:ready() end, 15000,
			"our command connections")
		sio():emit("msg", "after-lua")
		expect(p, everyone, "msg", "after-lua")
		node:cmd { cmd = "emit", event = "msg", args = { "after-node" } }
		expect(p, everyone, "msg", "after-node")
		local got
		sio():fetch_sockets(function(err, sockets) got = { err = err, n = #sockets } end)
		H.run_until(function() return got end, 10000, "fetch_sockets after the restart")
		assert.are.same({ n = 5 }, got)
		assert.is_true(#H.errors >= 1)
		stop()
	end)
end)
