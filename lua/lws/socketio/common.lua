--[[ lws.socketio.common: the small helpers the Socket.IO modules share
(socket, namespace, operator, adapter): protected calls into user code,
event argument lists, room sets, the reserved event names.
]]
local emitter = require "lws.emitter"
local json = require "lws.json"
local engine = require "lws.socketio.engine"

local M = {}

local call = engine.call
local null = json.null
local pack = table.pack
M.call = call

--- fire(obj, event, ...): emit through a protected call
function M.fire(obj, event, ...)
	return call(emitter.emit, obj, event, ...)
end

function M.check_callable(fn)
	if type(fn) == "function" then return true end
	local mt = getmetatable(fn)
	return type(mt) == "table" and mt.__call ~= nil
end

--- event_args(name, ...) -> { n = , name, ... }, the ack function when the
-- last argument is one
function M.event_args(name, ...)
	local args = pack(name, ...)
	local ack
	if args.n > 1 and type(args[args.n]) == "function" then
		ack = args[args.n]
		args[args.n] = nil
		args.n = args.n - 1
	end
	return args, ack
end

--- lua_args(arr, from): decoded args from index from on, top-level nulls nil
function M.lua_args(arr, from)
	local n = #arr
	local out = { n = n - from + 1 }
	for i = from, n do
		local v = arr[i]
		if v ~= null then out[i - from + 1] = v end
	end
	return out
end

--- set_of(name | list | nil) -> { [name] = true, … }
function M.set_of(x)
	local s = {}
	if type(x) == "table" then
		for _, v in ipairs(x) do s[v] = true end
	elseif x ~= nil then
		s[x] = true
	end
	return s
end

function M.copy_set(s)
	local c = {}
	for k in pairs(s) do c[k] = true end
	return c
end

--- list_of(set) -> its keys, sorted (a stable wire form)
function M.list_of(set)
	local l = {}
	for k in pairs(set or {}) do l[#l + 1] = k end
	table.sort(l, function(a, b) return tostring(a) < tostring(b) end)
	return l
end

M.RESERVED = {
	connect = true, connect_error = true, disconnect = true, disconnecting = true,
	newListener = true, removeListener = true,
}

function M.check_event(name, level, fname)
	if type(name) ~= "string" then
		error("bad argument #1 to '" .. (fname or "emit") .. "' (event name expected, got " .. type(name) .. ")",
			level + 1)
	end
	if M.RESERVED[name] then error('"' .. name .. '" is a reserved event name', level + 1) end
end

return M
