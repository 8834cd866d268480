-- spec/fd_limit_spec.lua's child: lws.configure { max_fds = N } in a process
-- of its own (it sets the process's RLIMIT_NOFILE), then 20 echo clients
local lws = require "lws"
local n = tonumber(arg[1])
if n then lws.configure { max_fds = n } end
local server = assert(lws.server { port = 0, host = "127.0.0.1" })
server:on("connection", function(ws) ws:on("message", function(d) ws:send(d) end) end)
local echoed, clients = 0, {}   -- clients: kept referenced until the end
for i = 1, 20 do
	local c = lws.WebSocket("ws://127.0.0.1:" .. server:port() .. "/")
	c.onopen = function() c:send("m" .. i) end
	c.onmessage = function(e)
		if e.data == "m" .. i then echoed = echoed + 1 end
		if echoed == 20 then lws.stop() end
	end
	clients[i] = c
end
lws.set_timeout(function() lws.stop() end, 5000)
lws.run()
assert(#clients == 20)
local ok, err = pcall(lws.configure, { max_fds = (n or 1000) + 1 })
local soft = io.popen("sh -c 'ulimit -n'"):read("l")
io.stdout:write(("max_fds %s soft %s echoed %d reconfigure %s\n"):format(lws.stats().max_fds, soft,
	echoed, ok and "ok" or err))
