-- spec/fd_limit_spec.lua's child: a server with room for few descriptors
-- (lws.configure { max_fds = 64 }) that the spec fills; SIGTERM ends it
-- with a count of the out-of-descriptors reports it got
local lws = require "lws"
lws.configure { max_fds = 64 }
local reports = 0
lws.on_error(function(msg)
	if msg:find("out of file descriptors", 1, true) then
		reports = reports + 1
		io.stdout:write("paused\n")
		io.stdout:flush()
	end
end)
local server = assert(lws.server { port = 0, host = "127.0.0.1" })
server:on("connection", function(ws) ws:on("message", function(d) ws:send(d) end) end)
lws.on_signal("SIGTERM", function() lws.stop() end)
io.stdout:write(("port %d\n"):format(server:port()))
io.stdout:flush()
lws.run()
io.stdout:write(("reports %d\n"):format(reports))
io.stdout:flush()
