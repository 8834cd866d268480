-- The server of the soak run (bench/soak/run starts it through driver.js).
-- Echoes every message, broadcasts a numbered tick to every client, publishes
-- a numbered "news" item to subscribers (?news=1), answers "#bye" with the
-- last numbers sent before closing with 1000, and raises in its message
-- handler on text starting with "!" (the library must close that one with 1011).
--   bin/lws-lua bench/soak/server.lua --port 0 [--tick-ms 100] [--news-ms 250]
--     [--exit-on-stdin-eof]      (the driver's pipe: exit when the driver dies)
-- GET /stats[?gc=1] answers one line of name=value counters.
local lws = require "lws"

local opts = { port = 0, tick_ms = 100, news_ms = 250, stdin_eof = false }
local i = 1
while arg[i] do
	local a, v = arg[i], arg[i + 1]
	if a == "--port" then opts.port = assert(math.tointeger(tonumber(v)), "--port needs a number")
	elseif a == "--tick-ms" then opts.tick_ms = assert(tonumber(v), "--tick-ms needs a number")
	elseif a == "--news-ms" then opts.news_ms = assert(tonumber(v), "--news-ms needs a number")
	elseif a == "--exit-on-stdin-eof" then opts.stdin_eof = true; i = i - 1
	else
		io.stderr:write("usage: server.lua [--port N] [--tick-ms MS] [--news-ms MS] [--exit-on-stdin-eof]\n")
		os.exit(2)
	end
	i = i + 2
end

local server = assert(lws.server { host = "127.0.0.1", port = opts.port })

-- counters the driver checks: anything refused means a healthy client may
-- have missed a message; unexpected errors are callback errors that are not
-- the planted "!chaos" ones
local n = { tick = 0, news = 0, tick_refused = 0, news_refused = 0, echo_refused = 0,
	bye = 0, chaos = 0, errors = 0, unexpected_errors = 0 }
local first_unexpected

lws.on_error(function(msg)
	n.errors = n.errors + 1
	msg = tostring(msg)
	if not msg:find("soak chaos", 1, true) then
		n.unexpected_errors = n.unexpected_errors + 1
		first_unexpected = first_unexpected or msg
		io.stderr:write("soak server: unexpected error: ", msg, "\n")
	end
end)

-- a tick carries padding of a length derived from its number (0–1020
-- bytes), so the client can check it arrived intact
local PAD = ("0123456789abcdef"):rep(64)
local function pad_len(seq) return (seq * 37) % 1021 end

lws.set_interval(function()
	n.tick = n.tick + 1
	local _, refused = server:broadcast(("#T %d %s"):format(n.tick, PAD:sub(1, pad_len(n.tick))))
	n.tick_refused = n.tick_refused + refused
end, opts.tick_ms)

lws.set_interval(function()
	n.news = n.news + 1
	local _, refused = server:publish("news", ("#N %d"):format(n.news))
	n.news_refused = n.news_refused + refused
end, opts.news_ms)

server:on("connection", function(ws, req)
	if req.query.news == "1" then assert(ws:subscribe("news")) end
	-- the numbers of the last tick and news item this client will not get
	ws:send(("#H %d %d"):format(n.tick, n.news))
	ws:on("message", function(data, binary)
		if not binary then
			local c = data:byte(1)
			if c == 35 and data == "#bye" then   -- '#'
				n.bye = n.bye + 1
				ws:send(("#B %d %d"):format(n.tick, n.news))
				ws:close(1000, "bye")
				return
			elseif c == 33 then                  -- '!'
				n.chaos = n.chaos + 1
				error("soak chaos: " .. data:sub(1, 40))
			end
		end
		if not ws:send(data, binary) then n.echo_refused = n.echo_refused + 1 end
	end)
end)

local function stats_line(gc)
	if gc then collectgarbage("collect"); collectgarbage("collect") end
	local s = server:stats()
	local ls = lws.stats()
	local closes = {}
	for code, k in pairs(s.closes) do closes[#closes + 1] = code .. ":" .. k end
	table.sort(closes)
	local out = {
		"connections=" .. s.connections, "handshakes=" .. s.handshakes,
		"handshakes_refused=" .. s.handshakes_refused,
		"messages_in=" .. s.messages_in, "messages_out=" .. s.messages_out,
		"bytes_in=" .. s.bytes_in, "bytes_out=" .. s.bytes_out,
		"queued_bytes=" .. s.queued_bytes, "dropped=" .. s.dropped,
		"callback_errors=" .. s.callback_errors,
		"closes=" .. (#closes > 0 and table.concat(closes, ",") or "-"),
		"clients=" .. server:client_count(), "subscribers=" .. server:subscribers("news"),
		"lws_connections=" .. ls.connections, "lws_timers=" .. ls.timers,
		"lua_kib=" .. math.floor(collectgarbage("count")),
		"heap_kib=" .. ((ls.heap_in_use or -1024) // 1024), "heap_held_kib=" .. ((ls.heap_held or -1024) // 1024),
	}
	for _, k in ipairs { "tick", "news", "tick_refused", "news_refused", "echo_refused",
		"bye", "chaos", "errors", "unexpected_errors" } do
		out[#out + 1] = k .. "=" .. n[k]
	end
	local line = table.concat(out, " ")
	if first_unexpected then
		line = line .. "\nfirst_unexpected_error: " .. first_unexpected:gsub("\n", " | ")
	end
	return line .. "\n"
end

server:get("/stats", function(req, res)
	res:send(stats_line(req.query.gc == "1"), "text/plain")
end)

local function stop() lws.stop() end
lws.on_signal("SIGTERM", stop)
lws.on_signal("SIGINT", stop)
if opts.stdin_eof then
	-- nothing is ever written to this pipe: readable means the driver is gone
	lws.watch(0, function() if not io.stdin:read(4096) then stop() end end)
end

io.stdout:write(("listening on ws://127.0.0.1:%d/\n"):format(server:port()))
io.stdout:flush()
lws.run()
io.stderr:write("soak server: ", stats_line(false))
