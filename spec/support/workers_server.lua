-- A workers = 2 echo server for spec/workers_spec.lua: each reply (and
-- GET /who) says which worker (index and pid) answered.
--   bin/lws-lua spec/support/workers_server.lua [PORT [sticky]]
local lws = require "lws"

local function pid()
	local f = assert(io.open("/proc/self/stat"))
	local p = f:read("a"):match("^(%d+)")
	f:close()
	return p
end

-- arg[2] == "sticky": one client address, one worker
local srv = assert(lws.server { host = "127.0.0.1", port = tonumber(arg[1]) or 0, workers = 2,
	sticky = arg[2] == "sticky" })
srv:get("/who", function(_, res) res:send(("%d:%s"):format(lws.worker_index(), pid()), "text/plain") end)
srv:on("connection", function(ws)
	ws:on("message", function(data) ws:send(("%d:%s:%s"):format(lws.worker_index(), pid(), data)) end)
end)
io.stdout:write(("worker %d pid %s listening on ws://127.0.0.1:%d/\n"):format(lws.worker_index(), pid(), srv:port()))
io.stdout:flush()
lws.run()
