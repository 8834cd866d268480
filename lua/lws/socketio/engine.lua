--[[ lws.socketio.engine: Engine.IO 3 and 4 sessions on an lws server.

Owns the transports (HTTP long-polling, WebSocket, and the upgrade from
one to the other), the heartbeat and the session lifetime; hands whole
messages (text or binary) to the layer above and takes packets from it.

Design criteria:
 - EIO 3 (socket.io-client 1.x/2.x) and EIO 4 (3.x/4.x) side by side:
   the version is fixed per session at the handshake (EIO=4 is v4,
   anything else v3, as engine.io does).
 - One timer per session does the whole heartbeat. v3: the client pings,
   the session dies pingInterval + pingTimeout after the last ping, on
   every transport and across the upgrade (engine.io 6.6 loses this timer
   on upgrade). v4: the server pings every pingInterval and waits
   pingTimeout for the pong. The same timer closes a session left
   "closing" and enforces connectTimeout.
 - Polling: one held GET and one POST per session (a second GET is an
   error: 400 and the session closes); the held GET is answered as soon
   as packets are queued, with everything queued. Error answers are
   engine.io's (400 + {"code","message"}, 403, 413).
 - Upgrade: the probe websocket answers 2probe with 3probe and releases
   a held GET with a noop; nothing goes to the websocket before the
   client's 5, then the buffer is flushed to it in order.
 - A session on a websocket writes straight to it (ws:send keeps order);
   broadcast() writes one shared buffer to many (core.send_many).
]]
local core = require "lws.core"
local emitter = require "lws.emitter"
local parser = require "lws.socketio.parser"

local M = {}

local byte, sub = string.byte, string.sub
local send_many = core.send_many

local ERRORS = {
	[0] = "Transport unknown", [1] = "Session ID unknown", [2] = "Bad handshake method",
	[3] = "Bad request", [4] = "Forbidden", [5] = "Unsupported protocol version",
}
M.ERRORS = ERRORS

---------------------------------------------------------------------------
-- ids: 15 random bytes, base64url (engine.io's base64id: 20 characters)

-- the pool belongs to one process: a worker forked after it was filled
-- (lws.server{ workers }) must not hand out its parent's ids
local random_pool, random_pos, random_owner = "", 1, nil
local function random_bytes(n)
	local owner = core.worker_index()
	if random_pos + n - 1 > #random_pool or owner ~= random_owner then
		random_owner = owner
		local f = io.open("/dev/urandom", "rb")
		if f then
			random_pool = f:read(15 * 256)
			f:close()
		else
			local t = {}
			for i = 1, 15 * 256 do t[i] = string.char(math.random(0, 255)) end
			random_pool = table.concat(t)
		end
		random_pos = 1
	end
	local s = sub(random_pool, random_pos, random_pos + n - 1)
	random_pos = random_pos + n
	return s
end

function M.generate_id()
	return (parser.base64(random_bytes(15)):gsub("[+/]", { ["+"] = "-", ["/"] = "_" }))
end

---------------------------------------------------------------------------
-- calling user code: report errors through lws.on_error, never unwind
-- through the protocol state machine

local function report(err)
	core.report("socket.io: " .. tostring(err))
end
local traceback = debug.traceback
local function checked(ok, ...)
	if not ok then report((...)) end
	return ok, ...
end
function M.call(fn, ...)
	return checked(xpcall(fn, traceback, ...))
end

local function fire(obj, event, ...)
	return M.call(emitter.emit, obj, event, ...)
end

---------------------------------------------------------------------------
-- the session

local Session = {}
Session.__index = Session
Session.__name = "lws.socketio.session"
emitter.mixin(Session)
M.Session = Session

function Session.__tostring(s)
	return ("lws.socketio.session (%s, %s, EIO %d, %s)"):format(s.id, s.transport, s.protocol,
		s.state)
end

local function close_packet(s)
	return s.protocol == 3 and "1:1" or "1"
end

-- headers every polling answer gets
local function poll_headers(eng, req)
	local h = eng:cors_headers(req)
	h[#h + 1] = { "Cache-Control", "no-store" }
	return h
end

local function respond(res, status, body, ctype, headers)
	res:status(status)
	if headers then
		for _, kv in ipairs(headers) do res:header(kv[1], kv[2]) end
	end
	return res:send(body, ctype)
end

-- the held GET: answered with everything queued (or one packet given)
function Session:_answer_get(packets)
	local res, req = self.get_res, self.get_req
	self.get_res, self.get_req = nil, nil
	local body, ctype = parser.encode_payload(packets, self.protocol, self.supports_binary)
	local headers = poll_headers(self.engine, req)
	-- httpCompression: gzip what is big enough, when the client takes it
	local hc = self.engine.opts.http_compression
	if hc and #body >= hc.threshold then
		local ae = req.headers["accept-encoding"]
		if ae and ae:lower():find("gzip", 1, true) then
			body = core.gzip(body, hc.level)
			headers[#headers + 1] = { "Content-Encoding", "gzip" }
			headers[#headers + 1] = { "Vary", "Accept-Encoding" }
		end
	end
	respond(res, 200, body, ctype, headers)
end

function Session:flush()
	if self.get_res and #self.buf > 0 then
		local buf = self.buf
		self.buf = {}
		self:_answer_get(buf)
	end
end

-- writes an Engine.IO packet (string "4…", or { bin = bytes })
function Session:send(p)
	if self.state ~= "open" then return false end
	local traffic = self.engine.on_traffic   -- sio:instrument's counts (admin.lua)
	if traffic and (type(p) == "table" or byte(p, 1) == 52) then
		traffic("out", 1, type(p) == "table" and #p.bin or #p - 1)
	end
	if self.direct then
		local ws = self.ws
		if type(p) == "table" then
			if self.protocol == 3 then ws:send("\4" .. p.bin, true) else ws:send(p.bin, true) end
		else
			ws:send(p)
		end
		return true
	end
	local buf = self.buf
	buf[#buf + 1] = p
	if self.get_res then self:flush() end
	return true
end

--- writable() -> can a packet leave now (volatile packets are dropped otherwise)
function Session:writable()
	return self.state == "open" and (self.direct or self.get_res ~= nil)
end

-- the heartbeat timer
function Session:_start_heartbeat()
	local o = self.engine.opts
	if self.protocol == 3 then
		self.timer = core.timer(o.ping_interval + o.ping_timeout, 0, function() self:_on_timer() end)
	else
		self.timer = core.timer(o.ping_interval, 0, function() self:_on_timer() end)
	end
end

function Session:_on_timer()
	local o = self.engine.opts
	if self.state == "closing" then return self:close("forced close") end
	if self.state ~= "open" then return end
	if self.protocol == 3 then return self:close("ping timeout") end
	if self.awaiting_pong then return self:close("ping timeout") end
	if self.connect_deadline and core.now() >= self.connect_deadline then
		self.connect_deadline = nil
		if self.on_connect_timeout then M.call(self.on_connect_timeout, self) end
		if self.state ~= "open" then return end
	end
	self.awaiting_pong, self.refreshed = true, false
	self:send("2")
	self.timer:again(o.ping_timeout)
end

-- a packet from the client (string with its type digit, or { bin = })
function Session:_on_packet(p)
	if self.state ~= "open" then return end
	local o = self.engine.opts
	local traffic = self.engine.on_traffic   -- sio:instrument's counts (admin.lua)
	if traffic and (type(p) == "table" or byte(p, 1) == 52) then
		traffic("in", 1, type(p) == "table" and #p.bin or #p - 1)
	end
	if type(p) == "table" then
		if self.awaiting_pong and not self.refreshed then
			self.refreshed = true
			self.timer:again(o.ping_timeout)
		end
		if self.on_message then return self.on_message(p.bin, true) end
		return
	end
	local t = byte(p, 1)
	if self.awaiting_pong and not self.refreshed and t ~= 51 then
		-- a busy client whose pong waits behind data gets one extension
		self.refreshed = true
		self.timer:again(o.ping_timeout)
	end
	if t == 52 then          -- message
		if self.on_message then return self.on_message(sub(p, 2), false) end
	elseif t == 50 then      -- ping
		if self.protocol ~= 3 then return self:close("transport error", "invalid heartbeat direction") end
		self.timer:again(o.ping_interval + o.ping_timeout)
		self:send("3" .. sub(p, 2))
		fire(self, "heartbeat")
	elseif t == 51 then      -- pong
		if self.protocol == 3 then return self:close("transport error", "invalid heartbeat direction") end
		if self.awaiting_pong then
			self.awaiting_pong = false
			self.timer:again(o.ping_interval)
		end
		fire(self, "heartbeat")
	elseif t == 49 then      -- close
		return self:close("transport close")
	elseif t < 48 or t > 54 then
		return self:close("parse error")
	end
	-- open, upgrade, noop: nothing to do on the current transport
end

--- close(reason[, description]): ends the session now. The held GET gets
-- a close packet, the websocket is closed (dropped for a ping timeout).
function Session:close(reason, description)
	if self.state == "closed" then return end
	self.state = "closed"
	if self.timer then self.timer:stop() end
	if self.upgrade_timer then self.upgrade_timer:stop(); self.upgrade_timer = nil end
	local eng = self.engine
	if eng.sessions[self.id] == self then
		eng.sessions[self.id] = nil
		eng.count = eng.count - 1
	end
	if self.get_res then self:_answer_get({ close_packet(self) }) end
	self.buf = {}
	if self.probe then
		local probe = self.probe
		self.probe = nil
		probe:close()
	end
	local ws = self.ws
	if ws and ws.readyState == 1 then
		if reason == "ping timeout" then ws:terminate("ping timeout") else ws:close() end
	end
	self.direct = false
	if self.on_close then M.call(self.on_close, reason, description) end
	fire(self, "close", reason, description)
	emitter.off(self)
end

-- a close the server asked for: queued packets leave first, then the
-- transport closes ("forced close")
function Session:close_gracefully()
	if self.state ~= "open" then return end
	if self.transport == "websocket" then return self:close("forced close") end
	self.buf[#self.buf + 1] = close_packet(self)
	if self.get_res then
		local buf = self.buf
		self.buf = {}
		self:_answer_get(buf)
		return self:close("forced close")
	end
	-- no GET held: the next one takes the rest and the close packet
	self.state = "closing"
	self.timer:again(self.engine.opts.close_timeout)
end

---------------------------------------------------------------------------
-- polling requests

function Session:_on_poll(req, res)
	if self.get_res then
		-- engine.io: "overlap from client"; the new GET gets 400, the session ends
		respond(res, 400, "", "text/html", self.engine:cors_headers(req))
		return self:close("transport error", "overlap from client")
	end
	self.get_res, self.get_req = res, req
	local o = self.engine.opts
	res:set_timeout(math.ceil((o.ping_interval + o.ping_timeout) / 1000) + 5)
	res:on("abort", function()
		if self.get_res == res then
			self.get_res, self.get_req = nil, nil
			self:close("transport error", "poll connection closed prematurely")
		end
	end)
	if self.state == "closing" then
		local buf = self.buf
		self.buf = {}
		self:_answer_get(buf)
		return self:close("forced close")
	elseif #self.buf > 0 then
		self:flush()
	elseif self.probing then
		self:_answer_get({ "6" })    -- the upgrade is under way: release the client
	end
end

function Session:_on_data(req, res)
	local eng = self.engine
	local ctype = req.headers["content-type"]
	local is_binary = ctype ~= nil and ctype:lower():match("^%s*application/octet%-stream") ~= nil
	if is_binary and self.protocol == 4 then
		respond(res, 400, "", "text/html", eng:cors_headers(req))
		return self:close("transport error", "invalid content")
	end
	local body = req.body or ""
	if #body > eng.opts.max_http_buffer_size then
		return respond(res, 413, "", "text/html", eng:cors_headers(req))
	end
	local packets, err = parser.decode_payload(body, self.protocol, is_binary)
	if packets then
		for _, p in ipairs(packets) do
			if self.state ~= "open" then break end
			self:_on_packet(p)
		end
	end
	respond(res, 200, "ok", "text/html", poll_headers(eng, req))
	if err and self.state == "open" then self:close("parse error", err) end
end

---------------------------------------------------------------------------
-- websockets

local function ws_packet(s, data, is_binary)
	if #data > s.engine.opts.max_http_buffer_size then return nil, "message too big" end
	if is_binary then
		if s.protocol == 3 then
			if byte(data, 1) ~= 4 then return nil, "binary packet that is not a message" end
			data = sub(data, 2)
		end
		return { bin = data }
	end
	return data
end

function Session:_attach_ws(ws)
	self.ws = ws
	self.transport = "websocket"
	self.direct = true
	ws:on("message", function(data, is_binary)
		if self.ws ~= ws then return end
		local p, err = ws_packet(self, data, is_binary)
		if not p then
			if err == "message too big" then
				ws:close(1009, "message too big")
				return self:close("transport error", err)
			end
			return self:close("parse error", err)
		end
		self:_on_packet(p)
	end)
	ws:on("close", function()
		if self.ws == ws then self:close("transport close") end
	end)
end

function Session:_start_probe(ws)
	self.probe = ws
	self.upgrade_timer = core.timer(self.engine.opts.upgrade_timeout, 0, function()
		self.upgrade_timer = nil
		self:_cancel_probe()
	end)
	ws:on("message", function(data, is_binary)
		if self.probe ~= ws then return end
		if not is_binary and data == "2probe" then
			ws:send("3probe")
			self.probing = true
			if self.get_res and #self.buf == 0 then self:_answer_get({ "6" }) end
			fire(self, "upgrading")
		elseif not is_binary and data == "5" and self.state ~= "closed" then
			-- also when closing: the client already moved to this websocket,
			-- so what is queued for it (a DISCONNECT) must go there
			self:_finish_upgrade(ws)
		else
			self:_cancel_probe()
		end
	end)
	ws:on("close", function()
		if self.probe == ws then
			self.probe, self.probing = nil, false
			if self.upgrade_timer then self.upgrade_timer:stop(); self.upgrade_timer = nil end
		end
	end)
end

function Session:_cancel_probe()
	local ws = self.probe
	if not ws then return end
	self.probe, self.probing = nil, false
	if self.upgrade_timer then self.upgrade_timer:stop(); self.upgrade_timer = nil end
	ws:close()
end

function Session:_finish_upgrade(ws)
	if self.upgrade_timer then self.upgrade_timer:stop(); self.upgrade_timer = nil end
	self.probe, self.probing = nil, false
	self.upgraded = true
	ws:off()   -- the connection's method: lws.server keeps its message fast path in sync
	local closing = self.state == "closing"
	local buf = self.buf
	self.buf = {}
	if closing then
		self.state = "open"
		if buf[#buf] == close_packet(self) then buf[#buf] = nil end   -- the ws close says it
	end
	if self.get_res then self:_answer_get({ "6" }) end
	self:_attach_ws(ws)
	for _, p in ipairs(buf) do self:send(p) end
	if closing then return self:close("forced close") end
	if self.protocol == 3 then
		-- the client's next ping is due within pingInterval of its last one
		local o = self.engine.opts
		self.timer:again(o.ping_interval + o.ping_timeout)
	end
	fire(self, "upgrade", "websocket")
end

---------------------------------------------------------------------------
-- the engine

local Engine = {}
Engine.__index = Engine
M.Engine = Engine

local function protocol_of(q)
	return q.EIO == "4" and 4 or 3
end

function Engine:cors_headers(req)
	local h = {}
	local c = self.opts.cors
	if not c then return h end
	local origin = req.headers.origin
	local allow
	local o = c.origin
	if o == nil or o == "*" then
		allow = "*"
	elseif o == true then
		allow = origin
	elseif type(o) == "string" then
		allow = o
	elseif type(o) == "table" then
		for _, v in ipairs(o) do if v == origin then allow = origin end end
	elseif type(o) == "function" then
		local ok, yes = M.call(o, origin, req)
		allow = ok and yes and origin or nil
	end
	if allow then h[#h + 1] = { "Access-Control-Allow-Origin", allow } end
	if allow ~= "*" then h[#h + 1] = { "Vary", "Origin" } end
	if c.credentials then h[#h + 1] = { "Access-Control-Allow-Credentials", "true" } end
	if c.exposed_headers then h[#h + 1] = { "Access-Control-Expose-Headers", c.exposed_headers } end
	return h
end

function Engine:_error(res, req, code, message)
	local h = self:cors_headers(req)
	local body = ('{"code":%d,"message":%s}'):format(code,
		require("lws.json").encode(message or ERRORS[code]))
	return respond(res, code == 4 and 403 or 400, body, "application/json", h)
end

function Engine:_preflight(req, res)
	local c = self.opts.cors
	local h = self:cors_headers(req)
	h[#h + 1] = { "Access-Control-Allow-Methods", c.methods or "GET,HEAD,PUT,PATCH,POST,DELETE" }
	local ah = c.allowed_headers or req.headers["access-control-request-headers"]
	if ah then h[#h + 1] = { "Access-Control-Allow-Headers", ah } end
	if c.max_age then h[#h + 1] = { "Access-Control-Max-Age", tostring(c.max_age) } end
	return respond(res, 204, "", nil, h)
end

function Engine:_new_session(req, protocol, transport)
	local s = setmetatable({
		engine = self, id = M.generate_id(), protocol = protocol, transport = transport,
		state = "open", buf = {}, request = req, remote_address = req.remote_address,
		-- b64 is only on the handshake request (engine.io-client 3.x)
		supports_binary = not req.query.b64, created = core.now(),
	}, Session)
	self.sessions[s.id] = s
	self.count = self.count + 1
	return s
end

function Engine:_open_packet(s)
	local o = self.opts
	local upgrades = (s.transport == "polling" and o.allow_upgrades and o.transports.websocket)
		and '["websocket"]' or "[]"
	return ('0{"sid":"%s","upgrades":%s,"pingInterval":%d,"pingTimeout":%d,"maxPayload":%d}')
		:format(s.id, upgrades, o.ping_interval, o.ping_timeout, o.max_http_buffer_size)
end

-- handshake checks common to both transports: nil or code, message
function Engine:_check_handshake(req)
	if self.closed then return 3 end
	local protocol = protocol_of(req.query)
	if protocol == 3 and not self.opts.allow_eio3 then return 5 end
	if self.opts.allow_request then
		local ok, allowed, msg = M.call(self.opts.allow_request, req)
		if not ok or not allowed then return 4, msg or ERRORS[4] end
	end
	return nil
end

function Engine:handle_http(req, res)
	local q = req.query
	if req.method == "OPTIONS" and self.opts.cors then return self:_preflight(req, res) end
	if q.transport ~= "polling" or not self.opts.transports.polling then
		return self:_error(res, req, 0)
	end
	local sid = q.sid
	if sid then
		local s = self.sessions[sid]
		if not s then return self:_error(res, req, 1) end
		if s.transport ~= "polling" or s.protocol ~= protocol_of(q) then
			return self:_error(res, req, 3)
		end
		if req.method == "GET" then return s:_on_poll(req, res) end
		if req.method == "POST" then return s:_on_data(req, res) end
		return respond(res, 500, "", "text/html", self:cors_headers(req))
	end
	if req.method ~= "GET" then return self:_error(res, req, 2) end
	local code, msg = self:_check_handshake(req)
	if code then return self:_error(res, req, code, msg) end
	local s = self:_new_session(req, protocol_of(q), "polling")
	s:_on_poll(req, res)
	s:send(self:_open_packet(s))
	s:_start_heartbeat()
	if self.on_session then M.call(self.on_session, s) end
end

-- the websocket endpoint's verify hook: true | false, status, message
function Engine:verify_upgrade(req)
	local q = req.query
	if q.transport ~= "websocket" or not self.opts.transports.websocket then
		return false, 400, ERRORS[0]
	end
	local sid = q.sid
	if sid then
		local s = self.sessions[sid]
		if not s then return false, 400, ERRORS[1] end
		if s.protocol ~= protocol_of(q) or s.transport ~= "polling" or s.probe or s.upgraded
			or not self.opts.allow_upgrades then
			return false, 400, ERRORS[3]
		end
		return true
	end
	local code, msg = self:_check_handshake(req)
	if code then return false, 400, msg or ERRORS[code] end
	return true
end

function Engine:handle_ws(ws, req)
	local sid = req.query.sid
	if sid then
		local s = self.sessions[sid]
		if not s or s.state ~= "open" or s.probe or s.transport ~= "polling" then
			return ws:close()
		end
		return s:_start_probe(ws)
	end
	local s = self:_new_session(req, protocol_of(req.query), "websocket")
	s:_attach_ws(ws)
	s:send(self:_open_packet(s))
	s:_start_heartbeat()
	if self.on_session then M.call(self.on_session, s) end
end

--- broadcast(targets, text, attachments): one Engine.IO message (text,
-- then its binary attachments) to every session in targets (an array).
-- Sessions on a websocket share one buffer per frame.
function Engine.broadcast(targets, text, attachments, volatile)
	local frame = text and "4" .. text   -- nil: binary messages only (the msgpack parser)
	local traffic = targets[1] and targets[1].engine.on_traffic   -- sio:instrument (admin.lua)
	if traffic then
		local packets, bytes = text and 1 or 0, text and #text or 0
		for _, a in ipairs(attachments or {}) do packets, bytes = packets + 1, bytes + #a.bin end
		local n = 0
		for i = 1, #targets do if targets[i].state == "open" then n = n + 1 end end
		traffic("out", n * packets, n * bytes)
	end
	local all, v3, v4
	local nws = 0
	for i = 1, #targets do
		local s = targets[i]
		if s.direct and s.state == "open" then
			all = all or {}
			all[s.ws] = true
			nws = nws + 1
			if attachments then
				if s.protocol == 3 then v3 = v3 or {}; v3[s.ws] = true
				else v4 = v4 or {}; v4[s.ws] = true end
			end
		elseif not volatile or s:writable() then
			local buf = s.buf
			if s.state == "open" then
				if frame then buf[#buf + 1] = frame end
				if attachments then
					for _, a in ipairs(attachments) do buf[#buf + 1] = a end
				end
				if s.get_res then s:flush() end
			end
		end
	end
	if nws > 0 then
		if frame then send_many(all, frame, false) end
		if attachments then
			for _, a in ipairs(attachments) do
				if v3 then send_many(v3, "\4" .. a.bin, true) end
				if v4 then send_many(v4, a.bin, true) end
			end
		end
	end
end

--- close_all(reason): every session ends (server shutdown)
function Engine:close_all(reason)
	local list = {}
	for _, s in pairs(self.sessions) do list[#list + 1] = s end
	for _, s in ipairs(list) do s:close(reason) end
end

local defaults = {
	path = "/socket.io", ping_interval = 25000, ping_timeout = 20000, upgrade_timeout = 10000,
	max_http_buffer_size = 1e6, allow_upgrades = true, allow_eio3 = true,
	close_timeout = 30000,
}
M.defaults = defaults

--- new(server, opts) -> engine, serving opts.path on server (routes for
-- polling, a websocket endpoint for the rest)
function M.new(srv, opts)
	local o = {}
	for k, v in pairs(defaults) do o[k] = v end
	for k, v in pairs(opts) do o[k] = v end
	local tr = {}
	for _, name in ipairs(o.transports or { "polling", "websocket" }) do
		if name ~= "polling" and name ~= "websocket" then
			error("unknown transport '" .. tostring(name) .. "'", 3)
		end
		tr[name] = true
	end
	o.transports = tr
	-- httpCompression as Socket.IO: on, for polling answers of 1024 bytes up
	local hc = o.http_compression
	if hc == nil or hc == true then hc = {} end
	if hc then
		if type(hc) ~= "table" then error("option 'http_compression' must be a boolean or a table", 3) end
		hc = { threshold = hc.threshold or 1024, level = hc.level or 6 }
		if type(hc.threshold) ~= "number" or type(hc.level) ~= "number" or hc.level < 1 or hc.level > 9 then
			error("option 'http_compression' needs a numeric threshold and a level of 1..9", 3)
		end
	end
	o.http_compression = hc
	o.max_http_buffer_size = math.tointeger(o.max_http_buffer_size) or math.floor(o.max_http_buffer_size)
	local path = o.path:gsub("/+$", "") .. "/"
	o.path = path
	local self = setmetatable({ srv = srv, opts = o, sessions = {}, count = 0 }, Engine)
	srv:route("*", path, function(req, res) return self:handle_http(req, res) end)
	srv:websocket(path, function(ws, req) return self:handle_ws(ws, req) end, {
		verify = function(req) return self:verify_upgrade(req) end,
	})
	return self
end

return M
