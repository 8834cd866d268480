-- Heartbeat client: connects to an echo server, pings it (protocol pings,
-- opcode 0x9) every --interval ms and logs each round trip, sends a message
-- every few seconds, and comes back by itself when the server restarts
-- (reconnect with exponential backoff and jitter).
--   bin/lws-lua examples/heartbeat/client.lua --url ws://127.0.0.1:9001/
--     [--interval 1000] [--timeout 2000] [--every 5000]
local lws = require "lws"

local opts = { url = "ws://127.0.0.1:9001/", interval = 1000, timeout = 2000, every = 5000 }
for i = 1, #arg, 2 do
	local k, v = arg[i], arg[i + 1]
	local n = math.tointeger(tonumber(v))
	if k == "--url" and v then opts.url = v
	elseif k == "--interval" and n and n > 0 then opts.interval = n
	elseif k == "--timeout" and n and n > 0 then opts.timeout = n
	elseif k == "--every" and n and n > 0 then opts.every = n
	else
		io.stderr:write("usage: client.lua --url ws://HOST:PORT/ [--interval MS] [--timeout MS] [--every MS]\n")
		os.exit(2)
	end
end

local function log(fmt, ...)
	io.stdout:write(tostring(os.date("%H:%M:%S ")), fmt:format(...), "\n")
	io.stdout:flush()
end

local ws = lws.WebSocket(opts.url, nil, {
	heartbeat = { interval = opts.interval, timeout = opts.timeout },
	reconnect = { min = 250, max = 5000 },
	queue_while_reconnecting = 10,   -- what is sent while down goes out on reconnect
	connect_timeout = 3000,
})

ws:on("open", function() log("open %s", opts.url) end)
ws:on("heartbeat", function(rtt) log("heartbeat rtt %.2f ms", rtt) end)
ws:on("message", function(data) log("echo %q", data) end)
ws:on("error", function(msg) log("error: %s", msg) end)
ws:on("close", function(code, reason, _, reconnecting)
	log("close %d %s%s", code, reason ~= "" and reason or "-", reconnecting and " (will reconnect)" or "")
end)
ws:on("reconnect", function(attempt, delay) log("reconnect attempt %d in %d ms", attempt, delay) end)

local n = 0
lws.set_interval(function()
	n = n + 1
	local ok, err = ws:send(("tick %d"):format(n))
	if not ok then log("not sent: %s", err) end
end, opts.every)

log("connecting to %s (heartbeat every %d ms, dead after %d ms without an answer)", opts.url,
	opts.interval, opts.timeout)
lws.run()
