--[[ lws: WebSocket servers and clients for Lua 5.4 over libwebsockets.

Design criteria:
 - C (lws.core) owns mechanism: the loop, sockets, message reassembly,
   send queues, close codes, lifetimes. This layer owns policy: events,
   defaults, option checking, routing, heartbeat, reconnect.
 - The server is shaped like Node's `ws` (a "connection" event with the
   connection and its upgrade request, `server.clients`, verify and
   subprotocol hooks); the client like the browser's WebSocket.
 - Every callback runs protected: an error is reported through
   lws.on_error (default: stderr, with a traceback) and closes only the
   connection it happened on, with 1011. The loop goes on.
 - One loop per Lua state; lws.run() returns when lws.stop() is called or
   nothing is left to do.
]]
local core = require "lws.core"
local emitter = require "lws.emitter"

local M = {
	core = core,
	CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3,
	LOG_ERR = core.LOG_ERR, LOG_WARN = core.LOG_WARN, LOG_NOTICE = core.LOG_NOTICE,
	LOG_INFO = core.LOG_INFO, LOG_DEBUG = core.LOG_DEBUG,
	version = "0.1.0",
	lws_version = core.lws_version,
}

-- Event handlers by object kind; each module registers its own.
local handlers = {}
M._handlers = handlers

local function dispatch(obj, event, ...)
	local h = handlers[getmetatable(obj).__name]
	return h(obj, event, ...)
end
core.set_dispatch(dispatch)

--- on_error(fn): fn(message) receives every error caught in a callback
-- (with its traceback) and every error lws.core reports. nil restores
-- the default (stderr).
local function default_error(msg)
	io.stderr:write("lws: ", tostring(msg), "\n")
	io.stderr:flush()
end
function M.on_error(fn)
	if fn ~= nil and type(fn) ~= "function" then
		error("bad argument #1 to 'on_error' (function expected, got " .. type(fn) .. ")", 2)
	end
	core.set_error_handler(fn or default_error)
end
M.on_error(nil)

--- set_log(levels, fn): libwebsockets' own log lines for the given level
-- bits (lws.LOG_ERR | lws.LOG_WARN …) go to fn(level, line). Quiet by default.
function M.set_log(levels, fn)
	core.set_log(levels or 0, fn)
end

--- run([mode]): "default" runs until lws.stop() or nothing is left to do;
-- "once" runs one blocking turn; "nowait" one turn without waiting.
M.run = core.run
M.stop = core.stop
--- shutdown(): destroy every server, connection and timer now.
M.shutdown = core.shutdown
M.stats = core.stats
--- configure{ loop = "libev"|"poll" }: before the first server, client or
-- timer; the environment variable LWS_LUA_LOOP does the same. Unset, the
-- loop is libev, or poll where libev cannot be used (stats().loop says).
M.configure = core.configure
M.now = core.now

-- Timers: the browser's argument order, milliseconds.
local function check_timer_args(name, fn, ms)
	if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
		error(("bad argument #1 to '%s' (function expected, got %s)"):format(name, type(fn)), 3)
	end
	if ms ~= nil and (type(ms) ~= "number" or ms < 0 or ms ~= ms) then
		error(("bad argument #2 to '%s' (non-negative number expected, got %s)")
			:format(name, tostring(ms)), 3)
	end
end

function M.set_timeout(fn, ms)
	check_timer_args("set_timeout", fn, ms)
	return core.timer(ms or 0, 0, fn)
end

function M.set_interval(fn, ms)
	check_timer_args("set_interval", fn, ms)
	if not ms or ms <= 0 then
		error("bad argument #2 to 'set_interval' (interval must be > 0 ms)", 2)
	end
	return core.timer(ms, ms, fn)
end

function M.clear(t)
	if t ~= nil then t:stop() end
end
M.clear_timeout, M.clear_interval = M.clear, M.clear

--- watch(fd, fn): fn(watch) whenever the file descriptor is readable.
M.watch = core.watch

M.emitter = emitter

local server = require "lws.server"
server.install(M, handlers)
M.server = server.new

local websocket = require "lws.websocket"
websocket.install(M, handlers)
M.WebSocket = websocket.new

--- lws.redis.connect{ host, port, … }: a Redis client on this loop
local redis = require "lws.redis"
redis.install(M, handlers)
M.redis = redis
--- lws.bus{ redis = {…}, channel = … }: broadcasts and topics across nodes
M.bus = require("lws.bus").new
M.json = require "lws.json"

--- lws.socketio(server, opts): a Socket.IO server on an lws server;
-- lws.socketio is the module itself (require "lws.socketio"), callable,
-- with lws.socketio.binary(bytes) and the rest. Loaded on first use: a
-- plain WebSocket server never pays for it.
return setmetatable(M, { __index = function(t, k)
	if k == "socketio" then
		local sio = require "lws.socketio"
		rawset(t, k, sio)
		return sio
	end
end })
