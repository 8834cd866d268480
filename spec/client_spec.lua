-- The browser-shaped client (lws.WebSocket) against Node's ws server
-- (spec/peers/ws_server.js, a peer we did not write) and against our own
-- server: messages, subprotocols, request headers, close codes, and every
-- way a connection can fail.
local H = require "helper"
local lws = require "lws"
local socket = require "socket"

local MiB = 1024 * 1024
local clients = {}

-- a WebSocket whose events are recorded in order: rec.events = { {name, args...}, … }
local function client(url, protocols, opts)
	local ws = lws.WebSocket(url, protocols, opts)
	clients[#clients + 1] = ws
	local rec = { ws = ws, events = {} }
	for _, name in ipairs { "open", "message", "error", "close", "reconnect" } do
		ws:on(name, function(...)
			rec.events[#rec.events + 1] = table.pack(name, ...)
		end)
	end
	function rec.names()
		local t = {}
		for i, e in ipairs(rec.events) do t[i] = e[1] end
		return table.concat(t, ",")
	end
	function rec.wait(name, ms, n)
		n = n or 1
		local found
		H.run_until(function()
			local k = 0
			for _, e in ipairs(rec.events) do
				if e[1] == name then
					k = k + 1
					if k == n then found = e return true end
				end
			end
		end, ms, "client event '" .. name .. "' (seen: " .. rec.names() .. ")")
		return found
	end
	return ws, rec
end

local function close_clients()
	for _, ws in ipairs(clients) do ws:close() end
	clients = {}
end

local node_server = H.node_server

-- a TCP port nobody listens on
local closed_port = H.free_port

local url = H.ws_url

describe("lws.WebSocket against Node's ws server", function()
	after_each(function()
		close_clients()
		H.clean()
	end)

	it("opens with readyState, url, protocol and extensions like a browser", function()
		local _, port = node_server()
		local u = url(port, "/path?x=1")
		local ws, rec = client(u)
		assert.are.equal(lws.CONNECTING, ws.readyState)
		assert.are.equal(u, ws.url)
		local seen
		ws.onopen = function(ev) seen = { ev.type, ev.target, ws.readyState } end
		rec.wait("open")
		assert.are.same({ "open", ws, lws.OPEN }, seen)
		assert.are.equal("", ws.protocol)
		assert.are.equal("", ws.extensions)   -- never offers permessage-deflate
		assert.are.equal(0, ws.bufferedAmount)
		assert.matches("^lws.websocket %(ws://127.0.0.1:%d+/path%?x=1, OPEN%)$", tostring(ws))
	end)

	it("echoes text and binary of every interesting size up to 16 MiB", function()
		local peer, port = node_server()
		local ws, rec = client(url(port), nil, { max_message_size = 16 * MiB })
		rec.wait("open")
		local n = 0
		for _, size in ipairs { 0, 1, 125, 126, 65535, 65536, MiB, 16 * MiB } do
			for _, binary in ipairs { false, true } do
				local payload = H.pattern(size, binary)
				assert.is_true(ws:send(payload, binary))
				n = n + 1
				local e = rec.wait("message", 30000, n)
				assert.are.equal(size, #e[2], "size " .. size)
				assert.are.equal(binary, e[3])
				assert.is_true(e[2] == payload, "echo of " .. size .. " bytes differs")
				local got = peer:wait("message", 30000)
				assert.are.same({ size, binary }, { got.len, got.binary })
				if size > 65536 then assert.is_true(got.pattern) end
			end
		end
	end)

	it("gives onmessage an event and on('message') the server side's arguments", function()
		local _, port = node_server()
		local ws, rec = client(url(port))
		local ev
		ws.onmessage = function(e) ev = e end
		rec.wait("open")
		ws:send("héllo")
		local e = rec.wait("message")
		assert.are.same({ "message", "héllo", false }, { e[1], e[2], e[3] })
		assert.are.same({ "message", "héllo", false, ws }, { ev.type, ev.data, ev.binary, ev.target })
	end)

	it("negotiates subprotocols", function()
		local _, port = node_server()
		local ws, rec = client(url(port), { "chat.v2", "chat.v1" })
		rec.wait("open")
		assert.are.equal("chat.v2", ws.protocol)

		local _, port2 = node_server { protocol = "chat.v1" }
		ws, rec = client(url(port2), { "chat.v2", "chat.v1" })
		rec.wait("open")
		assert.are.equal("chat.v1", ws.protocol)

		-- a server that answers with one we did not offer, or with two: the
		-- handshake fails (RFC 6455 4.1)
		local _, port4 = node_server { force_protocol = "zzz", protocol = false }
		local _, rec4 = client(url(port4), "chat.v2")
		local e = rec4.wait("error")
		assert.are.same({ "handshake", "invalid WebSocket handshake from 127.0.0.1:" .. port4
			.. ": the server chose a subprotocol that was not offered" }, { e[3], e[2] })
		local _, rec5 = client(url(port4))
		assert.are.equal("handshake", rec5.wait("error")[3])
		local _, port6 = node_server { force_protocol = "zzz" }
		local _, rec6 = client(url(port6), { "chat.v2", "zzz" })
		e = rec6.wait("error")
		assert.are.same({ "handshake", "invalid WebSocket handshake from 127.0.0.1:" .. port6
			.. ": the server chose more than one subprotocol (chat.v2, zzz)" }, { e[3], e[2] })
		assert.are.equal(1006, rec6.wait("close")[2])

		-- a server that picks none: open, protocol "" (as browsers do)
		local _, port3 = node_server { protocol = false }
		ws, rec = client(url(port3), "chat.v2")
		rec.wait("open")
		assert.are.equal("", ws.protocol)
	end)

	it("sends the request headers, Origin, and a Host with the port", function()
		local peer, port = node_server()
		local _, rec = client(url(port, "/room?token=abc"), nil, {
			headers = { Authorization = "Bearer s3cret", Cookie = "sid=42; theme=dark", ["X-Trace"] = 7 },
			origin = "https://app.example",
		})
		rec.wait("open")
		local ev = peer:wait("connection")
		assert.are.equal("/room?token=abc", ev.url)
		assert.are.equal("Bearer s3cret", ev.headers.authorization)
		assert.are.equal("sid=42; theme=dark", ev.headers.cookie)
		assert.are.equal("7", ev.headers["x-trace"])
		assert.are.equal("https://app.example", ev.headers.origin)
		assert.are.equal("127.0.0.1:" .. port, ev.headers.host)
		assert.is_nil(ev.headers["sec-websocket-extensions"])
	end)

	it("carries close codes and reasons both ways", function()
		local peer, port = node_server()
		local ws, rec = client(url(port))
		rec.wait("open")
		peer:wait("connection")
		ws:close(4000, "client bye")
		assert.are.equal(lws.CLOSING, ws.readyState)
		local ev = peer:wait("close")
		assert.are.same({ 4000, "client bye" }, { ev.code, ev.reason })
		local e = rec.wait("close")
		assert.are.same({ 4000, "client bye", true, false }, { e[2], e[3], e[4], e[5] })
		assert.are.equal(lws.CLOSED, ws.readyState)

		local ws2, rec2 = client(url(port))
		rec2.wait("open")
		local id = peer:wait("connection").id
		local cev
		ws2.onclose = function(x) cev = x end
		peer:cmd { cmd = "close", id = id, code = 4001, reason = "server bye" }
		e = rec2.wait("close")
		assert.are.same({ 4001, "server bye", true }, { e[2], e[3], e[4] })
		assert.are.same({ "close", 4001, "server bye", true, false }, { cev.type, cev.code, cev.reason,
			cev.wasClean, cev.reconnecting })
		-- nothing fires after close, and the object stays closed
		assert.are.same({ nil, "connection is closed", "closed" }, { ws2:send("x") })
		H.run_for(50)
		assert.are.equal("open,close", rec2.names())
	end)

	it("reports 1005 for a Close without a code and 1006 when TCP just drops", function()
		local peer, port = node_server()
		local _, rec = client(url(port))
		rec.wait("open")
		peer:cmd { cmd = "close" }
		local e = rec.wait("close")
		assert.are.same({ 1005, "", true }, { e[2], e[3], e[4] })

		local _, rec2 = client(url(port))
		rec2.wait("open")
		peer:cmd { cmd = "terminate" }
		e = rec2.wait("close")
		assert.are.same({ 1006, false }, { e[2], e[4] })
	end)

	it("applies the browser's rules to close()", function()
		local _, port = node_server()
		local ws, rec = client(url(port))
		rec.wait("open")
		for _, code in ipairs { 1001, 1005, 1006, 2999, 5000, 999, 1000.5 } do
			assert.has_error(function() ws:close(code) end, "bad argument #1 to 'close' (code must be 1000 or 3000-4999)")
		end
		assert.has_error(function() ws:close(1000, string.rep("x", 124)) end,
			"bad argument #2 to 'close' (reason must be UTF-8 of at most 123 bytes)")
		assert.has_error(function() ws:close(1000, "\255") end,
			"bad argument #2 to 'close' (reason must be UTF-8 of at most 123 bytes)")
		assert.are.equal(lws.OPEN, ws.readyState)
		ws:close(3000, string.rep("é", 61) .. "x")   -- 123 bytes
		local e = rec.wait("close")
		assert.are.equal(3000, e[2])
		ws:close()   -- closing again is a no-op
	end)

	it("reports an HTTP status refusal: error then close 1006", function()
		local peer, port = node_server { refuse = { status = 403, body = "go away" } }
		local ws, rec = client(url(port))
		local errev, closeev
		ws.onerror = function(ev) errev = ev end
		ws.onclose = function(ev) closeev = ev end
		rec.wait("close")
		assert.are.equal("error,close", rec.names())
		assert.are.equal(403, peer:wait("refused").status)
		assert.are.equal("127.0.0.1:" .. port .. " refused the WebSocket upgrade: HTTP 403", errev.message)
		assert.are.same({ "error", "http", 403 }, { errev.type, errev.code, errev.status })
		assert.are.same({ 1006, errev.message, false, false }, { closeev.code, closeev.reason,
			closeev.wasClean, closeev.reconnecting })
		assert.are.equal(lws.CLOSED, ws.readyState)

		-- 401 too (lws words that one differently)
		local _, p401 = node_server { refuse = { status = 401 } }
		local _, rec2 = client(url(p401))
		local e = rec2.wait("error")
		assert.are.same({ "http", 401 }, { e[3], e[4] })
	end)
end)

describe("lws.WebSocket against our own server", function()
	after_each(function()
		close_clients()
		H.clean()
	end)

	it("echoes up to 16 MiB both ways", function()
		local _, port = H.echo_server { max_message_size = 16 * MiB }
		local ws, rec = client(url(port))
		rec.wait("open")
		local n = 0
		for _, size in ipairs { 0, 126, 65536, 16 * MiB } do
			for _, binary in ipairs { false, true } do
				local payload = H.pattern(size, binary)
				ws:send(payload, binary)
				n = n + 1
				local e = rec.wait("message", 30000, n)
				assert.is_true(e[2] == payload and e[3] == binary, "echo of " .. size .. " bytes differs")
			end
		end
	end)

	it("closes with 1009 on a message over max_message_size", function()
		local srv, port = H.server()
		srv:on("connection", function(c) c:send(string.rep("x", 2000)) end)
		local _, rec = client(url(port), nil, { max_message_size = 1000 })
		local e = rec.wait("close")
		assert.are.equal(1009, e[2])
	end)

	it("negotiates subprotocols and shows the server the request", function()
		local srv, port = H.server {
			handle_protocols = function(offered)
				for _, p in ipairs(offered) do if p == "b" then return p end end
			end,
		}
		local req
		srv:on("connection", function(_, r) req = r end)
		local ws, rec = client(url(port, "/chat?room=7"), { "a", "b" }, {
			headers = { Cookie = "sid=1", Authorization = "Basic eDp5" }, origin = "http://o.test" })
		rec.wait("open")
		assert.are.equal("b", ws.protocol)
		assert.are.same({ "a", "b" }, req.protocols)
		assert.are.same({ room = "7" }, req.query)
		assert.are.equal("sid=1", req.headers.cookie)
		assert.are.equal("Basic eDp5", req.headers.authorization)
		assert.are.equal("http://o.test", req.headers.origin)
		assert.are.equal("127.0.0.1:" .. port, req.headers.host)
	end)

	it("carries close codes both ways", function()
		local srv, port = H.server()
		local server_side, closed = nil, nil
		srv:on("connection", function(c)
			server_side = c
			c:on("close", function(code, reason, clean) closed = { code, reason, clean } end)
		end)
		local ws, rec = client(url(port))
		rec.wait("open")
		ws:close(4321, "from client")
		H.run_until(function() return closed end)
		assert.are.same({ 4321, "from client", true }, closed)
		rec.wait("close")

		local _, rec2 = client(url(port))
		rec2.wait("open")
		server_side:close(4005, "from server")
		local e = rec2.wait("close")
		assert.are.same({ 4005, "from server", true }, { e[2], e[3], e[4] })
	end)

	it("an error in a handler is reported and closes that connection with 1011", function()
		local srv, port = H.server()
		local code
		srv:on("connection", function(c)
			c:on("close", function(x) code = x end)
			c:send("boom")
		end)
		local ws, rec = client(url(port))
		ws.onmessage = function() error("handler failed") end
		local e = rec.wait("close")
		assert.are.equal(1011, e[2])
		H.run_until(function() return code end)
		assert.are.equal(1011, code)
		assert.matches("handler failed", H.errors[1])
	end)

	it("refuses to send before open, and reports the failed upgrade status", function()
		local _, port = H.server { verify = function() return false, 401, "who are you" end }
		local ws, rec = client(url(port))
		assert.are.same({ nil, "connection is not open yet", "connecting" }, { ws:send("early") })
		local e = rec.wait("error")
		assert.are.same({ "http", 401 }, { e[3], e[4] })
		rec.wait("close")
	end)
end)

describe("lws.WebSocket failures are events", function()
	after_each(function()
		close_clients()
		H.clean()
	end)

	-- error, then close 1006 not clean; nothing after; returns the error event
	local function expect_failure(rec, code_token, pattern_)
		local e = rec.wait("close", 10000)
		assert.are.equal("error,close", rec.names())
		local err = rec.events[1]
		assert.are.equal(code_token, err[3], err[2])
		if pattern_ then assert.matches(pattern_, err[2]) end
		assert.are.same({ 1006, err[2], false, false }, { e[2], e[3], e[4], e[5] })
		assert.are.equal(lws.CLOSED, rec.ws.readyState)
		return err
	end

	it("a refused port", function()
		local port = closed_port()
		local _, rec = client(url(port))
		local err = expect_failure(rec, "refused")
		assert.are.equal("cannot connect to 127.0.0.1:" .. port .. ": connection refused or unreachable", err[2])
	end)

	it("an unresolvable host", function()
		local _, rec = client("ws://no-such-host.invalid/")
		local err = expect_failure(rec, "dns")
		assert.are.equal("cannot resolve host 'no-such-host.invalid'", err[2])
	end)

	it("a connect timeout: a listening socket that never accepts, and one that never answers", function()
		local listener = assert(socket.bind("127.0.0.1", 0))
		local _, port = listener:getsockname()
		local ok, err = pcall(function()
			local t0 = lws.now()
			local _, rec = client(url(port), nil, { connect_timeout = 300 })
			local e = expect_failure(rec, "timeout")
			local took = lws.now() - t0
			assert.are.equal("connect timeout: no WebSocket handshake with 127.0.0.1:" .. port .. " within 300 ms", e[2])
			assert.is_true(took >= 290 and took < 300 + 1000 * H.SLOW, "took " .. took .. " ms")

			-- accepted, then silence
			listener:settimeout(0)
			local held = {}
			local w = lws.watch(listener:getfd(), function()
				local c = listener:accept()
				if c then held[#held + 1] = c end
			end)
			local _, rec2 = client(url(port), nil, { connect_timeout = 300 })
			expect_failure(rec2, "timeout")
			w:close()
			assert.is_true(#held >= 1)
			for _, c in ipairs(held) do c:close() end
		end)
		listener:close()
		assert(ok, err)
	end)

	it("close() while connecting fails the connection like a browser", function()
		local listener = assert(socket.bind("127.0.0.1", 0))
		local _, port = listener:getsockname()
		local ws, rec = client(url(port))
		ws:close(1000, "never mind")
		local ok, err = pcall(expect_failure, rec, "aborted", "^closed before the connection was established$")
		listener:close()
		assert(ok, err)
	end)

	it("a plain ws:// client on a TLS port and the other way round", function()
		-- a server that closes straight away looks the same to the client
		local s = assert(socket.bind("127.0.0.1", 0))
		s:settimeout(0)
		local _, port = s:getsockname()
		local w = lws.watch(s:getfd(), function()
			local c = s:accept()
			if c then c:close() end
		end)
		local _, rec = client(url(port))
		local ok, err = pcall(expect_failure, rec, "closed",
			"^127.0.0.1:%d+ closed the connection during the handshake %(is it a wss:// server%?%)$")
		local _, port2 = H.echo_server()
		local ok2, err2 = pcall(function()
			local _, rec2 = client("wss://127.0.0.1:" .. port2 .. "/", nil, { insecure = true })
			expect_failure(rec2, "tls", "TLS handshake failed")
		end)
		w:close()
		s:close()
		assert(ok, err)
		assert(ok2, err2)
	end)

	it("raises on a bad URL, protocols or options", function()
		assert.has_error(function() lws.WebSocket("http//x") end, "invalid URL: http//x")
		assert.has_error(function() lws.WebSocket("ftp://x/") end, "unsupported URL scheme: ftp")
		assert.has_error(function() lws.WebSocket("ws://x/#frag") end, "URL must not contain a fragment")
		assert.has_error(function() lws.WebSocket("ws://x/", { "a", "a" }) end, "invalid or duplicate subprotocol: a")
		assert.has_error(function() lws.WebSocket("ws://x/", { "a b" }) end, "invalid or duplicate subprotocol: a b")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, { bogus = 1 }) end, "unknown option 'bogus'")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, { insecure = 1 }) end,
			"option 'insecure' must be a boolean, got number 1")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, { headers = { ["Bad Name"] = "x" } }) end,
			"invalid request header Bad Name")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, { headers = { X = "a\r\nB: c" } }) end,
			"invalid request header X")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, { headers = { ["Sec-WebSocket-Key"] = "x" } }) end,
			"request header Sec-WebSocket-Key is set by the WebSocket handshake")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, { connect_timeout = 0 }) end,
			"option 'connect_timeout' must be a number >= 1, got number 0")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, { reconnect = { min = 0 } }) end,
			"option 'reconnect.min' must be a number >= 1, got 0")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, { reconnect = { often = true } }) end,
			"unknown option 'reconnect.often'")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, { heartbeat = { interval = -1 } }) end,
			"option 'heartbeat.interval' must be a positive number of ms, got number -1")
		assert.has_error(function() lws.WebSocket("ws://x/", nil, 5) end,
			"bad argument #3 to 'WebSocket' (table expected, got number)")
	end)

	it("parses URLs", function()
		local p = lws.parse_url
		assert.are.same({ tls = false, host = "h", port = 80, path = "/", scheme = "ws" }, p("ws://h"))
		assert.are.same({ tls = true, host = "h", port = 443, path = "/?q", scheme = "wss" }, p("wss://h?q"))
		assert.are.same({ tls = true, host = "::1", port = 8443, path = "/a/b", scheme = "wss" }, p("WSS://[::1]:8443/a/b"))
		assert.are.same({ nil, "URL must not contain credentials" }, { p("ws://u:p@h/") })
		assert.are.same({ nil, "invalid port in URL: ws://h:70000/" }, { p("ws://h:70000/") })
	end)
end)
