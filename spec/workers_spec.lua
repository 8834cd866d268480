-- lws.server{ workers = N }: worker processes on one port, supervised.
local H = require "helper"

local read = H.read_file

local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end

describe("workers", function()
	local out, parent
	after_each(function()
		if parent and alive(parent) then os.execute("kill -KILL " .. parent) end
		H.clean()
		if out then os.remove(out) end
	end)

	-- start([sticky]) -> port, workers ({ pid of 1, pid of 2 }), scan()
	-- (re-reads the workers' lines): spec/support/workers_server.lua
	local function start(sticky)
		out = os.tmpname()
		local pidfile = os.tmpname()
		os.execute(("env -u LD_PRELOAD -u LWS_BUILD_DIR %s/bin/lws-lua %s/spec/support/workers_server.lua 0 %s >%s 2>&1 & echo $! >%s")
			:format(H.ROOT, H.ROOT, sticky and "sticky" or "-", out, pidfile))
		parent = tonumber(read(pidfile))
		os.remove(pidfile)
		local workers = {}
		local function scan()
			for idx, pid in read(out):gmatch("worker (%d) pid (%d+) listening") do workers[tonumber(idx)] = pid end
			return workers[1] and workers[2]
		end
		H.run_until(scan, 10000, "two workers", 20)
		return tonumber(read(out):match("ws://127%.0%.0%.1:(%d+)/")), workers, scan
	end

	it("serve one port from two processes, restart a dead one, stop gracefully on SIGTERM", function()
		local port, workers, scan = start()

		-- connections spread over both workers; each answers
		local function answers(n)
			local seen, peers = {}, {}
			for i = 1, n do
				local p = H.node()
				p:cmd { cmd = "connect", url = "ws://127.0.0.1:" .. port .. "/" }
				p:wait("open")
				p:cmd { cmd = "send", data = "hi" .. i, track = false }
				local idx, pid, data = p:wait("message").data:match("^(%d+):(%d+):(.*)$")
				assert.are.equal("hi" .. i, data)
				seen[tonumber(idx)] = pid
				peers[i] = p
			end
			return seen, peers
		end
		local seen, peers = answers(12)
		assert.are.same({ workers[1], workers[2] }, { seen[1], seen[2] })

		-- a worker killed: restarted and serving again
		local old = workers[1]
		os.execute("kill -KILL " .. old)
		H.run_until(function() scan(); return workers[1] ~= old end, 10000, "worker 1 to restart", 20)
		assert.matches("worker 1 %(pid " .. old .. "%) killed by signal 9; restarting", read(out))
		seen = answers(12)
		assert.are.equal(workers[1], seen[1])

		-- SIGTERM to the supervisor: every connection gets 1001, nobody is left
		local remaining = {}
		for _, p in ipairs(peers) do if not p:has("close") then remaining[#remaining + 1] = p end end
		os.execute("kill -TERM " .. parent)
		for _, p in ipairs(remaining) do
			local ev = p:wait("close", 10000)
			assert.are.equal(1001, ev.code)
		end
		H.run_until(function()
			return not alive(parent) and not alive(workers[1]) and not alive(workers[2])
		end, 10000, "the supervisor and its workers to exit", 20)
	end)

	it("send every connection from one client address to the same worker (sticky), across a restart", function()
		local port, workers, scan = start(true)
		-- GET /who from 16 loopback addresses, 3 times each
		local function who(from)
			local r = H.raw(port, from)
			r:send("GET /who HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
			local status, _, body = r:read_response(10000)
			r:close()
			assert.are.equal(200, status)
			return tonumber(body:match("^(%d):"))
		end
		local mapping, used = {}, {}
		for k = 1, 16 do
			local from = "127.0.0." .. (10 + k)
			mapping[from] = who(from)
			used[mapping[from]] = true
			for _ = 1, 2 do assert.are.equal(mapping[from], who(from), from) end
		end
		assert.is_true(used[1] and used[2], "both workers have clients")
		-- a WebSocket from each address lands where its HTTP requests did
		for from, idx in pairs(mapping) do
			local r = H.raw(port, from)
			r:send(H.upgrade_request("/"))
			assert.are.equal(101, (r:read_response(10000)))
			r:send(H.frame(1, "hi", { mask = true }))
			local f = r:read_frame(10000)
			assert.are.equal(tostring(idx), f.payload:match("^(%d):"), from)
			r:close()
		end
		-- worker 1 dies: its addresses wait for the new worker 1, the others
		-- stay where they were
		local old = workers[1]
		os.execute("kill -KILL " .. old)
		H.run_until(function() scan(); return workers[1] ~= old end, 10000, "worker 1 to restart", 20)
		for from, idx in pairs(mapping) do assert.are.equal(idx, who(from), from) end
	end)

	it("refuses sticky without workers", function()
		local lws = require "lws"
		assert.has_error(function() lws.server { port = 0, sticky = true } end, "option 'sticky' needs 'workers'")
	end)

	it("refuses workers once lws is in use", function()
		local lws = require "lws"
		local t = lws.set_timeout(function() end, 1000)
		assert.has_error(function() lws.server { port = 0, workers = 2 } end,
			"'workers' must come before anything else uses lws (a server, client, timer or watch already exists)")
		t:stop()
	end)
end)
