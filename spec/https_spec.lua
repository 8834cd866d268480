-- https:// that every client can use: a TLS server offers http/1.1 only in
-- ALPN (libwebsockets 4.1.6 would offer h2, which none of our HTTP or
-- WebSocket code serves), checked with peers we did not write: openssl
-- s_client, curl (which offers h2 by default), Debian's Chromium loading a
-- page whose wss:// WebSocket echoes, and the chat, stocks and chatroom
-- demos started with --tls-cert/--tls-key, in Chromium.
local H = require "helper"
local lws = require "lws"
local cjson = require "cjson"
local certs = require "certs"

local q = H.shell_quote
local C   -- the certificates (spec/support/certs.lua)

-- run(argv[, stdin[, ms]]) -> stdout, stderr, exit status: a program in
-- its own process, waited for on the loop (spec/support/run.lua)
local run = require "run"

--- curl(mode, port, path[, more]) -> status, headers (lower-case), body,
-- HTTP version of the status line, curl's -v log. mode: extra curl flags
-- (none: curl's default ALPN, h2 and http/1.1). Verifies the certificate.
local function curl(mode, port, path, more)
	local argv = { "curl", "-sS", "-v", "-i", "--max-time", "10", "--cacert", C.ca }
	for _, a in ipairs(mode) do argv[#argv + 1] = a end
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

local function tls_opts(extra)
	local o = { tls = { cert = C.cert, key = C.key } }
	for k, v in pairs(extra or {}) do o[k] = v end
	return o
end

-- a static directory with a small file and a big text file (gzipped)
local www
local BIG = ("body { color: #333; } /* over https */\n"):rep(60)
local function static_dir()
	www = os.tmpname()
	os.remove(www)
	assert(os.execute("mkdir -p " .. q(www)))
	local f = assert(io.open(www .. "/hello.txt", "w"))
	f:write("hello over https\n")
	f:close()
	f = assert(io.open(www .. "/big.css", "w"))
	f:write(BIG)
	f:close()
	return www
end

-- the server every HTTP check uses: static files, a route, a deferred
-- reply, an echo WebSocket; seen: what the server saw
local function https_server(dir)
	local seen = { ws = {}, versions = {} }
	local srv, port = H.server(tls_opts())
	srv:static("/", dir)
	srv:get("/api/hello", function(req, res)
		seen.versions[#seen.versions + 1] = req.http_version
		res:json { hello = "https", method = req.method }
	end)
	srv:get("/api/later", function(_, res)
		lws.set_timeout(function() res:send("answered later", "text/plain") end, 300)
	end)
	srv:websocket("/ws", function(ws, req)
		local rec = { origin = req.headers.origin, messages = 0 }
		seen.ws[#seen.ws + 1] = rec
		ws:on("message", function(data, binary)
			rec.messages = rec.messages + 1
			ws:send(data, binary)
		end)
		ws:on("close", function(code) rec.closed = code end)
	end)
	return srv, port, seen
end

---------------------------------------------------------------------------
-- the Chromium driver (spec/peers/browser.js), trusting any certificate:
-- our throwaway CA is not in its store

local seq = 0
local function send(b, t)
	seq = seq + 1
	t.id = seq
	b:cmd(t)
	return seq
end
local function result(b, id, ms)
	local ev = b:wait("result", ms or 15000, function(ev) return ev.id == id end)
	if not ev.ok then error(("browser: %s"):format(ev.error), 2) end
	return ev.value
end
local function call(b, t, ms)
	return result(b, send(b, t), ms)
end
local function on_pages(b, pages, t, ms)
	local ids = {}
	for _, p in ipairs(pages) do
		local c = {}
		for k, v in pairs(t) do c[k] = v end
		c.page = p
		ids[p] = send(b, c)
	end
	local out = {}
	for _, p in ipairs(pages) do out[p] = result(b, ids[p], ms) end
	return out
end

local INSECURE = { "--ignore-certificate-errors" }
local function browser()
	local b = H.node(H.ROOT .. "/spec/peers/browser.js", INSECURE)
	call(b, { cmd = "launch" }, 40000)
	return b
end

-- the page came over https with http/1.1, nothing went wrong on it, and
-- every request stayed on https:// or wss:// to our port
local function assert_clean_https(b, page, port, ws_url)
	local nav = call(b, { cmd = "navigation", page = page })
	assert.are.same({ "http/1.1", true }, { nav.protocol, nav.secure }, page)
	assert.matches("^https://127%.0%.0%.1:" .. port .. "/", nav.url)
	local r = call(b, { cmd = "report", page = page })
	assert.are.same({}, r.errors, page .. ": errors")
	assert.are.same({}, r.dialogs, page .. ": dialogs")
	assert.are.same({}, r.csp or {}, page .. ": CSP violations")
	assert.are.same({}, r.blocked, page .. ": requests leaving 127.0.0.1")
	local ws = 0
	for _, u in ipairs(r.requests) do
		assert.is_truthy(u:find("^https://127%.0%.0%.1:" .. port .. "/") or u:find("^wss://127%.0%.0%.1:" .. port .. "/"),
			page .. ": " .. u)
		if u == ws_url then ws = ws + 1 end
	end
	assert.is_true(ws >= 1, page .. ": no WebSocket to " .. ws_url)
end

local function count(list, x)
	local n = 0
	for _, v in ipairs(list) do if v == x then n = n + 1 end end
	return n
end

describe("https://", function()
	setup(function()
		C = certs.get()
	end)

	after_each(function()
		H.clean()
		if www then os.execute("rm -rf " .. q(www)); www = nil end
	end)

	it("offers http/1.1 only in ALPN, whatever openssl s_client offers", function()
		local _, port = https_server(static_dir())
		local function s_client(alpn, request)
			local argv = { "openssl", "s_client", "-connect", "127.0.0.1:" .. port, "-CAfile", C.ca,
				"-verify_return_error", "-servername", "localhost" }
			if alpn then argv[#argv + 1] = "-alpn"; argv[#argv + 1] = alpn end
			if request then argv[#argv + 1] = "-ign_eof" end
			local out, log, rc = run(argv, request)
			assert.are.equal(0, rc, log .. out)
			return out
		end
		local out = s_client("h2,http/1.1")
		assert.matches("\nALPN protocol: http/1%.1\n", out)
		assert.matches("Verify return code: 0 %(ok%)", out)
		assert.matches("\nALPN protocol: http/1%.1\n", s_client("http/1.1"))
		-- a client offering h2 alone gets no ALPN answer and talks HTTP/1.1
		local req = "GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
		out = s_client("h2", req)
		assert.matches("\nNo ALPN negotiated\n", out)
		assert.matches("\nHTTP/1%.1 200 OK\r\n", out)
		assert.matches("\r\n\r\nhello over https\n", out, 1, true)
		-- and one that offers no ALPN at all
		out = s_client(nil, req)
		assert.matches("\nNo ALPN negotiated\n", out)
		assert.matches("\nHTTP/1%.1 200 OK\r\n", out)
	end)

	it("takes http2 = true only with tls (spec/http2_spec.lua); an unreadable key fails", function()
		local ok, err = pcall(lws.server, { port = 0, http2 = true })
		assert.is_false(ok)
		assert.matches("option 'http2' needs 'tls'", err)
		assert.are.same({ nil, "cannot read the TLS key " .. C.dir .. "/missing.key: No such file or directory", "tls" },
			{ lws.server { port = 0, tls = { cert = C.cert, key = C.dir .. "/missing.key" } } })
	end)

	for _, mode in ipairs { {}, { "--http2" }, { "--http1.1" } } do
		local name = #mode == 0 and "curl's default ALPN (h2,http/1.1)" or "curl " .. mode[1]
		it(name .. " gets HTTP/1.1: a static file, a route, a deferred reply, 304, HEAD, gzip", function()
			local _, port, seen = https_server(static_dir())
			local status, hdrs, body, version, log = curl(mode, port, "/hello.txt")
			assert.are.same({ 200, "1.1", "hello over https\n" }, { status, version, body })
			assert.matches("* ALPN: offers " .. (mode[1] == "--http1.1" and "http/1.1" or "h2,http/1.1") .. "\n",
				log, 1, true)
			assert.matches("* ALPN: server accepted http/1.1\n", log, 1, true)
			assert.matches("^W/\"", hdrs.etag)
			assert.are.equal("text/plain; charset=utf-8", hdrs["content-type"])

			local s304, h304, b304, v304 = curl(mode, port, "/hello.txt", { "-H", "If-None-Match: " .. hdrs.etag })
			assert.are.same({ 304, "1.1", hdrs.etag, "" }, { s304, v304, h304.etag, b304 })

			local sh, hh, bh, vh = curl(mode, port, "/hello.txt", { "-I" })
			assert.are.same({ 200, "1.1", tostring(#"hello over https\n"), "" },
				{ sh, vh, hh["content-length"], bh })

			local sr, hr, br, vr = curl(mode, port, "/api/hello")
			assert.are.same({ 200, "1.1", "application/json" }, { sr, vr, hr["content-type"] })
			assert.are.same({ hello = "https", method = "GET" }, cjson.decode(br))
			local srh, _, brh = curl(mode, port, "/api/hello", { "-I" })
			assert.are.same({ 200, "" }, { srh, brh })
			assert.are.same({ "HTTP/1.1", "HTTP/1.1" }, seen.versions)

			local t0 = lws.now()
			local sl, _, bl, vl = curl(mode, port, "/api/later")
			assert.are.same({ 200, "1.1", "answered later" }, { sl, vl, bl })
			assert.is_true(lws.now() - t0 >= 250, "answered before the timer")

			local sg, hg, bg = curl(mode, port, "/big.css", { "--compressed" })
			assert.are.same({ 200, "gzip", BIG }, { sg, hg["content-encoding"], bg })
			assert.are.equal(404, (curl(mode, port, "/nope")))
		end)
	end

	it("curl keeps one TLS connection alive for several requests", function()
		local _, port = https_server(static_dir())
		local base = "https://127.0.0.1:" .. port
		local out, log, rc = run { "curl", "-sS", "-v", "--max-time", "10", "--cacert", C.ca,
			base .. "/hello.txt", base .. "/api/later", base .. "/hello.txt" }
		assert.are.equal(0, rc, log)
		assert.are.equal("hello over https\nanswered laterhello over https\n", out)
		local _, reused = log:gsub("Re%-using existing connection", "")
		assert.are.equal(2, reused, log)
	end)

	it("Chromium loads an https page whose wss:// WebSocket echoes text and binary", function()
		local _, port, seen = https_server(H.ROOT .. "/spec/support/https_page")
		local url = "https://127.0.0.1:" .. port .. "/"
		local b = browser()
		assert.are.equal(200, call(b, { cmd = "open", page = "p", url = url }).status)
		local r = call(b, { cmd = "result", page = "p", timeout = 15000 * H.SLOW }, 20000 * H.SLOW)
		assert.is_nil(r.error, r.error)
		assert.are.same({
			"ok: the text echo is text",
			"ok: the text echo is the text sent",
			"ok: the binary echo is binary",
			"ok: the binary echo is the bytes sent",
			"ok: an empty text message echoes",
		}, r.checks)
		assert.is_true(r.ok)
		assert.are.same({ "http/1.1", "https:", true }, { r.protocol, r.scheme, r.secure })
		assert.are.same({ "http/1.1", "http/1.1" }, r.fetchProtocols)
		assert.are.same({ status = 200, body = { hello = "https", method = "GET" } }, r.hello)
		assert.are.same({ status = 200, body = "answered later" }, r.later)
		assert.are.equal("wss://127.0.0.1:" .. port .. "/ws", r.wsUrl)
		assert.are.same({ code = 1000, reason = "page done", wasClean = true }, r.close)
		-- the server's side of it
		H.run_until(function() return seen.ws[1] and seen.ws[1].closed end, 5000, "the WebSocket to close")
		assert.are.same({ { origin = "https://127.0.0.1:" .. port, messages = 3, closed = 1000 } }, seen.ws)
		assert_clean_https(b, "p", port, r.wsUrl)
		call(b, { cmd = "close" })
	end)
end)

describe("the demos over https in Chromium", function()
	local tls_args
	setup(function()
		C = certs.get()
		tls_args = { "--tls-cert", C.cert, "--tls-key", C.key }
	end)

	after_each(function()
		H.stop_demos()
		H.clean()
	end)

	for _, name in ipairs { "chat", "stocks", "chatroom" } do
		it(name .. " refuses --tls-cert without --tls-key, and an unreadable certificate", function()
			local _, log, rc = run { "bin/lws-lua", "examples/" .. name .. "/server.lua", "--port", "0",
				"--tls-cert", C.cert }
			assert.are.same({ 2, "server.lua: --tls-cert and --tls-key go together\n" }, { rc, log })
			_, log, rc = run { "bin/lws-lua", "examples/" .. name .. "/server.lua", "--port", "0",
				"--tls-cert", C.dir .. "/missing.pem", "--tls-key", C.key }
			assert.are.equal(1, rc)
			assert.matches("^server.lua: cannot read the TLS certificate .*missing%.pem: No such file or directory", log)
		end)
	end

	it("chat: both pages get each message once over wss://", function()
		local d = H.demo("chat", 0, tls_args)
		assert.are.same({ true, "https://127.0.0.1:" .. d.port .. "/" }, { d.tls, d.url })
		local b = browser()
		local pages = { "a", "b" }
		for _, p in ipairs(pages) do
			assert.are.equal(200, call(b, { cmd = "open", page = p, url = d.url }).status)
		end
		-- open: the same-origin check took the https:// Origin
		on_pages(b, pages, { cmd = "state", state = "open" })
		local sent = {}
		local function post(from, who, message, via)
			call(b, { cmd = "post", page = from, name = who, message = message, via = via })
			local line = who .. " : " .. message
			table.insert(sent, 1, line)
			local seen = on_pages(b, pages, { cmd = "chat", line = line })
			for _, p in ipairs(pages) do
				assert.are.equal(1, count(seen[p].lines, line), p .. " shows it once: " .. line)
				assert.are.equal(0, seen[p].foreign, p .. ": user text became markup")
			end
		end
		post("a", "ann", "hello over https", "enter")
		post("b", "bob", "<b>still text</b> 👋", "click")
		local now = on_pages(b, pages, { cmd = "chat" })
		for _, p in ipairs(pages) do
			assert.are.same(sent, now[p].lines, p)
			assert_clean_https(b, p, d.port, d.ws_url)
		end
		call(b, { cmd = "close" })
	end)

	it("stocks: prices tick over wss://, #stop and #start work", function()
		local d = H.demo("stocks", 0, tls_args)
		local b = browser()
		assert.are.equal(200, call(b, { cmd = "open", page = "a", url = d.url }).status)
		call(b, { cmd = "state", page = "a", state = "open" })
		local t = call(b, { cmd = "prices", page = "a", n = 3, ms = 6000 }, 12000)
		assert.is_true(t.changes >= 3, ("%d changes in %d ms"):format(t.changes, t.ms))
		for _, row in ipairs(t.rows) do assert.matches("^%d+%.%d%d$", row.text, row.id) end
		call(b, { cmd = "click", page = "a", selector = "#stop" })
		call(b, { cmd = "state", page = "a", state = "stopped" })
		call(b, { cmd = "click", page = "a", selector = "#start" })
		call(b, { cmd = "state", page = "a", state = "open" })
		assert.is_true(call(b, { cmd = "prices", page = "a", n = 2, ms = 6000 }, 12000).changes >= 2)
		assert_clean_https(b, "a", d.port, d.ws_url)
		call(b, { cmd = "close" })
	end)

	it("chatroom: Socket.IO polls over https, upgrades to wss://, two pages chat", function()
		local d = H.demo("chatroom", 0, tls_args)
		local b = H.node(H.ROOT .. "/spec/peers/sio_browser.js", INSECURE)
		local T = 15000 * H.SLOW
		-- a command and its reply; the browser's cmd-error for it raises
		local function cmd(t, reply)
			b:cmd(t)
			local found
			H.run_until(function()
				for i, e in ipairs(b.events) do
					if (e.ev == reply or e.ev == "cmd-error") and e.id == t.id then
						found = table.remove(b.events, i)
						return true
					end
				end
				return b.dead
			end, 2 * T, "the browser's '" .. reply .. "'")
			if not found then error("the browser exited\n" .. b:read_log(), 2) end
			if found.ev == "cmd-error" then error("browser: " .. found.cmd .. ": " .. found.message, 2) end
			return found
		end
		for _, id in ipairs { "a", "b" } do
			local opened = cmd({ cmd = "open", id = id, url = d.url }, "opened")
			assert.are.equal(200, opened.status)
		end
		cmd({ cmd = "login", id = "a", name = "Ann" }, "logged-in")
		cmd({ cmd = "login", id = "b", name = "Bob" }, "logged-in")
		cmd({ cmd = "count", id = "a", n = 2, timeout = T }, "count")
		cmd({ cmd = "count", id = "b", n = 2, timeout = T }, "count")
		cmd({ cmd = "say", id = "b", text = "hi over wss" }, "said")
		-- a: 2 notices (Ann, Bob joined) + the message
		cmd({ cmd = "sections", id = "a", n = 3, timeout = T }, "sections")
		for _, id in ipairs { "a", "b" } do
			local st = cmd({ cmd = "state", id = id }, "state")
			assert.are.same({}, st.offsite, id .. ": requests off 127.0.0.1")
			assert.are.same({}, st.problems, id .. ": console errors, CSP violations or dialogs")
			assert.are.equal("http/1.1", st.protocol)
			assert.is_true(st.connected)
			local polls, upgrades = 0, 0
			for _, u in ipairs(st.requests) do
				assert.is_truthy(u:find("^https://127%.0%.0%.1:" .. d.port .. "/")
					or u:find("^wss://127%.0%.0%.1:" .. d.port .. "/"), id .. ": " .. u)
				if u:find("/socket%.io/%?EIO=%d&transport=polling") then polls = polls + 1 end
				if u:find("^wss://.*/socket%.io/%?EIO=%d&transport=websocket&sid=") then upgrades = upgrades + 1 end
			end
			assert.is_true(polls > 0, id .. ": no polling request over https")
			assert.is_true(upgrades > 0, id .. ": never upgraded to wss://")
			H.run_until(function()
				st = cmd({ cmd = "state", id = id }, "state")
				return st.transport == "websocket"
			end, 5000, id .. " to be on the websocket transport", 50)
			if id == "a" then
				assert.are.equal("Bob" .. "hi over wss", st.sections[3].text)
				assert.are.equal("Online now: 2 — Ann, Bob", st.onlinecount)
			end
		end
		b:cmd { cmd = "exit" }
		pcall(H.run_until, function() return b.dead end, 10000, "the browser to quit")
	end)
end)
