-- bench/sio_cluster/report.lua: the table of bench/sio_cluster/run: per
-- case and server, medians over the repetitions (and their spread).
--   lua5.4 bench/sio_cluster/report.lua RESULTS_FILE
local path = assert(arg[1], "usage: report.lua RESULTS_FILE")

local runs, order, discarded = {}, {}, {}
for line in io.lines(path) do
	local r = {}
	for k, v in line:gmatch("(%S+)=(%S+)") do r[k] = v end
	if r.discarded then
		discarded[#discarded + 1] = ("%s %s rep %s (others %s)"):format(r.case, r.server, r.rep, r.others_cpu)
	elseif r.case and r.server then
		local id = r.case .. "|" .. r.server
		if not runs[id] then
			runs[id] = {}
			order[#order + 1] = id
		end
		table.insert(runs[id], r)
	end
end

local function median(t)
	table.sort(t)
	local n = #t
	if n == 0 then return nil end
	if n % 2 == 1 then return t[(n + 1) // 2] end
	return (t[n // 2] + t[n // 2 + 1]) / 2
end

-- field of every run (item i of a comma list if i) -> median, min, max
local function stat(list, field, i)
	local t = {}
	for _, r in ipairs(list) do
		local v = r[field]
		if v and i then
			local parts = {}
			for x in v:gmatch("[^,]+") do parts[#parts + 1] = x end
			v = parts[i]
		end
		v = tonumber(v)
		if v then t[#t + 1] = v end
	end
	local m = median(t)
	return m, t[1], t[#t]
end

local function ms(us) return us and ("%.1f"):format(us / 1000) or "-" end

print(("| case | nodes | deliveries/s (spread) | p50 ms | p99 ms | p50 / p99 ms on B | "
	.. "CPU node A | node B | redis | loadgen | others | CPU 0 / 1 busy | errors | runs |"))
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for _, id in ipairs(order) do
	local list = runs[id]
	local r1 = list[1]
	local d, dlo, dhi = stat(list, "deliveries_per_s")
	local errs = 0
	for _, r in ipairs(list) do errs = errs + (tonumber(r.errors) or 0) end
	local desc = r1.case:match("^rate") and ("rate %s/s"):format(r1.rate) or ("window %s"):format(r1.window)
	local function cpu(i) local v = stat(list, "pid_cpu", i); return v and ("%.2f"):format(v) or "-" end
	local lg = stat(list, "loadgen_cpu")
	local c0, c1 = stat(list, "core_busy", 1), stat(list, "core_busy", 2)
	local oth = stat(list, "others_cpu")
	local cores = c0 and c1 and ("%.2f / %.2f"):format(c0, c1) or "-"
	print(("| %s, %s receivers | %s×2 | %.0f (%.0f–%.0f) | %s | %s | %s / %s | %s | %s | %s | %s | %s | %s | %d | %d |"):format(
		desc, r1.receivers, r1.server, d, dlo, dhi, ms(stat(list, "p50_us")), ms(stat(list, "p99_us")),
		ms(stat(list, "p50_us2")), ms(stat(list, "p99_us2")), cpu(1), cpu(2), cpu(3),
		lg and ("%.2f"):format(lg) or "-", oth and ("%.2f"):format(oth) or "-", cores, errs, #list))
end

-- runs that started on a busy machine (bench/sio_cluster/run waited up to
-- QUIET_WAIT for it to calm down first)
local busy, kept = {}, {}
for _, id in ipairs(order) do
	for _, r in ipairs(runs[id]) do
		local n = tonumber(r.noise)
		if n and n > 0.10 then busy[#busy + 1] = ("%s %s rep %s (%.0f%%)"):format(r.case, r.server, r.rep, n * 100) end
		local o = tonumber(r.others_cpu)
		if o and o > 0.10 then kept[#kept + 1] = ("%s %s rep %s (others %.2f)"):format(r.case, r.server, r.rep, o) end
	end
end
if #kept > 0 then print("\nkept although disturbed (RETRIES used up): " .. table.concat(kept, ", ")) end
if #discarded > 0 then print("\nmade again (others used more than 10% of a CPU): " .. table.concat(discarded, ", ")) end
if #busy > 0 then print("\nstarted on a busy machine: " .. table.concat(busy, ", ")) end
