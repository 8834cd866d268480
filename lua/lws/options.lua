--[[ lws.options: how every option table of the library is checked.
One rule for all of them: an unknown key or a wrong value raises at the
caller's line, naming the option and the value it got, e.g.

  app.lua:12: option 'port' must be an integer in 0..65535, got string "80x"
  app.lua:20: unknown option 'gzp' (did you mean 'gzip'?)

A spec maps each option name to what it accepts:
  "string", "boolean", "table", "function", "number", "integer"
  "boolean|table"           any of these types
  { "integer", min, max }   a number type with a range (max may be nil)
  function(v) -> nil | "what it must be"   anything else
]]
local M = {}

--- show(v) -> how a value reads in an error: string "x", number 0, table
function M.show(v)
	local t = type(v)
	if t == "string" then
		if #v > 40 then v = v:sub(1, 37) .. "..." end
		return ("string %q"):format(v):gsub("\\\n", "\\n")
	elseif t == "number" or t == "boolean" then
		return t .. " " .. tostring(v)
	end
	return t
end

local article = { integer = "an", array = "an" }
local function a(t) return (article[t] or "a") .. " " .. t end

local function callable(v)
	if type(v) == "function" then return true end
	local mt = getmetatable(v)
	return type(mt) == "table" and mt.__call ~= nil
end

local function is_type(v, t)
	if t == "integer" then return math.type(v) == "integer" end
	if t == "function" then return callable(v) end
	return type(v) == t
end

-- nil when v fits what, else the phrase for what it must be
local function mismatch(v, what)
	if type(what) == "function" then return what(v) end
	if type(what) == "table" then
		local t, min, max = what[1], what[2], what[3]
		if not is_type(v, t) or v ~= v or (min and v < min) or (max and v > max) then
			if min and max then return ("%s in %s..%s"):format(a(t), min, max) end
			if min then return ("%s >= %s"):format(a(t), min) end
			return a(t)
		end
		return nil
	end
	local alts = {}
	for t in what:gmatch("[^|]+") do
		if is_type(v, t) then return nil end
		alts[#alts + 1] = a(t)
	end
	return table.concat(alts, " or ")
end

-- the closest known name, for "did you mean"
local function nearest(name, spec)
	local best, bestd
	for k in pairs(spec) do
		local n, m = #name, #k
		if math.abs(n - m) <= 2 then
			local prev = {}
			for j = 0, m do prev[j] = j end
			for i = 1, n do
				local cur = { [0] = i }
				for j = 1, m do
					local cost = name:byte(i) == k:byte(j) and 0 or 1
					cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
				end
				prev = cur
			end
			if prev[m] <= 2 and (not bestd or prev[m] < bestd or (prev[m] == bestd and k < best)) then
				best, bestd = k, prev[m]
			end
		end
	end
	return best
end

--- fail(msg, level): raise msg at level (1 = the function calling fail)
function M.fail(msg, level)
	error(msg, level + 1)
end

--- check(opts, spec, level[, prefix]) -> opts
-- level: of the user's call, counted from the function calling check (2 =
-- its caller); prefix: "heartbeat." for a nested table
function M.check(opts, spec, level, prefix)
	prefix = prefix or ""
	-- level <= 0: no position (a caller that re-raises at its own level)
	level = level > 0 and level + 1 or 0
	for k, v in pairs(opts) do
		local what = spec[k]
		if what == nil then
			local hint = type(k) == "string" and nearest(k, spec)
			error(("unknown option '%s%s'%s"):format(prefix, tostring(k),
				hint and (" (did you mean '%s%s'?)"):format(prefix, hint) or ""), level)
		end
		local want = mismatch(v, what)
		if want then
			error(("option '%s%s' must be %s, got %s"):format(prefix, k, want, M.show(v)), level)
		end
	end
	return opts
end

--- table_arg(v, fname, argn, level): v must be an option table (or nil)
function M.table_arg(v, fname, argn, level)
	if v ~= nil and type(v) ~= "table" then
		error(("bad argument #%d to '%s' (option table expected, got %s)"):format(argn, fname, type(v)),
			level + 1)
	end
	return v or {}
end

return M
