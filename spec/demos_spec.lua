-- The chat and stock ticker demos, started as a user would
-- (bin/lws-lua examples/<name>/server.lua --port 0), checked with Node ws
-- clients and raw HTTP.
local H = require "helper"
local cjson = require "cjson"

local start_demo, stop_all = H.demo, H.stop_demos

local function get(port, path)
	local r = H.raw(port)
	r:send(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"):format(path, port))
	local status, headers, body = r:read_response()
	r:close()
	return status, headers, body
end

local function connect(d)
	local p = H.node()
	p:cmd { cmd = "connect", url = d.ws_url }
	p:wait("open")
	return p
end

-- the next message event whose JSON has field == value (others stay queued)
local function next_json(peer, field, value, ms)
	local ev = peer:wait("message", ms, function(ev)
		local ok, t = pcall(cjson.decode, ev.data or "")
		return ok and type(t) == "table" and t[field] == value
	end)
	return cjson.decode(ev.data), ev
end

local function count_json(peer, field, value)
	local n = 0
	for _, ev in ipairs(peer.events) do
		local ok, t = pcall(cjson.decode, ev.data or "")
		if ev.ev == "message" and ok and type(t) == "table" and t[field] == value then n = n + 1 end
	end
	return n
end

local CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " ..
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

describe("demos", function()
	after_each(function()
		stop_all()
		H.clean()
	end)

	for _, name in ipairs { "chat", "stocks" } do
		it(name .. " serves its page, script and style with their types and a CSP the page satisfies", function()
			local d = start_demo(name)
			local types = {
				["/"] = "text/html; charset=utf-8", ["/app.js"] = "text/javascript; charset=utf-8",
				["/style.css"] = "text/css; charset=utf-8", ["/favicon.svg"] = "image/svg+xml",
			}
			local bodies = {}
			for path, ctype in pairs(types) do
				local status, headers, body = get(d.port, path)
				assert.are.same({ 200, ctype, CSP, "nosniff" }, { status, headers["content-type"],
					headers["content-security-policy"], headers["x-content-type-options"] }, path)
				bodies[path] = body
			end
			local html, js = bodies["/"], bodies["/app.js"]
			-- nothing the CSP would refuse: no inline script, style or handler, no other origin
			assert.is_nil(html:find("<script>", 1, true), "inline script")
			assert.is_nil(html:find("<script[^>]-src=\"https?:"), "script from elsewhere")
			assert.is_nil(html:find("<style", 1, true), "inline style element")
			assert.is_nil(html:find("%sstyle="), "style attribute")
			assert.is_nil(html:find("%son%a+="), "inline event handler")
			assert.is_nil((html .. js):find("https?://"), "a URL on another origin")
			assert.is_nil(js:find("innerHTML", 1, true), "innerHTML")
			assert.is_nil(js:find("eval(", 1, true), "eval")
			assert.matches('<script src="app.js" defer></script>', html, 1, true)
			assert.are.equal(404, (get(d.port, "/nope.js")))
		end)
	end

	it("chat broadcasts a message to every client exactly once, the sender included", function()
		local d = start_demo("chat")
		local a, b = connect(d), connect(d)
		assert.are.equal(2, next_json(b, "type", "presence").online)
		local text = "hello 世界 👋 <b>x</b>"
		a:cmd { cmd = "send", data = cjson.encode { name = " ann ", message = text }, track = false }
		for _, p in ipairs { a, b } do
			local m = next_json(p, "type", "message")
			assert.are.same({ type = "message", name = "ann", message = text }, m)
		end
		-- and nothing more: a second copy would have arrived by now
		H.run_for(300)
		assert.are.same({ 0, 0 }, { count_json(a, "type", "message"), count_json(b, "type", "message") })
		a:cmd { cmd = "close", code = 1000 }
		assert.are.equal(1, next_json(b, "type", "presence", 5000).online)
	end)

	it("chat rejects bad input with a reason, broadcasts none of it and keeps going", function()
		local d = start_demo("chat")
		local a, b = connect(d), connect(d)
		local long_cjk = string.rep("中", 501)
		local cases = {
			{ "not json", "expected JSON {name, message}" },
			{ "{", "expected JSON {name, message}" },
			{ "123", "name missing" },
			{ "[]", "name missing" },
			{ '{"name":1,"message":"x"}', "name missing" },
			{ '{"name":"ann"}', "message missing" },
			{ '{"name":"   ","message":"x"}', "name is empty" },
			{ '{"name":"ann","message":"\\n\\t "}', "message is empty" },
			{ cjson.encode { name = string.rep("n", 33), message = "x" }, "name is longer than 32 characters" },
			{ cjson.encode { name = "ann", message = long_cjk }, "message is longer than 500 characters" },
			{ string.rep("[", 5000 // 2 - 1), "expected JSON {name, message}" },
		}
		for _, c in ipairs(cases) do
			a:cmd { cmd = "send", data = c[1], track = false }
			assert.are.equal(c[2], next_json(a, "type", "error").error, c[1]:sub(1, 40))
		end
		a:cmd { cmd = "send", data = "{}", binary = true, track = false }
		assert.are.equal("expected JSON {name, message}", next_json(a, "type", "error").error)
		-- 500 characters of 3 bytes each is within the limit
		a:cmd { cmd = "send", data = cjson.encode { name = "ann", message = long_cjk:sub(4) }, track = false }
		assert.are.equal(long_cjk:sub(4), next_json(b, "type", "message").message)
		assert.are.equal(0, count_json(b, "type", "message"))
		-- a frame over the server's 4 KiB limit closes that connection only
		a:cmd { cmd = "send", data = string.rep("x", 5000), track = false }
		assert.are.equal(1009, a:wait("close").code)
		b:cmd { cmd = "send", data = cjson.encode { name = "bob", message = "still here" }, track = false }
		assert.are.equal("still here", next_json(b, "type", "message").message)
		assert.are.equal(200, (get(d.port, "/")))
		-- a page on another origin cannot open the chat with a visitor's browser
		local c = H.node()
		c:cmd { cmd = "connect", url = d.ws_url, origin = "http://evil.example" }
		assert.are.equal(403, c:wait("unexpected-response").status)
	end)

	it("chat lets a client post 10 messages at once, then 5 a second", function()
		local d = start_demo("chat")
		local a, b = connect(d), connect(d)
		for i = 1, 15 do
			a:cmd { cmd = "send", data = cjson.encode { name = "ann", message = "flood " .. i }, track = false }
		end
		for i = 1, 10 do assert.are.equal("flood " .. i, next_json(b, "type", "message").message) end
		-- the rest are refused (one more may pass if sending took over 200 ms)
		local passed, refused
		H.run_until(function()
			passed = 10 + count_json(b, "type", "message")
			refused = count_json(a, "error", "too many messages, slow down")
			return passed + refused == 15
		end, 5000, "15 answers")
		assert.is_true(refused >= 4, refused .. " refused")
		-- a moment later there is room again
		H.run_for(400)
		a:cmd { cmd = "send", data = cjson.encode { name = "ann", message = "calm" }, track = false }
		assert.are.equal("calm", next_json(b, "type", "message").message)
	end)

	it("stocks pushes the subscribed prices, with two decimals, about once a second", function()
		local d = start_demo("stocks")
		local a, b = connect(d), connect(d)
		a:cmd { cmd = "send", data = '{"stocks":["GOOG","AAPL","NOPE"]}', track = false }
		b:cmd { cmd = "send", data = '{"stocks":["YHOO"]}', track = false }
		local got = {}
		local t0 = H.lws.now()
		H.run_until(function()
			for i = #a.events, 1, -1 do
				if a.events[i].ev == "message" then got[#got + 1] = table.remove(a.events, i).data end
			end
			return #got >= 3
		end, 5000, "3 price updates")
		local elapsed = H.lws.now() - t0
		assert.is_true(elapsed >= 900, "3 updates in " .. elapsed .. " ms: faster than once a second")
		for _, m in ipairs(got) do
			assert.matches('^{"AAPL":%d+%.%d%d,"GOOG":%d+%.%d%d}$', m)
		end
		local m = b:wait("message").data
		assert.matches('^{"YHOO":%d+%.%d%d}$', m)
	end)

	it("stocks answers bad requests, ignores unknown symbols and keeps going", function()
		local d = start_demo("stocks")
		local a = connect(d)
		for _, bad in ipairs { "nope", "{", '{"stocks":"AAPL"}', "[1,2]", '{"stocks":null}' } do
			a:cmd { cmd = "send", data = bad, track = false }
			assert.are.same({ error = 'expected {"stocks":["AAPL",...]}' }, cjson.decode(a:wait("message").data), bad)
		end
		a:cmd { cmd = "send", data = '{"stocks":[1,{},"<b>","aapl"]}', track = false }
		assert.are.equal("{}", a:wait("message").data)
		a:cmd { cmd = "send", data = '{"stocks":["MSFT"]}', track = false }
		assert.matches('^{"MSFT":%d+%.%d%d}$', a:wait("message").data)
		a:cmd { cmd = "send", data = string.rep(" ", 5000), track = false }
		assert.are.equal(1009, a:wait("close", 5000).code)
		local b = connect(d)
		b:cmd { cmd = "send", data = '{"stocks":["AMZN","MSFT"]}', track = false }
		assert.matches('^{"MSFT":%d+%.%d%d,"AMZN":%d+%.%d%d}$', b:wait("message").data)
	end)

	it("make demo prints the same URLs every time, a free port only for a taken one, on 127.0.0.1", function()
		local socket = require "socket"
		-- a base with room after it; its second port is taken on purpose
		local base
		for _ = 1, 20 do
			local p = H.free_port()
			local ok = true
			for k = 0, 2 do
				local s = socket.bind("127.0.0.1", p + k)
				if s then s:close() else ok = false end
			end
			if ok and p + 2 < 65536 then base = p break end
		end
		assert.is_not_nil(base, "three free ports in a row")
		local taken = assert(socket.bind("127.0.0.1", base + 1))
		local function run()
			local out, pidfile = os.tmpname(), os.tmpname()
			os.execute(("cd %s && LWS_DEMOS='echo chat stocks' examples/run-demos --base-port %d >%s 2>&1 & echo $! >%s")
				:format(H.shell_quote(H.ROOT), base, out, pidfile))
			local pid = tonumber(H.read_file(pidfile):match("%d+"))
			os.remove(pidfile)
			local text
			local ok = pcall(H.run_until, function()
				text = H.read_file(out) or ""
				return text:find("(Ctrl-C to stop)", 1, true)
			end, 20000, "run-demos to print its URLs", 50)
			os.execute("kill " .. pid)   -- its trap stops the demos
			H.run_until(function() return not os.execute("kill -0 " .. pid .. " 2>/dev/null") end, 5000,
				"run-demos to exit", 50)
			os.remove(out)
			assert(ok, text)
			return text
		end
		local first = run()
		assert.matches(("echo%%s+ws://127%%.0%%.0%%.1:%d/\n"):format(base), first)
		assert.matches(("stocks%%s+http://127%%.0%%.0%%.1:%d/\n"):format(base + 2), first)
		local chat = first:match("chat%s+http://127%.0%.0%.1:(%d+)/  %(port " .. (base + 1) .. " is taken: a free port instead%)\n")
		assert.is_not_nil(chat, first)
		assert.are_not.equal(base + 1, tonumber(chat))
		taken:close()
		local second = run()
		assert.matches(("chat%%s+http://127%%.0%%.0%%.1:%d/\n"):format(base + 1), second)
		assert.is_nil(second:find("taken", 1, true))
	end)
end)
