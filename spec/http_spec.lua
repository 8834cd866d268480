-- HTTP routes and static files on the WebSocket port.
local H = require "helper"
local lws = require "lws"

local function request(port, method, path, headers, body, ms)
	local r = H.raw(port)
	local lines = { ("%s %s HTTP/1.1"):format(method, path), "Host: 127.0.0.1" }
	for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
	if body then lines[#lines + 1] = "Content-Length: " .. #body end
	r:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""))
	local status, hdrs, rbody = r:read_response(ms, method == "HEAD")
	return status, hdrs, rbody, r
end

local root
local function fixture()
	root = os.tmpname()
	os.remove(root)
	assert(os.execute(("mkdir -p %s/www/sub %s/outside && cd %s && printf '<h1>home</h1>' > www/index.html && " ..
		"printf 'body{}' > www/style.css && printf 'let x = 1' > www/app.js && " ..
		"printf '{}' > www/data.json && printf 'PNG' > www/img.png && printf 'sub index' > www/sub/index.html && " ..
		"printf 'secret' > outside/secret.txt && ln -s ../outside/secret.txt www/escape.txt && " ..
		"ln -s ../outside www/escdir && printf 'hidden' > www/.env && printf 'x' > www/noext")
		:format(root, root, root)))
	return root .. "/www"
end

describe("HTTP", function()
	after_each(function()
		H.clean()
		if root then os.execute("rm -rf " .. root); root = nil end
	end)

	it("routes by method and path, with params, 404 and 405", function()
		local srv, port = H.server()
		srv:route("GET", "/api/items", function(req, res) res:json { items = { 1, 2 } } end)
		srv:route("POST", "/api/items", function(req, res) res:status(201):send("created " .. req.body) end)
		srv:get("/api/items/:id", function(req, res) res:send("item " .. req.params.id) end)
		srv:route("GET", "/files/*", function(req, res) res:send("file " .. req.params["*"]) end)
		srv:route("GET", "/q", function(req, res) res:send(req.query.a .. "," .. req.query.b) end)
		local status, hdrs, body = request(port, "GET", "/api/items")
		assert.are.same({ 200, "application/json", '{"items":[1,2]}' }, { status, hdrs["content-type"], body })
		local pstatus, _, pbody = request(port, "POST", "/api/items", nil, "x=1")
		assert.are.same({ 201, "created x=1" }, { pstatus, pbody })
		local s3, _, b3 = request(port, "GET", "/api/items/42")
		assert.are.same({ 200, "item 42" }, { s3, b3 })
		local s4, _, b4 = request(port, "GET", "/files/a/b.txt")
		assert.are.same({ 200, "file a/b.txt" }, { s4, b4 })
		local s5, _, b5 = request(port, "GET", "/q?a=1&b=two")
		assert.are.same({ 200, "1,two" }, { s5, b5 })
		assert.are.equal(404, (request(port, "GET", "/nope")))
		local s6, h6 = request(port, "DELETE", "/api/items")
		assert.are.equal(405, s6)
		assert.are.equal("GET, HEAD, POST", h6["allow"])
		assert.are.equal(405, (request(port, "PUT", "/api/items/1", nil, "")))
	end)

	it("answers HEAD with the headers of GET and no body", function()
		local srv, port = H.server()
		srv:get("/x", function(req, res) res:send("twelve bytes") end)
		local r = H.raw(port)
		r:send("HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		local status, hdrs = r:read_response(nil, true)
		assert.are.same({ 200, "12" }, { status, hdrs["content-length"] })
		-- no body came: the next bytes are the second response
		local status2, _, body2 = r:read_response()
		assert.are.same({ 200, "twelve bytes" }, { status2, body2 })
	end)

	it("serves pipelined keep-alive requests in order on one connection", function()
		local srv, port = H.server()
		srv:get("/n/:i", function(req, res) res:send("n" .. req.params.i) end)
		srv:get("/later", function(req, res) lws.set_timeout(function() res:send("later") end, 50) end)
		local r = H.raw(port)
		local reqs = {}
		for i = 1, 5 do reqs[#reqs + 1] = ("GET /n/%d HTTP/1.1\r\nHost: a\r\n\r\n"):format(i) end
		reqs[3] = "GET /later HTTP/1.1\r\nHost: a\r\n\r\n"
		r:send(table.concat(reqs))
		local got = {}
		for _ = 1, 5 do
			local status, _, body = r:read_response()
			assert.are.equal(200, status)
			got[#got + 1] = body
		end
		assert.are.same({ "n1", "n2", "later", "n4", "n5" }, got)
	end)

	it("enforces max_body_size: at the limit 200, one byte over 413", function()
		local srv, port = H.server { max_body_size = 1000 }
		srv:post("/up", function(req, res) res:send(tostring(#req.body)) end)
		local status, _, body = request(port, "POST", "/up", nil, string.rep("a", 1000))
		assert.are.same({ 200, "1000" }, { status, body })
		status = request(port, "POST", "/up", nil, string.rep("a", 1001))
		assert.are.equal(413, status)
		-- a lying Content-Length is caught while reading
		local r = H.raw(port)
		r:send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 900\r\n\r\n" .. string.rep("b", 900))
		assert.are.equal(200, (r:read_response()))
	end)

	it("answers Expect: 100-continue (chunked bodies: http11_spec.lua)", function()
		local srv, port = H.server()
		srv:post("/up", function(req, res) res:send("got " .. #req.body) end)
		local r = H.raw(port)
		r:send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
		assert.are.equal(100, (r:read_response()))
		r:send("abc")
		local status, _, body = r:read_response()
		assert.are.same({ 200, "got 3" }, { status, body })
	end)

	it("answers a deferred request after 7 s, past libwebsockets' default 5 s", function()
		local srv, port = H.server()
		local t0
		srv:get("/wait", function(req, res)
			t0 = lws.now()
			lws.set_timeout(function() res:send("waited") end, 7000)
		end)
		local status, _, body = request(port, "GET", "/wait", nil, nil, 10000)
		assert.are.same({ 200, "waited" }, { status, body })
		assert.is_true(lws.now() - t0 >= 7000)
	end)

	it("answers a deferred request 503 at its own deadline and tells the handler", function()
		local srv, port = H.server()
		local timed_out, aborted, late
		srv:get("/never", function(req, res)
			res:set_timeout(1)
			res:on("timeout", function() timed_out = true end)
			res:on("abort", function() aborted = true end)
			lws.set_timeout(function() late = { res:send("too late") } end, 1500)
		end)
		local r = H.raw(port)
		r:send("GET /never HTTP/1.1\r\nHost: a\r\n\r\n")
		local status, hdrs, body = r:read_response(5000)
		assert.are.same({ 503, "close", "request timed out" }, { status, hdrs.connection, body })
		r:wait_closed(5000)
		H.run_until(function() return late end, 5000)
		assert.is_true(timed_out)
		assert.is_nil(aborted)
		assert.are.same({ nil, "response already sent", "sent" }, late)
	end)

	it("lets a \"timeout\" handler answer a deferred request itself", function()
		local srv, port = H.server { request_timeout = 1 }
		srv:get("/slow", function(req, res)
			res:on("timeout", function() res:status(504):send("gave up") end)
		end)
		local status, _, body = request(port, "GET", "/slow")
		assert.are.same({ 504, "gave up" }, { status, body })
	end)

	it("answers 500 when a handler fails, 503 while the server closes", function()
		local srv, port = H.server()
		srv:get("/bad", function() error("route broke") end)
		assert.are.equal(500, (request(port, "GET", "/bad")))
		assert.matches("route broke", H.errors[1])
		assert.has_error(function() srv:route("GET", "nope", function() end) end)
		assert.has_error(function() srv:route("GET", "/x", 42) end)
	end)

	it("refuses oversized request headers without disturbing others", function()
		local srv, port = H.server()
		srv:get("/ok", function(req, res) res:send("ok") end)
		local r = H.raw(port)
		r:send("GET /ok HTTP/1.1\r\nHost: a\r\nX-Big: " .. string.rep("h", 70 * 1024) .. "\r\n\r\n")
		local status, _, body = r:read_response()
		assert.are.same({ 431, "request header fields too large" }, { status, body })
		r:wait_closed()
		local s2, _, b2 = request(port, "GET", "/ok")
		assert.are.same({ 200, "ok" }, { s2, b2 })
	end)

	it("serves static files with content types, index.html, ETag and 304", function()
		local srv, port = H.server()
		srv:static("/", fixture())
		local cases = {
			{ "/", "text/html; charset=utf-8", "<h1>home</h1>" },
			{ "/index.html", "text/html; charset=utf-8", "<h1>home</h1>" },
			{ "/style.css", "text/css; charset=utf-8", "body{}" },
			{ "/app.js", "text/javascript; charset=utf-8", "let x = 1" },
			{ "/data.json", "application/json", "{}" },
			{ "/img.png", "image/png", "PNG" },
			{ "/noext", "application/octet-stream", "x" },
			{ "/sub/", "text/html; charset=utf-8", "sub index" },
		}
		for _, c in ipairs(cases) do
			local status, hdrs, body = request(port, "GET", c[1])
			assert.are.same({ 200, c[2], c[3] }, { status, hdrs["content-type"], body }, c[1])
			assert.are.equal("nosniff", hdrs["x-content-type-options"])
		end
		local status, hdrs = request(port, "GET", "/sub")
		assert.are.same({ 301, "/sub/" }, { status, hdrs["location"] })
		local _, h1 = request(port, "GET", "/style.css")
		assert.matches('^W/"', h1.etag)
		local s304, h304, b304 = request(port, "GET", "/style.css", { ["If-None-Match"] = h1.etag })
		assert.are.same({ 304, h1.etag, "" }, { s304, h304.etag, b304 })
		assert.are.equal(200, (request(port, "GET", "/style.css", { ["If-None-Match"] = '"other"' })))
		local sh, hh, bh = request(port, "HEAD", "/style.css")
		assert.are.same({ 200, "6", "" }, { sh, hh["content-length"], bh })
		assert.are.equal(405, (request(port, "POST", "/style.css", nil, "")))
	end)

	it("gzips text-like static files of 1 KiB up for clients that take gzip", function()
		local dir = fixture()
		local big = ("console.log('hello, world');\n"):rep(200)
		local f = assert(io.open(dir .. "/big.js", "wb")); f:write(big); f:close()
		f = assert(io.open(dir .. "/big.png", "wb")); f:write(big); f:close()
		local srv, port = H.server()
		srv:static("/", dir)
		srv:static("/plain/", dir, { gzip = false })
		local gz = { ["Accept-Encoding"] = "gzip, br" }
		for _ = 1, 2 do   -- the second answer comes from the cache
			local status, hdrs, body = request(port, "GET", "/big.js", gz)
			assert.are.same({ 200, "gzip", "Accept-Encoding" }, { status, hdrs["content-encoding"], hdrs["vary"] })
			assert.is_true(#body < #big / 10)
			assert.are.equal(big, H.gunzip(body))
		end
		-- not asked for, not text, too small, or turned off: as is
		for _, c in ipairs { { "/big.js" }, { "/big.png", gz }, { "/style.css", gz }, { "/plain/big.js", gz } } do
			local status, hdrs, body = request(port, "GET", c[1], c[2])
			assert.are.equal(200, status, c[1])
			assert.is_nil(hdrs["content-encoding"], c[1])
			assert.are.equal(c[1] == "/style.css" and "body{}" or big, body, c[1])
		end
		assert.has_error(function() srv:static("/x/", dir, { gzip = 1 }) end, "option 'gzip' must be a boolean, got number 1")
		assert.has_error(function() srv:static("/y/", dir, { gzp = false }) end, "unknown option 'gzp' (did you mean 'gzip'?)")
		assert.has_error(function() srv:static("/z/", dir, { header = {} }) end, "unknown option 'header' (did you mean 'headers'?)")
	end)

	it("never serves anything outside the static directory", function()
		local srv, port = H.server()
		srv:static("/", fixture())
		local function status_of(path)
			local r = H.raw(port)
			r:send("GET " .. path .. " HTTP/1.1\r\nHost: a\r\n\r\n")
			local status, _, body = r:read_response()
			assert.is_falsy((body or ""):find("secret"), path)
			return status
		end
		for _, path in ipairs { "/../outside/secret.txt", "/%2e%2e/outside/secret.txt",
			"/sub/../../outside/secret.txt", "/%2E%2E%2Foutside%2Fsecret.txt", "/escape.txt",
			"/escdir/secret.txt", "/.env", "//etc/passwd", "/..%5coutside%5csecret.txt" } do
			local s = status_of(path)
			assert.is_true(s == 400 or s == 403 or s == 404, path .. " -> " .. tostring(s))
		end
		assert.are.equal(403, status_of("/escape.txt"))
	end)

	it("serves WebSocket endpoints by path next to HTTP on one port", function()
		local srv, port = H.server()
		srv:static("/", fixture())
		srv:websocket("/chat", function(ws) ws:on("message", function(d) ws:send("chat:" .. d) end) end)
		srv:websocket("/stocks", function(ws) ws:on("message", function(d) ws:send("stocks:" .. d) end) end)
		local a, b = H.node(), H.node()
		a:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/chat" }
		b:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/stocks" }
		a:wait("open"); b:wait("open")
		a:cmd { cmd = "send", data = "hi" }
		b:cmd { cmd = "send", data = "hi" }
		assert.are.equal("chat:hi", a:wait("message").data)
		assert.are.equal("stocks:hi", b:wait("message").data)
		local c = H.node()
		c:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/other" }
		assert.are.equal(404, c:wait("unexpected-response").status)
		assert.are.equal(200, (request(port, "GET", "/")))
	end)

	it("sees custom request headers", function()
		local srv, port = H.server()
		srv:get("/h", function(req, res) res:send(tostring(req.headers["X-Token"])) end)
		local _, _, body = request(port, "GET", "/h", { ["X-Token"] = "t0k3n" })
		assert.are.equal("t0k3n", body)
	end)
end)
