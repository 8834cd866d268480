-- The `lws` command (bin/lws, lua/lws/cli.lua) as a user runs it: in a
-- real terminal (util-linux `script` gives it a pty) against Node's ws
-- server, and its quick servers against Node's ws client and curl.
local H = require "helper"

local q = H.shell_quote

-- run(args[, input_fifo]) -> job: bin/lws ARGS under `script` in the
-- background; job.output() is what the terminal showed so far, job.rc()
-- its exit status once it has exited (nil before)
local function run(args, with_input)
	local job = { out = os.tmpname(), rcfile = os.tmpname() }
	os.remove(job.rcfile)
	local words = {}
	for i, a in ipairs(args) do words[i] = q(a) end
	local cmd = ("cd %s && exec bin/lws %s"):format(q(H.ROOT), table.concat(words, " "))
	local stdin = "/dev/null"
	if with_input then
		job.fifo = os.tmpname()
		os.remove(job.fifo)
		assert(os.execute("mkfifo " .. q(job.fifo)))
		stdin = job.fifo
	end
	local pidfile = os.tmpname()
	os.execute(("(%s script -qefc %s /dev/null <%s >%s 2>&1; echo $? >%s) & echo $! >%s")
		:format(H.child_env(), q(cmd), q(stdin), q(job.out), q(job.rcfile), q(pidfile)))
	job.pid = tonumber(H.read_file(pidfile):match("%d+"))
	os.remove(pidfile)
	if with_input then job.input = assert(io.open(job.fifo, "w")) end
	function job.type(line)
		job.input:write(line, "\n")
		job.input:flush()
	end
	function job.eof()
		if job.input then job.input:close() job.input = nil end
	end
	function job.output() return ((H.read_file(job.out) or ""):gsub("\r", "")) end
	function job.rc()
		local s = H.read_file(job.rcfile)
		return s and tonumber(s:match("%d+"))
	end
	function job.wait_for(pattern, ms, what)
		local ok = pcall(H.run_until, function() return job.output():find(pattern) end, ms or 10000,
			what or pattern, 20)
		assert(ok, ("waiting for %s; the terminal shows:\n%s"):format(what or pattern, job.output()))
	end
	function job.wait_exit(ms)
		H.run_until(function() return job.rc() ~= nil end, ms or 10000, "lws to exit", 20)
		return job.rc()
	end
	function job.kill()
		job.eof()
		-- (pkill hangs with the ASan runtime preloaded: the plain environment)
		os.execute(H.child_env() .. " pkill -TERM -P " .. job.pid .. " 2>/dev/null")
		os.remove(job.out)
		os.remove(job.rcfile)
		if job.fifo then os.remove(job.fifo) end
	end
	return job
end

describe("the lws command", function()
	local jobs = {}
	local function start(args, with_input)
		local j = run(args, with_input)
		jobs[#jobs + 1] = j
		return j
	end
	after_each(function()
		for _, j in ipairs(jobs) do j.kill() end
		jobs = {}
		H.clean()
	end)

	it("connect: lines typed are sent, messages printed, the server's close code is the exit status", function()
		local p, port = H.node_server()
		local j = start({ "connect", H.ws_url(port, "/chat"), "--header", "X-Token: abc",
			"--subprotocol", "chat.v1", "--origin", "http://example.test" }, true)
		local conn = p:wait("connection", 10000)
		assert.are.equal("/chat", conn.url)
		assert.are.equal("abc", conn.headers["x-token"])
		assert.are.equal("http://example.test", conn.headers.origin)
		j.wait_for("connected to ws://127%.0%.0%.1:%d+/chat %(subprotocol chat%.v1%)")
		j.type("hello from a terminal")
		assert.are.equal("hello from a terminal", p:wait("message").data)
		j.wait_for("< hello from a terminal\n")   -- Node's server echoes
		p:cmd { cmd = "send", data = "pushed by the server" }
		j.wait_for("< pushed by the server\n")
		p:cmd { cmd = "send", b64 = H.base64("\0\1\2\255"), binary = true }
		j.wait_for("< %[binary 4 bytes%] 000102ff\n")
		p:cmd { cmd = "close", code = 4000, reason = "bye" }
		j.wait_for("closed: 4000 bye\n")
		assert.are.equal(3, j.wait_exit())
	end)

	it("connect: the end of input closes with 1000 after the answers, exit status 0; --binary, --ping", function()
		local p, port = H.node_server()
		local j = start({ "connect", H.ws_url(port), "--binary", "--ping", "50" }, true)
		p:wait("connection", 10000)
		j.wait_for("connected to")
		j.type("abc")
		local m = p:wait("message")
		assert.is_true(m.binary)
		j.wait_for("< %[binary 3 bytes%] 616263\n")
		assert.is_not_nil(p:wait("ping"))
		j.wait_for("< pong %(%d+%.%d ms%)\n")
		j.eof()
		assert.are.equal(1000, p:wait("close", 10000).code)
		assert.are.equal(0, j.wait_exit())
	end)

	it("connect: a refused connection is exit status 1 with the reason; bad usage is 2", function()
		local port = H.free_port()
		local j = start({ "connect", H.ws_url(port) })
		assert.are.equal(1, j.wait_exit())
		assert.matches("error: cannot connect to 127%.0%.0%.1:" .. port .. ": connection refused", j.output())
		local u = start({ "connect" })
		assert.are.equal(2, u.wait_exit())
		assert.matches("usage: lws connect URL", u.output())
		local h = start({ "connect", H.ws_url(port), "--header", "no colon" })
		assert.are.equal(2, h.wait_exit())
		assert.matches("%-%-header needs \"Name: value\"", h.output())
	end)

	it("serve --echo and --broadcast answer Node's ws client", function()
		local e = start({ "serve", "--echo", "--port", "0" })
		e.wait_for("listening on ws://127%.0%.0%.1:%d+/ %(echo%)")
		local eport = tonumber(e.output():match(":(%d+)/"))
		local c = H.node_client(eport)
		c:cmd { cmd = "send", data = "ping?" }
		assert.are.equal("ping?", c:wait("message").data)

		local b = start({ "serve", "--broadcast", "--port", "0" })
		b.wait_for("listening on ws://127%.0%.0%.1:%d+/ %(broadcast%)")
		local bport = tonumber(b.output():match(":(%d+)/"))
		local c1, c2 = H.node_client(bport), H.node_client(bport)
		c1:cmd { cmd = "send", data = "to everyone" }
		assert.are.equal("to everyone", c1:wait("message").data)
		assert.are.equal("to everyone", c2:wait("message").data)
	end)

	it("serve --static serves a directory over HTTP (curl) with an echo WebSocket at /ws", function()
		local dir = os.tmpname()
		os.remove(dir)
		assert(os.execute("mkdir " .. q(dir)))
		local f = assert(io.open(dir .. "/hello.txt", "w"))
		f:write("hello, static\n")
		f:close()
		local s = start({ "serve", "--static", dir, "--port", "0" })
		s.wait_for("WebSocket echo at ws://127%.0%.0%.1:%d+/ws%)")
		local port = tonumber(s.output():match(":(%d+)/"))
		local body = io.popen(("%s curl -sf http://127.0.0.1:%d/hello.txt"):format(H.child_env(), port)):read("a")
		assert.are.equal("hello, static\n", body)
		local c = H.node_client(port, { path = "/ws" })
		c:cmd { cmd = "send", data = "echo?" }
		assert.are.equal("echo?", c:wait("message").data)
		os.execute("rm -rf " .. q(dir))
	end)

	it("bench prints round trips per second and percentiles", function()
		local s = start({ "serve", "--port", "0" })
		s.wait_for("listening on")
		local port = tonumber(s.output():match(":(%d+)/"))
		local b = start({ "bench", H.ws_url(port), "--conns", "3", "--messages", "200", "--size", "100" })
		assert.are.equal(0, b.wait_exit(30000))
		local out = b.output()
		assert.matches("3 connections x 200 round trips of 100 bytes: 600 in %d+%.%d+ s\n", out)
		assert.matches("%d+ round trips/s; latency p50 %d+%.%d+ ms, p90 %d+%.%d+ ms, p99 %d+%.%d+ ms", out)
	end)
end)
