-- types/lws.lua (lua-language-server definitions) and the code cannot
-- drift: every function the definitions declare exists at run time, and
-- every public function at run time is declared.
local H = require "helper"
local lws = H.lws
local core = require "lws.core"

local text = H.read_file(H.ROOT .. "/types/lws.lua")

-- declared(class) -> set of names: "function Class:name(" / "function lws.name("
local function declared(class, sep)
	local set = {}
	for name in text:gmatch("\nfunction " .. class .. sep .. "([%w_]+)%(") do set[name] = true end
	return set
end

local function union(a, b)
	local u = {}
	for k in pairs(a) do u[k] = true end
	for k in pairs(b) do u[k] = true end
	return u
end

local function public(tab, want_type)
	local set = {}
	for k, v in pairs(tab) do
		if type(k) == "string" and not k:match("^_") and (not want_type or type(v) == want_type) then set[k] = true end
	end
	return set
end

local function same(runtime, defs, what)
	local missing, extra = {}, {}
	for k in pairs(runtime) do if not defs[k] then missing[#missing + 1] = k end end
	for k in pairs(defs) do if not runtime[k] then extra[#extra + 1] = k end end
	table.sort(missing)
	table.sort(extra)
	assert.are.same({}, missing, what .. ": at run time, not in types/lws.lua")
	assert.are.same({}, extra, what .. ": in types/lws.lua, not at run time")
end

describe("types/lws.lua", function()
	after_each(H.clean)

	it("declares every function of the lws module, and only those", function()
		same(public(lws, "function"), declared("lws", "%."), "lws functions")
	end)

	it("declares every other field of the lws module as a @field", function()
		local block = text:match("%-%-%-@class lws\n(.-)\nlocal lws = {}")
		local fields = {}
		for name in block:gmatch("%-%-%-@field ([%w_]+)") do fields[name] = true end
		local runtime = {}
		for k, v in pairs(lws) do
			if type(k) == "string" and not k:match("^_") and type(v) ~= "function" then runtime[k] = true end
		end
		runtime.socketio = true   -- loaded on first use
		same(runtime, fields, "lws fields")
	end)

	it("declares the methods of servers, connections and clients", function()
		local emitter = declared("Emitter", ":")
		same(public(core.server_methods), union(declared("Server", ":"), emitter), "lws.Server")
		same(public(core.conn_methods), union(declared("Conn", ":"), emitter), "lws.Conn")
		same(public(require("lws.websocket").methods), union(declared("WebSocket", ":"), emitter), "lws.WebSocket")
	end)
end)
