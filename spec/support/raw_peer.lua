-- spec/support/raw_peer.lua: a raw TCP peer that writes exact bytes and
-- reads what comes back: H.raw(port) connects, H.raw_wrap(sock) wraps an
-- accepted socket; raw:send, raw:handshake, raw:read_response, raw:read_frame,
-- raw:read_close, raw:read_request. spec/helper.lua installs them into H;
-- the function it gets back closes the sockets (H.clean).
local core = require("lws").core
local socket = require "socket"

return function(H)
	local raws = {}

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
		raws[#raws + 1] = r
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

	return function()
		for _, r in ipairs(raws) do r:close() end
		raws = {}
	end
end
