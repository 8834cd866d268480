-- lws.configure { max_fds }: the descriptor table lws is created with.
-- libwebsockets 4.1.6 (Debian's, built with _DEBUG) walks that whole table
-- on every socket close (csrc/core.c set_fd_limit), so its size is ours to
-- choose: asked for, or 65,536 (the hard limit if lower), never lowering a
-- limit set with ulimit -n. Each case runs in a process of its own: the
-- option sets the process's RLIMIT_NOFILE.
local H = require "helper"

local function child(args)
	local p = io.popen(("%s %s/bin/lws-lua %s/spec/support/fd_limit_child.lua %s 2>&1")
		:format(H.child_env(), H.ROOT, H.ROOT, args or ""))
	local out = p:read("a")
	p:close()
	return out
end

local function hard_limit()
	return tonumber(io.popen("sh -c 'ulimit -Hn'"):read("l"))
end

describe("max_fds", function()
	it("is the process's descriptor limit, and connections work under it", function()
		local out = child("256")
		assert.are.equal("max_fds 256 soft 256 echoed 20 reconfigure ", out:match("^(max_fds %d+ soft %d+ echoed %d+ reconfigure )"), out)
		assert.truthy(out:find("max_fds is fixed once the context exists", 1, true), out)
	end)

	it("defaults to 65,536 or the hard limit, whichever is lower, and never lowers a limit set before", function()
		local want = math.min(65536, hard_limit())
		local out = child("")
		assert.are.equal(("max_fds %d soft %d echoed 20"):format(want, want), out:match("^(max_fds %d+ soft %d+ echoed %d+)"), out)
		-- a limit set with ulimit -n above the default stays (the shell sets it first)
		if hard_limit() > 1024 then
			local p = io.popen(("sh -c 'ulimit -n %d && env -u LD_PRELOAD -u LWS_BUILD_DIR %s/bin/lws-lua %s/spec/support/fd_limit_child.lua' 2>&1")
				:format(hard_limit(), H.ROOT, H.ROOT))
			local o = p:read("a")
			p:close()
			local got = tonumber(o:match("^max_fds (%d+)"))
			assert.are.equal(math.max(want, hard_limit()), got, o)
		end
	end)

	it("refuses a value out of range at the caller's line", function()
		local lws = require "lws"
		local ok, err = pcall(lws.configure, { max_fds = 10 })
		assert.is_false(ok)
		assert.truthy(tostring(err):find("max_fds", 1, true), err)
	end)
end)

describe("out of descriptors", function()
	it("stops accepting for a while instead of spinning, says so once, and accepts again once some close", function()
		local socket = require "socket"
		local out, pidfile = os.tmpname(), os.tmpname()
		os.execute(("%s %s/bin/lws-lua %s/spec/support/fd_emfile_child.lua >%s 2>&1 & echo $! >%s")
			:format(H.child_env(), H.ROOT, H.ROOT, out, pidfile))
		local pid = tonumber(H.read_file(pidfile))
		os.remove(pidfile)
		local ok, err = pcall(function()
			local port
			H.run_until(function()
				port = tonumber(H.read_file(out):match("port (%d+)"))
				return port ~= nil
			end, 10000, "the child server", 20)
			-- more connections than the child has descriptors for
			local held = {}
			for i = 1, 80 do held[i] = assert(socket.connect("127.0.0.1", port)) end
			H.run_until(function() return H.read_file(out):find("paused", 1, true) ~= nil end,
				10000, "the out-of-descriptors report", 20)
			for i = 1, 60 do held[i]:close() end
			-- accepting again: a WebSocket handshake gets its 101
			local r = H.raw(port)
			r:send(H.upgrade_request("/"))
			assert.are.equal(101, (r:read_response(10000)))
			r:close()
			for i = 61, 80 do held[i]:close() end
			os.execute("kill -TERM " .. pid)
			H.run_until(function() return H.read_file(out):match("reports (%d+)") ~= nil end,
				10000, "the child's count", 20)
			-- once per episode (without the pause: one per loop turn, thousands)
			local n = tonumber(H.read_file(out):match("reports (%d+)"))
			assert.is_true(n >= 1 and n <= 3, "reports: " .. n .. "\n" .. H.read_file(out))
		end)
		os.execute("kill -KILL " .. pid .. " 2>/dev/null")
		os.remove(out)
		assert(ok, err)
	end)
end)
