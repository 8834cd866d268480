--[==[ spec/support/run.lua: run(argv[, stdin[, ms]]) -> stdout, stderr, exit
status of a program in its own process (without our ASan preload), waited
for on the loop, so a server in this process keeps answering it: its stdout
comes back over a TCP connection whose end says it is done (the status file
is written before that end). ]==]
local H = require "helper"
local lws = require "lws"
local socket = require "socket"

local q = H.shell_quote

return function(argv, stdin, ms)
	local ctl = assert(socket.bind("127.0.0.1", 0))
	ctl:settimeout(0)
	local _, cport = ctl:getsockname()
	local errf, rcf, inf = os.tmpname(), os.tmpname(), os.tmpname()
	local f = assert(io.open(inf, "wb"))
	f:write(stdin or "")
	f:close()
	local words = {}
	for i, a in ipairs(argv) do words[i] = q(a) end
	local cmd = ("cd %s && { env -u LD_PRELOAD -u LWS_BUILD_DIR %s <%s 2>%s; echo $? >%s; } >/dev/tcp/127.0.0.1/%d")
		:format(q(H.ROOT), table.concat(words, " "), q(inf), q(errf), q(rcf), cport)
	os.execute(("bash -c %s </dev/null >/dev/null 2>&1 &"):format(q(cmd)))
	local sock, out, done = nil, {}, false
	local w = lws.watch(ctl:getfd(), function()
		local c = ctl:accept()
		if c then sock = c end
	end)
	local ok, err = pcall(H.run_until, function() return sock ~= nil end, 10000, argv[1] .. " to start")
	w:close()
	ctl:close()
	if not ok then error(err, 2) end
	sock:settimeout(0)
	local rw
	rw = lws.watch(sock:getfd(), function()
		while true do
			local data, rerr, partial = sock:receive(65536)
			data = data or partial
			if data and #data > 0 then out[#out + 1] = data end
			if rerr == "closed" then done = true; rw:close(); return end
			if rerr then return end
		end
	end)
	ok, err = pcall(H.run_until, function() return done end, ms or 15000, argv[1] .. " to finish")
	if not done then rw:close() end
	sock:close()
	local stderr, status = H.read_file(errf), tonumber(H.read_file(rcf):match("%d+"))
	os.remove(errf)
	os.remove(rcf)
	os.remove(inf)
	if not ok then error(err .. "\n" .. stderr, 2) end
	return table.concat(out), stderr, status
end
