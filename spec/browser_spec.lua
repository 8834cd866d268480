-- The chat and stock ticker demos in Debian's Chromium (two pages each,
-- driven by spec/peers/browser.js over playwright-core): messages and
-- prices arrive, user text stays text, the pages come back by themselves
-- after a server restart, nothing leaves 127.0.0.1 and nothing errs.
-- Screenshots go to spec/.tmp/<demo>.png.
local H = require "helper"

local sh_quote = H.shell_quote
local start_demo, stop_demo, stop_all = H.demo, H.stop_demo, H.stop_demos

-- the Chromium driver; call(b, {cmd = …}) -> its result (raises on failure)
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
-- the same command on several pages at once -> results by page
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

local function browser()
	local b = H.node(H.ROOT .. "/spec/peers/browser.js")
	call(b, { cmd = "launch" }, 40000)
	return b
end

local function screenshot(b, page, name)
	os.execute("mkdir -p " .. sh_quote(H.ROOT .. "/spec/.tmp"))
	local file = H.ROOT .. "/spec/.tmp/" .. name .. ".png"
	call(b, { cmd = "screenshot", page = page, file = file })
	return file
end

-- No page error, console error or warning, dialog, CSP violation, or
-- request to anything but the demo; the WebSocket was used.
local function assert_clean(b, pages, d)
	for _, p in ipairs(pages) do
		local r = call(b, { cmd = "report", page = p })
		assert.are.same({}, r.errors, p .. ": errors")
		assert.are.same({}, r.warnings, p .. ": warnings")
		assert.are.same({}, r.dialogs, p .. ": dialogs")
		assert.are.same({}, r.csp, p .. ": CSP violations")
		assert.are.same({}, r.blocked, p .. ": requests leaving 127.0.0.1")
		local ws = 0
		for _, u in ipairs(r.requests) do
			assert.is_truthy(u:find("^https?://127%.0%.0%.1:" .. d.port .. "/") or u == d.ws_url, u)
			if u == d.ws_url then ws = ws + 1 end
		end
		assert.is_true(ws >= 2, p .. ": the WebSocket was opened again after the restart")
	end
end

local function count(list, x)
	local n = 0
	for _, v in ipairs(list) do if v == x then n = n + 1 end end
	return n
end

local CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " ..
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
local PAGES = { "a", "b" }

describe("demos in Chromium", function()
	after_each(function()
		stop_all()
		H.clean()
	end)

	it("chat: each message reaches both pages once, as text, also after a server restart", function()
		local d = start_demo("chat")
		local b = browser()
		for _, p in ipairs(PAGES) do
			assert.are.same({ status = 200, csp = CSP }, call(b, { cmd = "open", page = p, url = d.url }))
		end
		on_pages(b, PAGES, { cmd = "state", state = "open" })
		local sent = {}
		local function post(from, name, message, via, typed)
			local r = call(b, { cmd = "post", page = from, name = name, message = message, via = via, typed = typed })
			assert.are.equal("", r.left, "#message is cleared after posting")
			local line = name .. " : " .. message
			table.insert(sent, 1, line)
			local seen = on_pages(b, PAGES, { cmd = "chat", line = line })
			for _, p in ipairs(PAGES) do
				assert.are.equal(1, count(seen[p].lines, line), p .. " shows it once: " .. line)
				assert.are.equal(0, seen[p].foreign, p .. ": user text became markup")
			end
		end
		post("a", "ann", "hello from a", "enter")
		post("b", "bob", "<img src=x onerror=alert(1)>", "click", true)
		post("a", "ann", "<b>not bold</b> & <script>alert(2)</script>", "enter", true)
		post("b", "李小龍", "你好，世界 🌏 👋🏽 naïve café 🇯🇵", "enter")
		local now = on_pages(b, PAGES, { cmd = "chat" })
		for _, p in ipairs(PAGES) do assert.are.same(sent, now[p].lines, p .. ": newest first, nothing else") end

		-- the server goes away and comes back on the same port
		local port = d.port
		stop_demo(d)
		on_pages(b, PAGES, { cmd = "state", state = "closed" })
		d = start_demo("chat", port)
		on_pages(b, PAGES, { cmd = "state", state = "open", timeout = 10000 }, 20000)
		post("b", "bob", "back again", "click")
		post("a", "ann", "me too", "enter")
		screenshot(b, "a", "chat")
		assert_clean(b, PAGES, d)
		call(b, { cmd = "close" })
	end)

	it("stocks: prices tick, #stop stops them, #start resumes, and a restart is survived", function()
		local d = start_demo("stocks")
		local b = browser()
		for _, p in ipairs(PAGES) do
			assert.are.same({ status = 200, csp = CSP }, call(b, { cmd = "open", page = p, url = d.url }))
		end
		on_pages(b, PAGES, { cmd = "state", state = "open" })
		local ticks = on_pages(b, PAGES, { cmd = "prices", n = 3, ms = 5000 }, 10000)
		for _, p in ipairs(PAGES) do
			local t = ticks[p]
			assert.is_true(t.changes >= 3, ("%s: %d changes in %d ms"):format(p, t.changes, t.ms))
			local moved = 0
			for _, row in ipairs(t.rows) do
				assert.matches("^%d+%.%d%d$", row.text, p .. " " .. row.id)
				if row.cls:find("label%-success") or row.cls:find("label%-danger") then moved = moved + 1 end
				assert.is_falsy(row.cls:find("label%-success") and row.cls:find("label%-danger"), row.cls)
			end
			assert.is_true(moved >= 1, p .. ": no rising or falling price marked")
		end

		call(b, { cmd = "click", page = "a", selector = "#stop" })
		call(b, { cmd = "state", page = "a", state = "stopped" })
		ticks = on_pages(b, PAGES, { cmd = "prices", n = 99, ms = 2500 }, 10000)
		assert.are.equal(0, ticks.a.changes, "a stopped but its prices still change")
		assert.is_true(ticks.b.changes >= 1, "b stopped too")
		call(b, { cmd = "click", page = "a", selector = "#start" })
		call(b, { cmd = "state", page = "a", state = "open" })
		assert.is_true(call(b, { cmd = "prices", page = "a", n = 2, ms = 5000 }, 10000).changes >= 2)

		local port = d.port
		stop_demo(d)
		on_pages(b, PAGES, { cmd = "state", state = "closed" })
		d = start_demo("stocks", port)
		on_pages(b, PAGES, { cmd = "state", state = "open", timeout = 10000 }, 20000)
		ticks = on_pages(b, PAGES, { cmd = "prices", n = 2, ms = 5000 }, 10000)
		for _, p in ipairs(PAGES) do assert.is_true(ticks[p].changes >= 2, p .. " ticks after the restart") end
		screenshot(b, "a", "stocks")
		assert_clean(b, PAGES, d)
		call(b, { cmd = "close" })
	end)
end)
