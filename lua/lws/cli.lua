--[[ lws.cli: the `lws` command (bin/lws, installed by the rock), in the
spirit of wscat and websocat.

  lws connect URL [--binary] [--header "Name: value"]... [--subprotocol P]...
                  [--origin O] [--insecure] [--ca FILE] [--ping MS] [--wait MS]
      Lines typed are sent (as binary with --binary), messages printed:
      "< text", binary as "< [binary N bytes] hex…". At the end of input
      the connection closes with 1000 once the server has been quiet for
      --wait ms (default 500: the answers to what was piped in arrive). Exit status: 0 after a close with 1000 or 1001, 1 when
      the connection cannot be opened, 3 after any other close code (the
      code and reason are printed), 2 for bad usage.
  lws serve [--echo | --broadcast | --static DIR] [--port N] [--host H]
            [--tls-cert FILE --tls-key FILE]
      A quick server: every message back (--echo, the default), to every
      client (--broadcast), or the files of DIR over HTTP, with an echo
      WebSocket at /ws (--static). Prints "listening on URL".
  lws bench URL [--conns N] [--messages M] [--size BYTES]
      N connections (default 10) each doing M (default 1000) strict round
      trips of BYTES (default 32) against an echo server; prints round
      trips per second and the latency percentiles.
]]
local lws = require "lws"

local M = {}

local USAGE = [[
usage: lws connect URL [--binary] [--header "Name: value"]... [--subprotocol P]...
                       [--origin O] [--insecure] [--ca FILE] [--ping MS] [--wait MS]
       lws serve [--echo | --broadcast | --static DIR] [--port N] [--host H]
                 [--tls-cert FILE --tls-key FILE]
       lws bench URL [--conns N] [--messages M] [--size BYTES]
]]

local function out(...)
	io.stdout:write(...)
	io.stdout:flush()
end

local function err(...)
	io.stderr:write(...)
	io.stderr:flush()
end

-- parse(argv, from, flags) -> opts, positional | nil, message
-- flags[name] = "flag" | "value" | "list" | "number"
local function parse(argv, from, flags)
	local o, pos, i = {}, {}, from
	while argv[i] do
		local a = argv[i]
		local name = a:match("^%-%-([%w-]+)$")
		if name then
			local kind = flags[name]
			if not kind then return nil, "unknown option --" .. name end
			if kind == "flag" then
				o[name] = true
				i = i + 1
			else
				local v = argv[i + 1]
				if v == nil then return nil, "--" .. name .. " needs a value" end
				if kind == "number" then
					v = math.tointeger(tonumber(v))
					if not v or v < 0 then return nil, "--" .. name .. " needs a whole number" end
					o[name] = v
				elseif kind == "list" then
					o[name] = o[name] or {}
					o[name][#o[name] + 1] = v
				else
					o[name] = v
				end
				i = i + 2
			end
		else
			pos[#pos + 1] = a
			i = i + 1
		end
	end
	return o, pos
end

local function hex(s, max)
	local n = math.min(#s, max)
	return (s:sub(1, n):gsub(".", function(c) return ("%02x"):format(c:byte()) end)) .. (#s > n and "…" or "")
end

---------------------------------------------------------------------------
-- connect

local function connect(argv)
	local o, pos = parse(argv, 2, {
		binary = "flag", header = "list", subprotocol = "list", origin = "value",
		insecure = "flag", ca = "value", ping = "number", wait = "number",
	})
	if not o then err("lws connect: ", pos, "\n", USAGE) return 2 end
	if #pos ~= 1 then err(USAGE) return 2 end
	local headers = {}
	for _, h in ipairs(o.header or {}) do
		local k, v = h:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
		if not k then err("lws connect: --header needs \"Name: value\", got ", h, "\n") return 2 end
		headers[k] = v
	end
	local ok, ws = pcall(lws.WebSocket, pos[1], o.subprotocol, {
		headers = headers, origin = o.origin, insecure = o.insecure, ca = o.ca,
	})
	if not ok then err("lws connect: ", tostring(ws):gsub("^[^:]+:%d+: ", ""), "\n") return 2 end
	local status, opened, stdin_watch, ping_timer, quiet = 0, false, nil, nil, nil
	local wait = o.wait or 500
	-- end of input: close once the server has said nothing for `wait` ms
	local function close_when_quiet()
		if quiet then lws.clear(quiet) end
		quiet = lws.set_timeout(function() ws:close(1000, "") end, wait)
	end
	local ping_sent = {}

	ws:on("open", function()
		opened = true
		out("connected to ", pos[1], ws.protocol ~= "" and (" (subprotocol " .. ws.protocol .. ")") or "",
			"; lines you type are sent, Ctrl-D closes\n")
		-- stdin: one line per readable event (a terminal hands over whole lines)
		stdin_watch = lws.watch(0, function()
			local line = io.stdin:read("L")
			if not line then
				stdin_watch:close()
				stdin_watch = nil
				close_when_quiet()
				return
			end
			local sent, why = ws:send((line:gsub("\r?\n$", "")), o.binary)
			if not sent then err("not sent: ", tostring(why), "\n") end
		end)
		if o.ping and o.ping > 0 then
			local n = 0
			ping_timer = lws.set_interval(function()
				n = n + 1
				ping_sent[tostring(n)] = lws.now()
				ws:ping(tostring(n))
			end, o.ping)
		end
	end)
	ws:on("message", function(data, binary)
		if quiet then close_when_quiet() end
		if binary then
			out("< [binary ", #data, " bytes] ", hex(data, 64), "\n")
		else
			out("< ", data, "\n")
		end
	end)
	ws:on("pong", function(payload)
		local at = ping_sent[payload]
		ping_sent[payload] = nil
		out("< pong", at and (" (%.1f ms)"):format(lws.now() - at) or "", "\n")
	end)
	ws:on("error", function(message)
		err("error: ", message, "\n")
		if not opened then status = 1 end
	end)
	ws:on("close", function(code, reason)
		if stdin_watch then stdin_watch:close() end
		if ping_timer then lws.clear(ping_timer) end
		if quiet then lws.clear(quiet) end
		if opened then
			out("closed: ", code, reason ~= "" and (" " .. reason) or "", "\n")
			status = (code == 1000 or code == 1001) and 0 or 3
		end
		lws.stop()
	end)
	lws.run()
	return status
end

---------------------------------------------------------------------------
-- serve

local function serve(argv)
	local o, pos = parse(argv, 2, {
		echo = "flag", broadcast = "flag", static = "value", port = "number", host = "value",
		["tls-cert"] = "value", ["tls-key"] = "value",
	})
	if not o then err("lws serve: ", pos, "\n", USAGE) return 2 end
	if #pos ~= 0 or (o.echo and o.broadcast) or (not o["tls-cert"]) ~= (not o["tls-key"]) then
		err(USAGE) return 2
	end
	local opts = { host = o.host or "127.0.0.1", port = o.port or 0 }
	if o["tls-cert"] then opts.tls = { cert = o["tls-cert"], key = o["tls-key"] } end
	local srv, why = lws.server(opts)
	if not srv then err("lws serve: ", why, "\n") return 1 end
	local function on_connection(ws)
		ws:on("message", function(data, binary)
			if o.broadcast then srv:broadcast(data, binary) else ws:send(data, binary) end
		end)
	end
	local tls = opts.tls and "s" or ""
	local host = opts.host:find(":", 1, true) and ("[" .. opts.host .. "]") or opts.host
	if o.static then
		local ok, e = pcall(srv.static, srv, "/", o.static)
		if not ok then err("lws serve: ", tostring(e):gsub("^[^:]+:%d+: ", ""), "\n") return 2 end
		srv:websocket("/ws", on_connection)
		out(("listening on http%s://%s:%d/ (WebSocket echo at ws%s://%s:%d/ws)\n")
			:format(tls, host, srv:port(), tls, host, srv:port()))
	else
		srv:on("connection", on_connection)
		out(("listening on ws%s://%s:%d/ (%s)\n"):format(tls, host, srv:port(), o.broadcast and "broadcast" or "echo"))
	end
	lws.on_signal("SIGINT", function() srv:close() lws.stop() end)
	lws.on_signal("SIGTERM", function() srv:close() lws.stop() end)
	lws.run()
	return 0
end

---------------------------------------------------------------------------
-- bench

local function percentile(sorted, p)
	if #sorted == 0 then return 0 end
	local i = math.max(1, math.min(#sorted, math.ceil(#sorted * p)))
	return sorted[i]
end

local function bench(argv)
	local o, pos = parse(argv, 2, { conns = "number", messages = "number", size = "number" })
	if not o then err("lws bench: ", pos, "\n", USAGE) return 2 end
	if #pos ~= 1 then err(USAGE) return 2 end
	local conns, messages, size = o.conns or 10, o.messages or 1000, o.size or 32
	if conns < 1 or messages < 1 then err("lws bench: --conns and --messages must be at least 1\n") return 2 end
	local payload = string.rep("x", size)
	local rtts, done, failed, started = {}, 0, nil, nil
	local clients = {}
	for i = 1, conns do
		local ok, ws = pcall(lws.WebSocket, pos[1])
		if not ok then err("lws bench: ", tostring(ws):gsub("^[^:]+:%d+: ", ""), "\n") return 2 end
		clients[i] = ws
		local left, sent_at = messages, 0
		local function next_one()
			sent_at = lws.now()
			ws:send(payload)
		end
		ws:on("open", function()
			started = started or lws.now()
			next_one()
		end)
		ws:on("message", function(data)
			if #data ~= size then failed = failed or "an echo of the wrong size" end
			rtts[#rtts + 1] = lws.now() - sent_at
			left = left - 1
			if left > 0 then next_one() return end
			done = done + 1
			ws:close()
			if done == conns then lws.stop() end
		end)
		ws:on("error", function(message) failed = failed or message end)
		ws:on("close", function() if failed then lws.stop() end end)
	end
	lws.run()
	for _, ws in ipairs(clients) do ws:terminate() end
	if failed then err("lws bench: ", failed, "\n") return 1 end
	local secs = (lws.now() - started) / 1000
	table.sort(rtts)
	out(("%d connections x %d round trips of %d bytes: %d in %.2f s\n"):format(conns, messages, size, #rtts, secs))
	out(("%.0f round trips/s; latency p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n"):format(
		#rtts / secs, percentile(rtts, 0.5), percentile(rtts, 0.9), percentile(rtts, 0.99), rtts[#rtts]))
	return 0
end

--- main(argv) -> exit status
function M.main(argv)
	local cmd = argv[1]
	if cmd == "connect" then return connect(argv)
	elseif cmd == "serve" then return serve(argv)
	elseif cmd == "bench" then return bench(argv)
	elseif cmd == "--help" or cmd == "-h" or cmd == "help" then out(USAGE) return 0
	end
	err(USAGE)
	return 2
end

return M
