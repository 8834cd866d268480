-- sio:instrument (lws.socketio.admin) beside Node's: the same little app
-- runs on this Lua server and on spec/peers/sio_admin_server.js (socket.io
-- 4.8 with @socket.io/admin-ui 0.5's instrument(), same options), the
-- official socket.io-client 4 (spec/peers/sio_peer.js) logs into both
-- admin namespaces and does the same things on both, and every admin
-- event the Lua server sends must have the fields (names and kinds, and
-- the values that do not depend on ids or clocks) of Node's. Then the UI
-- itself (its ui/dist, served by our static route through
-- examples/admin/admin_ui.lua) in Chromium, showing the Lua server's
-- sockets and rooms with nothing fetched from elsewhere;
-- LWS_ADMIN_SCREENSHOT=file.png keeps a screenshot.
local H = require "helper"
local json = require "lws.json"
local core = require "lws.core"
local socketio = require "lws.socketio"

package.path = H.ROOT .. "/examples/admin/?.lua;" .. package.path
local admin_ui = require "admin_ui"

local PEER = H.ROOT .. "/spec/peers/sio_peer.js"
local NODE = H.ROOT .. "/spec/peers/sio_admin_server.js"
local BROWSER = H.ROOT .. "/spec/peers/admin_ui_browser.js"

local ADMIN_EVENTS = { "session", "config", "server_stats", "all_sockets", "socket_connected",
	"socket_updated", "socket_disconnected", "room_joined", "room_left", "event_received", "event_sent" }
local PASSWORD = "s3cr3t pass"

-- the app both servers run (sio_admin_server.js has the same)
local function app(nsp)
	nsp:use(function(s, next_fn)
		if type(s.handshake.auth.user) == "string" then s.data.user = s.handshake.auth.user end
		next_fn()
	end)
	nsp:on("connection", function(s)
		s:on("join_me", function(room) s:join(room) end)
		s:on("leave_me", function(room) s:leave(room) end)
		s:on("hello", function(x, ack)
			s:emit("hi", x)
			if ack then ack("ok:" .. x) end
		end)
		s:on("set_data", function(v) s.data.v = v end)
	end)
end

-- the kind of every field, recursively: {key:kind,...}, [kind,...]
local function shape(v)
	if v == nil or v == json.null then return "null" end
	local t = type(v)
	if t ~= "table" then return t end
	local parts = {}
	if json.is_array(v) then
		for i, x in ipairs(v) do parts[i] = shape(x) end
		return "[" .. table.concat(parts, ",") .. "]"
	end
	local keys = {}
	for k in pairs(v) do keys[#keys + 1] = k end
	table.sort(keys)
	for i, k in ipairs(keys) do parts[i] = k .. ":" .. shape(v[k]) end
	return "{" .. table.concat(parts, ",") .. "}"
end

-- the distinct shapes of a list's elements, sorted
local function shapes_of(list)
	local set, out = {}, {}
	for _, x in ipairs(list) do set[shape(x)] = true end
	for s in pairs(set) do out[#out + 1] = s end
	table.sort(out)
	return out
end

-- an event's arguments with what varies with timing made comparable:
-- server_stats' aggregatedEvents (how many depends on the second they
-- fell in) by their distinct shapes, lists of sockets by theirs
local function comparable(name, args)
	if name == "server_stats" then
		local st = args[1]
		local c = json.object {}
		for k, v in pairs(st) do c[k] = v end
		c.aggregatedEvents = "entries " .. table.concat(shapes_of(st.aggregatedEvents), " ")
		return shape(c)
	elseif name == "all_sockets" then
		return "[" .. table.concat(shapes_of(args[1]), " ") .. "]"
	end
	return shape(args)
end

local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"

local function near_now(iso)
	local y, mo, d, h, mi, s = iso:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)")
	local t = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = s, isdst = false }
	-- os.time reads the table as local time: the offset of this zone
	local utc = os.time(os.date("!*t", 0))
	return math.abs((t - utc) - os.time()) <= 5
end

describe("socket.io admin (sio:instrument)", function()
	local node, node_port, srv, sio, p, hash
	local sides

	-- both servers with the same options; opts.auth: true (basic with
	-- hash), false; the rest as instrument()'s (Lua names)
	local function start(opts)
		opts = opts or {}
		node = H.node(NODE)
		node:cmd { cmd = "hash", password = PASSWORD, rounds = 4 }
		hash = opts.hash or node:wait("hash").hash
		local auth = opts.auth ~= false and { username = "admin", password = hash } or false
		node:cmd { cmd = "listen", auth = auth, mode = opts.mode, readonly = opts.readonly,
			namespaceName = opts.namespace_name, serverId = opts.server_id and "node-" .. opts.server_id,
			redisPort = opts.redis_port }
		node_port = math.tointeger(node:wait("listening", 10000).port)
		srv = H.server()
		sio = socketio(srv, { adapter = opts.redis_port and socketio.redis_adapter { port = opts.redis_port } })
		app(sio.sockets)
		app(sio:of("/chat"))
		sio:instrument { auth = auth and { type = "basic", username = "admin", password = hash },
			mode = opts.mode, readonly = opts.readonly, namespace_name = opts.namespace_name,
			server_id = opts.server_id and "lua-" .. opts.server_id }
		p = H.node(PEER)
		sides = { N = node_port, L = srv:port() }
	end

	after_each(function()
		if sio then sio:close() end
		sio, node, p = nil, nil, nil
		H.clean()
	end)

	local function url(side) return "http://127.0.0.1:" .. sides[side] end

	-- an admin client on side ("N" or "L"), logged in; -> its connect event
	local function admin(side, id, opts)
		opts = opts or {}
		p:cmd { cmd = "connect", id = id, version = "4", url = url(side), nsp = opts.nsp or "/admin",
			auth = opts.auth == nil and { username = "admin", password = PASSWORD } or opts.auth or nil,
			transports = { "websocket" }, events = ADMIN_EVENTS, reconnection = false }
		return p:wait(opts.fail and "connect_error" or "connect", 10000, function(e) return e.id == id end)
	end

	local function client(side, id, opts)
		opts = opts or {}
		p:cmd { cmd = "connect", id = id, version = opts.version or "4", url = url(side), nsp = opts.nsp, auth = opts.auth,
			transports = opts.transports, events = { "hi", "note" }, reconnection = false }
		local ev = p:wait("connect", 10000, function(e) return e.id == id end)
		if not opts.transports then p:wait("upgrade", 10000, function(e) return e.id == id end) end
		return ev.sid
	end

	local function emit(id, event, args, ack)
		p:cmd { cmd = "emit", id = id, event = event, argsJson = json.encode(json.array(args)), ack = ack }
	end

	-- the admin event name to admin id, whose args pass pred (removed);
	-- args decoded by lws.json, so [] and {} stay apart
	local function admin_event(id, name, pred, ms)
		local ev = p:wait("event", ms or 5000, function(e)
			return e.id == id and e.event == name and (not pred or pred(json.decode(e.json)))
		end)
		return json.decode(ev.json)
	end

	-- every admin event queued for id, by name: { name = { comparable, ... } }
	local function drain(id)
		local by = {}
		for i = #p.events, 1, -1 do
			local e = p.events[i]
			if e.ev == "event" and e.id == id then
				table.remove(p.events, i)
				local args = json.decode(e.json)
				by[e.event] = by[e.event] or {}
				table.insert(by[e.event], 1, args)
			end
		end
		return by
	end

	-- the distinct comparable forms of each event name
	local function forms(by)
		local out = {}
		for name, list in pairs(by) do
			local set, l = {}, {}
			for _, args in ipairs(list) do set[comparable(name, args)] = true end
			for f in pairs(set) do l[#l + 1] = f end
			table.sort(l)
			out[name] = l
		end
		return out
	end

	describe("authentication", function()
		it("basic with a bcrypt hash: wrong or missing credentials refused, then a session id", function()
			start()
			for _, side in ipairs { "N", "L" } do
				local attempts = { false, { username = "admin", password = "wrong" },
					{ username = "root", password = PASSWORD }, { sessionId = "made-up" } }
				if side == "L" then
					-- the right name without a password (a string): instrument()'s
					-- bcryptjs.compare rejects and the Node process dies of it
					attempts[#attempts + 1] = { username = "admin" }
					attempts[#attempts + 1] = { username = "admin", password = 12 }
				end
				for i, auth in ipairs(attempts) do
					local e = admin(side, side .. "bad" .. i, { auth = auth, fail = true })
					assert.are.equal("invalid credentials", e.message, side .. " attempt " .. i)
				end
				admin(side, side .. "a")
				local sid = admin_event(side .. "a", "session")[1]
				assert.are.equal("string", type(sid))
				-- the session id logs in by itself, without a new one
				admin(side, side .. "again", { auth = { sessionId = sid } })
				admin_event(side .. "again", "config")
				H.run_for(200)
				for _, e in ipairs(p.events) do
					assert.is_false(e.id == side .. "again" and e.event == "session", "a second session id")
				end
			end
		end)

		it("takes $2b$ and $2y$ hashes (crypt(3)) as Node takes $2a$", function()
			start()
			local body = hash:sub(4)
			for _, prefix in ipairs { "$2b", "$2y" } do
				local s2 = H.server()
				local io2 = socketio(s2)
				io2:instrument { auth = { type = "basic", username = "admin", password = prefix .. body } }
				sides.X = s2:port()
				admin("X", "x" .. prefix)
				assert.are.equal("string", type(admin_event("x" .. prefix, "session")[1]))
				assert.are.equal("invalid credentials",
					admin("X", "bad" .. prefix, { auth = { username = "admin", password = PASSWORD .. "!" }, fail = true })
						.message)
				io2:close()
			end
		end)

		it("auth = false: anyone, and no session event", function()
			start { auth = false }
			for _, side in ipairs { "N", "L" } do
				admin(side, side .. "a", { auth = false })
				local cfg = admin_event(side .. "a", "config")
				assert.are.equal("table", type(cfg[1].supportedFeatures))
			end
			H.run_for(300)
			for _, e in ipairs(p.events) do assert.are_not.equal("session", e.event) end
		end)

		it("crypt_check: bcrypt's variants, wrong and hostile input", function()
			start()
			assert.is_true(core.crypt_check(PASSWORD, hash))
			for _, v in ipairs { "$2b", "$2y" } do assert.is_true(core.crypt_check(PASSWORD, v .. hash:sub(4))) end
			assert.is_false(core.crypt_check(PASSWORD .. "x", hash))
			assert.is_false(core.crypt_check("", hash))
			assert.is_false(core.crypt_check(PASSWORD .. "\0", hash))    -- crypt(3) would stop at the NUL
			assert.is_false(core.crypt_check(PASSWORD, hash:sub(1, -2)))
			assert.is_false(core.crypt_check(PASSWORD, hash .. "x"))
			for _, bad in ipairs { "", "*0", "$2b$", "$2b$99$" .. hash:sub(8), "$2b$04$" .. ("!"):rep(53),
				"$9$x$y", ("$"):rep(500), hash:sub(1, 7) .. "\0" .. hash:sub(9) } do
				assert.is_false(core.crypt_check(PASSWORD, bad), bad)
			end
			math.randomseed(7)
			for _ = 1, 200 do
				local t = {}
				for i = 1, math.random(0, 80) do t[i] = string.char(math.random(0, 255)) end
				assert.is_false(core.crypt_check(PASSWORD, "$2b$04$" .. table.concat(t)))
			end
			-- a long password: bcrypt uses its first 72 bytes, as bcryptjs does
			node:cmd { cmd = "hash", password = ("p"):rep(100), rounds = 4 }
			local long = node:wait("hash").hash
			assert.is_true(core.crypt_check(("p"):rep(100), long))
			assert.is_true(core.crypt_check(("p"):rep(72) .. "q", long))
			assert.is_false(core.crypt_check(("p"):rep(71), long))
		end)
	end)

	describe("what the admin namespace says", function()
		it("config, all_sockets and server_stats every 2 s, as instrument()", function()
			start()
			for _, side in ipairs { "N", "L" } do
				client(side, side .. "c", { auth = { user = "ann" } })
				emit(side .. "c", "join_me", { "r1" })
			end
			H.run_for(300)
			local got = {}
			for _, side in ipairs { "N", "L" } do
				admin(side, side .. "a")
				got[side] = {
					config = admin_event(side .. "a", "config"),
					all = admin_event(side .. "a", "all_sockets"),
					stats = admin_event(side .. "a", "server_stats", nil, 4000),
				}
			end
			assert.are.same(got.N.config, got.L.config)
			assert.are.same(json.array { "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
				"AGGREGATED_EVENTS", "ALL_EVENTS" }, got.L.config[1].supportedFeatures)
			assert.are.equal(comparable("all_sockets", got.N.all), comparable("all_sockets", got.L.all))
			assert.are.equal(comparable("server_stats", got.N.stats), comparable("server_stats", got.L.stats))
			-- the values: the client in /, with its data and room; the admin in /admin
			local function by_nsp(all)
				local t = {}
				for _, s in ipairs(all[1]) do t[s.nsp] = s end
				return t
			end
			local n, l = by_nsp(got.N.all), by_nsp(got.L.all)
			for _, k in ipairs { "/", "/admin" } do
				assert.are.equal(n[k].transport, l[k].transport)
				assert.are.same(n[k].data, l[k].data)
				assert.are.equal(#n[k].rooms, #l[k].rooms)
				assert.are.equal(l[k].id, l[k].rooms[1])
				assert.are.equal(12, #l[k].clientId)
				assert.are.same(n[k].handshake.query.EIO, l[k].handshake.query.EIO)
				assert.are.equal(n[k].handshake.address, l[k].handshake.address)
			end
			assert.are.same(json.object { user = "ann" }, l["/"].data)
			assert.are.equal("r1", l["/"].rooms[2])
			local st = got.L.stats[1]
			assert.are.equal(2, st.clientsCount)
			assert.are.equal(0, st.pollingClientsCount)
			assert.are.equal(st.hostname, st.serverId)
			assert.are.equal(got.N.stats[1].hostname, st.hostname)
			assert.is_true(st.uptime > 0 and st.uptime < 3600)
			local counts = {}
			for _, ns in ipairs(st.namespaces) do counts[ns.name] = ns.socketsCount end
			assert.are.same({ ["/"] = 1, ["/chat"] = 0, ["/admin"] = 1 }, counts)
			-- every 2 s
			local t0 = core.now()
			admin_event("La", "server_stats", nil, 4000)
			local t1 = core.now()
			admin_event("La", "server_stats", nil, 4000)
			local dt = core.now() - t1
			assert.is_true(dt > 1700 and dt < 2000 + 300 * H.SLOW, "server_stats came " .. dt .. " ms apart")
			assert.is_true(t1 - t0 < 2000 + 300 * H.SLOW)
		end)

		it("aggregatedEvents: connections, disconnections by reason, packets and bytes", function()
			start()
			local seen = {}
			for _, side in ipairs { "N", "L" } do
				admin(side, side .. "a")
				admin_event(side .. "a", "server_stats", nil, 4000)   -- the login's own
				client(side, side .. "c", { transports = { "websocket" } })
				emit(side .. "c", "hello", { "x" })
				p:wait("event", 5000, function(e) return e.id == side .. "c" and e.event == "hi" end)
				p:cmd { cmd = "close", id = side .. "c" }
				p:wait("disconnect", 5000, function(e) return e.id == side .. "c" end)
			end
			for _, side in ipairs { "N", "L" } do
				local types = {}
				H.run_until(function()
					local e = drain(side .. "a").server_stats or {}
					for _, args in ipairs(e) do
						for _, a in ipairs(args[1].aggregatedEvents) do
							types[a.type .. (a.subType and ("/" .. a.subType) or "")] = (types[a.type] or 0) + a.count
							assert.is_truthy(math.type(a.timestamp) == "integer" and a.timestamp % 1000 == 0)
						end
					end
					return types["rawDisconnection/transport close"] ~= nil
				end, 6000, side .. " rawDisconnection")
				local names = {}
				for k in pairs(types) do names[#names + 1] = k end
				table.sort(names)
				seen[side] = names
				assert.is_true(types.bytesIn > 0 and types.bytesOut > 0 and types.packetsIn > 0)
			end
			assert.are.same(seen.N, seen.L)
		end)

		it("the development stream: sockets, rooms, events, as instrument() sends them", function()
			start()
			for _, side in ipairs { "N", "L" } do
				local a = side .. "a"
				admin(side, a)
				admin_event(a, "all_sockets")
				local c = side .. "c"
				local sid = client(side, c, { auth = { user = "ann" } })
				local conn = admin_event(a, "socket_connected", function(x) return x[1].nsp == "/" end)
				assert.are.equal(sid, conn[1].id)
				assert.are.equal("/", conn[1].nsp)
				assert.are.equal("polling", conn[1].transport)
				assert.are.same(json.object { user = "ann" }, conn[1].data)
				assert.is_true(near_now(conn[2]) and conn[2]:match(ISO) ~= nil, conn[2])
				local up = admin_event(a, "socket_updated", function(x) return x[1].transport ~= nil end)
				assert.are.same(json.object { id = sid, nsp = "/", transport = "websocket" }, up[1])
				emit(c, "join_me", { "r1" })
				local j = admin_event(a, "room_joined", function(x) return x[2] == "r1" end)
				assert.are.same({ "/", "r1", sid }, { j[1], j[2], j[3] })
				emit(c, "other", { "x", json.object { deep = json.array { 1, json.null } } }, "t")
				local rcv = admin_event(a, "event_received", function(x) return x[3][1] == "other" end)
				assert.are.same({ "/", sid }, { rcv[1], rcv[2] })
				assert.are.equal('["other","x",{"deep":[1,null]}]', json.encode(rcv[3]))
				emit(c, "hello", { "x" }, "t")
				rcv = admin_event(a, "event_received", function(x) return x[3][1] == "hello" end)
				assert.are.equal('["hello","x"]', json.encode(rcv[3]))
				local sent = admin_event(a, "event_sent")
				assert.are.same({ "/", sid, json.array { "hi", "x" } }, { sent[1], sent[2], sent[3] })
				emit(c, "set_data", { 7 })
				local upd = admin_event(a, "socket_updated", function(x) return x[1].data and x[1].data.v == 7 end, 4000)
				assert.are.same(json.object { id = sid, nsp = "/", data = json.object { user = "ann", v = 7 } }, upd[1])
				emit(c, "leave_me", { "r1" })
				local left = admin_event(a, "room_left", function(x) return x[2] == "r1" end)
				assert.are.same({ "/", "r1", sid }, { left[1], left[2], left[3] })
				local d = side .. "d"
				local did = client(side, d, { nsp = "/chat", transports = { "websocket" } })
				local dconn = admin_event(a, "socket_connected", function(x) return x[1].nsp == "/chat" end)
				assert.are.equal(did, dconn[1].id)
				assert.are.equal("websocket", dconn[1].transport)
				p:cmd { cmd = "close", id = c }
				local gone = admin_event(a, "socket_disconnected")
				assert.are.same({ "/", sid, "client namespace disconnect" }, { gone[1], gone[2], gone[3] })
				admin_event(a, "room_left", function(x) return x[2] == sid end)
				H.run_for(2200)   -- a stats tick: late socket_updated would show
			end
			-- every kind of event, each with the same fields on both sides
			local n, l = forms(drain("Na")), forms(drain("La"))
			n.server_stats, l.server_stats = nil, nil   -- compared above
			for name, list in pairs(n) do
				assert.are.same(list, l[name] or {}, name)
			end
		end)

		it("a 2.x client (Engine.IO 3) is seen as instrument() sees it", function()
			start()
			for _, side in ipairs { "N", "L" } do
				local a = side .. "a"
				admin(side, a)
				admin_event(a, "all_sockets")
				local sid = client(side, side .. "c", { version = "2", nsp = "/chat" })
				local conn = admin_event(a, "socket_connected", function(x) return x[1].nsp == "/chat" end)
				assert.are.equal(sid, conn[1].id)
				assert.are.equal("3", conn[1].handshake.query.EIO)
				admin_event(a, "socket_updated", function(x) return x[1].transport == "websocket" end)
				emit(side .. "c", "hello", { "v2" })
				local rcv = admin_event(a, "event_received", function(x) return x[3][1] == "hello" end)
				assert.are.same({ "/chat", sid }, { rcv[1], rcv[2] })
				p:cmd { cmd = "close", id = side .. "c" }
				admin_event(a, "socket_disconnected", function(x) return x[2] == sid end)
				admin_event(a, "room_left", function(x) return x[2] == sid end)
			end
			H.run_for(300)   -- the "/" socket's (a 2.x client is in "/" too)
			local n, l = forms(drain("Na")), forms(drain("La"))
			n.server_stats, l.server_stats = nil, nil
			for name, list in pairs(n) do assert.are.same(list, l[name] or {}, name) end
		end)
	end)

	describe("the UI's commands", function()
		it("emit, join, leave, _disconnect, with and without a room filter", function()
			start()
			local ids = {}
			for _, side in ipairs { "N", "L" } do
				local a = side .. "a"
				admin(side, a)
				admin_event(a, "all_sockets")
				ids[side .. "1"] = client(side, side .. "1", { transports = { "websocket" } })
				ids[side .. "2"] = client(side, side .. "2", { transports = { "websocket" } })
				emit(side .. "1", "join_me", { "r1" })
				admin_event(a, "room_joined", function(x) return x[2] == "r1" end)
			end
			local function got(id, event, text)
				return p:wait("event", 5000, function(e) return e.id == id and e.event == event and e.args[1] == text end)
			end
			local function none(id, event, text)
				H.run_for(300)
				for _, e in ipairs(p.events) do
					assert.is_false(e.id == id and e.event == event and e.args[1] == text, id .. " got " .. text)
				end
			end
			for _, side in ipairs { "N", "L" } do
				local a = side .. "a"
				emit(a, "emit", { "/", "r1", "note", "to r1", json.object { n = 1 } })
				got(side .. "1", "note", "to r1")
				none(side .. "2", "note", "to r1")
				emit(a, "emit", { "/", json.null, "note", "to all" })
				got(side .. "1", "note", "to all")
				got(side .. "2", "note", "to all")
				emit(a, "join", { "/", "r2", "r1" })
				local j = admin_event(a, "room_joined", function(x) return x[2] == "r2" end)
				assert.are.equal(ids[side .. "1"], j[3])
				emit(a, "join", { "/", "r3" })
				local seen = {}
				for _ = 1, 2 do seen[admin_event(a, "room_joined", function(x) return x[2] == "r3" end)[3]] = true end
				assert.is_true(seen[ids[side .. "1"]] and seen[ids[side .. "2"]])
				emit(a, "leave", { "/", "r3", "r2" })
				assert.are.equal(ids[side .. "1"], admin_event(a, "room_left", function(x) return x[2] == "r3" end)[3])
				emit(a, "leave", { "/", "r2" })
				assert.are.equal(ids[side .. "1"], admin_event(a, "room_left", function(x) return x[2] == "r2" end)[3])
				emit(a, "_disconnect", { "/", false, "r1" })
				assert.are.equal("io server disconnect", p:wait("disconnect", 5000, function(e) return e.id == side .. "1" end).reason)
				local gone = admin_event(a, "socket_disconnected")
				assert.are.same({ ids[side .. "1"], "server namespace disconnect" }, { gone[2], gone[3] })
				emit(a, "_disconnect", { "/", true })
				assert.are.equal("io server disconnect", p:wait("disconnect", 5000, function(e) return e.id == side .. "2" end).reason)
				gone = admin_event(a, "socket_disconnected")
				assert.are.equal(ids[side .. "2"], gone[2])
				p:cmd { cmd = "state", id = a }
				assert.is_true(p:wait("state", 5000, function(e) return e.id == a end).connected, "the admin stayed")
			end
			local n, l = forms(drain("Na")), forms(drain("La"))
			for _, name in ipairs { "room_joined", "room_left", "socket_disconnected" } do
				assert.are.same(n[name], l[name], name)
			end
		end)

		it("commands with the wrong kinds of arguments do nothing and raise nothing", function()
			start()
			admin("L", "La")
			admin_event("La", "all_sockets")
			local c = client("L", "c", { transports = { "websocket" } })
			for _, args in ipairs {
				{ "emit", { 12, json.null, "note", "x" } }, { "emit", { "/", json.null, "connect" } },
				{ "emit", { "/", json.null, json.object {} } }, { "emit", {} },
				{ "join", { "/", json.object {} } }, { "join", { json.null, "r" } }, { "leave", { "/", json.array {} } },
				{ "_disconnect", { json.array {} } }, { "_disconnect", { "" } },
			} do
				emit("La", args[1], args[2])
			end
			H.run_for(500)
			assert.are.equal(0, #H.errors)
			assert.is_not_nil(sio.sockets.sockets[c], "the client is still there")
			assert.is_nil(sio._nsps["/12"] and sio._nsps["/12"]:socket_count() > 0 or nil)
		end)

		it("readonly: no commands, as instrument() says in config", function()
			start { readonly = true }
			local cfg = {}
			for _, side in ipairs { "N", "L" } do
				admin(side, side .. "a")
				cfg[side] = admin_event(side .. "a", "config")
				client(side, side .. "c", { transports = { "websocket" } })
				emit(side .. "a", "emit", { "/", json.null, "note", "ro" })
			end
			assert.are.same(cfg.N, cfg.L)
			assert.are.same(json.array { "AGGREGATED_EVENTS", "ALL_EVENTS" }, cfg.L[1].supportedFeatures)
			H.run_for(500)
			for _, e in ipairs(p.events) do assert.is_false(e.event == "note", e.id .. " got a note") end
		end)
	end)

	describe("in a cluster with a Node node (redis_adapter)", function()
		if not H.has_redis then
			pending("redis-server is not installed")
			return
		end

		it("a UI on either node sees both nodes' stats and sockets, and its commands reach both", function()
			local rs = H.redis_server()
			start { redis_port = rs.port, server_id = "1" }
			-- both nodes subscribed to the admin namespace's channel
			local count, asking = 0, false
			H.run_until(function()
				if not asking then
					asking = true
					sio:of("/admin").adapter:server_count(function(n) count, asking = n, false end)
				end
				return count == 2
			end, 15000, "two nodes", 50)
			local ids = { N = client("N", "Nc", { transports = { "websocket" } }),
				L = client("L", "Lc", { transports = { "websocket" } }) }
			for _, side in ipairs { "N", "L" } do
				local a = side .. "a"
				admin(side, a)
				local all = admin_event(a, "all_sockets")[1]
				local seen = {}
				for _, s in ipairs(all) do if s.nsp == "/" then seen[s.id] = s end end
				for _, other in ipairs { "N", "L" } do
					local s = seen[ids[other]]
					assert.is_not_nil(s, side .. "'s UI lists " .. other .. "'s socket")
					assert.are.equal(12, #s.clientId)
					assert.are.equal("websocket", s.transport)
				end
				local from = {}
				H.run_until(function()
					for _, args in ipairs(drain(a).server_stats or {}) do from[args[1].serverId] = true end
					return from["node-1"] and from["lua-1"]
				end, 6000, side .. "'s UI: both nodes' server_stats")
			end
			-- a socket connecting on one node shows in the other node's UI
			local late = client("L", "Lc2", { transports = { "websocket" } })
			local conn = admin_event("Na", "socket_connected", function(x) return x[1].id == late end)
			assert.are.equal("/", conn[1].nsp)
			-- a command from the Lua node's UI reaches the Node node's client
			emit("La", "emit", { "/", json.null, "note", "from the Lua UI" })
			for _, id in ipairs { "Nc", "Lc", "Lc2" } do
				p:wait("event", 5000, function(e) return e.id == id and e.event == "note" and e.args[1] == "from the Lua UI" end)
			end
			emit("Na", "_disconnect", { "/", false, ids.L })
			assert.are.equal("io server disconnect", p:wait("disconnect", 5000, function(e) return e.id == "Lc" end).reason)
		end)
	end)

	describe("options", function()
		it("production mode: config and server_stats only", function()
			start { mode = "production" }
			for _, side in ipairs { "N", "L" } do
				admin(side, side .. "a")
				local cfg = admin_event(side .. "a", "config")
				assert.are.same(json.array { "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
					"AGGREGATED_EVENTS" }, cfg[1].supportedFeatures)
				client(side, side .. "c", { transports = { "websocket" } })
				emit(side .. "c", "hello", { "x" })
				admin_event(side .. "a", "server_stats", nil, 4000)
			end
			H.run_for(300)
			local n, l = drain("Na"), drain("La")
			n.server_stats, l.server_stats, n.session, l.session = nil, nil, nil, nil
			assert.are.same({}, n)
			assert.are.same({}, l)
			assert.is_nil(sio.sockets.sockets[next(sio.sockets.sockets)].data._admin)
		end)

		it("namespace_name and server_id", function()
			start { namespace_name = "/ops", server_id = "1" }
			for _, side in ipairs { "N", "L" } do
				assert.are.equal("Invalid namespace", admin(side, side .. "x", { fail = true }).message)
				admin(side, side .. "a", { nsp = "/ops" })
				local st = admin_event(side .. "a", "server_stats", nil, 4000)
				assert.are.equal((side == "N" and "node-" or "lua-") .. "1", st[1].serverId)
			end
			local names = {}
			for name in pairs(sio._nsps) do names[#names + 1] = name end
			table.sort(names)
			assert.are.same({ "/", "/chat", "/ops" }, names)
		end)

		it("bad options raise at the caller's line", function()
			local s = H.server()
			local io1 = socketio(s)
			local function fails(opts, pattern)
				local ok, err = pcall(function() io1:instrument(opts) end)
				assert.is_false(ok)
				assert.is_truthy(err:find(pattern, 1, true), err)
				assert.is_truthy(err:match("^spec/socketio_admin_spec%.lua:%d+: "), "at the caller's line: " .. err)
			end
			fails(nil, "option 'auth' must be given")
			fails({}, "option 'auth' must be given")
			fails({ auth = true }, "option 'auth' must be false or")
			fails({ auth = { type = "digest", username = "a", password = "b" } }, "type = \"basic\"")
			fails({ auth = { type = "basic", username = "a", password = "plain" } }, "bcrypt hash")
			fails({ auth = false, mode = "dev" }, "option 'mode' must be \"development\" or \"production\"")
			fails({ auth = false, readonly = "yes" }, "option 'readonly' must be a boolean")
			fails({ auth = false, namespaceName = "/x" }, "unknown option 'namespaceName'")
			fails("x", "option table expected")
			local ok, err = pcall(function() io1:instrument { auth = false, mod = "production" } end)
			assert.is_false(ok)
			assert.is_truthy(err:find("socketio_admin_spec.lua:%d+: unknown option 'mod' %(did you mean 'mode'%?%)"), err)
			io1:instrument { auth = false }
			ok, err = pcall(function() io1:instrument { auth = false } end)
			assert.is_truthy(not ok and err:find("already instrumented"), err)
			io1:close()
		end)
	end)

	describe("the UI (ui/dist) in Chromium", function()
		it("shows the Lua server's sockets and rooms, served here, nothing from a CDN", function()
			start()
			admin_ui.mount(srv, "/admin-ui/", H.ROOT .. "/node_modules")
			local a = client("L", "u1", { auth = { user = "ann" } })
			emit("u1", "join_me", { "lobby" })
			local b = client("L", "u2", { transports = { "websocket" } })
			emit("u2", "join_me", { "lobby" })
			local c = client("L", "u3", { nsp = "/chat", transports = { "websocket" } })
			emit("u3", "join_me", { "chat-room" })
			local br = H.node(BROWSER)
			-- a command and its reply, or the browser's cmd-error
			local function cmd(t, reply)
				br:cmd(t)
				local found
				H.run_until(function()
					for i, e in ipairs(br.events) do
						if e.ev == reply or e.ev == "cmd-error" then
							found = table.remove(br.events, i)
							return true
						end
					end
					return br.dead
				end, 40000, "the browser's " .. reply)
				if not found then error("the browser exited\n" .. br:read_log()) end
				if found.ev == "cmd-error" then error("browser: " .. found.cmd .. ": " .. found.message) end
				return found
			end
			local ok, err = pcall(function()
				cmd({ cmd = "open", url = "http://127.0.0.1:" .. srv:port() .. "/admin-ui/",
					server = "http://127.0.0.1:" .. srv:port(), username = "admin", password = PASSWORD }, "opened")
				local shown = cmd({ cmd = "show", hash = "#/sockets", want = { a, b }, timeout = 20000 }, "shown")
				assert.is_truthy(shown.text:lower():find("websocket", 1, true))
				-- LWS_ADMIN_SCREENSHOT=x.png: x.png (sockets), x-rooms.png, x-socket.png
				local shot = os.getenv("LWS_ADMIN_SCREENSHOT")
				local function screenshot(suffix)
					if shot then cmd({ cmd = "screenshot", path = (shot:gsub("%.png$", "")) .. suffix .. ".png" }, "screenshot") end
				end
				screenshot("")
				cmd({ cmd = "show", hash = "#/rooms", want = { "lobby", "PUBLIC" }, timeout = 20000 }, "shown")
				screenshot("-rooms")
				-- one socket: its rooms and its data
				cmd({ cmd = "show", hash = "#/n/%2F/sockets/" .. a, want = { "lobby", "ann", "127.0.0.1" },
					timeout = 20000 }, "shown")
				screenshot("-socket")
				-- a socket of another namespace (by way of another page: the UI
				-- does not redraw a socket page for a new id). Not by reloading:
				-- the UI's own socket.io-client drops the "session" event
				-- that comes before CONNECT, from instrument() as from here, so
				-- a reloaded page has no session id to log in with.
				cmd({ cmd = "show", hash = "#/clients/", want = { "Clients" }, timeout = 20000 }, "shown")
				cmd({ cmd = "show", hash = "#/n/%2Fchat/sockets/" .. c, want = { c, "chat-room", "/chat" },
					timeout = 20000 }, "shown")
				-- a command from the UI: the disconnect button of the socket's page
				cmd({ cmd = "show", hash = "#/clients/", want = { "Clients" }, timeout = 20000 }, "shown")
				cmd({ cmd = "show", hash = "#/n/%2F/sockets/" .. b, want = { b, "lobby" }, timeout = 20000 }, "shown")
				cmd({ cmd = "click", selector = "button:has(.mdi-logout)" }, "clicked")
				assert.are.equal("io server disconnect",
					p:wait("disconnect", 10000, function(e) return e.id == "u2" end).reason)
				assert.is_not_nil(sio.sockets.sockets[a], "the other socket stays")
				cmd({ cmd = "show", hash = "#/servers", want = { sio._admin.server_id }, timeout = 20000 }, "shown")
				local st = cmd({ cmd = "state" }, "state")
				assert.are.same({}, st.offsite)
				assert.are.same({}, st.problems)
				local fonts = {}
				for _, f in ipairs(st.fonts) do fonts[f:gsub('"', "")] = true end
				assert.is_true(fonts["Material Design Icons"], "the icon font")
				assert.is_true(fonts.Roboto, "Roboto")
				for _, u in ipairs(st.requests) do
					assert.is_truthy(u:match("^https?://127%.0%.0%.1:") or u:match("^wss?://127%.0%.0%.1:"), u)
				end
			end)
			br:cmd { cmd = "exit" }
			pcall(H.run_until, function() return br.dead end, 10000, "the browser to quit")
			assert(ok, err)
		end)
	end)
end)
