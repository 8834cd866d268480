-- spec/support/wire.lua: the bytes of the protocol as a spec builds and checks
-- them, no sockets: ws_peer.js's payload pattern, base64, the upgrade
-- request, client frames and close payloads, SHA-1. spec/helper.lua installs
-- these into H (H.frame, H.sha1, ...).

return function(H)
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
end
