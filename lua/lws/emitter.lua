--[[ lws.emitter: on/once/off/emit for connections, servers and clients.
Handlers live in the object's field table (userdata: obj:fields(); Lua
objects: the object itself), each event's under its own key, "\0on:"
followed by the event's name (no name a program writes starts with a NUL
byte): a lone function handler as itself, else an array of callables.
No table per object or per event: most connections have one handler per
event, and each table is memory per connection (bench/README.md, "Idle memory
under 2 KiB"). emit() snapshots the array when more than one
handler is registered, so handlers may add or remove handlers while
running.
]]
local M = {}

local function store(obj)
	if type(obj) == "userdata" then return obj:fields() end
	return obj
end

local PREFIX = "\0on:"
-- the keys of the events every connection has, made once; others (a
-- Socket.IO event's name comes from the peer) are made when used and not
-- kept, so that no table grows with the names peers send
local KEYS = {}
for _, e in ipairs { "message", "close", "open", "error", "pong", "ping", "connection",
		"upgrade", "request", "disconnect", "disconnecting", "abort" } do
	KEYS[e] = PREFIX .. e
end
local function key(event) return KEYS[event] or PREFIX .. event end

local function check_callable(fn, name)
	if type(fn) == "function" then return end
	local mt = getmetatable(fn)
	if type(mt) == "table" and mt.__call then return end
	error(("bad argument #2 to '%s' (function expected, got %s)"):format(name, type(fn)), 3)
end

function M.on(obj, event, fn)
	if type(event) ~= "string" then
		error("bad argument #1 to 'on' (event name expected, got " .. type(event) .. ")", 2)
	end
	check_callable(fn, "on")
	local f, k = store(obj), key(event)
	local list = f[k]
	if not list then
		-- a callable table goes in an array, so that a table always is one
		f[k] = type(fn) == "function" and fn or { fn }
	elseif type(list) == "function" then
		f[k] = { list, fn }
	else
		list[#list + 1] = fn
	end
	return obj
end

-- the handler each once() wrapper stands for, so that off(event, fn)
-- removes a once(event, fn) as Node's removeListener does
local once_of = setmetatable({}, { __mode = "k" })

function M.once(obj, event, fn)
	if type(event) ~= "string" then
		error("bad argument #1 to 'once' (event name expected, got " .. type(event) .. ")", 2)
	end
	check_callable(fn, "once")
	local wrapper
	wrapper = function(...)
		-- the object's own off: a type that watches its handlers (the
		-- server connection's message fast path) sees the removal
		obj:off(event, wrapper)
		return fn(...)
	end
	once_of[wrapper] = fn
	return obj:on(event, wrapper)
end

function M.off(obj, event, fn)
	local f = store(obj)
	if event == nil then
		-- next, not pairs: an object's __pairs shows something else
		for k in next, f do
			if type(k) == "string" and k:sub(1, 4) == PREFIX then f[k] = nil end
		end
		return obj
	end
	local k = key(event)
	local list = f[k]
	if fn == nil or list == nil then
		f[k] = nil
	elseif type(list) == "function" then
		if list == fn or once_of[list] == fn then f[k] = nil end
	else
		-- the most recently added match, as Node does
		for i = #list, 1, -1 do
			if list[i] == fn or once_of[list[i]] == fn then table.remove(list, i) break end
		end
		if #list == 0 then f[k] = nil end
	end
	return obj
end

--- emit(obj, event, ...) -> true if a handler ran
function M.emit(obj, event, ...)
	local list = store(obj)[key(event)]
	if not list then return false end
	if type(list) == "function" then
		list(...)
		return true
	end
	local n = #list
	if n == 1 then
		list[1](...)
	else
		local copy = table.move(list, 1, n, 1, {})
		for i = 1, n do copy[i](...) end
	end
	return true
end

function M.listener_count(obj, event)
	local list = store(obj)[key(event)]
	if type(list) == "function" then return 1 end
	return list and #list or 0
end

--- only(obj, event) -> the handler when exactly one is registered, else nil
function M.only(obj, event)
	local list = store(obj)[key(event)]
	if type(list) == "function" then return list end
	return list and #list == 1 and list[1] or nil
end

-- install on a methods table: obj:on(...), obj:once(...), obj:off(...).
-- changed(obj, event): called after each on/once/off (event nil: all),
-- for a type that keeps something in step with its handlers
function M.mixin(methods, changed)
	if changed then
		methods.on = function(obj, event, fn) M.on(obj, event, fn); changed(obj, event); return obj end
		methods.off = function(obj, event, fn) M.off(obj, event, fn); changed(obj, event); return obj end
	else
		methods.on, methods.off = M.on, M.off
	end
	methods.once = M.once   -- through methods.on and methods.off
	methods.emit, methods.listener_count = M.emit, M.listener_count
	return methods
end

return M
