-- Stock ticker: the page at /, a WebSocket at /ws. One random walk of
-- prices for everyone; each client says {"stocks":[...]} and gets its
-- symbols' prices about once a second.
--   bin/lws-lua examples/stocks/server.lua [--port 8081] [--host 127.0.0.1]
--     [--tls-cert FILE --tls-key FILE]   (https:// and wss://, PEM files)
local lws = require "lws"
local json = require "lws.json"

local opts = { host = "127.0.0.1", port = 8081, max_message_size = 4096 }
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

-- Prices in cents, so they print with exactly two decimals. Each symbol
-- moves by up to ±1.50 at its own random moments, every 0.5–2.5 s.
local SYMBOLS = { "AAPL", "MSFT", "AMZN", "GOOG", "YHOO" }
local cents = { AAPL = 9500, MSFT = 5000, AMZN = 30000, GOOG = 55000, YHOO = 3500 }
local function walk(symbol)
	cents[symbol] = math.max(1, cents[symbol] + math.random(-150, 150))
	lws.set_timeout(function() walk(symbol) end, math.random(500, 2500))
end
for _, s in ipairs(SYMBOLS) do walk(s) end

local function prices(wanted)
	local out = {}
	for _, s in ipairs(SYMBOLS) do
		if wanted[s] then out[#out + 1] = ('"%s":%d.%02d'):format(s, cents[s] // 100, cents[s] % 100) end
	end
	return "{" .. table.concat(out, ",") .. "}"
end

-- "prices" is a conflation key: an update still queued for a slow reader is
-- replaced by the new one, so it sees fresh prices instead of a backlog.
local function push(ws) ws:send(prices(ws.stocks), false, "prices") end

server:websocket("/ws", function(ws)
	ws:on("message", function(data, binary)
		local req = not binary and json.try_decode(data)
		if type(req) ~= "table" or not json.is_array(req.stocks) then
			ws:send(json.encode { error = 'expected {"stocks":["AAPL",...]}' })
			return
		end
		ws.stocks = {}
		for _, s in ipairs(req.stocks) do
			if cents[s] then ws.stocks[s] = true end
		end
		push(ws)
	end)
end, { verify = same_origin })

lws.set_interval(function()
	for ws in pairs(server.clients) do
		if ws.stocks then push(ws) end
	end
end, 1000)

io.stdout:write(("listening on %s://%s:%d/\n"):format(scheme, opts.host, server:port()))
io.stdout:flush()
lws.run()
