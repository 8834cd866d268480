-- The chatroom page in Chromium (spec/peers/sio_browser.js): two and three
-- pages, the online list going up and down, user text shown as text, the
-- page's Content-Security-Policy met, nothing requested off 127.0.0.1, and
-- the page logging in again by itself when the server comes back.
local H = require "helper"

package.path = H.ROOT .. "/examples/chatroom/?.lua;" .. package.path
local chatroom = require "chatroom"
local BROWSER = H.ROOT .. "/spec/peers/sio_browser.js"

local T = 15000   -- page-side waits (scaled like ours)

local function browser()
	local b = H.node(BROWSER)
	return b
end

local function quit(b)
	if b and not b.dead then
		b:cmd { cmd = "exit" }
		pcall(H.run_until, function() return b.dead end, 10000, "the browser to quit")
	end
end

-- send a command, wait for its reply (or the browser's cmd-error)
local function cmd(b, t, reply, ms)
	b:cmd(t)
	local found
	local ok, err = pcall(H.run_until, function()
		for i, e in ipairs(b.events) do
			if (e.ev == reply and e.id == t.id) or e.ev == "cmd-error" then
				found = table.remove(b.events, i)
				return true
			end
		end
		return b.dead
	end, ms or 2 * T, "the browser's '" .. reply .. "'")
	if not ok or not found then error((err or "the browser exited") .. "\n" .. b:read_log(), 2) end
	if found.ev == "cmd-error" then error("browser: " .. found.cmd .. ": " .. found.message, 2) end
	return found
end

local function count(b, id, n)
	return cmd(b, { cmd = "count", id = id, n = n, timeout = T * H.SLOW }, "count")
end

local function state(b, id)
	return cmd(b, { cmd = "state", id = id }, "state")
end

-- allowed: console messages that are fine on this page (the server going
-- away on purpose)
local function clean_page(st, allowed)
	assert.are.same({}, st.offsite, "requests off 127.0.0.1")
	local problems = {}
	for _, m in ipairs(st.problems) do
		if not (allowed and allowed[m]) then problems[#problems + 1] = m end
	end
	assert.are.same({}, problems, "console errors, CSP violations or dialogs")
	local ws = 0
	for _, url in ipairs(st.requests) do
		assert.is_truthy(url:match("^http://127%.0%.0%.1:%d+/") or url:match("^ws://127%.0%.0%.1:%d+/"), url)
		if url:match("^ws://127%.0%.0%.1:%d+/socket%.io/%?EIO=%d&transport=websocket&sid=") then ws = ws + 1 end
	end
	-- polling first, then the upgrade (the page's CSP allows it)
	assert.is_true(ws > 0, "the page never upgraded to a websocket")
end

describe("the chatroom page in Chromium", function()
	local b
	after_each(function()
		quit(b)
		b = nil
		H.clean()
	end)

	it("shows the online list going 1 -> 2 -> 3 and back, renders text as text", function()
		local srv, port = H.server()
		local _, room = chatroom.serve(srv)
		local url = "http://127.0.0.1:" .. port .. "/"
		b = browser()
		local opened = cmd(b, { cmd = "open", id = "a", url = url }, "opened")
		assert.are.equal(200, opened.status)
		assert.are.equal(chatroom.csp, opened.csp)
		cmd(b, { cmd = "login", id = "a", name = "Ann" }, "logged-in")
		count(b, "a", 1)
		local st = state(b, "a")
		assert.is_true(st.loginHidden)
		assert.is_false(st.chatHidden)
		assert.are.equal("Ann", st.showusername)
		assert.are.equal("Online now: 1 — Ann", st.onlinecount)

		cmd(b, { cmd = "open", id = "b", url = url }, "opened")
		cmd(b, { cmd = "login", id = "b", name = "Bob", click = true }, "logged-in")
		count(b, "a", 2)
		count(b, "b", 2)
		-- a page on the 4.x client, same server, same room
		cmd(b, { cmd = "open", id = "c", url = url, v4 = true }, "opened")
		cmd(b, { cmd = "login", id = "c", name = "Cy <4.x>" }, "logged-in")
		for _, id in ipairs { "a", "b", "c" } do count(b, id, 3) end
		assert.are.equal(3, room.count)

		local evil = '<img src=x onerror=alert(1)><b>bold</b> & <script>alert(2)</script>'
		cmd(b, { cmd = "say", id = "b", text = evil }, "said")
		cmd(b, { cmd = "say", id = "a", text = "hi from Ann", click = true }, "said")
		-- a: 3 notices (Ann, Bob, Cy joined) + 2 messages
		cmd(b, { cmd = "sections", id = "a", n = 5, timeout = T * H.SLOW }, "sections")
		cmd(b, { cmd = "sections", id = "c", n = 3, timeout = T * H.SLOW }, "sections")
		st = state(b, "a")
		local secs = st.sections
		assert.are.equal("system", secs[1].cls)
		assert.are.equal("Ann joined the chatroom", secs[1].text)
		assert.are.equal("Cy <4.x> joined the chatroom", secs[3].text)
		assert.are.equal("service", secs[4].cls)
		assert.are.equal("Bob" .. evil, secs[4].text)
		assert.are.equal("user", secs[5].cls)
		assert.are.equal("hi from Ann" .. "Ann", secs[5].text)
		assert.are.equal(0, st.injected, "user text became markup")
		assert.are.equal("Online now: 3 — Ann, Bob, Cy <4.x>", st.onlinecount)
		clean_page(st)
		st = state(b, "c")
		assert.are.equal("Bob" .. evil, st.sections[2].text)
		assert.are.equal(0, st.injected)
		clean_page(st)

		cmd(b, { cmd = "close", id = "c" }, "closed")
		count(b, "a", 2)
		count(b, "b", 2)
		cmd(b, { cmd = "close", id = "b" }, "closed")
		count(b, "a", 1)
		st = state(b, "a")
		assert.are.equal("Online now: 1 — Ann", st.onlinecount)
		assert.are.equal("Bob left the chatroom", st.sections[#st.sections].text)
		assert.are.equal("system", st.sections[#st.sections].cls)
		clean_page(st)
		assert.are.equal("websocket", st.transport)
		H.run_until(function() return room.count == 1 end, 5000, "the server to see them go")
		assert.are.same({}, H.errors)
	end)

	it("runs on socket.io.msgpack.min.js with parser = \"msgpack\" (the bundle the server then serves)", function()
		local srv, port = H.server()
		local _, room = chatroom.serve(srv, { parser = "msgpack" })
		local url = "http://127.0.0.1:" .. port .. "/"
		b = browser()
		cmd(b, { cmd = "open", id = "a", url = url }, "opened")
		cmd(b, { cmd = "login", id = "a", name = "Ann" }, "logged-in")
		cmd(b, { cmd = "open", id = "b", url = url }, "opened")
		cmd(b, { cmd = "login", id = "b", name = "Bob <b>" }, "logged-in")
		count(b, "a", 2)
		count(b, "b", 2)
		assert.are.equal(2, room.count)
		cmd(b, { cmd = "say", id = "b", text = "hi € 😀 \30" }, "said")
		cmd(b, { cmd = "sections", id = "a", n = 3, timeout = T * H.SLOW }, "sections")
		local st = state(b, "a")
		assert.are.equal("Bob <b>hi € 😀 \30", st.sections[3].text)
		assert.are.equal("Online now: 2 — Ann, Bob <b>", st.onlinecount)
		assert.are.equal(0, st.injected)
		clean_page(st)
		local js = false
		for _, u in ipairs(st.requests) do js = js or u:match("/socket%.io/socket%.io%.js$") ~= nil end
		assert.is_true(js)
		cmd(b, { cmd = "close", id = "b" }, "closed")
		count(b, "a", 1)
		assert.are.same({}, H.errors)
	end)

	it("logs in again by itself when the server comes back", function()
		local srv, port = H.server()
		chatroom.serve(srv, { ping_interval = 1000, ping_timeout = 1000 })
		local url = "http://127.0.0.1:" .. port .. "/"
		b = browser()
		cmd(b, { cmd = "open", id = "a", url = url }, "opened")
		cmd(b, { cmd = "login", id = "a", name = "Ann" }, "logged-in")
		cmd(b, { cmd = "open", id = "c", url = url, v4 = true }, "opened")
		cmd(b, { cmd = "login", id = "c", name = "Cy" }, "logged-in")
		count(b, "a", 2)
		-- the server goes away and a new one (knowing nobody) takes the port
		local closed = false
		srv:on("close", function() closed = true end)
		srv:close(0.2)
		H.run_until(function() return closed end, 5000, "the server to close")
		local srv2 = H.server { port = port }
		local _, room = chatroom.serve(srv2)
		H.run_until(function() return room.count == 2 end, 30000, "both pages to log in again")
		count(b, "a", 2)
		count(b, "c", 2)
		local st = state(b, "a")
		assert.is_true(st.connected)
		-- the 2.x client library (engine.io-client 3) may still write to the
		-- socket the old server closed, and Chromium says so on the console
		-- (seen when the machine is busy: the page has not seen the close yet)
		local late = { ["console: WebSocket is already in CLOSING or CLOSED state. (" .. url ..
			"socket.io/socket.io.js)"] = true }
		clean_page(st, late)
		clean_page(state(b, "c"), late)
		assert.are.same({}, H.errors)
	end)
end)
