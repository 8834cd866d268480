-- spec/support/processes.lua: other processes a spec starts, and files:
-- H.demo (examples/<name>/server.lua in its own process), H.redis_server,
-- H.shell_quote, H.child_env, H.read_file, H.gunzip. spec/helper.lua installs
-- them into H; the function it gets back stops the demos and redis servers
-- (H.clean).
local lws = require "lws"
local socket = require "socket"

return function(H)
	local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

	H.shell_quote = shell_quote

	--- gunzip(data) -> what gzip -dc makes of it (a decoder we did not write)
	function H.gunzip(data)
		local path = os.tmpname()
		local f = assert(io.open(path, "wb"))
		f:write(data)
		f:close()
		local p = assert(io.popen("gzip -dc < " .. shell_quote(path)))
		local out = p:read("a")
		p:close()
		os.remove(path)
		return out
	end

	local function read_file(file)
		local f = io.open(file)
		if not f then return "" end
		local s = f:read("a")
		f:close()
		return s
	end
	--- read_file(path) -> its contents ("" when it cannot be read)
	H.read_file = read_file

	-- The demo's own process must not inherit the ASan/valgrind preload of ours;
	-- with only an ASan build there is nothing else to run it against.
	local function child_env()
		if io.open(H.ROOT .. "/build/lws/core.so") then return "env -u LD_PRELOAD -u LWS_BUILD_DIR" end
		return "env"
	end
	-- the environment prefix for a child process of ours (demos, the lws
	-- command): the plain build, not the sanitizer one the specs may run on
	H.child_env = child_env

	-- A demo server in its own process. Its stdout is a TCP connection back to
	-- us: the first line gives the port, end-of-file says the process is gone.
	local demos = {}

	--- demo(name[, port[, args]]) -> { pid, port, url, ws_url }:
	-- examples/<name>/server.lua in its own process, as a user starts it (args:
	-- more command-line arguments); H.clean stops it. url and ws_url are
	-- https:// and wss:// when the demo says it listens on https://.
	function H.demo(name, port, args)
		local ctl = assert(socket.bind("127.0.0.1", 0))
		ctl:settimeout(0)
		local _, cport = ctl:getsockname()
		local d = { name = name, log = os.tmpname(), buf = "" }
		local pidfile = os.tmpname()
		local extra = {}
		for i, v in ipairs(args or {}) do extra[i] = shell_quote(v) end
		-- a name with a slash is a script path from the root (spec/support/…)
		local script = name:find("/", 1, true) and name or "examples/" .. name .. "/server.lua"
		local cmd = ("cd %s && exec %s bin/lws-lua %s --port %d %s >/dev/tcp/127.0.0.1/%d 2>%s")
			:format(shell_quote(H.ROOT), child_env(), shell_quote(script), port or 0, table.concat(extra, " "), cport,
				shell_quote(d.log))
		os.execute(("bash -c %s </dev/null & echo $! >%s"):format(shell_quote(cmd), shell_quote(pidfile)))
		d.pid = tonumber(read_file(pidfile):match("%d+"))
		os.remove(pidfile)
		demos[#demos + 1] = d
		local w = lws.watch(ctl:getfd(), function()
			local c = ctl:accept()
			if c then d.sock = c end
		end)
		local ok, err = pcall(H.run_until, function() return d.sock ~= nil end, 10000, name .. " to start")
		w:close()
		ctl:close()
		if not ok then error(err .. "\n" .. read_file(d.log), 2) end
		d.sock:settimeout(0)
		d.watch = lws.watch(d.sock:getfd(), function()
			local data, rerr, partial = d.sock:receive(4096)
			d.buf = d.buf .. (data or partial or "")
			if rerr == "closed" then
				d.exited = true
				d.watch:close()
				d.watch = nil
			end
		end)
		ok, err = pcall(H.run_until, function() return d.buf:find("\n") or d.exited end, 10000,
			name .. " to print its address")
		local scheme, dport = d.buf:match("^listening on (https?)://127%.0%.0%.1:(%d+)/\n")
		d.port = tonumber(dport)
		if not d.port then error(("%s printed %q\n%s%s"):format(name, d.buf, ok and "" or err, read_file(d.log)), 2) end
		d.tls = scheme == "https"
		d.url = scheme .. "://127.0.0.1:" .. d.port .. "/"
		d.ws_url = (d.tls and "wss" or "ws") .. "://127.0.0.1:" .. d.port .. "/ws"
		return d
	end

	function H.stop_demo(d)
		if d.pid then
			os.execute("kill " .. d.pid .. " 2>/dev/null")
			d.pid = nil
			pcall(H.run_until, function() return d.exited end, 5000, d.name .. " to exit")
		end
		if d.watch then d.watch:close(); d.watch = nil end
		if d.sock then d.sock:close(); d.sock = nil end
		if d.log then os.remove(d.log); d.log = nil end
	end

	function H.stop_demos()
		for _, d in ipairs(demos) do H.stop_demo(d) end
		demos = {}
	end

	-- redis-server on a free loopback port

	local redises = {}

	local function accepting(port)
		local c = socket.tcp()
		c:settimeout(0.2)
		local ok = c:connect("127.0.0.1", port)
		c:close()
		return ok ~= nil
	end

	--- redis_server([port[, extra]]) -> { port, pid, stop() }: a fresh
	-- redis-server (nothing saved; extra: more arguments, e.g. "--requirepass
	-- x"), accepting connections; H.clean stops it
	function H.redis_server(port, extra)
		if not port then
			local s = assert(socket.bind("127.0.0.1", 0))
			local _, p = s:getsockname()
			s:close()
			port = tonumber(p)
		end
		local r = { port = port, log = os.tmpname() }
		local pidfile = os.tmpname()
		os.execute(("env -u LD_PRELOAD redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no " ..
			"--daemonize no %s >%s 2>&1 </dev/null & echo $! >%s"):format(port, extra or "", shell_quote(r.log),
			shell_quote(pidfile)))
		r.pid = tonumber(read_file(pidfile):match("%d+"))
		os.remove(pidfile)
		function r.stop()
			if r.pid then
				os.execute("kill -9 " .. r.pid .. " 2>/dev/null")
				r.pid = nil
				pcall(H.run_until, function() return not accepting(port) end, 5000, "redis-server to stop", 20)
			end
			if r.log then os.remove(r.log); r.log = nil end
		end
		redises[#redises + 1] = r
		local ok, err = pcall(H.run_until, function() return accepting(port) end, 10000,
			"redis-server to accept connections", 20)
		if not ok then error(err .. "\n" .. read_file(r.log), 2) end
		return r
	end

	H.has_redis = os.execute("command -v redis-server >/dev/null 2>&1") and true or false

	return function()
		H.stop_demos()
		for _, r in ipairs(redises) do r.stop() end
		redises = {}
	end
end
