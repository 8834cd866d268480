-- spec/support/node_peer.lua: Node peers driven over a control socket
-- (spec/peers/control.js): H.node(script) starts one, peer:cmd{...} sends a
-- command, peer:wait(name) waits for an event; H.node_connect, H.node_client
-- and H.node_server for the ws client and server peers. spec/helper.lua
-- installs them into H; the function it gets back kills the peers (H.clean).
local core = require("lws").core
local socket = require "socket"
local cjson = require "cjson"

return function(H)
	local peers = {}

	--- node_connect(port[, opts]) -> a Node ws client peer (spec/peers/ws_peer.js)
	-- connecting to our server; opts go with the connect command (path, url,
	-- protocols, …). node_client(port): the same, once it is open.
	function H.node_connect(port, opts)
		local p = H.node()
		opts = opts or {}
		opts.cmd = "connect"
		opts.url = opts.url or H.ws_url(port, opts.path)
		opts.path = nil
		p:cmd(opts)
		return p
	end

	function H.node_client(port, opts)
		local p = H.node_connect(port, opts)
		p:wait("open")
		return p
	end

	--- node_server([opts]) -> peer, port: Node's ws server (spec/peers/ws_server.js)
	function H.node_server(opts)
		local p = H.node(H.ROOT .. "/spec/peers/ws_server.js")
		opts = opts or {}
		opts.cmd, opts.port = "listen", opts.port or 0
		p:cmd(opts)
		return p, math.tointeger(p:wait("listening").port)
	end

	local Peer = {}
	Peer.__index = Peer

	--- node([script[, args]]) -> peer, started and connected to its control
	-- socket (args: more command-line arguments, after the control port)
	function H.node(script, args)
		script = script or (H.ROOT .. "/spec/peers/ws_peer.js")
		local ctl = assert(socket.bind("127.0.0.1", 0))
		ctl:settimeout(0)
		local _, cport = ctl:getsockname()
		local log = os.tmpname()
		local pidfile = os.tmpname()
		local extra = {}
		for i, v in ipairs(args or {}) do extra[i] = H.shell_quote(v) end
		os.execute(("env -u LD_PRELOAD node %s %d %s >%s 2>&1 & echo $! >%s"):format(H.shell_quote(script), cport,
			table.concat(extra, " "), H.shell_quote(log), H.shell_quote(pidfile)))
		local f = assert(io.open(pidfile))
		local pid = tonumber(f:read("l"))
		f:close()
		os.remove(pidfile)
		local peer = setmetatable({ pid = pid, log = log, events = {}, buf = "" }, Peer)
		peers[#peers + 1] = peer
		local w = core.watch(ctl:getfd(), function()
			local c = ctl:accept()
			if c then peer.sock = c end
		end)
		local ok, err = pcall(H.run_until, function() return peer.sock ~= nil end, 15000, "node peer to start")
		w:close()
		ctl:close()
		if not ok then error(err .. "\n" .. peer:read_log(), 2) end
		peer.sock:settimeout(0)
		peer.sock:setoption("tcp-nodelay", true)
		peer.watch = core.watch(peer.sock:getfd(), function() peer:_read() end)
		peer:wait("ready")
		return peer
	end

	function Peer:read_log()
		local f = io.open(self.log)
		if not f then return "" end
		local s = f:read("a")
		f:close()
		return s
	end

	function Peer:_read()
		while true do
			local data, err, partial = self.sock:receive(65536)
			data = data or partial
			if data and #data > 0 then self.buf = self.buf .. data end
			if err == "closed" then
				self.dead = true
				if self.watch then self.watch:close(); self.watch = nil end
				break
			end
			if not data or #data == 0 or err then break end
		end
		while true do
			local i = self.buf:find("\n", 1, true)
			if not i then break end
			local line = self.buf:sub(1, i - 1)
			self.buf = self.buf:sub(i + 1)
			local ev = cjson.decode(line)
			if ev.b64 then ev.bytes = H.unbase64(ev.b64) end
			self.events[#self.events + 1] = ev
		end
	end

	function Peer:cmd(t)
		local line = cjson.encode(t) .. "\n"
		local sent = 0
		H.run_until(function()
			local n, err, partial = self.sock:send(line, sent + 1)
			sent = n or partial or sent
			if err and err ~= "timeout" then error("control socket: " .. err) end
			return sent >= #line
		end, 10000, "control command to be sent")
		return self
	end

	--- wait(name[, ms[, pred]]) -> the first queued event called name (removed)
	function Peer:wait(name, ms, pred)
		local found
		local ok, err = pcall(H.run_until, function()
			for i, ev in ipairs(self.events) do
				if ev.ev == name and (not pred or pred(ev)) then
					found = table.remove(self.events, i)
					return true
				end
			end
			return self.dead
		end, ms or 5000, "node event '" .. name .. "'")
		if not ok then
			local seen = {}
			for _, ev in ipairs(self.events) do seen[#seen + 1] = ev.ev .. (os.getenv("DBG") and cjson.encode(ev) or "") end
			error(err .. " (queued: " .. table.concat(seen, ",") .. ")\n" .. self:read_log(), 2)
		end
		if not found then error("node peer exited waiting for '" .. name .. "'\n" .. self:read_log(), 2) end
		return found
	end

	--- has(name) -> is such an event queued (without waiting)
	function Peer:has(name)
		for _, ev in ipairs(self.events) do if ev.ev == name then return ev end end
	end

	function Peer:kill()
		if self.watch then self.watch:close(); self.watch = nil end
		if self.sock then self.sock:close(); self.sock = nil end
		if self.pid then os.execute("kill -9 " .. self.pid .. " 2>/dev/null"); self.pid = nil end
		if self.log then os.remove(self.log); self.log = nil end
	end

	-- stop (SIGSTOP) / continue (SIGCONT) the peer process: a silent peer
	function Peer:signal(sig)
		os.execute(("kill -%s %d"):format(sig, self.pid))
	end

	return function()
		for _, p in ipairs(peers) do p:kill() end
		peers = {}
	end
end
