-- The Socket.IO chatroom: the page in public/ (socket.io-client 2.3.0,
-- served by this server at /socket.io/socket.io.js) and chatroom.lua.
--   bin/lws-lua examples/chatroom/server.lua [--port N] [--host H]
--     [--ping-interval MS] [--ping-timeout MS] [--client 2|4] [--parser json|msgpack] [--quiet]
--     [--redis HOST:PORT] [--workers N] [--tls-cert FILE --tls-key FILE]
-- Prints "listening on http://HOST:PORT/" first (https:// with
-- --tls-cert/--tls-key: the page, polling and wss:// over TLS). Works for 2.x and 4.x
-- clients at once, over websocket, polling and the upgrade.
-- --redis: messages and the online list are shared with every chatroom
-- process using that Redis (run one per machine, or several on one).
-- --workers N: N worker processes on the port (needs --redis to share the
-- room), sticky: each client address always reaches the same worker, so
-- polling sessions work (see the README's "Scaling out").
local lws = require "lws"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local opts = { port = 3000, host = "127.0.0.1" }
local sio_opts = {}
local quiet = false
local opts_redis
local tls = {}
local function number(v, name)
	return assert(math.tointeger(tonumber(v)), name .. " needs a number")
end
local i = 1
while arg[i] do
	local a, v = arg[i], arg[i + 1]
	if a == "--port" then opts.port = number(v, a)
	elseif a == "--host" then opts.host = v
	elseif a == "--ping-interval" then sio_opts.ping_interval = number(v, a)
	elseif a == "--ping-timeout" then sio_opts.ping_timeout = number(v, a)
	elseif a == "--client" then sio_opts.client_version = v
	elseif a == "--parser" then sio_opts.parser = v
	elseif a == "--quiet" then quiet = true; i = i - 1
	elseif a == "--redis" then opts_redis = v
	elseif a == "--workers" then opts.workers = number(v, a); opts.sticky = true
	elseif a == "--tls-cert" and v then tls.cert = v
	elseif a == "--tls-key" and v then tls.key = v
	else
		io.stderr:write("usage: server.lua [--port N] [--host H] [--ping-interval MS] "
			.. "[--ping-timeout MS] [--client 2|4] [--parser json|msgpack] [--quiet] [--redis HOST:PORT] [--workers N] "
			.. "[--tls-cert FILE --tls-key FILE]\n")
		os.exit(2)
	end
	i = i + 2
end

if (tls.cert == nil) ~= (tls.key == nil) then
	io.stderr:write("server.lua: --tls-cert and --tls-key go together\n")
	os.exit(2)
end
opts.tls = tls.cert and tls or nil
if opts.workers and not opts_redis then
	io.stderr:write("server.lua: --workers needs --redis (the workers share the room through it)\n")
	os.exit(2)
end
-- with workers, the supervisor prints the address once, before forking
local server, err = lws.server(opts)   -- nil, why: port in use, unreadable certificate
if not server then
	io.stderr:write("server.lua: ", err, "\n")
	os.exit(1)
end
local bus
if opts_redis then
	local rhost, rport = opts_redis:match("^(.*):(%d+)$")
	bus = lws.bus { redis = { host = rhost or opts_redis, port = tonumber(rport) or 6379 },
		channel = "chatroom" }
end
require("chatroom").serve(server, sio_opts, not quiet and function(line)
	io.stdout:write(line, "\n")
	io.stdout:flush()
end or nil, bus)

if (lws.worker_index and lws.worker_index() or 1) <= 1 then
	io.stdout:write(("listening on %s://%s:%d/\n"):format(opts.tls and "https" or "http", opts.host,
		server:port()))
	io.stdout:flush()
end
lws.run()
