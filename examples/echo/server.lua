-- Echo server: every message goes back with its type.
--   bin/lws-lua examples/echo/server.lua --port 9001 [--max-size BYTES] [--host H]
local lws = require "lws"

local opts = { port = 9001, host = "127.0.0.1" }
local i = 1
while arg[i] do
	local a, v = arg[i], arg[i + 1]
	if a == "--port" then opts.port = assert(math.tointeger(tonumber(v)), "--port needs a number")
	elseif a == "--max-size" then opts.max_message_size = assert(math.tointeger(tonumber(v)), "--max-size needs a number")
	elseif a == "--host" then opts.host = v
	else io.stderr:write("usage: server.lua [--port N] [--max-size BYTES] [--host H]\n") os.exit(2) end
	i = i + 2
end

local server = assert(lws.server(opts))
-- one handler for every connection (it gets the connection last): no
-- closure per connection
local function echo(data, is_binary, ws) ws:send(data, is_binary) end
server:on("connection", function(ws) ws:on("message", echo) end)
io.stdout:write(("listening on ws://%s:%d/\n"):format(opts.host, server:port()))
io.stdout:flush()
lws.run()
