-- Child of spec/loop_backend_spec.lua: an echo server on whichever loop
-- LWS_LUA_LOOP selects. Once `conns` echo connections are open, under that
-- load: for WINDOW ms a chain of 20 ms one-shot timers, each armed from a
-- message callback after the previous one fired; for the next WINDOW ms a
-- 50 ms interval; and from the start, the close of the "/silent"
-- connection, whose peer never answers, so the server's 5 s close_timeout
-- (an lws timeout of the wsi) ends it. Then one JSON line: the loop, one-shots fired and the latest
-- one's lateness (and how many were over 10 ms late), interval ticks, echoes, when the silent connection's
-- "close" came (-1: never). The ends are seen from the echo traffic, never
-- from a timer, so starved timers show as missing counts, not as a hang.
--   bin/lws-lua spec/support/loop_backend_server.lua CONNS WINDOW_MS
local lws = require "lws"

local want, window = tonumber(arg[1]), tonumber(arg[2])
local srv = assert(lws.server { port = 0, close_timeout = 5 })
local open, silent, started, close_ms = 0, nil, nil, nil
local r = { echoes = 0, shots = 0, late = 0, late_10 = 0, ticks = 0 }
local armed, interval = false, nil

local function report()
	r.loop, r.close_ms = lws.stats().loop, close_ms or -1
	io.stdout:write(lws.json.encode(r), "\n")
	io.stdout:flush()
	os.exit(0)
end

local function start()
	started = lws.now()
	local t0 = lws.now()
	silent:on("close", function() close_ms = lws.now() - t0 end)
	silent:close(1000, "bye")
end

local function on_load()
	local t = lws.now() - started
	r.echoes = r.echoes + 1
	if t < window then
		if not armed then
			armed = true
			local due = lws.now() + 20
			lws.set_timeout(function()
				r.shots, armed = r.shots + 1, false
				local late = lws.now() - due
				r.late = math.max(r.late, late)
				if late > 10 then r.late_10 = r.late_10 + 1 end
			end, 20)
		end
	elseif t < 2 * window then
		if not interval then
			interval = lws.set_interval(function() r.ticks = r.ticks + 1 end, 50)
		end
	else
		if interval then interval:stop(); interval = nil end
		if close_ms or t >= 9000 then report() end
	end
end

srv:on("connection", function(ws, req)
	if req.path == "/silent" then
		silent = ws
		return
	end
	open = open + 1
	ws:on("message", function(data, is_binary)
		ws:send(data, is_binary)
		if started then
			on_load()
		elseif open >= want and silent then
			start()
		end
	end)
end)
io.stdout:write(("port %d loop %s\n"):format(srv:port(), lws.stats().loop))
io.stdout:flush()
lws.run()
