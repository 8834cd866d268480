-- lws.socketio on the wire: exact Engine.IO / Socket.IO bytes from a raw
-- client (H.raw), the error answers engine.io gives, the upgrade, and
-- dead peers on every transport.
local H = require "helper"
local json = require "lws.json"
local socketio = require "lws.socketio"
local lws = H.lws

package.path = H.ROOT .. "/examples/chatroom/?.lua;" .. package.path
local chatroom = require("chatroom").attach

local function start(opts, server_opts)
	local srv, port = H.server(server_opts)
	local io = socketio(srv, opts or {})
	return io, port, srv
end

-- one HTTP request on its own connection; returns the raw client (the
-- answer is read with r:read_response())
local function request(port, method, path, body, headers)
	local r = H.raw(port)
	local lines = { method .. " " .. path .. " HTTP/1.1", "Host: 127.0.0.1:" .. port }
	for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
	if body then lines[#lines + 1] = "Content-Length: " .. #body end
	r:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""))
	return r
end

local function http(port, method, path, body, headers)
	local r = request(port, method, path, body, headers)
	local status, hdrs, resp = r:read_response()
	r:close()
	return status, hdrs, resp
end

local function q(eio, transport, sid, extra)
	return ("/socket.io/?EIO=%d&transport=%s%s%s"):format(eio, transport, sid and "&sid=" .. sid or "",
		extra or "")
end

-- polling handshake: sid and the open packet's JSON
local function handshake(port, eio, extra)
	local status, hdrs, body = http(port, "GET", q(eio, "polling", nil, extra))
	assert.are.equal(200, status)
	assert.are.equal("text/plain; charset=UTF-8", hdrs["content-type"])
	assert.are.equal("no-store", hdrs["cache-control"])
	local open = eio == 3 and body:match("^%d+:(0.*)$") or body
	local info = json.decode(open:sub(2))
	return info.sid, info, body
end

local function poll(port, eio, sid)
	local status, _, body = http(port, "GET", q(eio, "polling", sid))
	return body, status
end

local function post(port, eio, sid, body, headers)
	local status, _, resp = http(port, "POST", q(eio, "polling", sid), body, headers)
	return status, resp
end

-- a raw websocket: frames in (masked text) and out
local function ws_open(port, path)
	local r = H.raw(port)
	local status = r:handshake(path, { Host = "127.0.0.1:" .. port })
	assert.are.equal(101, status)
	return r
end
local function ws_send(r, text, binary)
	r:send(H.frame(binary and 2 or 1, text))
end
local function ws_read(r, ms)
	local f = r:read_frame(ms)
	assert(f, "the server closed the websocket")
	return f.payload, f.opcode
end

local function disconnect_log(io)
	local log = {}
	io:on("connection", function(socket)
		socket:on("disconnect", function(reason)
			log[#log + 1] = { id = socket.id, reason = reason, at = lws.now() }
		end)
	end)
	return log
end

describe("socket.io raw polling", function()
	after_each(H.clean)

	it("opens EIO 4 sessions with the reference bytes and answers CONNECT", function()
		local _, port = start({ ping_interval = 1000, ping_timeout = 1000 })
		local sid, info, body = handshake(port, 4)
		assert.are.equal(20, #sid)
		assert.are.equal(('0{"sid":"%s","upgrades":["websocket"],"pingInterval":1000,"pingTimeout":1000,'
			.. '"maxPayload":1000000}'):format(sid), body)
		assert.are.equal(1000, info.pingInterval)
		local status, resp = post(port, 4, sid, "40")
		assert.are.equal(200, status)
		assert.are.equal("ok", resp)
		local reply = poll(port, 4, sid)
		local socket_id = reply:match('^40{"sid":"([^"]+)"}$')
		assert.is_truthy(socket_id, reply)
		assert.are_not.equal(sid, socket_id)   -- never the Engine.IO id
	end)

	it("opens EIO 3 sessions with length prefixes and the implicit 40", function()
		local _, port = start({ ping_interval = 1000, ping_timeout = 1000 })
		local sid, _, body = handshake(port, 3)
		assert.are.equal(('116:0{"sid":"%s","upgrades":["websocket"],"pingInterval":1000,"pingTimeout":1000,'
			.. '"maxPayload":1000000}'):format(sid), body)
		assert.are.equal("2:40", poll(port, 3, sid))
		-- the client pings, the server answers
		assert.are.equal(200, (post(port, 3, sid, "1:2")))
		assert.are.equal("1:3", poll(port, 3, sid))
	end)

	it("counts EIO 3 lengths in UTF-16 code units, both ways (the captured chatroom exchange)", function()
		local io, port = start()
		chatroom(io)
		io:on("connection", function(socket)
			socket:on("echo", function(a, b, ack) ack(a, b) end)
		end)
		local sid = handshake(port, 3)
		assert.are.equal("2:40", poll(port, 3, sid))
		local status = post(port, 3, sid,
			'44:42["login",{"userid":"u1","username":"€😀"}]30:421["echo","a",{"b":[1,null]}]')
		assert.are.equal(200, status)
		local reply = poll(port, 3, sid)
		-- our keys are sorted: same bytes as the reference up to key order, same lengths
		assert.are.equal('96:42["login",{"onlineCount":1,"onlineUsers":{"u1":"€😀"},"user":'
			.. '{"userid":"u1","username":"€😀"}}]23:431["a",{"b":[1,null]}]', reply)
	end)

	it("joins EIO 4 packets with \\x1e and escapes it inside strings", function()
		local io, port = start()
		io:on("connection", function(socket)
			socket:on("echo", function(a, ack) ack(a) end)
		end)
		local sid = handshake(port, 4)
		post(port, 4, sid, "40")
		poll(port, 4, sid)
		assert.are.equal(200, (post(port, 4, sid, '421["echo","x\\u001ey"]\x1e422["echo",[]]')))
		assert.are.equal('431["x\\u001ey"]\x1e432[[]]', poll(port, 4, sid))
	end)

	it("carries binary attachments as base64 (EIO 4, EIO 3 b64) and as XHR2 binary payloads (EIO 3)", function()
		local io, port = start()
		io:on("connection", function(socket)
			socket:on("echo", function(a, ack) ack(a) end)
		end)
		local placeholder = '["echo",{"_placeholder":true,"num":0}]'
		local sid = handshake(port, 4)
		post(port, 4, sid, "40")
		poll(port, 4, sid)
		post(port, 4, sid, "451-7" .. placeholder .. "\x1ebAQID")
		assert.are.equal('461-7[{"_placeholder":true,"num":0}]\x1ebAQID', poll(port, 4, sid))

		sid = handshake(port, 3, "&b64=1")
		assert.are.equal("2:40", poll(port, 3, sid))
		post(port, 3, sid, "43:451-7" .. placeholder .. "6:b4AQID")
		assert.are.equal('36:461-7[{"_placeholder":true,"num":0}]6:b4AQID', poll(port, 3, sid))

		sid = handshake(port, 3)
		assert.are.equal("2:40", poll(port, 3, sid))
		local status = post(port, 3, sid, "\0\4\3\255451-7" .. placeholder .. "\1\4\255\4\1\2\3",
			{ ["Content-Type"] = "application/octet-stream" })
		assert.are.equal(200, status)
		local r = request(port, "GET", q(3, "polling", sid))
		local st, hdrs, body = r:read_response()
		assert.are.equal(200, st)
		assert.are.equal("application/octet-stream", hdrs["content-type"])
		assert.are.equal('\0\3\6\255461-7[{"_placeholder":true,"num":0}]\1\4\255\4\1\2\3', body)
	end)

	it("answers bad requests as engine.io does", function()
		local io, port = start({ allow_request = function(req)
			return req.query.deny == nil, "go away"
		end })
		local function check(status, code, message, got_status, _, body)
			assert.are.equal(status, got_status)
			assert.are.equal(('{"code":%d,"message":"%s"}'):format(code, message), body)
		end
		check(400, 1, "Session ID unknown", http(port, "GET", q(4, "polling", "nope")))
		check(400, 0, "Transport unknown", http(port, "GET", "/socket.io/?EIO=4&transport=carrier-pigeon"))
		check(400, 0, "Transport unknown", http(port, "GET", "/socket.io/?EIO=4"))
		check(400, 2, "Bad handshake method", http(port, "POST", q(4, "polling"), "40"))
		check(403, 4, "go away", http(port, "GET", q(4, "polling", nil, "&deny=1")))
		local _, hdrs = http(port, "GET", q(4, "polling", "nope"))
		assert.are.equal("application/json", hdrs["content-type"])
		-- a session whose protocol does not match its requests
		local sid = handshake(port, 4)
		check(400, 3, "Bad request", http(port, "GET", q(3, "polling", sid)))
		assert.are.equal(0, #io.sockets:fetch_sockets())
		local io3_srv, port3 = H.server()
		socketio(io3_srv, { allow_eio3 = false })
		check(400, 5, "Unsupported protocol version", http(port3, "GET", q(3, "polling")))
	end)

	it("takes a POST of max_http_buffer_size, refuses one byte over with 413, keeps the session", function()
		local io, port = start({ max_http_buffer_size = 1000 })
		local got = {}
		io:on("connection", function(socket) socket:on("m", function(x) got[#got + 1] = x end) end)
		local sid = handshake(port, 4)
		post(port, 4, sid, "40")
		poll(port, 4, sid)
		-- '42["m","' .. x .. '"]' is 10 bytes more than x: 1000 bytes in all, then 1001
		assert.are.equal(200, (post(port, 4, sid, '42["m","' .. string.rep("x", 990) .. '"]')))
		local status = post(port, 4, sid, '42["m","' .. string.rep("x", 991) .. '"]')
		assert.are.equal(413, status)
		assert.are.equal(200, (post(port, 4, sid, '42["m","small"]')))
		assert.are.same({ string.rep("x", 990), "small" }, got)
	end)

	it("gzips polling answers of 1024 bytes up for clients that take gzip (httpCompression)", function()
		local big = string.rep("abc€", 500)
		for _, case in ipairs { { opts = {}, gzip = true }, { opts = { http_compression = false }, gzip = false },
			{ opts = { http_compression = { threshold = 100000 } }, gzip = false } } do
			local io, port = start(case.opts)
			io:on("connection", function(socket)
				socket:on("more", function() socket:emit("big", big) end)
				socket:emit("big", big)
			end)
			local sid = handshake(port, 4)
			post(port, 4, sid, "40")
			local gz = { ["Accept-Encoding"] = "gzip, deflate, br" }
			local status, hdrs, body = http(port, "GET", q(4, "polling", sid), nil, gz)
			assert.are.equal(200, status)
			local expected = '42["big","' .. big .. '"]'
			if case.gzip then
				assert.are.equal("gzip", hdrs["content-encoding"])
				assert.are.equal("Accept-Encoding", hdrs["vary"])
				assert.is_true(#body < #expected / 4)
				body = H.gunzip(body)
			else
				assert.is_nil(hdrs["content-encoding"])
			end
			assert.matches('^40{"sid":"[^"]+"}\30', body)
			assert.are.equal(expected, body:sub(-#expected))
			-- without Accept-Encoding: plain
			post(port, 4, sid, '42["more"]')
			status, hdrs, body = http(port, "GET", q(4, "polling", sid))
			assert.are.equal(200, status)
			assert.is_nil(hdrs["content-encoding"])
			assert.are.equal(expected, body)
			-- small answers stay plain (the open packet)
			status, hdrs, body = http(port, "GET", q(4, "polling"), nil, gz)
			assert.are.equal(200, status)
			assert.is_nil(hdrs["content-encoding"])
			assert.matches('^0{"sid"', body)
			H.clean()
		end
		assert.has_error(function() socketio(H.server(), { http_compression = 3 }) end,
			"option 'http_compression' must be a boolean or a table, got number 3")
	end)

	it("closes a session that sends a second GET while one is held (400) or binary to EIO 4", function()
		local io, port = start()
		local log = disconnect_log(io)
		local sid = handshake(port, 4)
		post(port, 4, sid, "40")
		poll(port, 4, sid)
		local held = request(port, "GET", q(4, "polling", sid))
		H.run_until(function() return io.engine.sessions[sid].get_res ~= nil end, 5000, "the GET to be held")
		local status, _, body = http(port, "GET", q(4, "polling", sid))
		assert.are.equal(400, status)
		assert.are.equal("", body)
		local st, _, held_body = held:read_response()
		assert.are.equal(200, st)
		assert.are.equal("1", held_body)   -- the close packet
		assert.are.equal("transport error", log[1].reason)
		local _, _, gone = http(port, "GET", q(4, "polling", sid))
		assert.are.equal('{"code":1,"message":"Session ID unknown"}', gone)

		sid = handshake(port, 4)
		post(port, 4, sid, "40")
		poll(port, 4, sid)
		status = post(port, 4, sid, "\1\2\3", { ["Content-Type"] = "application/octet-stream" })
		assert.are.equal(400, status)
		assert.are.equal("transport error", log[2].reason)
	end)

	it("closes only the session that sends malformed packets; the others go on", function()
		local io, port = start()
		local log = disconnect_log(io)
		local echoes = 0
		io:on("connection", function(socket)
			socket:on("echo", function(x, ack) echoes = echoes + 1 ack(x) end)
		end)
		local good = handshake(port, 4)
		post(port, 4, good, "40")
		poll(port, 4, good)
		local cases = {
			{ 4, "zz", "parse error" },                              -- unknown Engine.IO type
			{ 4, "", "parse error" },
			{ 4, "bnot base64!", "parse error" },
			{ 3, "5:abc", "parse error" },                           -- length does not match
			{ 3, "x:42", "parse error" },
			{ 3, "2:9x", "parse error" },
			{ 4, '42{"not":"an array"}', "forced close" },          -- Socket.IO level
			{ 4, '42["disconnect"]', "forced close" },              -- reserved name
			{ 4, "42[\"echo\",", "forced close" },                   -- JSON that does not parse
			{ 4, "49", "forced close" },                             -- unknown Socket.IO type
			{ 4, '45-["echo"]', "forced close" },                    -- illegal attachments
			{ 4, '4511-["echo"]', "forced close" },                  -- too many attachments
			{ 4, "4bAQID", "forced close" },                         -- binary with no packet
			{ 4, "40", "forced server close" },                      -- second CONNECT for "/"
		}
		for i, c in ipairs(cases) do
			local eio, payload, reason = c[1], c[2], c[3]
			local sid = handshake(port, eio)
			if eio == 4 then post(port, 4, sid, "40") end
			poll(port, eio, sid)
			if payload == "4bAQID" then payload = "bAQID" end
			local status = post(port, eio, sid, payload)
			assert.are.equal(200, status, "case " .. i)
			if reason ~= "parse error" then
				-- a close the server asks for goes out with the next GET
				local body = poll(port, eio, sid)
				assert.are.equal("1", body:sub(-1), "case " .. i)
			end
			H.run_until(function() return #log == i end, 5000, "case " .. i .. " to close")
			assert.are.equal(reason, log[i].reason, "case " .. i .. ": " .. payload)
			assert.is_nil(io.engine.sessions[sid], "case " .. i)
		end
		-- the good session never noticed
		post(port, 4, good, '421["echo","still here"]')
		assert.are.equal('431["still here"]', poll(port, 4, good))
		assert.are.equal(1, echoes)
	end)

	it("sends CORS headers when asked and answers preflights", function()
		local _, port = start({ cors = { origin = true, credentials = true } })
		local origin = { Origin = "http://page.test:8080" }
		local status, hdrs = http(port, "GET", q(4, "polling"), nil, origin)
		assert.are.equal(200, status)
		assert.are.equal("http://page.test:8080", hdrs["access-control-allow-origin"])
		assert.are.equal("true", hdrs["access-control-allow-credentials"])
		status, hdrs = http(port, "OPTIONS", q(4, "polling"), nil, {
			Origin = "http://page.test:8080", ["Access-Control-Request-Method"] = "POST",
			["Access-Control-Request-Headers"] = "content-type" })
		assert.are.equal(204, status)
		assert.is_truthy(hdrs["access-control-allow-methods"]:find("POST"))
		assert.are.equal("content-type", hdrs["access-control-allow-headers"])
		-- errors carry them too
		status, hdrs = http(port, "GET", q(4, "polling", "nope"), nil, origin)
		assert.are.equal(400, status)
		assert.are.equal("http://page.test:8080", hdrs["access-control-allow-origin"])

		local _, port2 = start()
		_, hdrs = http(port2, "GET", q(4, "polling"), nil, origin)
		assert.is_nil(hdrs["access-control-allow-origin"])
		local _, port3 = start({ cors = { origin = { "http://ok.test" } } })
		_, hdrs = http(port3, "GET", q(4, "polling"), nil, origin)
		assert.is_nil(hdrs["access-control-allow-origin"])
		_, hdrs = http(port3, "GET", q(4, "polling"), nil, { Origin = "http://ok.test" })
		assert.are.equal("http://ok.test", hdrs["access-control-allow-origin"])
	end)

	it("serves the client bundle, 2.3.0 by default, 4.x on request", function()
		local function file(path)
			local f = assert(io.open(H.ROOT .. "/" .. path, "rb"))
			local s = f:read("a")
			f:close()
			return s
		end
		local _, port = start()
		local status, hdrs, body = http(port, "GET", "/socket.io/socket.io.js")
		assert.are.equal(200, status)
		assert.are.equal("application/javascript; charset=utf-8", hdrs["content-type"])
		assert.are.equal(file("node_modules/socket.io-client-v2/dist/socket.io.js"), body)
		assert.is_truthy(body:find("2.3.0", 1, true))
		status = http(port, "GET", "/socket.io/socket.io.js", nil, { ["If-None-Match"] = hdrs.etag })
		assert.are.equal(304, status)
		status = http(port, "GET", "/socket.io/socket.io.js.map")
		assert.are.equal(200, status)

		local _, port4 = start({ client_version = "4" })
		status, _, body = http(port4, "GET", "/socket.io/socket.io.min.js")
		assert.are.equal(200, status)
		assert.are.equal(file("node_modules/socket.io-client/dist/socket.io.min.js"), body)

		local _, port5 = start({ client_dir = H.ROOT .. "/node_modules/socket.io-client/dist" })
		_, _, body = http(port5, "GET", "/socket.io/socket.io.js")
		assert.are.equal(file("node_modules/socket.io-client/dist/socket.io.js"), body)

		local _, port6 = start({ serve_client = false })
		assert.are.equal(404, (http(port6, "GET", "/socket.io/socket.io.js")))
	end)
end)

describe("socket.io raw websocket and upgrade", function()
	after_each(H.clean)

	for _, eio in ipairs { 3, 4 } do
		it("upgrades EIO " .. eio .. " polling to websocket: probe, noop, 5, the buffer in order", function()
			local io, port = start({ upgrade_timeout = 10000 * H.SLOW })
			local sockets = {}
			io:on("connection", function(socket)
				sockets[#sockets + 1] = socket
				socket:on("echo", function(x, ack) ack(x) end)
			end)
			local sid = handshake(port, eio)
			if eio == 4 then post(port, 4, sid, "40") end
			poll(port, eio, sid)
			local held = request(port, "GET", q(eio, "polling", sid))
			H.run_until(function() return io.engine.sessions[sid].get_res ~= nil end, 5000, "the held GET")
			local ws = ws_open(port, q(eio, "websocket", sid))
			ws_send(ws, "2probe")
			assert.are.equal("3probe", ws_read(ws))
			local _, _, body = held:read_response()
			assert.are.equal(eio == 3 and "1:6" or "6", body)
			-- sent while the upgrade is not done: buffered, in order, not on the websocket
			sockets[1]:emit("first", 1)
			sockets[1]:emit("second", 2)
			H.run_for(100)
			assert.are.equal("", ws.buf)
			ws_send(ws, "5")
			assert.are.equal('42["first",1]', ws_read(ws))
			assert.are.equal('42["second",2]', ws_read(ws))
			ws_send(ws, '421["echo","over ws"]')
			assert.are.equal('431["over ws"]', ws_read(ws))
			-- the polling transport is gone
			local status, _, err = http(port, "GET", q(eio, "polling", sid))
			assert.are.equal(400, status)
			assert.are.equal('{"code":3,"message":"Bad request"}', err)
			assert.are.equal("websocket", io.engine.sessions[sid].transport)
		end)
	end

	it("delivers a DISCONNECT sent during the upgrade over the new websocket, then closes", function()
		local io, port = start({ upgrade_timeout = 10000 * H.SLOW })
		local log = disconnect_log(io)
		local sockets = {}
		io:on("connection", function(socket) sockets[#sockets + 1] = socket end)
		local sid = handshake(port, 4)
		post(port, 4, sid, "40")
		poll(port, 4, sid)
		local ws = ws_open(port, q(4, "websocket", sid))
		ws_send(ws, "2probe")
		assert.are.equal("3probe", ws_read(ws))
		sockets[1]:disconnect(true)   -- no GET held: it waits in the buffer
		assert.are.equal("server namespace disconnect", log[1].reason)
		ws_send(ws, "5")
		assert.are.equal("41", ws_read(ws))
		local payload, opcode = ws_read(ws)
		assert.are.equal(8, opcode, payload)
		assert.is_nil(io.engine.sessions[sid])
	end)

	it("opens websocket-only sessions (EIO 3 gets 40 unasked; EIO 4 answers its 40)", function()
		local _, port = start({ ping_interval = 1000, ping_timeout = 1000 })
		local ws = ws_open(port, q(3, "websocket"))
		local open = ws_read(ws)
		assert.is_truthy(open:match('^0{"sid":"[%w_-]+","upgrades":%[%],"pingInterval":1000,'
			.. '"pingTimeout":1000,"maxPayload":1000000}$'), open)
		assert.are.equal("40", ws_read(ws))
		ws_send(ws, "2")
		assert.are.equal("3", ws_read(ws))
		-- binary frames carry the packet type in EIO 3
		ws_send(ws, '451-["x",{"_placeholder":true,"num":0}]')
		ws_send(ws, "\4\1\2\3", true)

		local ws4 = ws_open(port, q(4, "websocket"))
		assert.is_truthy(ws_read(ws4):match('^0{"sid":'))
		ws_send(ws4, '40{"token":"t"}')
		assert.is_truthy(ws_read(ws4):match('^40{"sid":"[%w_-]+"}$'))
		local ping = ws_read(ws4, 3000)
		assert.are.equal("2", ping)   -- the server pings in EIO 4
		ws_send(ws4, "3")
	end)

	it("refuses websocket upgrades for unknown sessions and transports", function()
		local _, port = start()
		local r = H.raw(port)
		local status, _, body = r:handshake(q(4, "websocket", "nope"), { Host = "127.0.0.1" })
		assert.are.equal(400, status)
		assert.are.equal("Session ID unknown", body)
		r = H.raw(port)
		status = r:handshake("/socket.io/?EIO=4&transport=polling", { Host = "127.0.0.1" })
		assert.are.equal(400, status)
	end)

	it("takes a websocket message of max_http_buffer_size, closes with 1009 one byte over", function()
		local io, port = start({ max_http_buffer_size = 100 })
		local got = {}
		io:on("connection", function(socket) socket:on("x", function(v) got[#got + 1] = v end) end)
		local ws = ws_open(port, q(4, "websocket"))
		ws_read(ws)
		ws_send(ws, "40")
		ws_read(ws)
		-- 100 bytes pass, 101 close the websocket
		ws_send(ws, '42["x","' .. string.rep("y", 90) .. '"]')
		H.run_until(function() return #got == 1 end, 5000, "the 100-byte message")
		ws_send(ws, '42["x","' .. string.rep("y", 91) .. '"]')
		local code = ws:read_close()
		assert.are.equal(1009, code)
		assert.are.same({ string.rep("y", 90) }, got)
	end)

	it("sends no DISCONNECT when the server closes: clients just lose the transport", function()
		local io, port, srv = start()
		local log = disconnect_log(io)
		local ws = ws_open(port, q(4, "websocket"))
		ws_read(ws)
		ws_send(ws, "40")
		ws_read(ws)
		local sid = handshake(port, 3)
		poll(port, 3, sid)
		srv:close(1)
		local code = ws:read_close()
		assert.are.equal(1001, code)
		H.run_until(function() return #log == 2 end, 5000, "both sockets to go")
		local reasons = { log[1].reason, log[2].reason }
		table.sort(reasons)
		assert.are.same({ "server shutting down", "transport close" }, reasons)
	end)
end)

describe("socket.io dead peers", function()
	after_each(H.clean)

	-- ping_interval 1000 + ping_timeout 1000: a silent client goes within
	-- 2 s of its last sign of life (3.5 s allowed)
	local function expect_drop(io, log, since)
		H.run_until(function() return #log > 0 end, 3500, "the silent client to be dropped")
		assert.are.equal("ping timeout", log[1].reason)
		local took = log[1].at - since
		assert.is_true(took >= 1500, "dropped too early: " .. took .. " ms")
		assert.is_true(took <= 3500 * H.SLOW, "dropped too late: " .. took .. " ms")
		assert.are.equal(0, io.engine.count)
	end

	for _, eio in ipairs { 3, 4 } do
		it("drops a silent EIO " .. eio .. " polling client", function()
			local io, port = start({ ping_interval = 1000, ping_timeout = 1000 })
			local log = disconnect_log(io)
			local sid = handshake(port, eio)
			if eio == 4 then post(port, 4, sid, "40") end
			poll(port, eio, sid)
			expect_drop(io, log, lws.now())
		end)

		it("drops a silent EIO " .. eio .. " websocket client", function()
			local io, port = start({ ping_interval = 1000, ping_timeout = 1000 })
			local log = disconnect_log(io)
			local ws = ws_open(port, q(eio, "websocket"))
			ws_read(ws)
			if eio == 4 then ws_send(ws, "40") end
			ws_read(ws)
			expect_drop(io, log, lws.now())
		end)

		it("drops a silent EIO " .. eio .. " client after the upgrade", function()
			local io, port = start({ ping_interval = 1000, ping_timeout = 1000 })
			local log = disconnect_log(io)
			local sid = handshake(port, eio)
			if eio == 4 then post(port, 4, sid, "40") end
			poll(port, eio, sid)
			local ws = ws_open(port, q(eio, "websocket", sid))
			ws_send(ws, "2probe")
			ws_read(ws)
			ws_send(ws, "5")
			if eio == 3 then
				ws_send(ws, "2")   -- its last ping, over the websocket
				assert.are.equal("3", ws_read(ws))
			end
			local since = lws.now()
			expect_drop(io, log, since)
		end)

		it("keeps an EIO " .. eio .. " websocket client that answers the heartbeat", function()
			-- answers may be slow under valgrind: the timeout scales, the rhythm not
			local io, port = start({ ping_interval = 300, ping_timeout = 300 * H.SLOW })
			local log = disconnect_log(io)
			local ws = ws_open(port, q(eio, "websocket"))
			ws_read(ws)
			if eio == 4 then ws_send(ws, "40") end
			ws_read(ws)
			local t0 = lws.now()
			while lws.now() - t0 < 1500 do
				if eio == 3 then
					ws_send(ws, "2")
					assert.are.equal("3", ws_read(ws))
					H.run_for(200)
				else
					assert.are.equal("2", ws_read(ws, 2000))
					ws_send(ws, "3")
				end
			end
			assert.are.same({}, log)
			assert.are.equal(1, io.engine.count)
		end)
	end

	it("does not mix up heartbeat directions: a v4 ping or a v3 pong ends the session", function()
		local io, port = start()
		local log = disconnect_log(io)
		local ws = ws_open(port, q(4, "websocket"))
		ws_read(ws)
		ws_send(ws, "40")
		ws_read(ws)
		ws_send(ws, "2")
		H.run_until(function() return #log == 1 end, 5000, "the v4 session to close")
		assert.are.equal("transport error", log[1].reason)
		local ws3 = ws_open(port, q(3, "websocket"))
		ws_read(ws3)
		ws_read(ws3)
		ws_send(ws3, "3")
		H.run_until(function() return #log == 2 end, 5000, "the v3 session to close")
		assert.are.equal("transport error", log[2].reason)
	end)
end)
