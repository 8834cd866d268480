-- lws.socketio against the official clients from npm: socket.io-client
-- 2.3.0 (Engine.IO 3) and 4.x (Engine.IO 4), each over websocket only,
-- polling only and the default polling -> websocket upgrade, driven
-- through spec/peers/sio_peer.js.
local H = require "helper"
local json = require "lws.json"
local socketio = require "lws.socketio"

package.path = H.ROOT .. "/examples/chatroom/?.lua;" .. package.path
local chatroom = require("chatroom").attach
local PEER = H.ROOT .. "/spec/peers/sio_peer.js"

local MODES = {
	{ name = "2.x websocket", version = "2", transports = { "websocket" } },
	{ name = "2.x polling", version = "2", transports = { "polling" } },
	{ name = "2.x upgrade", version = "2", upgrade = true },
	{ name = "4.x websocket", version = "4", transports = { "websocket" } },
	{ name = "4.x polling", version = "4", transports = { "polling" } },
	{ name = "4.x upgrade", version = "4", upgrade = true },
}

-- deep equality that tells arrays from objects
local function same(a, b)
	if a == b then return true end
	if type(a) ~= "table" or type(b) ~= "table" then return false end
	if json.is_array(a) ~= json.is_array(b) then return false end
	for k, v in pairs(a) do if not same(v, b[k]) then return false end end
	for k in pairs(b) do if a[k] == nil then return false end end
	return true
end

local function assert_json(expected, actual)
	local e = json.decode(json.encode(expected))
	local a = json.decode(actual)
	if not same(e, a) then
		error(("JSON differs:\n  expected %s\n  got      %s"):format(json.encode(e), actual), 2)
	end
end

local function start(opts, server_opts)
	local srv, port = H.server(server_opts)
	local io = socketio(srv, opts or {})
	return io, port, srv
end

-- connect(peer, id, mode, port, extra) and wait for "connect" (and the
-- upgrade, in upgrade mode)
local function connect(p, id, mode, port, extra)
	local c = { cmd = "connect", id = id, version = mode.version, transports = mode.transports,
		url = "http://127.0.0.1:" .. port }
	for k, v in pairs(extra or {}) do c[k] = v end
	p:cmd(c)
	local ev = p:wait("connect", 10000, function(e) return e.id == id end)
	if mode.upgrade and c.wait_upgrade ~= false then
		p:wait("upgrade", 10000, function(e) return e.id == id end)
	end
	return ev
end

local function wait_event(p, id, name, ms)
	return p:wait("event", ms or 5000, function(e) return e.id == id and e.event == name end)
end

local function args_json(...)
	return json.encode(json.array(table.pack(...)))
end

local function no_more(p, name)
	for _, ev in ipairs(p.events) do
		if ev.ev == "event" and ev.event == name then
			error("unexpected extra '" .. name .. "' event for " .. tostring(ev.id) .. ": " .. tostring(ev.json), 2)
		end
	end
end

describe("socket.io chatroom with the official clients", function()
	after_each(H.clean)

	for _, mode in ipairs(MODES) do
		it("logs in and out with exact onlineCount and onlineUsers (" .. mode.name .. ")", function()
			local io, port = start()
			local state = chatroom(io)
			local p = H.node(PEER)
			local events = { "login", "logout", "message" }
			connect(p, "obs", mode, port, { events = events })
			local ann = json.object { userid = "u1", username = "Ann €😀" }
			local bob = json.object { userid = "u2", username = "Bob \u{2028}\0\30" }
			connect(p, "a", mode, port, { events = events,
				login = { event = "login", argsJson = args_json(ann) } })
			for _, id in ipairs { "obs", "a" } do
				local ev = wait_event(p, id, "login")
				assert_json({ { onlineUsers = { u1 = "Ann €😀" }, onlineCount = 1, user = ann } }, ev.json)
			end
			connect(p, "b", mode, port, { events = events,
				login = { event = "login", argsJson = args_json(bob) } })
			for _, id in ipairs { "obs", "a", "b" } do
				local ev = wait_event(p, id, "login")
				assert_json({ { onlineUsers = { u1 = "Ann €😀", u2 = bob.username }, onlineCount = 2,
					user = bob } }, ev.json)
			end
			assert.are.equal(2, state.count)

			local msg = json.object { userid = "u1", username = "Ann €😀", content = "hi 1:2 \30 4\u{2029}" }
			p:cmd { cmd = "emit", id = "a", event = "message", argsJson = args_json(msg) }
			for _, id in ipairs { "obs", "a", "b" } do
				assert_json({ msg }, wait_event(p, id, "message").json)
			end

			p:cmd { cmd = "close", id = "a" }
			for _, id in ipairs { "obs", "b" } do
				local ev = wait_event(p, id, "logout")
				assert_json({ { onlineUsers = { u2 = bob.username }, onlineCount = 1,
					user = { userid = "u1", username = "Ann €😀" } } }, ev.json)
			end
			p:cmd { cmd = "close", id = "b" }
			local ev = wait_event(p, "obs", "logout")
			-- an empty online list is still an object
			assert_json({ { onlineUsers = json.object {}, onlineCount = 0,
				user = { userid = "u2", username = bob.username } } }, ev.json)
			assert.is_truthy(ev.json:find('"onlineUsers":{}', 1, true))
			assert.are.equal(0, state.count)
			assert.is_nil(next(state.users))

			-- a last round trip, then nothing may be left over
			p:cmd { cmd = "emit", id = "obs", event = "message", argsJson = args_json("end") }
			assert_json({ "end" }, wait_event(p, "obs", "message").json)
			no_more(p, "message")
			no_more(p, "login")
			no_more(p, "logout")
			assert.are.same({}, H.errors)
		end)
	end

	it("keeps 2.x and 4.x clients on every transport in one room", function()
		local io, port = start()
		local state = chatroom(io)
		local p = H.node(PEER)
		local events = { "login", "logout", "message" }
		local ids = {}
		local users = {}
		for i, mode in ipairs(MODES) do
			local id = "c" .. i
			ids[#ids + 1] = id
			local user = json.object { userid = "u" .. i, username = mode.name }
			users["u" .. i] = mode.name
			connect(p, id, mode, port, { events = events,
				login = { event = "login", argsJson = args_json(user) } })
			for _, other in ipairs(ids) do
				local ev = wait_event(p, other, "login", 10000)
				assert_json({ { onlineUsers = users, onlineCount = i, user = user } }, ev.json)
			end
		end
		assert.are.equal(#MODES, state.count)
		-- everyone hears everyone exactly once
		for i, id in ipairs(ids) do
			p:cmd { cmd = "emit", id = id, event = "message",
				argsJson = args_json { userid = "u" .. i, content = "from " .. id } }
		end
		for _, id in ipairs(ids) do
			local got = {}
			for _ = 1, #ids do
				local ev = wait_event(p, id, "message", 10000)
				local obj = json.decode(ev.json)[1]
				assert.is_nil(got[obj.content], "twice: " .. obj.content)
				got[obj.content] = true
			end
			for _, from in ipairs(ids) do assert.is_true(got["from " .. from]) end
		end
		-- and they leave one by one
		for i, id in ipairs(ids) do
			p:cmd { cmd = "close", id = id }
			users["u" .. i] = nil
			for j = i + 1, #ids do
				local ev = wait_event(p, ids[j], "logout", 10000)
				assert_json({ { onlineUsers = json.object(users), onlineCount = #ids - i,
					user = { userid = "u" .. i, username = MODES[i].name } } }, ev.json)
			end
		end
		H.run_until(function() return state.count == 0 end, 5000, "everyone to be logged out")
		no_more(p, "message")
		assert.are.same({}, H.errors)
	end)
end)

describe("socket.io events and acks with the official clients", function()
	after_each(H.clean)

	local function echo_server(opts, server_opts)
		local io, port, srv = start(opts, server_opts)
		io:on("connection", function(socket)
			socket:on("echo", function(...)
				local args = table.pack(...)
				local ack = args[args.n]
				ack(table.unpack(args, 1, args.n - 1))
			end)
			socket:on("message", function(...) io:emit("message", ...) end)
			socket:on("burst", function(obj) io:emit("burst", obj) end)
		end)
		return io, port, srv
	end

	local VARIANTS = {
		"[]", "[{}]", "[[]]", '[{"a":[],"b":{},"c":[{}],"d":null}]', "[null]", "[1,null,3]",
		'["€😀\\u2028\\u2029\\u0000\\u001e\\"\\\\ 1:2 4"]', "[1,2.5,-3,true,false]",
		"[9007199254740991,-9007199254740991,1e+21,0.1]", '["", " ", "0:"]',
		'[{"nested":{"deep":[[[[{"x":"y"}]]]]}}]', '["a","b","c","d","e","f"]',
		'[{"😀":"key"}]', "[0]", "[-0.5]", '[[1,[2,[3]]]]', '["\\u00e9t\\u00e9"]',
		'[{"onlineUsers":{},"onlineCount":0}]', '[true]', '["x",[],{}]',
	}

	for _, mode in ipairs(MODES) do
		it("matches 20 acks in flight, [] apart from {}, unicode intact (" .. mode.name .. ")", function()
			local _, port = echo_server()
			local p = H.node(PEER)
			connect(p, "a", mode, port, {})
			assert.are.equal(20, #VARIANTS)
			for i, v in ipairs(VARIANTS) do
				p:cmd { cmd = "emit", id = "a", event = "echo", argsJson = v, ack = i }
			end
			local seen = {}
			for _ = 1, #VARIANTS do
				local ev = p:wait("ack", 10000)
				assert.is_nil(seen[ev.tag])
				seen[ev.tag] = true
				if not ev.same then
					error(("ack %d: sent %s, got back %s"):format(ev.tag, VARIANTS[ev.tag], ev.json))
				end
			end
			assert.are.same({}, H.errors)
		end)
	end

	for _, mode in ipairs(MODES) do
		it("acks from the server's side, with and without a timeout (" .. mode.name .. ")", function()
			local io, port = start()
			local results = {}
			io:on("connection", function(socket)
				socket:emit("question", "6 × 7 ?", json.array {}, function(...)
					results.answer = json.encode(json.array(table.pack(...)))
				end)
				socket:timeout(300 * H.SLOW):emit("silence", function(err, ...)
					results.timeout = { err = err, n = select("#", ...) }
				end)
				socket:timeout(5000 * H.SLOW):emit("question", 1, function(err, a, b)
					results.timed_answer = { err = err, a = a, b = b }
				end)
			end)
			local p = H.node(PEER)
			connect(p, "a", mode, port, { events = { "question" },
				ackReplyJson = '[42,{"ok":[]}]' })
			local ev = wait_event(p, "a", "question")
			assert_json({ "6 × 7 ?", json.array {} }, ev.json)
			assert.is_true(ev.ack)
			H.run_until(function() return results.answer and results.timeout and results.timed_answer end,
				5000, "the acks")
			assert.are.equal('[42,{"ok":[]}]', results.answer)
			assert.are.equal("operation has timed out", results.timeout.err)
			assert.is_nil(results.timed_answer.err)
			assert.are.equal(42, results.timed_answer.a)
			assert.is_true(json.is_array(results.timed_answer.b.ok))
			assert.are.same({}, H.errors)
		end)
	end

	for _, mode in ipairs(MODES) do
		it("carries a ~1 MB message to everyone (" .. mode.name .. ")", function()
			local _, port = echo_server({ max_http_buffer_size = 4e6 }, { max_body_size = 8 << 20 })
			local p = H.node(PEER)
			connect(p, "a", mode, port, { events = { "message" } })
			connect(p, "b", mode, port, { events = { "message" } })
			-- 650000 UTF-16 units of text mixing 1-4 byte characters: over 1 MB of UTF-8
			p:cmd { cmd = "emit", id = "a", event = "message",
				argsJson = '[{"content":{"$bigText":650000},"n":1}]' }
			for _, id in ipairs { "a", "b" } do
				local ev = wait_event(p, id, "message", 20000)
				local obj = json.decode(ev.json)[1]
				assert.are.equal(650000, obj.content["$big"])
				assert.is_true(obj.content["$ok"], "the big text came back changed")
				assert.are.equal(1, obj.n)
			end
			assert.are.same({}, H.errors)
		end)
	end

	for _, mode in ipairs(MODES) do
		it("delivers 2 x 200 messages sent in one tick, in order (" .. mode.name .. ")", function()
			local _, port = echo_server()
			local p = H.node(PEER)
			connect(p, "a", mode, port, { events = { "burst" } })
			connect(p, "b", mode, port, { events = { "burst" } })
			p:cmd { cmd = "burst", id = "a", event = "burst", count = 200, tag = "a" }
			p:cmd { cmd = "burst", id = "b", event = "burst", count = 200, tag = "b" }
			for _, id in ipairs { "a", "b" } do
				local next_seq = { a = 0, b = 0 }
				for _ = 1, 400 do
					local ev = wait_event(p, id, "burst", 15000)
					local obj = json.decode(ev.json)[1]
					assert.are.equal(next_seq[obj.from], obj.seq, "out of order for " .. id)
					assert.are.equal("m" .. obj.seq .. "\30😀", obj.text)
					next_seq[obj.from] = obj.seq + 1
				end
				assert.are.same({ a = 200, b = 200 }, next_seq)
			end
			no_more(p, "burst")
			assert.are.same({}, H.errors)
		end)
	end

	local BIN = {}
	for i = 0, 255 do BIN[#BIN + 1] = string.char(i) end
	BIN = table.concat(BIN)

	local binary_modes = { table.unpack(MODES) }
	binary_modes[#binary_modes + 1] = { name = "2.x polling, base64", version = "2",
		transports = { "polling" }, extra = { forceBase64 = true } }
	for _, mode in ipairs(binary_modes) do
		it("carries binary arguments both ways (" .. mode.name .. ")", function()
			local io, port = start()
			local got
			io:on("connection", function(socket)
				socket:on("bin", function(a, b, text, ack)
					got = { a = a, b = b, text = text }
					ack(a, b, text)
					io:emit("bin", socketio.binary("\0\1\2\255"), { deep = { socketio.binary("") } }, text)
				end)
			end)
			local p = H.node(PEER)
			connect(p, "a", mode, port, { events = { "bin" }, forceBase64 = mode.extra and true or nil })
			local b64 = H.base64(BIN)
			local args = '[{"$bin":"' .. b64 .. '"},{"x":[{"$bin":"AAEC"}],"y":"z"},"text€"]'
			p:cmd { cmd = "emit", id = "a", event = "bin", argsJson = args, ack = 1 }
			local ack = p:wait("ack", 10000)
			assert.is_true(ack.same, "binary ack differs: " .. tostring(ack.json))
			assert.is_true(socketio.is_binary(got.a))
			assert.are.equal(BIN, got.a.data)
			assert.are.equal("\0\1\2", got.b.x[1].data)
			assert.are.equal("text€", got.text)
			local ev = wait_event(p, "a", "bin")
			assert_json({ { ["$bin"] = H.base64("\0\1\2\255") }, { deep = { { ["$bin"] = "" } } }, "text€" },
				ev.json)
			assert.are.same({}, H.errors)
		end)
	end
end)

describe("socket.io rooms, namespaces and middleware with the official clients", function()
	after_each(H.clean)

	for _, version in ipairs { "2", "4" } do
		local mode = { version = version, name = version .. ".x" }

		it("sends to rooms, to a room but not the sender, and to all but the sender (" .. mode.name .. ")", function()
			local io, port = start()
			local sockets = {}
			io:on("connection", function(socket)
				socket:on("join", function(room, ack)
					socket:join(room)
					sockets[#sockets + 1] = socket
					ack(json.array((function()
						local list = {}
						for r in pairs(socket.rooms) do list[#list + 1] = r end
						table.sort(list)
						return list
					end)()))
				end)
				socket:on("leave", function(room, ack) socket:leave(room) ack() end)
				socket:on("to_room", function(room, text) socket:to(room):emit("news", text) end)
				socket:on("broadcast", function(text) socket.broadcast:emit("news", text) end)
				socket:on("io_to", function(room, text) io:to(room):emit("news", text) end)
				socket:on("except", function(room, text) io:except(room):emit("news", text) end)
			end)
			local p = H.node(PEER)
			for _, id in ipairs { "a", "b", "c" } do
				connect(p, id, mode, port, { events = { "news" } })
			end
			for _, pair in ipairs { { "a", "red" }, { "b", "red" }, { "c", "blue" } } do
				p:cmd { cmd = "emit", id = pair[1], event = "join", args = { pair[2] }, ack = pair[1] }
				local ack = p:wait("ack", 5000, function(e) return e.tag == pair[1] end)
				local rooms = json.decode(ack.json)[1]
				assert.are.equal(2, #rooms)   -- its own id and the room
			end
			local function expect(ids, text)
				for _, id in ipairs(ids) do
					assert_json({ text }, wait_event(p, id, "news").json)
				end
			end
			p:cmd { cmd = "emit", id = "a", event = "io_to", args = { "red", "1" } }
			expect({ "a", "b" }, "1")
			p:cmd { cmd = "emit", id = "a", event = "to_room", args = { "red", "2" } }
			expect({ "b" }, "2")
			p:cmd { cmd = "emit", id = "a", event = "broadcast", args = { "3" } }
			expect({ "b", "c" }, "3")
			p:cmd { cmd = "emit", id = "c", event = "except", args = { "red", "4" } }
			expect({ "c" }, "4")
			p:cmd { cmd = "emit", id = "b", event = "leave", args = { "red" }, ack = "left" }
			p:wait("ack", 5000, function(e) return e.tag == "left" end)
			p:cmd { cmd = "emit", id = "c", event = "io_to", args = { "red", "5" } }
			expect({ "a" }, "5")
			-- a last message to everyone: nothing else may have arrived
			io:emit("news", "end")
			expect({ "a", "b", "c" }, "end")
			no_more(p, "news")
			assert.are.same({}, H.errors)
		end)

		it("runs middleware and namespaces; refusals reach the client (" .. mode.name .. ")", function()
			local io, port = start()
			local admin = io:of("/admin")
			admin:use(function(socket, next)
				local token = socket.handshake.auth.token
				if token == "good" then
					socket.data.user = "root"
					next()
				else
					next { message = "not authorized", data = json.object { reason = "bad token" } }
				end
			end)
			local seen = {}
			admin:on("connection", function(socket)
				seen[#seen + 1] = socket
				socket:emit("welcome", socket.data.user, socket.id)
			end)
			local p = H.node(PEER)
			local function extra(token)
				if version == "2" then return { nsp = "/admin", query = { token = token }, events = { "welcome" } } end
				return { nsp = "/admin", auth = { token = token }, events = { "welcome" } }
			end
			local c = extra("good")
			c.cmd, c.id, c.version, c.url = "connect", "ok", version, "http://127.0.0.1:" .. port
			p:cmd(c)
			local ev = wait_event(p, "ok", "welcome")
			local args = json.decode(ev.json)
			assert.are.equal("root", args[1])
			assert.are.equal(seen[1].id, args[2])
			if version == "2" then assert.are.equal("/admin#", seen[1].id:sub(1, 7)) end

			c = extra("bad")
			c.cmd, c.id, c.version, c.url, c.reconnection = "connect", "no", version,
				"http://127.0.0.1:" .. port, false
			p:cmd(c)
			if version == "4" then
				local err = p:wait("connect_error", 5000, function(e) return e.id == "no" end)
				assert.are.equal("not authorized", err.message)
				assert.are.same({ reason = "bad token" }, err.data)
			else
				-- socket.io v2 clients get err.data as an "error" event
				local err = p:wait("error", 5000, function(e) return e.id == "no" end)
				assert.are.same({ reason = "bad token" }, err.message)
			end
			assert.are.equal(1, #seen)
			-- an unknown namespace is refused too
			c = { cmd = "connect", id = "nowhere", version = version, url = "http://127.0.0.1:" .. port,
				nsp = "/nowhere", reconnection = false }
			p:cmd(c)
			if version == "4" then
				local err = p:wait("connect_error", 5000, function(e) return e.id == "nowhere" end)
				assert.are.equal("Invalid namespace", err.message)
			else
				local err = p:wait("error", 5000, function(e) return e.id == "nowhere" end)
				assert.are.equal("Invalid namespace", err.message)
			end
			assert.are.same({}, H.errors)
		end)

		it("reports the disconnect reasons Socket.IO reports (" .. mode.name .. ")", function()
			local io, port = start()
			local reasons, sockets = {}, {}
			io:on("connection", function(socket)
				sockets[socket.handshake.query.name] = socket
				socket:on("disconnecting", function()
					-- rooms are still readable here
					assert(socket.rooms[socket.id])
				end)
				socket:on("disconnect", function(reason)
					reasons[socket.handshake.query.name] = reason
				end)
			end)
			local p = H.node(PEER)
			for _, name in ipairs { "closer", "kicked", "dropped" } do
				connect(p, name, mode, port, { query = { name = name } })
			end
			p:cmd { cmd = "close", id = "closer" }
			H.run_until(function() return reasons.closer end, 5000, "client disconnect")
			assert.are.equal("client namespace disconnect", reasons.closer)
			sockets.kicked:disconnect()
			local ev = p:wait("disconnect", 5000, function(e) return e.id == "kicked" end)
			assert.are.equal("io server disconnect", ev.reason)
			assert.are.equal("server namespace disconnect", reasons.kicked)
			sockets.dropped:disconnect(true)
			ev = p:wait("disconnect", 5000, function(e) return e.id == "dropped" end)
			assert.are.equal("io server disconnect", ev.reason)
			assert.are.equal("server namespace disconnect", reasons.dropped)
			-- neither comes back: a server DISCONNECT is final
			H.run_for(300)
			assert.is_nil(p:has("connect"))
			assert.are.same({}, H.errors)
		end)
	end

	it("collects broadcast acks, runs packet middleware and on_any, moves sockets between rooms", function()
		local io, port = start()
		local any, refused = {}, {}
		io:on("connection", function(socket)
			socket:use(function(packet, next)
				if packet[1] == "forbidden" then return next("not this one") end
				next()
			end)
			socket:on_any(function(event) any[#any + 1] = event end)
			socket:on("error", function(err) refused[#refused + 1] = err end)
			socket:on("forbidden", function() error("must not run") end)
		end)
		local p = H.node(PEER)
		connect(p, "a", { version = "4", transports = { "websocket" } }, port,
			{ events = { "ask", "moved" }, ackReplyJson = '["from a"]' })
		connect(p, "b", { version = "2", transports = { "polling" } }, port,
			{ events = { "ask", "moved" }, ackReplyJson = '["from b"]' })
		local result
		io:timeout(5000 * H.SLOW):emit("ask", "who?", function(err, responses)
			result = { err = err, responses = responses }
		end)
		H.run_until(function() return result end, 5000, "the broadcast acks")
		assert.is_nil(result.err)
		table.sort(result.responses)
		assert.are.same({ "from a", "from b" }, result.responses)

		p:cmd { cmd = "emit", id = "a", event = "forbidden" }
		p:cmd { cmd = "emit", id = "a", event = "allowed", args = { 1 } }
		H.run_until(function() return #any == 2 end, 5000, "both events")
		assert.are.same({ "forbidden", "allowed" }, any)   -- on_any runs before middleware
		assert.are.same({ "not this one" }, refused)

		io:sockets_join("everyone")
		assert.are.equal(2, #io:to("everyone"):fetch_sockets())
		io:to("everyone"):emit("moved", "in")
		for _, id in ipairs { "a", "b" } do assert_json({ "in" }, wait_event(p, id, "moved").json) end
		io:sockets_leave("everyone")
		assert.are.equal(0, #io:to("everyone"):fetch_sockets())
		assert.are.equal(2, io:socket_count())
		io:disconnect_sockets()
		for _, id in ipairs { "a", "b" } do
			assert.are.equal("io server disconnect",
				p:wait("disconnect", 5000, function(e) return e.id == id end).reason)
		end
		assert.are.equal(0, io:socket_count())
		assert.are.same({}, H.errors)
	end)

	it("times a broadcast ack out with the answers it got, and io:close() lets clients reconnect", function()
		local io, port = start()
		local p = H.node(PEER)
		connect(p, "a", { version = "4", transports = { "websocket" } }, port,
			{ events = { "ask" }, ackReplyJson = '["yes"]' })
		connect(p, "b", { version = "4", transports = { "polling" } }, port, {})
		local result
		io:timeout(300 * H.SLOW):emit("ask", function(err, responses)
			result = { err = err, responses = responses }
		end)
		H.run_until(function() return result end, 5000, "the broadcast ack timeout")
		assert.are.equal("operation has timed out", result.err)
		assert.are.same({ "yes" }, result.responses)
		io:close()
		for _, id in ipairs { "a", "b" } do
			local ev = p:wait("disconnect", 5000, function(e) return e.id == id end)
			assert.are_not.equal("io server disconnect", ev.reason)
		end
		assert.are.equal(0, io:client_count())
		assert.are.same({}, H.errors)
	end)

	it("recovers a 4.x client's id, rooms and missed packets after a short cut", function()
		local io, port = start({ connection_state_recovery = { max_disconnection_duration = 60000 } })
		local connected, disconnected = {}, {}
		io:on("connection", function(socket)
			connected[#connected + 1] = socket
			if not socket.recovered then socket:join("room1") end
			socket:on("disconnect", function(reason) disconnected[#disconnected + 1] = reason end)
		end)
		local p = H.node(PEER)
		local ev = connect(p, "a", { version = "4", transports = { "websocket" } }, port,
			{ events = { "news" }, reconnectionDelay = 1000 * H.SLOW, reconnectionDelayMax = 1000 * H.SLOW })
		local first_id = ev.sid
		io:to("room1"):emit("news", 1)
		wait_event(p, "a", "news")   -- carries an offset now
		p:cmd { cmd = "drop", id = "a" }
		H.run_until(function() return #disconnected == 1 end, 5000, "the server to notice")
		assert.are.equal("transport close", disconnected[1])
		io:to("room1"):emit("news", 2)
		io:emit("news", 3)
		io:to("elsewhere"):emit("news", "not for a")
		connected[1]:emit("news", "direct")   -- to the socket that is gone: kept for it
		ev = p:wait("connect", 10000, function(e) return e.id == "a" end)
		assert.are.equal(first_id, ev.sid)
		assert.is_true(ev.recovered)
		assert.is_true(connected[2].recovered)
		assert.are.equal(first_id, connected[2].id)
		assert.is_true(connected[2].rooms.room1)
		local a = json.decode(wait_event(p, "a", "news").json)
		local b = json.decode(wait_event(p, "a", "news").json)
		local c = json.decode(wait_event(p, "a", "news").json)
		assert.are.equal(2, a[1])
		assert.are.equal(3, b[1])
		assert.are.equal("direct", c[1])
		assert.are.equal("string", type(a[2]))   -- the offset rides as the last argument
		io:to("room1"):emit("news", 4)
		assert.are.equal(4, json.decode(wait_event(p, "a", "news").json)[1])
		no_more(p, "news")
		assert.are.same({}, H.errors)
	end)
end)
