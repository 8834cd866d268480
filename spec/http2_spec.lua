-- HTTP/2 on request (http2 = true on a TLS server): routes, static files
-- (ETag/304, gzip, HEAD, a file bigger than any flow-control window),
-- deferred replies, request bodies, max_body_size, many streams on one
-- connection, checked with peers we did not write: curl --http2, nghttp and
-- h2load (Debian's nghttp2-client), Node's http2 module, Chromium. A
-- WebSocket by extended CONNECT (RFC 8441) is closed with 1008 as soon as
-- lws has opened it (docs/http2.md says why).
local H = require "helper"
local lws = require "lws"
local cjson = require "cjson"
local certs = require "certs"
local run = require "run"

local q = H.shell_quote
local C   -- the certificates (spec/support/certs.lua)

local function has(cmd) return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") and true or false end

--- curl(port, path[, more]) -> status, headers (lower-case), body, version, -v log
local function curl(port, path, more)
	local argv = { "curl", "-sS", "-v", "-i", "--http2", "--max-time", "10", "--cacert", C.ca }
	for _, a in ipairs(more or {}) do argv[#argv + 1] = a end
	argv[#argv + 1] = ("https://127.0.0.1:%d%s"):format(port, path)
	local out, log, rc = run(argv)
	assert.are.equal(0, rc, "curl failed:\n" .. log)
	local head, body = out:match("^(.-)\r\n\r\n(.*)$")
	assert(head, "no response head in " .. out:sub(1, 200))
	local version, status = head:match("^HTTP/([%d.]+) (%d%d%d)")
	local headers = {}
	for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do headers[k:lower()] = v end
	return tonumber(status), headers, body, version, log
end

local www
local BIG = ("body { color: #333; } /* over h2 */\n"):rep(200)
local HUGE   -- bigger than the peer's initial window (65,535) many times over

local function static_dir()
	www = os.tmpname()
	os.remove(www)
	assert(os.execute("mkdir -p " .. q(www)))
	local function put(name, data)
		local f = assert(io.open(www .. "/" .. name, "wb"))
		f:write(data)
		f:close()
	end
	put("hello.txt", "hello over h2\n")
	put("big.css", BIG)
	HUGE = HUGE or H.pattern(3 * 1024 * 1024 + 17, true)
	put("huge.bin", HUGE)
	return www
end

-- seen: what the server saw
local function h2_server(opts)
	local seen = { versions = {}, bodies = {}, aborts = 0 }
	local o = { tls = { cert = C.cert, key = C.key }, http2 = true }
	for k, v in pairs(opts or {}) do o[k] = v end
	local srv, port = H.server(o)
	srv:static("/", static_dir())
	srv:get("/api/hello", function(req, res)
		seen.versions[#seen.versions + 1] = req.http_version
		seen.host = req.headers.host
		res:json { hello = "h2", i = req.query.i }
	end)
	srv:get("/api/later", function(_, res)
		lws.set_timeout(function() res:send("answered later", "text/plain") end, 200)
	end)
	srv:post("/api/echo", function(req, res)
		seen.bodies[#seen.bodies + 1] = #req.body
		res:send(req.body, "application/octet-stream")
	end)
	srv:get("/api/headers", function(_, res)
		res:header("X-Mixed-Case", "yes")
		res:header("Connection", "close")   -- connection-specific: not sent over h2
		res:send("ok", "text/plain")
	end)
	srv:websocket("/ws", function(ws) ws:on("message", function(d, b) ws:send(d, b) end) end)
	return srv, port, seen
end

describe("HTTP/2 (http2 = true)", function()
	setup(function()
		C = certs.get()
	end)

	after_each(function()
		H.clean()
		if www then os.execute("rm -rf " .. q(www)); www = nil end
	end)

	it("needs tls, is a boolean, and a TLS server without it still offers http/1.1 only", function()
		assert.has_error(function() lws.server { port = 0, http2 = true } end, "option 'http2' needs 'tls'")
		local ok, err = pcall(lws.server, { port = 0, http2 = "yes", tls = { cert = C.cert, key = C.key } })
		assert.is_false(ok)
		assert.matches("http2", err)
		local _, port = H.server { tls = { cert = C.cert, key = C.key } }
		local out = run { "openssl", "s_client", "-connect", "127.0.0.1:" .. port, "-alpn", "h2,http/1.1",
			"-CAfile", C.ca }
		assert.matches("\nALPN protocol: http/1%.1\n", out)
		local _, port2 = h2_server()
		out = run { "openssl", "s_client", "-connect", "127.0.0.1:" .. port2, "-alpn", "h2,http/1.1",
			"-CAfile", C.ca }
		assert.matches("\nALPN protocol: h2\n", out)
		-- a client offering only http/1.1 still gets it
		out = run { "openssl", "s_client", "-connect", "127.0.0.1:" .. port2, "-alpn", "http/1.1",
			"-CAfile", C.ca }
		assert.matches("\nALPN protocol: http/1%.1\n", out)
	end)

	it("curl --http2: a static file, a route, a deferred reply, 304, HEAD, gzip, headers as HPACK fields", function()
		local _, port, seen = h2_server()
		local status, hdrs, body, version, log = curl(port, "/hello.txt")
		assert.are.same({ 200, "2", "hello over h2\n" }, { status, version, body })
		assert.matches("* ALPN: server accepted h2\n", log, 1, true)
		assert.matches("^W/\"", hdrs.etag)
		assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", hdrs.date)

		local s304, h304, b304, v304 = curl(port, "/hello.txt", { "-H", "If-None-Match: " .. hdrs.etag })
		assert.are.same({ 304, "2", hdrs.etag, "" }, { s304, v304, h304.etag, b304 })

		local sh, hh, bh, vh = curl(port, "/hello.txt", { "-I" })
		assert.are.same({ 200, "2", tostring(#"hello over h2\n"), "" }, { sh, vh, hh["content-length"], bh })

		local sr, hr, br, vr = curl(port, "/api/hello")
		assert.are.same({ 200, "2", "application/json", "h2" }, { sr, vr, hr["content-type"], cjson.decode(br).hello })
		assert.are.same({ "HTTP/2" }, seen.versions)
		assert.are.equal("127.0.0.1:" .. port, seen.host)   -- from :authority

		local sl, _, bl, vl = curl(port, "/api/later")
		assert.are.same({ 200, "2", "answered later" }, { sl, vl, bl })

		local sg, hg, bg = curl(port, "/big.css", { "-H", "Accept-Encoding: gzip" })
		assert.are.same({ 200, "gzip" }, { sg, hg["content-encoding"] })
		assert.are.equal(BIG, H.gunzip(bg))

		local sx, hx, bx = curl(port, "/api/headers")
		assert.are.same({ 200, "yes", "ok" }, { sx, hx["x-mixed-case"], bx })
		assert.is_nil(hx.connection)

		local sn, _, _, vn = curl(port, "/nope.txt")
		assert.are.same({ 404, "2" }, { sn, vn })
	end)

	it("sends a 3 MiB file within the peer's flow-control window (curl, nghttp with a 16 KiB window)", function()
		local _, port = h2_server()
		local out, log, rc = run({ "curl", "-sS", "--http2", "--cacert", C.ca,
			("https://127.0.0.1:%d/huge.bin"):format(port) }, nil, 30000)
		assert.are.equal(0, rc, log)
		assert.are.equal(#HUGE, #out)
		assert.is_true(out == HUGE)
		if not has("nghttp") then
			pending("nghttp2-client is not installed (.ci/deps installs it)")
			return
		end
		-- -w 14: a 16 KiB stream window, so we wait on WINDOW_UPDATEs
		local nout, nlog, nrc = run({ "nghttp", "-w", "14", "-W", "14",
			("https://127.0.0.1:%d/huge.bin"):format(port) }, nil, 30000)
		assert.are.equal(0, nrc, nlog)
		assert.are.equal(#HUGE, #nout)
		assert.is_true(nout == HUGE)
	end)

	it("reads request bodies by Content-Length, refuses one over max_body_size (413) and one without a length (411)", function()
		local _, port, seen = h2_server { max_body_size = 100000 }
		local data = H.pattern(70000, true)
		local f = os.tmpname()
		local fh = assert(io.open(f, "wb"))
		fh:write(data)
		fh:close()
		local s, _, b = curl(port, "/api/echo", { "--data-binary", "@" .. f })
		assert.are.same({ 200, #data }, { s, #b })
		assert.is_true(b == data)
		fh = assert(io.open(f, "wb"))
		fh:write(data .. data)
		fh:close()
		local s413, _, b413 = curl(port, "/api/echo", { "--data-binary", "@" .. f })
		assert.are.same({ 413, "request body too large" }, { s413, b413 })
		os.remove(f)
		-- -T - : a body from stdin, sent without Content-Length
		local out, log, rc = run({ "curl", "-sS", "-i", "--http2", "--cacert", C.ca, "-T", "-",
			("https://127.0.0.1:%d/api/echo"):format(port) }, "abc")
		assert.are.equal(0, rc, log)
		assert.matches("^HTTP/2 411", out)
		assert.are.same({ 70000 }, seen.bodies)
	end)

	it("Node's http2: many streams at once on one connection, bodies, a deferred reply among them", function()
		local _, port, seen = h2_server { max_body_size = 200000 }
		local p = H.node(H.ROOT .. "/spec/peers/h2_peer.js")
		p:cmd { cmd = "connect", url = "https://127.0.0.1:" .. port, ca = C.ca }
		local settings = p:wait("settings")
		assert.are.same({ true, 128 }, { settings.connect_protocol, settings.max_streams })
		assert.are.equal("h2", p:wait("connected").alpn)
		p:cmd { cmd = "many", id = 1, n = 100, path = "/api/hello" }
		p:cmd { cmd = "request", id = 2, path = "/api/later" }
		p:cmd { cmd = "request", id = 3, path = "/api/echo", method = "POST",
			headers = { ["content-length"] = "5" }, body_b64 = H.base64("hello") }
		local many = p:wait("many", 15000)
		for i = 1, 100 do
			assert.are.equal(200, many.statuses[i])
			assert.are.equal(tostring(i - 1), cjson.decode(many.bodies[i]).i)
		end
		local later = p:wait("response", 5000, function(ev) return ev.id == 2 end)
		assert.are.same({ 200, "answered later" }, { later.status, H.unbase64(later.b64) })
		local echo = p:wait("response", 5000, function(ev) return ev.id == 3 end)
		assert.are.same({ 200, "hello" }, { echo.status, H.unbase64(echo.b64) })
		-- a body over max_body_size, announced (413 at once) or not (413
		-- while reading): refused, the rest read and dropped, and the
		-- connection goes on (lws would GOAWAY on DATA for a closed stream)
		local big = H.base64(H.pattern(300000, true))
		p:cmd { cmd = "request", id = 4, path = "/api/echo", method = "POST",
			headers = { ["content-length"] = "300000" }, body_b64 = big }
		local r413 = p:wait("response", 10000, function(ev) return ev.id == 4 end)
		assert.are.same({ 413, "request body too large" }, { r413.status, H.unbase64(r413.b64) })
		p:cmd { cmd = "request", id = 5, path = "/api/hello?i=after" }
		local after = p:wait("response", 5000, function(ev) return ev.id == 5 end)
		assert.are.same({ 200, "after" }, { after.status, cjson.decode(H.unbase64(after.b64)).i })
		assert.is_nil(p:has("session-error"))
		assert.is_nil(p:has("goaway"))
		assert.are.equal(101, #seen.versions)   -- the 100, and "after"
		p:cmd { cmd = "close" }
		p:wait("closed")
	end)

	it("server:close() lets requests in flight on h2 streams finish, then closes their connection", function()
		local srv, port = h2_server()
		local closed = false
		srv:on("close", function() closed = true end)
		local p = H.node(H.ROOT .. "/spec/peers/h2_peer.js")
		p:cmd { cmd = "connect", url = "https://127.0.0.1:" .. port, ca = C.ca }
		p:wait("connected")
		p:cmd { cmd = "request", id = 1, path = "/api/later" }
		H.run_for(50)
		srv:close(5)
		local r = p:wait("response", 5000, function(ev) return ev.id == 1 end)
		assert.are.same({ 200, "answered later" }, { r.status, H.unbase64(r.b64) })
		H.run_until(function() return closed end, 3000, "the server's close")
	end)

	it("RST_STREAM of one deferred request (the others go on), then GOAWAY and a dropped connection with ten open", function()
		local srv, port = H.server { tls = { cert = C.cert, key = C.key }, http2 = true }
		local aborted, pending, npending = 0, {}, 0
		srv:get("/slow", function(req, res)
			res:on("abort", function() aborted = aborted + 1 end)
			pending[tonumber(req.query.n) or 0] = res
			npending = npending + 1
			if req.query.fast then res:send("fast", "text/plain") end
		end)
		local p = H.node(H.ROOT .. "/spec/peers/h2_peer.js")
		p:cmd { cmd = "connect", url = "https://127.0.0.1:" .. port, ca = C.ca }
		p:wait("connected")
		for id = 1, 3 do p:cmd { cmd = "request", id = id, path = "/slow?n=" .. id } end
		H.run_until(function() return npending == 3 end, 5000, "three requests")
		-- lws 4.1.6 only marks a stream the peer reset as closed, with no
		-- callback (docs/http2.md): its request stays until answered
		p:cmd { cmd = "cancel", id = 2 }
		H.run_for(100)
		pending[1]:send("one", "text/plain")
		pending[3]:send("three", "text/plain")
		local r1 = p:wait("response", 5000, function(ev) return ev.id == 1 end)
		local r3 = p:wait("response", 5000, function(ev) return ev.id == 3 end)
		assert.are.same({ "one", "three" }, { H.unbase64(r1.b64), H.unbase64(r3.b64) })
		-- the answer to the reset one goes out on the closed stream (the
		-- peer ignores it) and the connection goes on
		assert.is_true(pending[2]:send("late", "text/plain"))
		p:cmd { cmd = "request", id = 20, path = "/slow?fast=1" }
		assert.are.equal("fast", H.unbase64(p:wait("response", 5000, function(ev) return ev.id == 20 end).b64))
		assert.are.equal(0, aborted)
		assert.is_nil(p:has("session-error"))
		assert.is_nil(p:has("goaway"))
		for id = 4, 13 do p:cmd { cmd = "request", id = id, path = "/slow?n=" .. id } end
		H.run_until(function() return npending == 14 end, 5000, "ten more requests")
		p:cmd { cmd = "destroy" }
		p:wait("destroyed")
		H.run_until(function() return aborted == 10 end, 5000, "every open stream's abort")
		-- the server takes new connections as before
		local q2 = H.node(H.ROOT .. "/spec/peers/h2_peer.js")
		q2:cmd { cmd = "connect", url = "https://127.0.0.1:" .. port, ca = C.ca }
		q2:wait("connected")
		q2:cmd { cmd = "request", id = 1, path = "/slow?fast=1" }
		assert.are.equal("fast", H.unbase64(q2:wait("response", 5000).b64))
	end)

	it("h2load: 2,000 requests over 4 connections, 50 streams each", function()
		if not has("h2load") then
			pending("nghttp2-client is not installed (.ci/deps installs it)")
			return
		end
		local _, port = h2_server()
		local out, log, rc = run({ "h2load", "-n", "2000", "-c", "4", "-m", "50",
			("https://127.0.0.1:%d/api/hello"):format(port) }, nil, 30000)
		assert.are.equal(0, rc, log .. out)
		assert.matches("requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed", out, 1, true)
		assert.matches("status codes: 2000 2xx", out, 1, true)
		out = run({ "h2load", "-n", "200", "-c", "2", "-m", "20",
			("https://127.0.0.1:%d/big.css"):format(port) }, nil, 30000)
		assert.matches("200 succeeded, 0 failed", out, 1, true)
	end)

	it("carries Socket.IO polling (Engine.IO 4): handshake, an event each way, on one connection", function()
		local socketio = require "lws.socketio"
		local srv, port = H.server { tls = { cert = C.cert, key = C.key }, http2 = true }
		local io = socketio(srv, {})
		io:on("connection", function(sock)
			sock:on("hi", function(v) sock:emit("hi-back", v .. "!") end)
		end)
		local p = H.node(H.ROOT .. "/spec/peers/h2_peer.js")
		p:cmd { cmd = "connect", url = "https://127.0.0.1:" .. port, ca = C.ca }
		p:wait("connected")
		local function req(id, method, path, body)
			p:cmd { cmd = "request", id = id, path = path, method = method,
				headers = body and { ["content-length"] = tostring(#body), ["content-type"] = "text/plain" } or nil,
				body_b64 = body and H.base64(body) or nil }
			local r = p:wait("response", 5000, function(ev) return ev.id == id end)
			return r.status, H.unbase64(r.b64)
		end
		local status, open = req(1, "GET", "/socket.io/?EIO=4&transport=polling")
		assert.are.equal(200, status)
		local sid = cjson.decode(open:sub(2)).sid
		local path = "/socket.io/?EIO=4&transport=polling&sid=" .. sid
		assert.are.same({ 200, "ok" }, { req(2, "POST", path, "40") })
		local s3, connected = req(3, "GET", path)
		assert.are.equal(200, s3)
		assert.matches("^40{\"sid\":", connected)
		assert.are.same({ 200, "ok" }, { req(4, "POST", path, '42["hi","h2"]') })
		assert.are.same({ 200, '42["hi-back","h2!"]' }, { req(5, "GET", path) })
		assert.is_nil(p:has("goaway"))
		p:cmd { cmd = "close" }
		p:wait("closed")
	end)

	it("Chromium loads a page over h2 (nextHopProtocol 'h2') and fetches over it; its WebSocket is closed with 1008", function()
		local srv, port = h2_server()
		local upgrades = 0
		srv:on("connection", function() upgrades = upgrades + 1 end)
		local f = assert(io.open(www .. "/page.html", "w"))
		f:write([[<!doctype html><meta charset="utf-8"><title>h2</title><script>
window.result = (async () => {
  const api = await (await fetch("/api/hello?i=page")).json();
  const ws = await new Promise((res) => {
    const w = new WebSocket("wss://" + location.host + "/ws");
    w.onclose = (e) => res(e.code + " " + e.reason);
  });
  return { proto: performance.getEntriesByType("navigation")[0].nextHopProtocol,
    api: api.i, ws };
})();
</script>]])
		f:close()
		local b = H.node(H.ROOT .. "/spec/peers/h2_browser.js", { "--ignore-certificate-errors" })
		b:cmd { cmd = "open", url = ("https://127.0.0.1:%d/page.html"):format(port) }
		local r = b:wait("result", 40000)
		assert.are.same({ "h2", "page", "1008 WebSockets over HTTP/2 are not served" },
			{ r.value.proto, r.value.api, r.value.ws })
		assert.are.equal(0, upgrades)
	end)

	it("closes an extended CONNECT (RFC 8441) with 1008 at once; other streams and the connection go on", function()
		-- (keepalive_timeout: lws closes an h2 connection idle that long)
		local _, port = h2_server { keepalive_timeout = 30 }
		local p = H.node(H.ROOT .. "/spec/peers/h2_peer.js")
		p:cmd { cmd = "connect", url = "https://127.0.0.1:" .. port, ca = C.ca }
		p:wait("connected")
		p:cmd { cmd = "ws", id = 1, path = "/ws", answer_close = true }
		local r = p:wait("ws-response", 5000)
		-- lws's own handshake (200), then its Close (1008), which the
		-- peer answers; then lws resets the stream
		assert.are.equal(200, r.status)
		local d = p:wait("ws-data", 5000)
		assert.are.equal("\x88\x27\x03\xf0WebSockets over HTTP/2 are not served", H.unbase64(d.b64))
		p:cmd { cmd = "request", id = 2, path = "/hello.txt" }
		local ok = p:wait("response", 5000, function(ev) return ev.id == 2 end)
		assert.are.same({ 200, "hello over h2\n" }, { ok.status, H.unbase64(ok.b64) })
		p:wait("ws-closed", 10000)
		p:cmd { cmd = "request", id = 3, path = "/hello.txt" }
		assert.are.equal(200, p:wait("response", 5000, function(ev) return ev.id == 3 end).status)
		assert.is_nil(p:has("session-error"))
		p:cmd { cmd = "close" }
		p:wait("closed")
	end)
end)
