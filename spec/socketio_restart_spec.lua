-- The chatroom example as its own process: every client (2.x and 4.x, on
-- every transport) reconnects by itself and logs in again after the server
-- process is killed and started again on the same port; no DISCONNECT is
-- ever sent, so none of them gives up.
local H = require "helper"
local json = require "lws.json"
local lws = H.lws

local PEER = H.ROOT .. "/spec/peers/sio_peer.js"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local procs = {}

-- start the chatroom server; returns { pid, log } once it listens
local function start_server(port)
	local log = os.tmpname()
	local pidfile = os.tmpname()
	-- the subprocess runs the plain build: no ASan runtime, no valgrind
	os.execute(("cd %s && env -u LD_PRELOAD -u LWS_BUILD_DIR bin/lws-lua examples/chatroom/server.lua "
		.. "--port %d --ping-interval 1000 --ping-timeout 1000 >%s 2>&1 & echo $! >%s")
		:format(shell_quote(H.ROOT), port, shell_quote(log), shell_quote(pidfile)))
	local f = assert(io.open(pidfile))
	local pid = tonumber(f:read("l"))
	f:close()
	os.remove(pidfile)
	local proc = { pid = pid, log = log }
	procs[#procs + 1] = proc
	local first
	-- its stdout is a file: look at it every 20 ms while the loop runs
	local t = lws.set_interval(function()
		local lf = io.open(log)
		if lf then
			first = lf:read("l")
			lf:close()
		end
	end, 20)
	local ok, err = pcall(H.run_until, function()
		return first and first:match("^listening on ") ~= nil
	end, 10000, "the chatroom server to listen")
	t:stop()
	if not ok then
		local lf = io.open(log)
		error(err .. "\n" .. (lf and lf:read("a") or ""))
	end
	proc.port = tonumber(first:match(":(%d+)/$"))
	assert.are.equal("listening on http://127.0.0.1:" .. proc.port .. "/", first)
	return proc
end

local function kill(proc)
	if proc.pid then
		os.execute("kill -9 " .. proc.pid .. " 2>/dev/null")
		proc.pid = nil
	end
	if proc.log then os.remove(proc.log); proc.log = nil end
end

describe("socket.io clients across a server restart", function()
	after_each(function()
		for _, p in ipairs(procs) do kill(p) end
		procs = {}
		H.clean()
	end)

	it("reconnect by themselves and log in again, 2.x and 4.x on every transport", function()
		local server = start_server(0)
		local port = server.port
		local p = H.node(PEER)
		local modes = {
			{ "2", { "websocket" } }, { "2", { "polling" } }, { "2" },
			{ "4", { "websocket" } }, { "4", { "polling" } }, { "4" },
		}
		local function logins_until(count)
			-- every client sees the login that brings the room to `count`
			for i = 1, #modes do
				p:wait("event", 15000, function(e)
					if e.id ~= "c" .. i or e.event ~= "login" then return false end
					return json.decode(e.json)[1].onlineCount == count
				end)
			end
		end
		for i, m in ipairs(modes) do
			p:cmd { cmd = "connect", id = "c" .. i, version = m[1], transports = m[2],
				url = "http://127.0.0.1:" .. port, events = { "login", "logout", "message" },
				reconnectionDelay = 100, reconnectionDelayMax = 300,
				login = { event = "login", argsJson = json.encode(json.array {
					json.object { userid = "u" .. i, username = "user " .. i } }) } }
			p:wait("connect", 10000, function(e) return e.id == "c" .. i end)
		end
		logins_until(#modes)

		kill(server)
		for i = 1, #modes do
			local ev = p:wait("disconnect", 10000, function(e) return e.id == "c" .. i end)
			assert.are_not.equal("io server disconnect", ev.reason)
		end
		p.events = {}
		server = start_server(port)
		assert.are.equal(port, server.port)
		for i = 1, #modes do
			p:wait("connect", 20000, function(e) return e.id == "c" .. i end)
		end
		logins_until(#modes)

		-- and the room works as before
		p:cmd { cmd = "emit", id = "c1", event = "message",
			argsJson = json.encode(json.array { json.object { userid = "u1", content = "back" } }) }
		for i = 1, #modes do
			local ev = p:wait("event", 10000, function(e) return e.id == "c" .. i and e.event == "message" end)
			assert.are.equal("back", json.decode(ev.json)[1].content)
		end
	end)
end)
