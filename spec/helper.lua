--[[ spec/helper.lua: the loop driver and the peers every spec uses.

 - H.run_until(pred, ms, what): runs the loop until pred() is true, failing
   the test after ms (scaled by LWS_TEST_SLOW under ASan/valgrind). Never
   sleeps: every wait is on a loop event with a deadline.
 - H.server(opts): lws.server on 127.0.0.1 port 0, closed by H.clean().
 - H.node(): a Node `ws` peer (spec/peers/ws_peer.js) driven over a control
   socket; peer:cmd{...} and peer:wait("open").
 - H.raw(port): a raw TCP client that writes exact bytes (frames built
   with H.frame) and reads server frames (raw:read_frame()).
 - H.clean(): closes what a test made and asserts that no connection,
   server, timer or watch is left behind.
]]
local lws = require "lws"
local core = lws.core
local socket = require "socket"
local cjson = require "cjson"

local H = {}
H.lws = lws
H.SLOW = tonumber(os.getenv("LWS_TEST_SLOW") or "1") or 1
H.ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/helper.lua$") or ".")

local tracked = { servers = {}, peers = {}, raws = {} }

-- Errors reported through lws.on_error during a test (callback errors).
-- A test that looks at H.errors (reads an entry, its length, or replaces
-- it) owns them; H.clean fails a test whose callbacks raised unseen.
local errors_list, errors_seen
local function new_errors()
	local list = {}
	errors_list, errors_seen = list, false
	return setmetatable({}, {
		__index = function(_, k) errors_seen = true; return list[k] end,
		__newindex = function(_, k, v) list[k] = v end,
		__len = function() errors_seen = true; return #list end,
	})
end
H.errors = new_errors()
local errors_proxy = H.errors
lws.on_error(function(msg) errors_list[#errors_list + 1] = msg end)

-- poll_ms: also re-check pred that often (for conditions outside the loop,
-- such as a file another process writes)
function H.run_until(pred, ms, what, poll_ms)
	if pred() then return true end
	ms = (ms or 5000) * H.SLOW
	local timed_out = false
	local t = core.timer(ms, 0, function() timed_out = true; core.stop() end)
	t:unref()
	local tick
	if poll_ms then
		tick = core.timer(poll_ms, poll_ms, function() end)
		tick:unref()
	end
	while not timed_out do
		core.run("once")
		if pred() then break end
	end
	t:stop()
	if tick then tick:stop() end
	if timed_out and not pred() then
		error(("timed out after %d ms waiting for %s"):format(ms, what or "a condition"), 2)
	end
	return true
end

-- Runs the loop for ms whatever happens (to show that something does NOT happen).
function H.run_for(ms)
	local done = false
	local t = core.timer(ms, 0, function() done = true; core.stop() end)
	t:unref()
	while not done do core.run("once") end
	t:stop()
end

function H.server(opts)
	opts = opts or {}
	opts.host = opts.host or "127.0.0.1"
	opts.port = opts.port or 0
	local srv = assert(lws.server(opts))
	tracked.servers[#tracked.servers + 1] = srv
	return srv, srv:port()
end

-- an echo server: every message back with its type
function H.echo_server(opts)
	local srv, port = H.server(opts)
	srv:on("connection", function(ws)
		ws:on("message", function(data, binary) ws:send(data, binary) end)
	end)
	return srv, port
end

--- ws_url(port[, path]) -> "ws://127.0.0.1:PORT/path"
function H.ws_url(port, path) return "ws://127.0.0.1:" .. port .. (path or "/") end

--- free_port() -> a TCP port nobody listens on (bound, then released)
function H.free_port()
	local s = assert(socket.bind("127.0.0.1", 0))
	local _, port = s:getsockname()
	s:close()
	return math.tointeger(tonumber(port))
end

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

--- pattern(size, binary): the payload ws_peer.js generates for {size=…}
function H.pattern(size, binary)
	local block = {}
	if binary then
		for i = 0, 255 do block[#block + 1] = string.char((i * 7 + 3) & 255) end
	else
		for i = 0, 94 do block[#block + 1] = string.char(32 + (i * 11) % 95) end
	end
	block = table.concat(block)
	return string.rep(block, size // #block + 1):sub(1, size)
end

-- base64 (small payloads from the node peer)
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64dec = {}
for i = 1, 64 do b64dec[b64chars:byte(i)] = i - 1 end
function H.unbase64(s)
	local out, bits, nbits = {}, 0, 0
	for i = 1, #s do
		local v = b64dec[s:byte(i)]
		if v then
			bits = (bits << 6) | v
			nbits = nbits + 6
			if nbits >= 8 then
				nbits = nbits - 8
				out[#out + 1] = string.char((bits >> nbits) & 255)
			end
		end
	end
	return table.concat(out)
end
function H.base64(s)
	local out = {}
	for i = 1, #s, 3 do
		local a, b, c = s:byte(i, i + 2)
		local n = (a << 16) | ((b or 0) << 8) | (c or 0)
		for j = 3, 0, -1 do
			local idx = (n >> (6 * j)) & 63
			out[#out + 1] = b64chars:sub(idx + 1, idx + 1)
		end
		if not b then out[#out] = "="; out[#out - 1] = "=" elseif not c then out[#out] = "=" end
	end
	return table.concat(out)
end

---------------------------------------------------------------------------
-- Node peer

local Peer = {}
Peer.__index = Peer

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

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
	for i, v in ipairs(args or {}) do extra[i] = shell_quote(v) end
	os.execute(("env -u LD_PRELOAD node %s %d %s >%s 2>&1 & echo $! >%s"):format(shell_quote(script), cport,
		table.concat(extra, " "), shell_quote(log), shell_quote(pidfile)))
	local f = assert(io.open(pidfile))
	local pid = tonumber(f:read("l"))
	f:close()
	os.remove(pidfile)
	local peer = setmetatable({ pid = pid, log = log, events = {}, buf = "" }, Peer)
	tracked.peers[#tracked.peers + 1] = peer
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

---------------------------------------------------------------------------
-- Raw TCP client writing exact bytes

local Raw = {}
Raw.__index = Raw

-- from: the local address to connect from (127.0.0.0/8 all works)
function H.raw(port, from)
	local s = assert(socket.tcp())
	s:settimeout(5)
	if from then assert(s:bind(from, 0)) end
	assert(s:connect("127.0.0.1", port))
	return H.raw_wrap(s)
end

--- raw_wrap(sock) -> the same raw object over a connected luasocket socket
-- (one a spec accepted: a server that writes exact bytes to our client)
function H.raw_wrap(s)
	s:settimeout(0)
	s:setoption("tcp-nodelay", true)
	local r = setmetatable({ sock = s, buf = "", closed = false }, Raw)
	r.watch = core.watch(s:getfd(), function() r:_read() end)
	tracked.raws[#tracked.raws + 1] = r
	return r
end

function Raw:_read()
	while true do
		local data, err, partial = self.sock:receive(65536)
		data = data or partial
		if data and #data > 0 then self.buf = self.buf .. data end
		if err == "closed" then
			self.closed = true
			if self.watch then self.watch:close(); self.watch = nil end
			return
		end
		if err then return end
	end
end

function Raw:send(bytes)
	local sent = 0
	H.run_until(function()
		local n, err, partial = self.sock:send(bytes, sent + 1)
		sent = n or partial or sent
		if err == "closed" then error("raw socket closed while sending") end
		return sent >= #bytes
	end, 20000, "raw bytes to be sent")
end

function Raw:close()
	if self.watch then self.watch:close(); self.watch = nil end
	if self.sock then self.sock:close(); self.sock = nil end
	self.closed = true
end

function Raw:wait_closed(ms)
	H.run_until(function() return self.closed end, ms or 5000, "the server to close the raw connection")
end

local function random_key()
	local t = {}
	for i = 1, 16 do t[i] = string.char(math.random(0, 255)) end
	return H.base64(table.concat(t))
end
H.random_key = random_key

--- request(path, headers[, method, version]) -> the raw upgrade request
function H.upgrade_request(path, headers, method, version)
	local lines = { ("%s %s %s"):format(method or "GET", path or "/", version or "HTTP/1.1") }
	local h = {
		Host = "127.0.0.1", Upgrade = "websocket", Connection = "Upgrade",
		["Sec-WebSocket-Key"] = random_key(), ["Sec-WebSocket-Version"] = "13",
	}
	for k, v in pairs(headers or {}) do h[k] = v end
	local keys = {}
	for k, v in pairs(h) do if v ~= false then keys[#keys + 1] = k end end
	table.sort(keys)
	for _, k in ipairs(keys) do lines[#lines + 1] = k .. ": " .. h[k] end
	return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

--- read_response([ms[, head]]) -> status, headers (lowercase names), body
-- (head: the answer to a HEAD request has no body whatever its length says)
function Raw:read_response(ms, is_head)
	local head
	H.run_until(function()
		local i = self.buf:find("\r\n\r\n", 1, true)
		if i then
			head = self.buf:sub(1, i + 1)
			self.buf = self.buf:sub(i + 4)
			return true
		end
		return self.closed
	end, ms or 5000, "an HTTP response")
	if not head then return nil, "closed without a response" end
	local status = tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
	local headers = {}
	for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do headers[k:lower()] = v end
	local len = tonumber(headers["content-length"])
	if status == 304 or status == 204 or (status and status < 200) or is_head then len = nil end
	if len then
		H.run_until(function() return #self.buf >= len or self.closed end, ms or 5000, "the body")
		local body = self.buf:sub(1, len)
		self.buf = self.buf:sub(len + 1)
		return status, headers, body
	end
	return status, headers, ""
end

--- handshake(path, headers) -> status, headers (101 leaves a ws stream)
function Raw:handshake(path, headers, method, version)
	self:send(H.upgrade_request(path, headers, method, version))
	return self:read_response()
end

--- frame(opcode, payload[, opts]) -> bytes; opts: fin=false, mask=false,
-- rsv=bits, len=announced length (for lying headers), key={4 bytes}
-- ({0,0,0,0} is a valid key that keeps big payloads cheap to build)
function H.frame(opcode, payload, opts)
	opts = opts or {}
	payload = payload or ""
	local fin = opts.fin == false and 0 or 0x80
	local b1 = fin | ((opts.rsv or 0) << 4) | opcode
	local masked = opts.mask ~= false
	local len = opts.len or #payload
	local hdr
	local mbit = masked and 0x80 or 0
	if len < 126 then
		hdr = string.pack(">BB", b1, mbit | len)
	elseif len < 65536 then
		hdr = string.pack(">BBI2", b1, mbit | 126, len)
	else
		hdr = string.pack(">BBI8", b1, mbit | 127, len)
	end
	if not masked then return hdr .. payload end
	local key = opts.key or { math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255) }
	if key[1] == 0 and key[2] == 0 and key[3] == 0 and key[4] == 0 then
		return hdr .. "\0\0\0\0" .. payload   -- masking with zeros is the identity
	end
	local out = {}
	local chunk = 4096
	for off = 1, #payload, chunk do
		local piece = { payload:byte(off, math.min(off + chunk - 1, #payload)) }
		for i = 1, #piece do
			piece[i] = piece[i] ~ key[((off + i - 2) % 4) + 1]
		end
		out[#out + 1] = string.char(table.unpack(piece))
	end
	return hdr .. string.char(table.unpack(key)) .. table.concat(out)
end

function H.close_payload(code, reason)
	return string.pack(">I2", code) .. (reason or "")
end

--- read_frame([ms]) -> { fin, opcode, payload, rsv } of the next server frame
function Raw:read_frame(ms)
	local frame
	local function parse()
		local b = self.buf
		if #b < 2 then return nil end
		local b1, b2 = b:byte(1, 2)
		local len, off = b2 & 0x7f, 3
		if len == 126 then
			if #b < 4 then return nil end
			len = string.unpack(">I2", b, 3); off = 5
		elseif len == 127 then
			if #b < 10 then return nil end
			len = string.unpack(">I8", b, 3); off = 11
		end
		local key
		if b2 & 0x80 ~= 0 then key = { b:byte(off, off + 3) }; off = off + 4 end
		if #b < off + len - 1 then return nil end
		local payload = b:sub(off, off + len - 1)
		if key then   -- a client's frame (raw_wrap): unmask it
			local t = { payload:byte(1, -1) }
			for i = 1, #t do t[i] = t[i] ~ key[((i - 1) % 4) + 1] end
			payload = string.char(table.unpack(t))
		end
		frame = { fin = b1 & 0x80 ~= 0, rsv = (b1 >> 4) & 7, opcode = b1 & 0x0f,
			payload = payload, masked = key ~= nil }
		self.buf = b:sub(off + len)
		return frame
	end
	H.run_until(function() return parse() or self.closed end, ms or 5000, "a frame from the server")
	if not frame then parse() end
	return frame
end

--- read_request([ms]) -> the head of an HTTP request read from a raw_wrap'ed
-- socket (up to its empty line), the headers table (lower-case names)
function Raw:read_request(ms)
	local head
	H.run_until(function()
		local e = self.buf:find("\r\n\r\n", 1, true)
		if e then head, self.buf = self.buf:sub(1, e + 3), self.buf:sub(e + 4) end
		return head or self.closed
	end, ms or 5000, "an HTTP request")
	if not head then return nil end
	local headers = {}
	for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
		headers[name:lower()] = value
	end
	return head, headers
end

--- sha1(s) -> the 20-byte SHA-1 digest (for Sec-WebSocket-Accept in specs
-- that play the server)
function H.sha1(msg)
	local function rol(x, n) return ((x << n) | (x >> (32 - n))) & 0xffffffff end
	local h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
	local ml = #msg * 8
	msg = msg .. "\128" .. string.rep("\0", (55 - #msg) % 64) .. string.pack(">I8", ml)
	for chunk = 1, #msg, 64 do
		local w = {}
		for i = 0, 15 do w[i] = string.unpack(">I4", msg, chunk + i * 4) end
		for i = 16, 79 do w[i] = rol(w[i - 3] ~ w[i - 8] ~ w[i - 14] ~ w[i - 16], 1) end
		local a, b, c, d, e = h0, h1, h2, h3, h4
		for i = 0, 79 do
			local f, k
			if i < 20 then f, k = (b & c) | ((~b) & d), 0x5A827999
			elseif i < 40 then f, k = b ~ c ~ d, 0x6ED9EBA1
			elseif i < 60 then f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
			else f, k = b ~ c ~ d, 0xCA62C1D6 end
			local t = (rol(a, 5) + (f & 0xffffffff) + e + k + w[i]) & 0xffffffff
			a, b, c, d, e = t, a, rol(b, 30), c, d
		end
		h0, h1, h2, h3, h4 = (h0 + a) & 0xffffffff, (h1 + b) & 0xffffffff, (h2 + c) & 0xffffffff,
			(h3 + d) & 0xffffffff, (h4 + e) & 0xffffffff
	end
	return string.pack(">I4I4I4I4I4", h0, h1, h2, h3, h4)
end

--- read_close([ms]) -> code, reason of the server's Close frame (skipping data)
function Raw:read_close(ms)
	while true do
		local f = self:read_frame(ms)
		if not f then return nil, "connection closed without a close frame" end
		if f.opcode == 8 then
			if #f.payload >= 2 then return string.unpack(">I2", f.payload), f.payload:sub(3) end
			return 1005, ""
		end
	end
end

---------------------------------------------------------------------------
-- Demo servers (examples/<name>/server.lua) in their own processes

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

---------------------------------------------------------------------------
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

---------------------------------------------------------------------------

--- clean(): close everything the test made; assert nothing is left
function H.clean()
	H.stop_demos()
	for _, r in ipairs(redises) do r.stop() end
	redises = {}
	for _, srv in ipairs(tracked.servers) do srv:close(0.5) end
	for _, p in ipairs(tracked.peers) do p:kill() end
	for _, r in ipairs(tracked.raws) do r:close() end
	tracked = { servers = {}, peers = {}, raws = {} }
	local function empty()
		local s = core.stats()
		return s.connections == 0 and s.servers == 0 and s.timers == 0 and s.watches == 0 and
			s.requests == 0 and s.pending == 0
	end
	local ok = pcall(H.run_until, empty, 5000, "every connection and server to close")
	local s = core.stats()
	local unseen = H.errors == errors_proxy and not errors_seen and errors_list[1]
	local nunseen = #errors_list
	H.errors = new_errors()
	errors_proxy = H.errors
	if unseen then
		error(("a callback raised and no assertion looked at it (%d error(s)); the first:\n%s")
			:format(nunseen, unseen), 2)
	end
	if not ok then
		lws.shutdown()
		error(("left behind: %d connections, %d servers, %d timers, %d watches, %d requests")
			:format(s.connections, s.servers, s.timers, s.watches, s.requests), 2)
	end
end

return H
