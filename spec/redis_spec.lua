-- lws.redis (hiredis async on the lws loop) and lws.bus (broadcasts,
-- topics, custom kinds and presence across nodes) against a real
-- redis-server started per test on a free loopback port. A second node is
-- a child process (bin/lws-lua) with its own server and bus. Faults: Redis
-- killed and restarted, down at start, stopped (SIGSTOP), wrong password.
local H = require "helper"
local lws = require "lws"
local redis = require "lws.redis"
local busmod = require "lws.bus"
local socket = require "socket"

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

if not os.execute("command -v redis-server >/dev/null 2>&1") then
	describe("lws.redis", function()
		pending("redis-server is not installed (apt-get install redis-server; .ci/deps installs it)")
	end)
	return
end

-- What a node runs: the relay hooks asked of pubsub.lua (applied here until
-- they land there), and a server driven by its clients' messages.
local NODE = [=[
local lws = ...
local pubsub = require "lws.pubsub"
if not pubsub.local_publish then
	local sm = lws.core.server_methods
	local broadcast, publish = sm.broadcast, sm.publish
	pubsub.local_broadcast, pubsub.local_publish = broadcast, publish
	function sm.broadcast(srv, data, binary, opts)
		if type(binary) == "table" then binary, opts = nil, binary end
		local q, r = broadcast(srv, data, binary, opts)
		local bus = srv:fields()._bus
		if bus then bus:relay_broadcast(srv, data, binary, opts) end
		return q, r
	end
	function sm.publish(srv, topic, data, binary)
		local q, r = publish(srv, topic, data, binary)
		local bus = srv:fields()._bus
		if bus then bus:relay_publish(srv, topic, data, binary) end
		return q, r
	end
end
local M = {}
function M.serve(srv)
	srv:on("connection", function(ws)
		ws:on("message", function(d, binary)
			if binary then return srv:broadcast(d, true) end
			local cmd, rest = d:match("^(%a+):(.*)$")
			if cmd == "bcast" then srv:broadcast(rest)
			elseif cmd == "others" then srv:broadcast(rest, { except = ws })
			elseif cmd == "pub" then
				local t, m = rest:match("^([^:]+):(.*)$")
				srv:publish(t, m)
			elseif cmd == "sub" then ws:subscribe(rest); ws:send("subscribed:" .. rest) end
		end)
	end)
end
return M
]=]

local CHILD = [=[
local lws = require "lws"
local redis_port, status_path, node_path = tonumber(arg[1]), arg[2], arg[3]
local node = assert(loadfile(node_path))(lws)
local errors, subscribes, bus = 0, 0, nil
local srv = assert(lws.server { host = "127.0.0.1", port = 0 })
local function status()
	local f = assert(io.open(status_path .. ".tmp", "w"))
	f:write(("port %d\nsubscribes %d\nerrors %d\nready %d\n"):format(srv:port(), subscribes, errors,
		bus and bus:ready() and 1 or 0))
	f:close()
	os.rename(status_path .. ".tmp", status_path)
end
lws.on_error(function(msg)
	errors = errors + 1
	io.stderr:write(msg, "\n")
	status()
end)
bus = require("lws.bus").new {
	redis = { port = redis_port, ping_interval = 300, reconnect = { min = 50, max = 300 } },
	channel = "spec", node_id = "node-b",
}
bus.redis:on("subscribe", function() subscribes = subscribes + 1; status() end)
bus.redis:on("ready", status)
bus:attach(srv)
node.serve(srv)
status()
lws.set_timeout(function() os.exit(3) end, 600000)   -- never outlive a crashed spec
lws.run()
]=]

local tmpdir = H.ROOT .. "/spec/.tmp"
os.execute("mkdir -p " .. sh(tmpdir))
local node_path = tmpdir .. "/redis_node.lua"
local child_path = tmpdir .. "/redis_child.lua"
do
	local f = assert(io.open(node_path, "w")); f:write(NODE); f:close()
	f = assert(io.open(child_path, "w")); f:write(CHILD); f:close()
end
local node = assert(loadfile(node_path))(lws)

local free_port = H.free_port

local procs, clients, buses = {}, {}, {}

local function spawn(cmd, log)
	local pidfile = os.tmpname()
	os.execute(("%s >%s 2>&1 </dev/null & echo $! >%s"):format(cmd, sh(log), sh(pidfile)))
	local f = assert(io.open(pidfile))
	local pid = tonumber(f:read("l"))
	f:close()
	os.remove(pidfile)
	local p = { pid = pid, log = log }
	procs[#procs + 1] = p
	return p
end

local function kill(p, sig)
	if p.pid then os.execute(("kill -%s %d 2>/dev/null"):format(sig or "KILL", p.pid)) end
	if not sig or sig == "KILL" then p.pid = nil end
end

local function read_log(p)
	local f = io.open(p.log)
	if not f then return "" end
	local s = f:read("a")
	f:close()
	return s
end

-- redis_server([port[, extra args]]) -> { port, pid, stop() }, accepting
-- connections; H.clean stops it
local redis_server = H.redis_server

local function client(opts)
	local r = redis.connect(opts)
	clients[#clients + 1] = r
	return r
end

local function new_bus(opts)
	local b = busmod.new(opts)
	buses[#buses + 1] = b
	return b
end

local function wait_ready(r, what)
	H.run_until(function() return r:ready() end, 10000, what or "redis to be ready")
end

-- runs fn(cb) and waits for cb's arguments
local function await(fn, what)
	local res
	fn(function(...) res = table.pack(...) end)
	H.run_until(function() return res ~= nil end, 10000, what or "a reply")
	return table.unpack(res, 1, res.n)
end

local function read_status(path)
	local f = io.open(path)
	if not f then return {} end
	local t = {}
	for k, v in f:read("a"):gmatch("(%a+) (%d+)") do t[k] = tonumber(v) end
	f:close()
	return t
end

--- node_b(redis_port) -> { status(), port, proc }: a second node, in a
-- child process, subscribed to the bus
local function node_b(redis_port)
	local status_path = os.tmpname()
	os.remove(status_path)
	local p = spawn(("env -u LD_PRELOAD LWS_BUILD_DIR=build %s %s %d %s %s"):format(
		sh(H.ROOT .. "/bin/lws-lua"), sh(child_path), redis_port, sh(status_path), sh(node_path)), os.tmpname())
	local b = { proc = p, status = function() return read_status(status_path) end }
	local ok, err = pcall(H.run_until, function() return b.status().ready == 1 end, 20000,
		"node B to subscribe to the bus", 20)
	if not ok then error(err .. "\n" .. read_log(p), 2) end
	b.port = b.status().port
	return b
end

local url = H.ws_url

local function peer(port)
	local p = H.node()
	p:cmd { cmd = "connect", url = url(port) }
	p:wait("open")
	return p
end

local function expect_message(p, data, what)
	local ev = p:wait("message", 10000)
	assert.are.equal(data, ev.data, what)
	return ev
end

local function no_more_messages(peers)
	H.run_for(300)
	for name, p in pairs(peers) do
		local ev = p:has("message")
		assert.is_nil(ev, name .. " got an extra message: " .. tostring(ev and ev.data))
	end
end

local function teardown()
	for _, b in ipairs(buses) do b:close() end
	for _, r in ipairs(clients) do r:close() end
	buses, clients = {}, {}
	for _, p in ipairs(procs) do
		kill(p)
		os.remove(p.log)
	end
	procs = {}
end

describe("lws.redis", function()
	after_each(teardown)
	after_each(H.clean)

	it("round-trips commands: binary-safe values, nil, integers, arrays and errors", function()
		local srv = redis_server()
		local r = client { port = srv.port }
		local bin = {}
		for i = 0, 255 do bin[#bin + 1] = string.char(i) end
		bin = table.concat(bin) .. "\r\n$3\r\n"
		-- queued behind the handshake before the connection is up
		assert.is_true(r:command({ "SET", "k\0ey", bin }))
		assert.are.equal("OK", (await(function(cb) r:command({ "SET", "n", 41 }, cb) end)))
		assert.are.equal(bin, (await(function(cb) r:command({ "GET", "k\0ey" }, cb) end)))
		assert.are.equal(42, (await(function(cb) r:command({ "INCR", "n" }, cb) end)))
		local v, err, code = await(function(cb) r:command({ "GET", "missing" }, cb) end)
		assert.are.same({ nil, nil, nil }, { v, err, code })
		v, err, code = await(function(cb) r:command({ "INCR", "k\0ey" }, cb) end)
		assert.is_nil(v)
		assert.matches("not an integer", err)
		assert.are.equal("redis", code)
		v = await(function(cb) r:command({ "MGET", "n", "missing", "k\0ey" }, cb) end)
		assert.are.same({ "42", redis.null, bin }, v)
		assert.are.equal(require("cjson").null, redis.null)
		v = await(function(cb)
			r:command({ "EVAL", "return {1, {2, 'x'}, redis.error_reply('boom')}", "0" }, cb)
		end)
		assert.are.same({ 1, { 2, "x" }, { err = "ERR boom" } }, v)
		v, err, code = await(function(cb) r:command({ "NOSUCHCOMMAND" }, cb) end)
		assert.is_nil(v)
		assert.matches("unknown command", err)
		assert.are.equal("redis", code)
		-- a big value
		local big = H.pattern(3 * 1024 * 1024, true)
		r:command({ "SET", "big", big })
		assert.are.equal(big, (await(function(cb) r:command({ "GET", "big" }, cb) end)))
		assert.is_true(r:ready())
		assert.are.equal(0, #H.errors)
	end)

	it("raises for programmer errors", function()
		assert.has_error(function() redis.connect { port = 1, bogus = true } end, "unknown option 'bogus'")
		assert.has_error(function() redis.connect { port = 0 } end)
		assert.has_error(function() redis.connect { reconnect = { min = 1, oops = 2 } } end,
			"unknown option 'reconnect.oops'")
		assert.has_error(function() redis.connect "localhost" end)
		local r = client { port = free_port(), report_errors = false }
		assert.has_error(function() r:command("GET") end)
		assert.has_error(function() r:command({}) end)
		assert.has_error(function() r:command({ "SUBSCRIBE", "x" }) end)
		assert.has_error(function() r:command({ "GET", {} }) end)
		assert.has_error(function() r:command({ "GET", "x" }, 42) end)
		assert.has_error(function() r:publish("ch", 42) end)
		assert.has_error(function() r:subscribe("ch") end)
	end)

	it("publishes and subscribes on its own connection, binary-safe", function()
		local srv = redis_server()
		local r = client { port = srv.port }
		local pub = client { port = srv.port }
		local got, subscribed = {}, {}
		r:on("subscribe", function(ch) subscribed[ch] = true end)
		r:subscribe("a", function(m, ch) got[#got + 1] = ch .. "=" .. m end)
		r:subscribe("b\0in", function(m, ch) got[#got + 1] = ch .. "=" .. m end)
		H.run_until(function() return subscribed.a and subscribed["b\0in"] end, 10000, "subscriptions")
		-- the command connection still takes commands
		assert.are.equal("PONG", (await(function(cb) r:command({ "PING" }, cb) end)))
		assert.are.equal(1, (await(function(cb) pub:publish("a", "x\0y", cb) end)))
		pub:publish("b\0in", "\255")
		H.run_until(function() return #got == 2 end, 10000, "two messages")
		assert.are.same({ "a=x\0y", "b\0in=\255" }, got)
		assert.is_true(r:unsubscribe("a"))
		assert.is_false(r:unsubscribe("a"))
		H.run_until(function()
			local n = await(function(cb) pub:publish("a", "late", cb) end)
			return n == 0
		end, 10000, "the unsubscribe to take effect")
		pub:publish("b\0in", "last")
		H.run_until(function() return #got == 3 end, 10000, "a third message")
		assert.are.equal("b\0in=last", got[3])
		assert.are.equal(0, #H.errors)
	end)

	it("subscribes to patterns beside channels, and unsubscribes from them", function()
		local srv = redis_server()
		local r = client { port = srv.port }
		local pub = client { port = srv.port }
		local got, confirmed = {}, {}
		r:on("psubscribe", function(pattern) confirmed[pattern] = true end)
		r:on("subscribe", function(ch) confirmed[ch] = true end)
		r:psubscribe("news#*", function(m, ch, pattern) got[#got + 1] = pattern .. " " .. ch .. "=" .. m end)
		r:subscribe("news#a", function(m, ch) got[#got + 1] = ch .. "=" .. m end)
		H.run_until(function() return confirmed["news#*"] and confirmed["news#a"] end, 10000, "subscriptions")
		-- one message, seen by the pattern and the channel subscription
		assert.are.equal(2, (await(function(cb) pub:publish("news#a", "1\0", cb) end)))
		pub:publish("news#b#", "2")
		pub:publish("other", "3")
		H.run_until(function() return #got == 3 end, 10000, "three deliveries")
		table.sort(got)
		assert.are.same({ "news#* news#a=1\0", "news#* news#b#=2", "news#a=1\0" }, got)
		assert.is_true(r:punsubscribe("news#*"))
		assert.is_false(r:punsubscribe("news#*"))
		H.run_until(function()
			local n = await(function(cb) pub:publish("news#b#", "late", cb) end)
			return n == 0
		end, 10000, "the punsubscribe to take effect")
		assert.are.equal(3, #got)
		assert.has_error(function() r:psubscribe(1, print) end,
			"bad argument #1 to 'psubscribe' (string expected, got number)")
		assert.are.equal(0, #H.errors)
	end)

	it("subscribes to sharded channels (SSUBSCRIBE) beside classic ones, again after a restart", function()
		local srv = redis_server()
		local r = client { port = srv.port, reconnect = { min = 20, max = 200 } }
		local pub = client { port = srv.port, reconnect = { min = 20, max = 200 } }
		local got, confirmed = {}, {}
		r:on("ssubscribe", function(ch, n) confirmed["s:" .. ch] = n end)
		r:on("subscribe", function(ch) confirmed["c:" .. ch] = true end)
		r:ssubscribe("sh\0a", function(m, ch) got[#got + 1] = "s " .. ch .. "=" .. m end)
		r:ssubscribe("shb", function(m, ch) got[#got + 1] = "s " .. ch .. "=" .. m end)
		r:subscribe("sh\0a", function(m, ch) got[#got + 1] = "c " .. ch .. "=" .. m end)
		H.run_until(function() return confirmed["s:sh\0a"] and confirmed["s:shb"] and confirmed["c:sh\0a"] end,
			10000, "subscriptions")
		-- the same name as a shard channel and a classic one: two worlds
		assert.are.equal(1, (await(function(cb) pub:spublish("sh\0a", "1\0", cb) end)))
		assert.are.equal(1, (await(function(cb) pub:publish("sh\0a", "2", cb) end)))
		pub:spublish("shb", "3")
		H.run_until(function() return #got == 3 end, 10000, "three deliveries")
		assert.are.same({ "s sh\0a=1\0", "c sh\0a=2", "s shb=3" }, got)
		assert.are.same({ "shb", 1 }, (await(function(cb) pub:command({ "PUBSUB", "SHARDNUMSUB", "shb" }, cb) end)))
		assert.is_true(r:sunsubscribe("shb"))
		assert.is_false(r:sunsubscribe("shb"))
		H.run_until(function()
			return (await(function(cb) pub:spublish("shb", "late", cb) end)) == 0
		end, 10000, "the sunsubscribe to take effect")
		-- after a restart the shard channel is subscribed again
		confirmed = {}
		kill(srv)
		H.run_until(function() return not r:ready() end, 10000, "the outage to be seen")
		redis_server(srv.port)   -- stopped by teardown
		H.run_until(function() return confirmed["s:sh\0a"] and r:ready() and pub:ready() end, 10000,
			"the shard subscription again")
		assert.is_nil(confirmed["s:shb"])
		pub:spublish("sh\0a", "after")
		H.run_until(function() return #got == 4 end, 10000, "delivery after the restart")
		assert.are.equal("s sh\0a=after", got[4])
		assert.has_error(function() r:command({ "SSUBSCRIBE", "x" }) end)
		assert.has_error(function() r:spublish("ch", 42) end, "bad argument #2 to 'spublish' (string expected, got number)")
		assert.has_error(function() r:ssubscribe("ch") end)
		assert.are.equal(2, #H.errors)
		H.errors = {}
	end)

	it("sorts what a hostile server sends on the subscription connection and never crashes", function()
		-- a fake Redis: PONG to each PING; once it sees SSUBSCRIBE, a reply
		-- nobody asked for, an array that is no push, an smessage of a
		-- channel nobody subscribed, a good smessage, then garbage
		local ls = assert(socket.bind("127.0.0.1", 0))
		ls:settimeout(0)
		local _, port = ls:getsockname()
		local conns, hostile_sent = {}, 0
		local function pump()
			local c = ls:accept()
			if c then c:settimeout(0); conns[#conns + 1] = { sock = c, buf = "" } end
			for _, k in ipairs(conns) do
				local data, _, partial = k.sock:receive(65536)
				k.buf = k.buf .. (data or partial or "")
				local pings = 0
				k.buf = k.buf:gsub("%$4\r\nPING\r\n", function() pings = pings + 1; return "" end)
				if pings > 0 then k.sock:send(("+PONG\r\n"):rep(pings)) end
				if not k.hostile and k.buf:find("SSUBSCRIBE", 1, true) then
					k.hostile = true
					hostile_sent = hostile_sent + 1
					k.sock:send(":5\r\n" .. "*3\r\n$3\r\nfoo\r\n$1\r\nx\r\n:1\r\n" ..
						"*3\r\n$8\r\nsmessage\r\n$5\r\nother\r\n$1\r\nz\r\n" ..
						"*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$4\r\ngood\r\n" .. "?garbage\r\n")
				end
			end
		end
		local r = client { port = math.tointeger(tonumber(port)), ping_interval = false, reconnect = { min = 20, max = 100 },
			report_errors = false }
		local got, lost = {}, {}
		r:on("disconnect", function(role, reason) lost[#lost + 1] = role .. ": " .. reason end)
		r:ssubscribe("ch", function(m, ch) got[#got + 1] = ch .. "=" .. m end)
		H.run_until(function() pump(); return hostile_sent >= 2 and #lost >= 2 end, 10000,
			"two rounds of hostile replies")
		for _, k in ipairs(conns) do k.sock:close() end
		ls:close()
		r:close()
		assert.are.same({ "ch=good", "ch=good" }, { got[1], got[2] })
		assert.matches("^subscribe: .*[Pp]rotocol error", lost[1])
		assert.are.equal(0, #H.errors)
	end)

	it("close() answers what is pending, drains on request, and leaves nothing behind", function()
		local srv = redis_server()
		local r = client { port = srv.port }
		local answers, closed = {}, false
		for i = 1, 100 do
			assert.is_true(r:command({ "INCR", "c" }, function(v, err, code)
				answers[#answers + 1] = v or code
			end))
		end
		r:on("close", function() closed = true end)
		r:close()
		assert.are.same({ nil, "redis client is closed", "closed" }, { r:command({ "PING" }) })
		H.run_until(function() return closed end, 10000, "close")
		assert.are.equal(100, #answers)
		for _, a in ipairs(answers) do assert.are.equal("closed", a) end

		local r2 = client { port = srv.port }
		wait_ready(r2)
		local got
		r2:command({ "SET", "drained", "yes" }, function(v) got = v end)
		r2:close(5000)
		H.run_until(function() return got ~= nil end, 10000, "the drained reply")
		assert.are.equal("OK", got)
		H.run_until(function() return lws.stats().watches == 0 end, 10000, "connections to go")
	end)

	it("reports one error per outage: Redis killed and restarted, twice", function()
		local srv = redis_server()
		local r = client { port = srv.port, ping_interval = 300, reconnect = { min = 20, max = 200 } }
		local pub = client { port = srv.port, ping_interval = 300, reconnect = { min = 20, max = 200 } }
		local got, subs = {}, 0
		r:on("subscribe", function() subs = subs + 1 end)
		r:subscribe("ch", function(m) got[#got + 1] = m end)
		H.run_until(function() return subs == 1 and pub:ready() end, 10000, "subscribed")
		pub:publish("ch", "one")
		H.run_until(function() return #got == 1 end)
		for outage = 1, 2 do
			kill(srv)
			H.run_until(function() return not r:ready() and not pub:ready() end, 10000, "the outage to be seen")
			local refused = 0
			for i = 1, 50 do
				local ok, _, code = pub:publish("ch", "lost" .. i)
				if not ok then refused = refused + 1; assert.are.equal("down", code) end
			end
			assert.are.equal(50, refused)
			-- many failed attempts, one report per client
			H.run_until(function() return r:stats().failures >= 4 end, 10000, "reconnect attempts")
			assert.are.equal(2 * outage, #H.errors, table.concat(H.errors, "\n"))
			srv = redis_server(srv.port)
			H.run_until(function() return subs == outage + 1 and r:ready() and pub:ready() end, 10000,
				"the subscription to be re-established")
			pub:publish("ch", "after" .. outage)
			H.run_until(function() return #got == outage + 1 end, 10000, "delivery after the restart")
			assert.are.equal("after" .. outage, got[#got])
		end
		assert.are.equal(4, #H.errors)
		for _, e in ipairs(H.errors) do assert.matches("redis 127%.0%.0%.1:%d+", e) end
		H.errors = {}
		local s = pub:stats()
		assert.are.equal(2, s.outages)
		assert.are.equal(100, s.dropped)
	end)

	it("connects by itself when Redis starts after it", function()
		local port = free_port()
		local r = client { port = port, reconnect = { min = 20, max = 100 } }
		local got
		r:subscribe("ch", function(m) got = m end)
		local ok, _, code = r:command({ "PING" })
		assert.is_true(ok == true or code == "down")
		H.run_until(function() return r:stats().failures >= 6 end, 10000, "several attempts")
		assert.are.equal(1, #H.errors)
		assert.matches("refused", H.errors[1])
		assert.are.same({ nil, "redis is not connected (reconnecting)", "down" }, { r:command({ "PING" }) })
		redis_server(port)
		wait_ready(r)
		H.run_until(function() return r:stats().subscribe_state == "ready" end, 10000, "subscribe connection")
		local n
		H.run_until(function()
			n = await(function(cb) r:publish("ch", "hi", cb) end)
			return n == 1
		end, 10000, "the subscription to exist")
		H.run_until(function() return got == "hi" end)
		assert.are.equal(1, #H.errors)
		H.errors = {}
	end)

	it("bounds what waits on a stopped Redis, ends the connections by health ping, resumes", function()
		local srv = redis_server()
		local r = client { port = srv.port, ping_interval = 150, connect_timeout = 300, max_pending = 50,
			reconnect = { min = 20, max = 200 } }
		wait_ready(r)
		kill(srv, "STOP")
		local full = 0
		for i = 1, 200 do
			local ok, _, code = r:publish("ch", "x" .. i)
			if not ok then full = full + 1; assert.are.equal("full", code) end
		end
		assert.is_true(full >= 140, "refused " .. full)
		H.run_until(function() return not r:ready() end, 10000, "the health ping to give up")
		assert.are.equal(1, #H.errors)
		assert.matches("no reply to PING", H.errors[1])
		H.run_until(function() return r:stats().failures >= 3 end, 10000, "attempts on the stopped server")
		kill(srv, "CONT")
		wait_ready(r)
		assert.are.equal("PONG", (await(function(cb) r:command({ "PING" }, cb) end)))
		assert.are.equal(1, #H.errors)
		H.errors = {}
	end)

	it("authenticates and selects a database; a wrong password is one error", function()
		local srv = redis_server(nil, "--requirepass s3cret")
		local bad = client { port = srv.port, password = "wrong", reconnect = { min = 20, max = 100 } }
		H.run_until(function() return bad:stats().failures >= 3 end, 10000, "refused handshakes")
		assert.is_false(bad:ready())
		assert.are.equal(1, #H.errors)
		assert.matches("handshake: WRONGPASS", H.errors[1])
		bad:close()
		local r1 = client { port = srv.port, password = "s3cret", db = 3 }
		local r0 = client { port = srv.port, password = "s3cret" }
		assert.are.equal("OK", (await(function(cb) r1:command({ "SET", "where", "db3" }, cb) end)))
		assert.are.equal("db3", (await(function(cb) r1:command({ "GET", "where" }, cb) end)))
		assert.is_nil((await(function(cb) r0:command({ "GET", "where" }, cb) end)))
		H.errors = {}
	end)
end)

describe("lws.bus", function()
	after_each(teardown)
	after_each(H.clean)

	it("encodes and decodes envelopes", function()
		local payload = H.pattern(70000, true) .. "\0\r\n"
		local env = { origin = "node:1", kind = "sio", binary = true, targets = { "r1", "r\0 2" },
			except = { "r3" }, meta = { nsp = "/chat", flags = "" } }
		local msg = busmod.encode(env, payload)
		assert.are.equal("LWB1\1\6node:1\3sio", msg:sub(1, 16))
		local got, p = busmod.decode(msg)
		assert.are.equal(payload, p)
		assert.are.same({ origin = "node:1", kind = "sio", binary = true, targets = { "r1", "r\0 2" },
			except = { "r3" }, meta = { nsp = "/chat", flags = "" } }, got)
		got, p = busmod.decode(busmod.encode({ origin = "n", kind = "broadcast" }, ""))
		assert.are.same({ origin = "n", kind = "broadcast", binary = false, targets = {}, except = {}, meta = {} }, got)
		assert.are.equal("", p)
		assert.are.same({ nil, "not an lws bus envelope" }, { busmod.decode("hello") })
		assert.are.same({ nil, "truncated lws bus envelope" }, { busmod.decode(msg:sub(1, 12)) })
		assert.has_error(function() busmod.encode({ origin = ("x"):rep(256), kind = "k" }, "") end)
		assert.has_error(function() busmod.encode({ origin = "n", kind = "k", targets = { 1 } }, "") end)
	end)

	it("two nodes: broadcasts and topic messages reach every client exactly once", function()
		local rs = redis_server()
		local srv_a, port_a = H.server()
		local a = new_bus { redis = { port = rs.port }, channel = "spec", node_id = "node-a" }
		a:attach(srv_a)
		node.serve(srv_a)
		local b = node_b(rs.port)
		H.run_until(function() return a:ready() end, 10000, "bus A")
		local peers = { a1 = peer(port_a), a2 = peer(port_a), b1 = peer(b.port), b2 = peer(b.port) }
		local function everyone(data, except)
			for name, p in pairs(peers) do
				if name ~= except then expect_message(p, data, name) end
			end
		end
		peers.a1:cmd { cmd = "send", data = "bcast:from-a", track = false }
		everyone("from-a")
		peers.b1:cmd { cmd = "send", data = "bcast:from-b", track = false }
		everyone("from-b")
		-- except is a local connection: the other node has no such client
		peers.a2:cmd { cmd = "send", data = "others:not-a2", track = false }
		everyone("not-a2", "a2")
		peers.a2:cmd { cmd = "send", data = "sub:room", track = false }
		peers.b2:cmd { cmd = "send", data = "sub:room", track = false }
		expect_message(peers.a2, "subscribed:room")
		expect_message(peers.b2, "subscribed:room")
		peers.b1:cmd { cmd = "send", data = "pub:room:hello-room", track = false }
		expect_message(peers.a2, "hello-room")
		expect_message(peers.b2, "hello-room")
		peers.a1:cmd { cmd = "send", data = "pub:room:again", track = false }
		expect_message(peers.a2, "again")
		expect_message(peers.b2, "again")
		local bytes = {}
		for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
		bytes = table.concat(bytes):rep(200)   -- the peer reports up to 64 KiB
		peers.b2:cmd { cmd = "send", b64 = H.base64(bytes), binary = true, track = false }
		for name, p in pairs(peers) do
			local ev = p:wait("message", 10000)
			assert.is_true(ev.binary, name)
			assert.are.equal(#bytes, ev.len, name)
			assert.are.equal(bytes, ev.bytes, name)
		end
		no_more_messages(peers)
		local st = a:stats()
		assert.are.equal(3, st.sent)   -- from-a, not-a2, again
		assert.are.equal(3, st.received)   -- from-b, hello-room, the binary one
		assert.are.equal(3, st.echoes)
		assert.are.equal(0, #H.errors)
		assert.are.equal(0, b.status().errors)
	end)

	it("local delivery goes on while Redis is down; cross-node delivery resumes; one report per outage", function()
		local rs = redis_server()
		local srv_a, port_a = H.server()
		local a = new_bus { redis = { port = rs.port, ping_interval = 300, reconnect = { min = 20, max = 200 } },
			channel = "spec", node_id = "node-a" }
		a:attach(srv_a)
		node.serve(srv_a)
		local b = node_b(rs.port)
		H.run_until(function() return a:ready() end, 10000, "bus A")
		local a1, a2, b1 = peer(port_a), peer(port_a), peer(b.port)
		a1:cmd { cmd = "send", data = "bcast:before", track = false }
		for _, p in ipairs { a1, a2, b1 } do expect_message(p, "before") end

		kill(rs)
		H.run_until(function() return not a:ready() and not a.redis:ready() end, 10000, "bus A to see the outage")
		a1:cmd { cmd = "send", data = "bcast:during", track = false }
		expect_message(a1, "during")
		expect_message(a2, "during")
		for _ = 1, 100 do assert.is_nil((a:emit("noise", nil, "x"))) end
		H.run_until(function() return b.status().errors >= 1 end, 10000, "node B to report the outage", 20)

		redis_server(rs.port)   -- the same port again: the nodes find it by themselves
		H.run_until(function() return a:ready() and b.status().subscribes >= 2 and b.status().ready == 1 end, 15000,
			"both nodes to subscribe again", 20)
		b1:cmd { cmd = "send", data = "bcast:after", track = false }
		-- b1's next message is "after": "during" was dropped, not queued
		for _, p in ipairs { a1, a2, b1 } do expect_message(p, "after") end
		no_more_messages { a1 = a1, a2 = a2, b1 = b1 }
		assert.are.equal(1, #H.errors, table.concat(H.errors, "\n"))
		assert.are.equal(1, b.status().errors)
		assert.are.equal(101, a:stats().dropped)
		H.errors = {}
	end)

	it("carries custom kinds with targets, except and meta; a node ignores its own", function()
		local rs = redis_server()
		local b1 = new_bus { redis = { port = rs.port }, channel = "k", node_id = "n1" }
		local b2 = new_bus { redis = { port = rs.port }, channel = "k", node_id = "n2" }
		H.run_until(function() return b1:ready() and b2:ready() end, 10000, "both buses")
		local seen1, seen2 = {}, {}
		b1:on("kick", function(p, env) seen1[#seen1 + 1] = { p, env } end)
		b2:on("kick", function(p, env) seen2[#seen2 + 1] = { p, env } end)
		assert.is_true(b1:emit("kick", { targets = { "r1", "r2" }, except = { "r3" }, binary = true,
			meta = { by = "admin" } }, "\0\1\2"))
		H.run_until(function() return #seen2 == 1 end, 10000, "the kick on n2")
		local p, env = seen2[1][1], seen2[1][2]
		assert.are.equal("\0\1\2", p)
		assert.are.same({ origin = "n1", kind = "kick", binary = true, targets = { "r1", "r2" },
			except = { "r3" }, meta = { by = "admin" } }, env)
		H.run_until(function() return b1:stats().echoes == 1 end, 10000, "n1's echo")
		assert.are.equal(0, #seen1)
		b2:off("kick")
		assert.has_error(function() b1:emit("", nil, "x") end)
		assert.has_error(function() b1:emit("k", nil, 42) end)
	end)

	it("keeps presence across nodes; a dead node's members go after the TTL", function()
		local rs = redis_server()
		local b1 = new_bus { redis = { port = rs.port }, channel = "p", node_id = "n1", presence_ttl = 300 }
		local b2 = new_bus { redis = { port = rs.port }, channel = "p", node_id = "n2", presence_ttl = 300 }
		H.run_until(function() return b1:ready() and b2:ready() end, 10000, "both buses")
		b1:join("lobby", "alice", "a-info")
		b2:join("lobby", "bob")
		b2:join("lobby", "carol")
		local list
		H.run_until(function()   -- b2's joins travel on b2's own connection
			list = await(function(cb) b1:members("lobby", cb) end)
			return #list == 3
		end, 10000, "three members")
		assert.are.same({ { node = "n1", member = "alice", info = "a-info" },
			{ node = "n2", member = "bob", info = "" }, { node = "n2", member = "carol", info = "" } }, list)
		b2:leave("lobby", "carol")
		list = await(function(cb) b2:members("lobby", cb) end)
		assert.are.equal(2, #list)
		-- n2 dies without saying so: its refresh stops, its connection drops
		b2.presence_timer:stop()
		b2.presence_timer = nil
		b2.redis:close()
		H.run_until(function()
			list = await(function(cb) b1:members("lobby", cb) end)
			return #list == 1
		end, 10000, "bob to expire", 50)
		assert.are.same({ { node = "n1", member = "alice", info = "a-info" } }, list)
		-- the reader removed the dead node's field (its HDEL and this HLEN go on
		-- two connections, so Redis may see them in either order)
		local r = client { port = rs.port }
		H.run_until(function()
			return await(function(cb) r:command({ "HLEN", "p:presence:lobby" }, cb) end) == 1
		end, 5000, "the dead node's field to go")
		b1:close()
		H.run_until(function()
			return await(function(cb) r:command({ "EXISTS", "p:presence:lobby", "p:node:n1" }, cb) end) == 0
		end, 10000, "n1 to withdraw its presence")
	end)
end)
