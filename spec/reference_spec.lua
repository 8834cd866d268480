-- docs/reference/*.md and the code cannot drift: every option the option
-- checker accepts has a row on its module's page (with the default, where
-- the code exports it), every public function and method is named on its
-- page, and so is every event the code emits and every error code it
-- returns; every flag of the lws command is on cli.md; the README links in.
local H = require "helper"
local S = require "surface"

local DIR = H.ROOT .. "/docs/reference/"
local PAGES = { "README.md", "lws.md", "server.md", "connection.md", "client.md", "http.md", "pubsub.md",
	"heartbeat.md", "socketio.md", "bus.md", "redis.md", "json.md", "msgpack.md", "cli.md" }

local cache = {}
local function page(name)
	if not cache[name] then
		local f = assert(io.open(DIR .. name, "rb"), "docs/reference/" .. name .. " is missing")
		cache[name] = f:read("a")
		f:close()
	end
	return cache[name]
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

local KEYWORDS = { ["in"] = true, ["local"] = true }

-- named as code: `x.name(`, `x:name(` (or `x.name {`, `x.name "`), or
-- `["name"]` for a Lua keyword
local function mentions(text, name, call)
	if KEYWORDS[name] then return text:find('["' .. name .. '"]', 1, true) ~= nil end
	local tail = call and '%s?[%({"]' or "[^%w_]"
	return text:find("[%.:]" .. esc(name) .. tail) ~= nil
end

local function missing_from(names, texts, call)
	local missing = {}
	for name in pairs(names) do
		local found = false
		for _, t in ipairs(texts) do if mentions(t, name, call) then found = true break end end
		if not found then missing[#missing + 1] = name end
	end
	table.sort(missing)
	return missing
end

local function pages(list)
	local t = {}
	for i, p in ipairs(list) do t[i] = page(p) end
	return t
end

describe("docs/reference", function()
	after_each(H.clean)

	it("has its pages, each linked from its index", function()
		for _, p in ipairs(PAGES) do
			assert.truthy(page(p), p)
			if p ~= "README.md" then
				assert.truthy(page("README.md"):find("](" .. p .. ")", 1, true), "README.md links to " .. p)
			end
		end
	end)

	it("is linked from the project README", function()
		local readme = H.read_file(H.ROOT .. "/README.md")
		assert.truthy(readme:find("docs/reference/", 1, true))
		for _, p in ipairs(PAGES) do
			if p ~= "README.md" then
				assert.truthy(readme:find("docs/reference/" .. p, 1, true), "README.md links to docs/reference/" .. p)
			end
		end
	end)

	it("has a row for every option, with the defaults the code exports", function()
		for _, o in ipairs(S.option_tables()) do
			local text = page(o.page)
			for name in pairs(o.names) do
				local row = text:match("\n| `" .. esc(o.prefix .. name) .. "` |([^\n]*)")
				assert.truthy(row, ("docs/reference/%s has no row | `%s%s` | (%s)"):format(o.page, o.prefix, name,
					o.class))
				local v = o.defaults and o.defaults[name]
				if v ~= nil then
					assert.truthy(row:find(S.show(v), 1, true), ("docs/reference/%s: `%s%s` has the default %s"):format(
						o.page, o.prefix, name, S.show(v)))
				end
			end
		end
	end)

	it("names every function and field of every module on its page", function()
		for _, m in ipairs(S.modules()) do
			assert.are.same({}, missing_from(m.functions, { page(m.page) }, true),
				m.name .. " functions missing from docs/reference/" .. m.page)
			assert.are.same({}, missing_from(m.fields, { page(m.page) }, false),
				m.name .. " fields missing from docs/reference/" .. m.page)
		end
	end)

	it("names every method of every class on its pages", function()
		for _, c in ipairs(S.classes()) do
			-- the emitter's methods are described once, on lws.md (class lws.Emitter)
			local own = {}
			for name in pairs(c.methods) do
				if not (c.inherits and c.inherits[name]) then own[name] = true end
			end
			assert.are.same({}, missing_from(own, pages(c.pages), true),
				c.class .. " methods missing from docs/reference/" .. table.concat(c.pages, ", "))
		end
	end)

	-- { source, pattern, pages }: what the code emits or returns, read from it
	local EVENTS = {
		{ "lua/lws/server.lua", 'emit%(srv, "([%w_]+)"', { "server.md" } },
		{ "lua/lws/server.lua", 'emit%(ws, "([%w_]+)"', { "connection.md" } },
		{ "lua/lws/heartbeat.lua", 'emit%(ws, "([%w_]+)"', { "connection.md", "heartbeat.md" } },
		{ "lua/lws/websocket.lua", 'fire%(ws, "on%w+", "([%w_]+)"', { "client.md" } },
		{ "lua/lws/websocket.lua", 'emit%(ws, "([%w_]+)"', { "client.md" } },
		{ "lua/lws/redis.lua", 'emit%(c, "([%w_]+)"', { "redis.md" } },
		{ "lua/lws/socketio/init.lua", 'fire%([%w_]+, "([%w_]+)"', { "socketio.md" } },
	}
	local CODES = {
		{ "csrc/client.c", 'client_fail_later%(c, "([%w-]+)"', { "client.md" } },
		{ "lua/lws/websocket.lua", '%[10%d%d%] = "([%w-]+)"', { "client.md" } },   -- after_open
		{ "lua/lws/websocket.lua", 'return nil, [^\n]-, "([%w-]+)"', { "client.md" } },
		{ "csrc/conn_lua.c", 'core_push_error%(L, "[^"]*", "(%w+)"%)', { "connection.md" } },
		{ "csrc/request.c", 'core_push_error%(L, "[^"]*", "(%w+)"%)', { "http.md" } },
		{ "csrc/server_lua.c", 'core_push_error%(L, [^,]+, "(%w+)"%)', { "server.md" } },
		{ "lua/lws/redis.lua", 'nil, "[^"]*", "(%w+)"', { "redis.md" } },
		{ "lua/lws/redis.lua", 'refuse%(c, "[^"]*", "(%w+)"%)', { "redis.md" } },
		{ "lua/lws/bus.lua", 'nil, "[^"]*", "(%w+)"', { "bus.md" } },
	}
	local function quoted_in(rows, what)
		for _, row in ipairs(rows) do
			local src = H.read_file(H.ROOT .. "/" .. row[1])
			local n = 0
			for name in src:gmatch(row[2]) do
				n = n + 1
				local found = false
				for _, p in ipairs(row[3]) do
					if page(p):find('"' .. name .. '"', 1, true) then found = true end
				end
				assert.truthy(found, ('%s %q (%s) is not on docs/reference/%s'):format(what, name, row[1],
					table.concat(row[3], ", ")))
			end
			assert.truthy(n > 0, row[1] .. ": the pattern for its " .. what .. "s found nothing")
		end
	end

	it("names every event the code emits", function() quoted_in(EVENTS, "event") end)

	it("names every error code the code returns", function() quoted_in(CODES, "error code") end)

	it("names every subcommand and flag of the lws command on cli.md", function()
		local src = H.read_file(H.ROOT .. "/lua/lws/cli.lua")
		local text = page("cli.md")
		local flags = 0
		for tbl in src:gmatch("parse%(argv, %d+, (%b{})") do
			for name in tbl:gmatch('%[?"?([%w-]+)"?%]? = "') do
				flags = flags + 1
				assert.truthy(text:find("\n| `%-%-" .. esc(name) .. "[ `]"), "cli.md has a row for --" .. name)
			end
		end
		assert.truthy(flags >= 17, "cli.lua's flags were found (" .. flags .. ")")
		for cmd in src:gmatch('cmd == "(%a+)" then return') do
			assert.truthy(text:find("## `lws " .. cmd .. "`", 1, true), "cli.md has a section for lws " .. cmd)
		end
	end)
end)
