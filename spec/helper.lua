--[[ spec/helper.lua: the loop driver and the peers every spec uses.

 - H.run_until(pred, ms, what): runs the loop until pred() is true, failing
   the test after ms (scaled by LWS_TEST_SLOW under ASan/valgrind). Never
   sleeps: every wait is on a loop event with a deadline.
 - H.server(opts): lws.server on 127.0.0.1 port 0, closed by H.clean().
 - H.node(): a Node `ws` peer (spec/peers/ws_peer.js) driven over a control
   socket; peer:cmd{...} and peer:wait("open").
 - H.raw(port): a raw TCP client that writes exact bytes (frames built
   with H.frame) and reads server frames (raw:read_frame()).
 - H.clean(): closes what a test made and asserts that no connection,
   server, timer or watch is left behind.

 The rest lives in spec/support/ and is installed into H here, so specs only
 ever require this file: wire.lua (payload pattern, base64, frames, SHA-1),
 node_peer.lua (H.node and its peers), raw_peer.lua (H.raw), processes.lua
 (H.demo, H.redis_server, shell and file helpers).
]]
local lws = require "lws"
local core = lws.core
local socket = require "socket"

local H = {}
H.lws = lws
H.SLOW = tonumber(os.getenv("LWS_TEST_SLOW") or "1") or 1
H.ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/helper.lua$") or ".")

local tracked = { servers = {} }

-- Errors reported through lws.on_error during a test (callback errors).
-- A test that looks at H.errors (reads an entry, its length, or replaces
-- it) owns them; H.clean fails a test whose callbacks raised unseen.
local errors_list, errors_seen
local function new_errors()
	local list = {}
	errors_list, errors_seen = list, false
	return setmetatable({}, {
		__index = function(_, k) errors_seen = true; return list[k] end,
		__newindex = function(_, k, v) list[k] = v end,
		__len = function() errors_seen = true; return #list end,
	})
end
H.errors = new_errors()
local errors_proxy = H.errors
lws.on_error(function(msg) errors_list[#errors_list + 1] = msg end)

-- poll_ms: also re-check pred that often (for conditions outside the loop,
-- such as a file another process writes)
function H.run_until(pred, ms, what, poll_ms)
	if pred() then return true end
	ms = (ms or 5000) * H.SLOW
	local timed_out = false
	local t = core.timer(ms, 0, function() timed_out = true; core.stop() end)
	t:unref()
	local tick
	if poll_ms then
		tick = core.timer(poll_ms, poll_ms, function() end)
		tick:unref()
	end
	while not timed_out do
		core.run("once")
		if pred() then break end
	end
	t:stop()
	if tick then tick:stop() end
	if timed_out and not pred() then
		error(("timed out after %d ms waiting for %s"):format(ms, what or "a condition"), 2)
	end
	return true
end

-- Runs the loop for ms whatever happens (to show that something does NOT happen).
function H.run_for(ms)
	local done = false
	local t = core.timer(ms, 0, function() done = true; core.stop() end)
	t:unref()
	while not done do core.run("once") end
	t:stop()
end

function H.server(opts)
	opts = opts or {}
	opts.host = opts.host or "127.0.0.1"
	opts.port = opts.port or 0
	local srv = assert(lws.server(opts))
	tracked.servers[#tracked.servers + 1] = srv
	return srv, srv:port()
end

-- an echo server: every message back with its type
function H.echo_server(opts)
	local srv, port = H.server(opts)
	srv:on("connection", function(ws)
		ws:on("message", function(data, binary) ws:send(data, binary) end)
	end)
	return srv, port
end

--- ws_url(port[, path]) -> "ws://127.0.0.1:PORT/path"
function H.ws_url(port, path) return "ws://127.0.0.1:" .. port .. (path or "/") end

--- free_port() -> a TCP port nobody listens on (bound, then released)
function H.free_port()
	local s = assert(socket.bind("127.0.0.1", 0))
	local _, port = s:getsockname()
	s:close()
	return math.tointeger(tonumber(port))
end

require("wire")(H)
local stop_peers = require("node_peer")(H)
local close_raws = require("raw_peer")(H)
local stop_processes = require("processes")(H)

---------------------------------------------------------------------------

--- clean(): close everything the test made; assert nothing is left
function H.clean()
	stop_processes()
	for _, srv in ipairs(tracked.servers) do srv:close(0.5) end
	stop_peers()
	close_raws()
	tracked = { servers = {} }
	local function empty()
		local s = core.stats()
		return s.connections == 0 and s.servers == 0 and s.timers == 0 and s.watches == 0 and
			s.requests == 0 and s.pending == 0
	end
	local ok = pcall(H.run_until, empty, 5000, "every connection and server to close")
	local s = core.stats()
	local unseen = H.errors == errors_proxy and not errors_seen and errors_list[1]
	local nunseen = #errors_list
	H.errors = new_errors()
	errors_proxy = H.errors
	if unseen then
		error(("a callback raised and no assertion looked at it (%d error(s)); the first:\n%s")
			:format(nunseen, unseen), 2)
	end
	if not ok then
		lws.shutdown()
		error(("left behind: %d connections, %d servers, %d timers, %d watches, %d requests")
			:format(s.connections, s.servers, s.timers, s.watches, s.requests), 2)
	end
end

return H
