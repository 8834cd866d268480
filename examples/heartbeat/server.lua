-- Heartbeat demo page: the page at /, an echo WebSocket at /ws. The
-- browser runs an application heartbeat ("ping" every 3 s, which the
-- server answers "pong" without bothering the message handler), closes a
-- connection that stopped answering and reconnects with backoff; the server
-- pings every connection itself (protocol heartbeat) and drops the dead.
--   bin/lws-lua examples/heartbeat/server.lua [--port 8080] [--host 127.0.0.1]
local lws = require "lws"

local opts = {
	host = "127.0.0.1", port = 8080, max_message_size = 4096,
	app_heartbeat = { ping = "ping", pong = "pong" },
	heartbeat = { interval = 15000, timeout = 10000 },
}
for i = 1, #arg, 2 do
	local k, v = arg[i], arg[i + 1]
	if k == "--port" and math.tointeger(tonumber(v)) then opts.port = math.tointeger(tonumber(v))
	elseif k == "--host" and v then opts.host = v
	else io.stderr:write("usage: server.lua [--port N] [--host H]\n") os.exit(2) end
end

local server = assert(lws.server(opts))
server:static("/", (arg[0]:match("^(.*)/") or ".") .. "/public", { headers = {
	["Content-Security-Policy"] = "default-src 'self'; script-src 'self'; style-src 'self'; " ..
		"img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " ..
		"form-action 'none'; frame-ancestors 'none'",
	["Referrer-Policy"] = "no-referrer",
} })

server:websocket("/ws", function(ws)
	ws:on("message", function(data, binary) ws:send(data, binary) end)
	ws:on("close", function(code, reason)
		if reason == "heartbeat timeout" then
			io.stdout:write(("dropped a dead connection (%d %s)\n"):format(code, reason))
			io.stdout:flush()
		end
	end)
end)

io.stdout:write(("listening on http://%s:%d/\n"):format(opts.host, server:port()))
io.stdout:flush()
lws.run()
