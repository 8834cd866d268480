-- Broadcast chat: the page at /, a WebSocket at /ws. Every valid message
-- goes to every client, the sender included; bad input gets an error reply.
--   bin/lws-lua examples/chat/server.lua [--port 8080] [--host 127.0.0.1]
--     [--tls-cert FILE --tls-key FILE]   (https:// and wss://, PEM files)
local lws = require "lws"
local json = require "lws.json"

local opts = { host = "127.0.0.1", port = 8080, max_message_size = 4096 }
local tls = {}
for i = 1, #arg, 2 do
	local k, v = arg[i], arg[i + 1]
	if k == "--port" and math.tointeger(tonumber(v)) then opts.port = math.tointeger(tonumber(v))
	elseif k == "--host" and v then opts.host = v
	elseif k == "--tls-cert" and v then tls.cert = v
	elseif k == "--tls-key" and v then tls.key = v
	else io.stderr:write("usage: server.lua [--port N] [--host H] [--tls-cert FILE --tls-key FILE]\n") os.exit(2) end
end
if (tls.cert == nil) ~= (tls.key == nil) then
	io.stderr:write("server.lua: --tls-cert and --tls-key go together\n") os.exit(2)
end
opts.tls = tls.cert and tls or nil
local scheme = opts.tls and "https" or "http"
local MAX = { name = 32, message = 500 }   -- characters, not bytes

local server, err = lws.server(opts)   -- nil, why: port in use, unreadable certificate
if not server then io.stderr:write("server.lua: ", err, "\n") os.exit(1) end
server:static("/", (arg[0]:match("^(.*)/") or ".") .. "/public", { headers = {
	["Content-Security-Policy"] = "default-src 'self'; script-src 'self'; style-src 'self'; " ..
		"img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " ..
		"form-action 'none'; frame-ancestors 'none'",
	["Referrer-Policy"] = "no-referrer",
} })

-- A page on another site must not use a visitor's browser to talk to us.
local function same_origin(req)
	local origin = req.headers.origin
	return origin == nil or origin == scheme .. "://" .. tostring(req.headers.host), 403, "cross-origin"
end

-- a non-empty single-line string of at most MAX[key] characters, or nil, why
local function field(msg, key)
	local s = type(msg) == "table" and msg[key]
	if type(s) ~= "string" then return nil, key .. " missing" end
	s = s:gsub("%c", " "):match("^%s*(.-)%s*$")   -- UTF-8 was validated by lws
	if s == "" then return nil, key .. " is empty" end
	if (utf8.len(s) or math.huge) > MAX[key] then
		return nil, ("%s is longer than %d characters"):format(key, MAX[key])
	end
	return s
end

-- Each connection may post 5 messages a second, in bursts of up to 10.
local function allowed(ws)
	local now = lws.now()
	ws.tokens = math.min(10, (ws.tokens or 10) + (now - (ws.last_post or now)) * 5 / 1000)
	ws.last_post = now
	if ws.tokens < 1 then return false end
	ws.tokens = ws.tokens - 1
	return true
end

local function presence()
	server:broadcast(json.encode { type = "presence", online = server:client_count() })
end

server:websocket("/ws", function(ws)
	presence()
	ws:on("close", presence)
	ws:on("message", function(data, binary)
		local msg = not binary and json.try_decode(data)
		local name, problem = field(msg, "name")
		local text
		if name then text, problem = field(msg, "message") end
		if not text then
			ws:send(json.encode { type = "error", error = msg and problem or "expected JSON {name, message}" })
			return
		elseif not allowed(ws) then
			ws:send(json.encode { type = "error", error = "too many messages, slow down" })
			return
		end
		server:broadcast(json.encode { type = "message", name = name, message = text })
	end)
end, { verify = same_origin })

io.stdout:write(("listening on %s://%s:%d/\n"):format(scheme, opts.host, server:port()))
io.stdout:flush()
lws.run()
