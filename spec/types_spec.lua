-- types/*.lua (lua-language-server definitions) and the code cannot
-- drift: every function the definitions declare exists at run time, and
-- every public function at run time is declared; the same for module
-- fields, and for the names of every option table (read from the option
-- checker itself, spec/support/surface.lua). Where the code exports an
-- option's default, the definition must say it.
local H = require "helper"
local S = require "surface"

local cache = {}
local function types(file)
	cache[file] = cache[file] or H.read_file(H.ROOT .. "/types/" .. file)
	return cache[file]
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

-- "function Alias:name(" / "function alias.name(" / 'Alias["name"] ='
local function declared(file, alias, sep)
	local set = {}
	local text = types(file)
	for name in text:gmatch("\nfunction " .. esc(alias) .. esc(sep) .. "([%w_]+)%(") do set[name] = true end
	for name in text:gmatch("\n" .. esc(alias) .. '%["([%w_]+)"%] =') do set[name] = true end
	return set
end

local function same(runtime, defs, what, file)
	local missing, extra = S.diff(runtime, defs)
	assert.are.same({}, missing, what .. ": at run time, not in types/" .. file)
	assert.are.same({}, extra, what .. ": in types/" .. file .. ", not at run time")
end

describe("types/", function()
	after_each(H.clean)

	it("has a ---@meta file for each module, named so that require finds it", function()
		for _, m in ipairs(S.modules()) do
			assert.truthy(types(m.file):find("^%-%-%-@meta " .. esc(m.name) .. "\n"), m.file)
			assert.truthy(types(m.file):find("\nreturn " .. m.alias .. "\n"), m.file .. " returns " .. m.alias)
		end
		assert.truthy(types("lws.http.lua"):find("^%-%-%-@meta _\n"))
	end)

	it("declares every function of every module, and only those", function()
		for _, m in ipairs(S.modules()) do
			same(m.functions, declared(m.file, m.alias, "."), m.name .. " functions", m.file)
		end
	end)

	it("declares every other field of every module as a @field", function()
		for _, m in ipairs(S.modules()) do
			local block = S.block(types(m.file), m.name)
			assert.truthy(block, "---@class " .. m.name .. " in " .. m.file)
			same(m.fields, S.fields(block), m.name .. " fields", m.file)
		end
	end)

	it("declares the methods of every class", function()
		local emitter = declared("lws.lua", "Emitter", ":")
		for _, c in ipairs(S.classes()) do
			assert.truthy(S.block(types(c.file), c.class), "---@class " .. c.class .. " in " .. c.file)
			local defs = declared(c.file, c.alias, ":")
			if c.inherits then
				assert.truthy(S.block(types(c.file), c.class):find(": lws.Emitter", 1, true),
					c.class .. " inherits lws.Emitter")
				defs = S.union(defs, emitter)
			end
			same(c.methods, defs, c.class, c.file)
		end
	end)

	it("lists every option of every option table, with the defaults the code exports", function()
		for _, o in ipairs(S.option_tables()) do
			local block = S.block(types(o.file), o.class)
			assert.truthy(block, "---@class " .. o.class .. " in " .. o.file)
			same(o.names, S.fields(block), o.class, o.file)
			for name, v in pairs(o.defaults or {}) do
				local line = block:match("\n%-%-%-@field " .. name .. "%?? ([^\n]*)") or ""
				assert.truthy(line:find("default " .. S.show(v), 1, true),
					("%s.%s says its default %s (types/%s: %s)"):format(o.class, name, S.show(v), o.file, line))
			end
		end
	end)
end)
