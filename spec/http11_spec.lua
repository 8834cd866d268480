-- HTTP/1.1 framing on the WebSocket port (RFC 9112, 9110): chunked request
-- bodies, request smuggling refusals, Date, Host, bodiless POSTs, h2c
-- offers, deferred answers past their deadline, a static mount without its
-- slash, and what libwebsockets answers itself (an unknown Upgrade,
-- OPTIONS *). Peers: raw sockets (exact bytes, any split), Node's http module
-- and curl, as they send by default.
local H = require "helper"
local lws = require "lws"
local socketio = require "lws.socketio"

local quote = H.shell_quote

-- A command in the background (never under the ASan preload), awaited on
-- the loop: p:wait() -> exit status, output
local function spawn(cmd)
	local out, rc = os.tmpname(), os.tmpname()
	os.remove(rc)
	os.execute(("(env -u LD_PRELOAD sh -c %s >%s 2>&1; echo $? >%s.tmp && mv %s.tmp %s) &")
		:format(quote(cmd), quote(out), quote(rc), quote(rc), quote(rc)))
	local p = {}
	function p:wait(ms)
		local code
		H.run_until(function()
			local f = io.open(rc)
			if not f then return false end
			code = tonumber(f:read("l"))
			f:close()
			return code ~= nil
		end, ms or 15000, cmd, 20)
		local f = io.open(out)
		local text = f:read("a")
		f:close()
		os.remove(out)
		os.remove(rc)
		return code, text
	end
	return p
end

local function node(script, ...)
	local args = {}
	for i, a in ipairs { ... } do args[i] = quote(a) end
	return spawn(("cd %s && node -e %s %s"):format(quote(H.ROOT), quote(script), table.concat(args, " ")))
end

-- Reads every response until the server closes; returns them in order.
local function read_all(r, ms)
	local got = {}
	while true do
		local status, hdrs, body = r:read_response(ms)
		if not status then break end
		got[#got + 1] = { status = status, headers = hdrs, body = body }
	end
	return got
end

local function echo_server(opts)
	local srv, port = H.server(opts)
	local seen = {}
	srv:post("/echo", function(req, res)
		seen[#seen + 1] = req
		res:send(req.body)
	end)
	srv:put("/echo", function(req, res) res:send("put " .. req.body) end)
	srv:get("/", function(req, res) res:send("root") end)
	local smuggled = 0
	srv:get("/smuggled", function(req, res) smuggled = smuggled + 1; res:send("smuggled") end)
	srv:post("/smuggled", function(req, res) smuggled = smuggled + 1; res:send("smuggled") end)
	return srv, port, seen, function() return smuggled end
end

local IMF = "^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$"

local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9,
	Oct = 10, Nov = 11, Dec = 12 }
-- seconds between an IMF-fixdate and now
local function date_skew(date)
	local d, mon, y, hh, mm, ss = date:match("^%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT$")
	local t = os.time { year = tonumber(y), month = months[mon], day = tonumber(d), hour = tonumber(hh),
		min = tonumber(mm), sec = tonumber(ss), isdst = false }
	local now = os.time(os.date("!*t"))
	return math.abs(now - t)
end

local function assert_date(hdrs, what)
	local date = hdrs.date
	assert(date, "no Date header on " .. what)
	assert(date:match(IMF), "not an IMF-fixdate on " .. what .. ": " .. date)
	assert(date_skew(date) <= 5, "Date is not now on " .. what .. ": " .. date)
end

describe("HTTP/1.1", function()
	local root
	after_each(function()
		H.clean()
		if root then os.execute("rm -rf " .. quote(root)); root = nil end
	end)

	describe("chunked request bodies", function()
		it("are decoded for a route, whatever the split, with extensions and trailers", function()
			local _, port, seen = echo_server()
			local body = "5;name=value\r\nhello\r\n1\r\n \r\n000A\r\n0123456789\r\n" ..
				"0;last\r\nX-Checksum: 42\r\nX-Other:\r\n\r\n"
			local head = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			-- whole, then in 1-, 2- and 7-byte pieces
			for _, step in ipairs { #body, 1, 2, 7 } do
				local r = H.raw(port)
				r:send(head)
				for i = 1, #body, step do
					r:send(body:sub(i, i + step - 1))
					if step < #body then H.run_for(2) end
				end
				local status, hdrs, got = r:read_response()
				assert.are.same({ 200, "hello 0123456789" }, { status, got })
				-- lws 4.1.6 would read whatever follows as this body: close
				assert.are.equal("close", hdrs.connection)
				r:wait_closed()
			end
			assert.is_nil(seen[1].headers["x-checksum"])
		end)

		it("come from Node's http.request (chunked when no length is set)", function()
			local _, port, seen = echo_server()
			local code, out = node([[
				const http = require('http');
				const req = http.request({ host: '127.0.0.1', port: +process.argv[1], method: 'POST',
					path: '/echo' }, res => {
					let b = '';
					res.on('data', d => b += d);
					res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: b })));
				});
				req.on('error', e => { console.log('error ' + e.message); process.exit(1); });
				req.write('hello ');
				setTimeout(() => { req.write('from node'); req.end(); }, 30);
			]], port):wait()
			assert.are.equal(0, code, out)
			local res = require("cjson").decode(out)
			assert.are.same({ status = 200, body = "hello from node" }, res)
			-- Node really sent it chunked
			assert.are.equal("chunked", seen[1].headers["transfer-encoding"])
			assert.is_nil(seen[1].headers["content-length"])
		end)

		it("come from curl -H 'Transfer-Encoding: chunked' --data-binary @file", function()
			local _, port = echo_server()
			local file = os.tmpname()
			local data = H.pattern(200000, true)
			local f = io.open(file, "wb")
			f:write(data)
			f:close()
			local code, out = spawn(("curl -s -H 'Transfer-Encoding: chunked' --data-binary @%s " ..
				"-o %s.out -w '%%{http_code}' http://127.0.0.1:%d/echo"):format(quote(file), quote(file), port)):wait()
			assert.are.same({ 0, "200" }, { code, out })
			local got = H.read_file(file .. ".out")
			os.remove(file)
			os.remove(file .. ".out")
			assert.are.equal(#data, #got)
			assert.is_true(data == got)
		end)

		it("carry Socket.IO polling POSTs from Node's http (the session lives)", function()
			local srv, port = H.server()
			local io_ = socketio(srv, {})
			local said
			io_:on("connection", function(socket)
				socket:on("hi", function(v) said = v; socket:emit("ho", v .. "!") end)
			end)
			local code, out = node([[
				const http = require('http');
				const port = +process.argv[1];
				function go(method, path, body) {
					return new Promise((ok, ko) => {
						const req = http.request({ host: '127.0.0.1', port, method, path }, res => {
							let b = '';
							res.on('data', d => b += d);
							res.on('end', () => ok({ status: res.statusCode, body: b }));
						});
						req.on('error', ko);
						if (body !== undefined) { req.write(body.slice(0, 1)); req.write(body.slice(1)); }
						req.end();
					});
				}
				(async () => {
					const q = '/socket.io/?EIO=4&transport=polling';
					const open = await go('GET', q);
					const sid = JSON.parse(open.body.slice(1)).sid;
					const s = q + '&sid=' + sid;
					const r1 = await go('POST', s, '40');
					const ack = await go('GET', s);
					const r2 = await go('POST', s, '42["hi","there"]');
					const ev = await go('GET', s);
					console.log(JSON.stringify([r1, ack.body.slice(0, 2), r2, ev.body]));
				})().catch(e => { console.log('error ' + e.message); process.exit(1); });
			]], port):wait()
			assert.are.equal(0, code, out)
			local res = require("cjson").decode(out)
			assert.are.same({ status = 200, body = "ok" }, res[1])
			assert.are.equal("40", res[2])
			assert.are.same({ status = 200, body = "ok" }, res[3])
			assert.are.equal('42["ho","there!"]', res[4])
			assert.are.equal("there", said)
		end)

		it("count max_body_size across chunks: 413 on the size line that passes it", function()
			local _, port, seen = echo_server { max_body_size = 10 }
			local r = H.raw(port)
			r:send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n")
			local s1, _, b1 = r:read_response()
			assert.are.same({ 200, "abcdefghij" }, { s1, b1 })   -- exactly at the limit
			r = H.raw(port)
			-- the second size line passes 10: answered before its data is sent
			r:send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n")
			local status, hdrs = r:read_response()
			assert.are.same({ 413, "close" }, { status, hdrs.connection })
			r:wait_closed()
			-- a size too big for any limit
			r = H.raw(port)
			r:send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n")
			assert.are.equal(413, (r:read_response()))
			assert.are.equal(1, #seen)
		end)

		it("with a malformed chunk size or framing get 400 and close", function()
			local _, port, seen = echo_server()
			for _, body in ipairs {
				"zz\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n", " 5\r\nhello\r\n0\r\n\r\n",
				"0x5\r\nhello\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n", "5\r\nhelloXX\r\n0\r\n\r\n",
				"\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
			} do
				local r = H.raw(port)
				r:send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" .. body)
				local status, hdrs, text = r:read_response()
				assert.are.same({ 400, "close", "malformed chunked body" }, { status, hdrs.connection, text }, body)
				r:wait_closed()
			end
			assert.are.equal(0, #seen)
		end)

		it("still get Expect: 100-continue answered, then decoded", function()
			local _, port = echo_server()
			local r = H.raw(port)
			r:send("PUT /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
			assert.are.equal(100, (r:read_response()))
			r:send("3\r\nabc\r\n0\r\n\r\n")
			local status, _, body = r:read_response()
			assert.are.same({ 200, "put abc" }, { status, body })
		end)

		it("on a method lws reads no body for get 411 and close (never parsed as a request)", function()
			local _, port, _, smuggled = echo_server()
			local r = H.raw(port)
			r:send("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" ..
				"22\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n")
			local got = read_all(r)
			assert.are.equal(1, #got)
			assert.are.same({ 411, "close" }, { got[1].status, got[1].headers.connection })
			assert.are.equal(0, smuggled())
		end)
	end)

	describe("request smuggling", function()
		local smuggle = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

		-- sends the bytes, reads until close: one 400 (or the status given),
		-- and the request hidden in the body never served
		local function refused(port, smuggled, bytes, status)
			local r = H.raw(port)
			r:send(bytes)
			local got = read_all(r)
			assert.are.equal(1, #got, "responses")
			assert.are.equal(status or 400, got[1].status)
			assert.are.equal("close", got[1].headers.connection)
			assert.is_true(r.closed)
			assert.are.equal(0, smuggled())
			return got[1]
		end

		it("CL.TE: Content-Length and Transfer-Encoding together are 400 and close", function()
			local _, port, seen, smuggled = echo_server()
			-- a Content-Length front end forwards all of it; a chunked back
			-- end would end the body at 0 and serve GET /smuggled
			local body = "0\r\n\r\n" .. smuggle
			local res = refused(port, smuggled, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: " .. #body ..
				"\r\nTransfer-Encoding: chunked\r\n\r\n" .. body)
			assert.are.equal("both Content-Length and Transfer-Encoding", res.body)
			assert.are.equal(0, #seen)
		end)

		it("TE.CL: the reverse order of the pair, the same refusal", function()
			local _, port, seen, smuggled = echo_server()
			-- a chunked front end forwards one chunk holding GET /smuggled;
			-- a Content-Length: 4 back end would read "22\r\n" and then serve it
			local chunk = ("%x\r\n%s\r\n0\r\n\r\n"):format(#smuggle, smuggle)
			refused(port, smuggled, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" ..
				"Content-Length: 4\r\n\r\n" .. chunk)
			assert.are.equal(0, #seen)
		end)

		it("TE.CL with a disguised Transfer-Encoding name is 400", function()
			local _, port, seen, smuggled = echo_server()
			local chunk = ("%x\r\n%s\r\n0\r\n\r\n"):format(#smuggle, smuggle)
			for _, name in ipairs { "Transfer-Encoding : chunked", " Transfer-Encoding: chunked",
				"Transfer-Encoding\t: chunked" } do
				refused(port, smuggled, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n" .. name ..
					"\r\n\r\n" .. chunk)
			end
			assert.are.equal(0, #seen)
		end)

		it("duplicate Content-Length: different values 400, the same value accepted", function()
			local _, port, seen, smuggled = echo_server()
			refused(port, smuggled, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n" ..
				"Content-Length: " .. (3 + #smuggle) .. "\r\n\r\nabc" .. smuggle)
			refused(port, smuggled, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 40\r\n\r\nabc" .. smuggle)
			refused(port, smuggled, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc")
			local r = H.raw(port)
			r:send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")
			local status, _, body = r:read_response()
			assert.are.same({ 200, "abc" }, { status, body })
			assert.are.equal(1, #seen)
		end)

		it("a coding other than chunked is 501, chunked twice 400", function()
			local _, port, seen, smuggled = echo_server()
			local chunk = ("%x\r\n%s\r\n0\r\n\r\n"):format(#smuggle, smuggle)
			for _, te in ipairs { "gzip", "chunked, gzip", "gzip, chunked", "identity", "chunked;x=1" } do
				local res = refused(port, smuggled, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " ..
					te .. "\r\n\r\n" .. chunk, 501)
				assert.are.equal("unsupported Transfer-Encoding (only chunked is)", res.body)
			end
			refused(port, smuggled, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" ..
				"Transfer-Encoding: chunked\r\n\r\n" .. chunk)
			refused(port, smuggled, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n" .. chunk)
			assert.are.equal(0, #seen)
		end)
	end)

	describe("smaller deviations", function()
		local function fixture()
			root = os.tmpname()
			os.remove(root)
			assert(os.execute(("mkdir -p %s/www/sub && printf '<h1>home</h1>' > %s/www/index.html && " ..
				"printf 'sub' > %s/www/sub/index.html"):format(quote(root), quote(root), quote(root))))
			return root .. "/www"
		end

		it("every response carries Date: routes, files, 304, errors, refusals, Socket.IO", function()
			local srv, port = echo_server { max_body_size = 4 }
			srv:static("/files", fixture())
			socketio(srv, {})
			local function check(bytes, what, want)
				local r = H.raw(port)
				r:send(bytes)
				local status, hdrs = r:read_response()
				assert.are.equal(want, status, what)
				assert_date(hdrs, what)
				return hdrs
			end
			check("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "a route", 200)
			local h = check("GET /files/index.html HTTP/1.1\r\nHost: a\r\n\r\n", "a static file", 200)
			check("GET /files/index.html HTTP/1.1\r\nHost: a\r\nIf-None-Match: " .. h.etag .. "\r\n\r\n", "a 304", 304)
			check("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", "a 404", 404)
			check("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde", "a 413", 413)
			check("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
				"an upgrade refusal", 400)
			check("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a\r\n\r\n", "Socket.IO polling", 200)
			-- and from curl, as it prints headers
			local code, out = spawn(("curl -si http://127.0.0.1:%d/"):format(port)):wait()
			assert.are.equal(0, code)
			assert.matches("\r\n[Dd]ate: %a%a%a, %d%d %a%a%a %d%d%d%d ", out)
		end)

		it("an HTTP/1.1 request needs exactly one Host (HTTP/1.0 does not)", function()
			local _, port = echo_server()
			local function status_of(bytes)
				local r = H.raw(port)
				r:send(bytes)
				return (r:read_response())
			end
			assert.are.equal(400, status_of("GET / HTTP/1.1\r\n\r\n"))
			assert.are.equal(400, status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"))
			assert.are.equal(200, status_of("GET / HTTP/1.1\r\nHost:\r\n\r\n"))   -- empty is allowed
			assert.are.equal(200, status_of("GET / HTTP/1.0\r\n\r\n"))
		end)

		it("a POST with neither Content-Length nor Transfer-Encoding has an empty body", function()
			local _, port, seen = echo_server()
			local r = H.raw(port)
			r:send("POST /echo HTTP/1.1\r\nHost: a\r\n\r\n")
			local status, hdrs, body = r:read_response()
			assert.are.same({ 200, "", "close" }, { status, body, hdrs.connection })
			assert.are.equal("", seen[1].body)
			-- curl -X POST with no data sends no length either
			local code, out = spawn(("curl -s -X POST -w ' %%{http_code}' http://127.0.0.1:%d/echo"):format(port)):wait()
			assert.are.same({ 0, " 200" }, { code, out })
		end)

		it("ignores an h2c upgrade offer and answers over HTTP/1.1 (curl --http2)", function()
			local _, port, seen = echo_server()
			local code, out = spawn(("curl -s -i --http2 http://127.0.0.1:%d/"):format(port)):wait()
			assert.are.equal(0, code, out)
			assert.matches("^HTTP/1%.1 200", out)
			assert.matches("root$", out)
			-- raw: the offer on a keep-alive connection, a body, a second request
			local r = H.raw(port)
			r:send("POST /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" ..
				"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 3\r\n\r\nabc" ..
				"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			local s1, h1, b1 = r:read_response()
			local s2, _, b2 = r:read_response()
			assert.are.same({ 200, "abc", 200, "root" }, { s1, b1, s2, b2 })
			assert.is_nil(h1.upgrade)
			assert.is_false(r.closed)
			assert.are.equal("", seen[1].headers.upgrade)
		end)

		it("answers an unknown Upgrade once (libwebsockets' 403), then closes", function()
			local _, port = echo_server()
			local r = H.raw(port)
			-- a keep-alive connection: lws answers 403 itself, then asks us
			r:send("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\n" ..
				"Connection: Upgrade\r\n\r\n")
			local got = read_all(r)
			assert.are.same({ 200, 403 }, { got[1].status, got[2] and got[2].status })
			assert.are.equal(2, #got)
		end)

		-- What libwebsockets 4.1.6 answers itself, before any callback of
		-- ours (docs/libwebsockets-4.1.md §6 item 18: no route around it):
		-- its HTML 403, the status line from the previous request's version
		-- (HTTP/1.0 on a connection's first), no Date, then the close.
		local function lws_403(port, bytes, version, what)
			local r = H.raw(port)
			r:send(bytes)
			r:wait_closed()   -- everything it wrote is in r.buf now
			local line
			for l in r.buf:gmatch("HTTP/1%.%d %d%d%d [^\r\n]*") do line = l end   -- the last one
			local got = read_all(r)
			local last = got[#got]
			assert.are.equal(version .. " 403 Forbidden", line, what)
			assert.are.same({ 403, "text/html", true }, { last and last.status,
				last and last.headers["content-type"], r.closed }, what)
			assert.is_nil(last.headers.date, what)
			assert.matches("<h1>403</h1>", last.body, 1, true)
			return got
		end

		it("an unknown Upgrade on a later keep-alive request: lws's 403 and the close, its freed table unread", function()
			local upgrades = 0
			local _, port = echo_server { verify = function() upgrades = upgrades + 1; return true end }
			-- the first request's answer read before the second is sent:
			-- lws then frees the header table the Upgrade value it hands
			-- to HTTP_CONFIRM_UPGRADE points into (ASan, valgrind: a read
			-- of freed memory before csrc/server.c checked the table)
			local r = H.raw(port)
			r:send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			assert.are.equal(200, (r:read_response()))
			r:send("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n")
			local status, hdrs = r:read_response()
			assert.are.same({ 403, "text/html" }, { status, hdrs["content-type"] })
			r:wait_closed()
			-- a connection's first request, a list naming websocket too
			-- (RFC 9110 7.8), an RFC 2817 TLS upgrade: the same
			lws_403(port, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n",
				"HTTP/1.0", "foo")
			lws_403(port, H.upgrade_request("/", { Upgrade = "websocket, foo" }), "HTTP/1.0", "websocket, foo")
			lws_403(port, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n",
				"HTTP/1.0", "TLS/1.0")
			assert.are.equal(0, upgrades)
			-- the server goes on serving
			local code, out = spawn(("curl -s http://127.0.0.1:%d/"):format(port)):wait()
			assert.are.same({ 0, "root" }, { code, out })
		end)

		it("OPTIONS * and an absolute-form target: lws's 403 and the close (OPTIONS /path is ours)", function()
			local _, port = echo_server()
			lws_403(port, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.0", "OPTIONS *")
			lws_403(port, "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.0", "absolute-form")
			-- on a keep-alive connection: the 403 says HTTP/1.1 there
			local got = lws_403(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
				"HTTP/1.1", "OPTIONS * after a request")
			assert.are.same({ 200, 2 }, { got[1].status, #got })
			-- as curl sends it
			local code, out = spawn(("curl -s -i -X OPTIONS --request-target '*' http://127.0.0.1:%d"):format(port))
				:wait()
			assert.are.equal(0, code, out)
			assert.matches("^HTTP/1%.0 403 Forbidden\r\n", out)
			-- OPTIONS on a path reaches the routes: 405 with Allow, kept alive
			local r = H.raw(port)
			r:send("OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
			local s1, h1 = r:read_response()
			local s2, _, b2 = r:read_response()
			assert.are.same({ 405, "GET, HEAD", 200, "root" }, { s1, h1.allow, s2, b2 })
			assert_date(h1, "OPTIONS /")
			assert.is_false(r.closed)
		end)

		it("a deferred answer past request_timeout is a 503, not an empty reply", function()
			local srv, port = H.server { request_timeout = 1 }
			local held = {}
			srv:get("/hold", function(req, res) held[#held + 1] = res end)
			local code, out = spawn(("curl -s -w ' %%{http_code}' http://127.0.0.1:%d/hold"):format(port)):wait()
			assert.are.same({ 0, "request timed out 503" }, { code, out })
			local r = H.raw(port)
			r:send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
			local status, hdrs, body = r:read_response(5000)
			assert.are.same({ 503, "close", "request timed out" }, { status, hdrs.connection, body })
			assert_date(hdrs, "a 503")
			r:wait_closed()
			assert.are.same({ nil, "response already sent", "sent" }, { held[2]:send("late") })
		end)

		it("a deferred answer to a chunked POST keeps its own deadline (not lws's 5 s)", function()
			local srv, port = H.server { request_timeout = 8 }
			srv:post("/later", function(req, res)
				lws.set_timeout(function() res:send("later " .. req.body) end, 6000)
			end)
			local r = H.raw(port)
			r:send("POST /later HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
			local status, _, body = r:read_response(10000)
			assert.are.same({ 200, "later ok" }, { status, body })
		end)

		it("redirects a static directory without its slash (301, query kept)", function()
			local srv, port = H.server()
			srv:static("/files", fixture())
			local function get(path)
				local r = H.raw(port)
				r:send("GET " .. path .. " HTTP/1.1\r\nHost: a\r\n\r\n")
				return r:read_response()
			end
			local status, hdrs = get("/files?v=2")
			assert.are.same({ 301, "/files/?v=2" }, { status, hdrs.location })
			status, hdrs = get("/files/sub?x=1&y=2")
			assert.are.same({ 301, "/files/sub/?x=1&y=2" }, { status, hdrs.location })
			local _, _, body = get("/files/")
			assert.are.equal("<h1>home</h1>", body)
			-- curl -L follows it to the index
			local code, out = spawn(("curl -s -L http://127.0.0.1:%d/files"):format(port)):wait()
			assert.are.same({ 0, "<h1>home</h1>" }, { code, out })
		end)
	end)
end)
