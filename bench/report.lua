-- bench/report.lua: turns the RESULT lines bench/run collected into the
-- comparison table (medians, ratios to c-lws and node-ws), a gnuplot PNG
-- and, when asked, the generated section of bench/README.md.
--
--   lua5.4 bench/report.lua RESULTS OUTDIR [UPDATE_README] [SETTINGS]

local results_path, outdir, update_readme, settings = ...
assert(results_path and outdir, "usage: report.lua RESULTS OUTDIR [0|1] [settings]")
update_readme = update_readme == "1"
settings = settings or ""

local bench = arg[0]:match("^(.*)/[^/]*$") or "."
do -- absolute, for node's require below
  local p = io.popen("cd '" .. bench .. "' && pwd")
  bench = p:read("l") or bench
  p:close()
end
local REF_C, REF_NODE = "c-lws", "node-ws"

-- metrics shown per suite: key, label, direction
local METRICS = {
  echo = { { "msgs_per_s", "round trips/s", "up" } },
  broadcast = { { "deliveries_per_s", "deliveries/s", "up" },
                { "p99_us", "p99 delivery latency µs", "down" } },
  latency = { { "p50_us", "p50 round trip µs", "down" },
              { "p99_us", "p99 round trip µs", "down" },
              { "recv_per_s", "achieved msgs/s", "up" } },
  idle = { { "kib_per_conn", "server KiB per idle conn", "down" } },
  connect = { { "conns_per_s", "connections/s", "up" } },
}

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function commas(n)
  local s = string.format("%d", math.floor(n + 0.5))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^(-?),", "%1"))
end

local function fmt(v, key)
  if v == nil then return "—" end
  if key:match("_us$") then
    return v < 1000 and string.format("%.1f", v) or commas(v)
  elseif key == "kib_per_conn" then
    return string.format("%.2f", v)
  end
  return commas(v)
end

local function case_label(id)
  local f = {}
  for p in id:gmatch("[^:]+") do f[#f + 1] = p end
  local suite = f[1]
  if suite == "echo" then
    return string.format("echo %s conns, %s B, %s", commas(tonumber(f[2])), f[3],
      f[4] == "1" and "strict" or f[4] .. " in flight")
  elseif suite == "broadcast" then
    return string.format("broadcast to %s (%s B, window %s)", commas(tonumber(f[2])), f[3], f[4])
  elseif suite == "latency" then
    return string.format("latency at %s msg/s over %s conns", commas(tonumber(f[4])),
      commas(tonumber(f[2])))
  elseif suite == "idle" then
    return string.format("idle at %s conns", commas(tonumber(f[2])))
  elseif suite == "connect" then
    return string.format("open %s conns (%s at a time)", commas(tonumber(f[2])), f[3])
  end
  return id
end

-- read results
local runs, cases, case_seen, servers, server_seen = {}, {}, {}, {}, {}
for line in io.lines(results_path) do
  local r = {}
  for k, v in line:gmatch("(%S+)=(%S+)") do r[k] = tonumber(v) or v end
  if r.case and r.server then
    runs[#runs + 1] = r
    if not case_seen[r.case] then case_seen[r.case] = true; cases[#cases + 1] = r.case end
    if not server_seen[r.server] then server_seen[r.server] = true; servers[#servers + 1] = r.server end
  end
end
if #runs == 0 then
  io.stderr:write("report: no results in " .. results_path .. "\n")
  os.exit(1)
end
-- reference servers first, the rest in the order they ran
table.sort(servers, function(a, b)
  local function rank(s) return s == REF_C and 0 or s == REF_NODE and 1 or 2 end
  if rank(a) ~= rank(b) then return rank(a) < rank(b) end
  return false
end)

local kernel_max = {}   -- per case: worst loopback drops / retransmissions

local function collect(case, server, key)
  local vals, errors, n, lcpu, scpu, c0, c1 = {}, 0, 0, {}, {}, {}, {}
  for _, r in ipairs(runs) do
    if r.case == case and r.server == server then
      n = n + 1
      for _, k in ipairs({ "net_drops", "tcp_retrans" }) do
        if type(r[k]) == "number" then
          kernel_max[case .. k] = math.max(kernel_max[case .. k] or 0, r[k])
        end
      end
      errors = errors + (tonumber(r.errors) or 0)
      if type(r[key]) == "number" then vals[#vals + 1] = r[key] end
      if type(r.loadgen_cpu) == "number" then lcpu[#lcpu + 1] = r.loadgen_cpu end
      if type(r.server_cpu) == "number" and r.server_cpu >= 0 then scpu[#scpu + 1] = r.server_cpu end
      local a, b = tostring(r.core_busy or ""):match("^([%d.]+),([%d.]+)")
      if a then c0[#c0 + 1] = tonumber(a); c1[#c1 + 1] = tonumber(b) end
    end
  end
  return median(vals), errors, n, median(lcpu), median(scpu), median(c0), median(c1)
end

-- the table
local ratio_cols = {}
for _, s in ipairs(servers) do
  if s ~= REF_C and server_seen[REF_C] then ratio_cols[#ratio_cols + 1] = { s, REF_C } end
end
for _, s in ipairs(servers) do
  if s ~= REF_C and s ~= REF_NODE and server_seen[REF_NODE] then
    ratio_cols[#ratio_cols + 1] = { s, REF_NODE }
  end
end

local head = { "case", "metric" }
for _, s in ipairs(servers) do head[#head + 1] = s end
for _, rc in ipairs(ratio_cols) do head[#head + 1] = rc[1] .. " ÷ " .. rc[2] end
head[#head + 1] = "CPU: server / loadgen"
head[#head + 1] = "CPU 0 / 1 busy"
head[#head + 1] = "drops / retrans max"
head[#head + 1] = "errors"

local rows, problems = {}, {}
for _, case in ipairs(cases) do
  local suite = case:match("^[^:]+")
  for mi, m in ipairs(METRICS[suite] or {}) do
    local key, label, dir = m[1], m[2], m[3]
    local row = { mi == 1 and case_label(case) or "", label .. (dir == "up" and " ↑" or " ↓") }
    local med, cpus, cores, errs = {}, {}, {}, {}
    for _, s in ipairs(servers) do
      local v, e, n, lc, sc, b0, b1 = collect(case, s, key)
      cores[#cores + 1] = b0 and string.format("%.0f/%.0f%%", b0 * 100, b1 * 100) or "—"
      med[s] = v
      if n > 0 then
        row[#row + 1] = fmt(v, key) .. (e > 0 and " ⚠" or "")
        cpus[#cpus + 1] = (sc and lc) and string.format("%.0f/%.0f%%", sc * 100, lc * 100) or "—"
        if e > 0 then
          errs[#errs + 1] = s .. " " .. e
          if mi == 1 then problems[#problems + 1] = string.format("%s: %s had %d errors over %d runs", case_label(case), s, e, n) end
        end
      else
        row[#row + 1] = "—"
        cpus[#cpus + 1] = "—"
      end
    end
    for _, rc in ipairs(ratio_cols) do
      local a, b = med[rc[1]], med[rc[2]]
      row[#row + 1] = (a and b and b ~= 0) and string.format("%.2f", a / b) or "—"
    end
    local anycpu = false
    for _, c in ipairs(cpus) do if c ~= "—" then anycpu = true end end
    row[#row + 1] = (mi == 1 and anycpu) and table.concat(cpus, " · ") or ""
    local anycore = false
    for _, c in ipairs(cores) do if c ~= "—" then anycore = true end end
    row[#row + 1] = (mi == 1 and anycore) and table.concat(cores, " · ") or ""
    row[#row + 1] = (mi == 1 and kernel_max[case .. "net_drops"] ~= nil) and
      string.format("%s / %s", commas(kernel_max[case .. "net_drops"] or 0),
        commas(kernel_max[case .. "tcp_retrans"] or 0)) or ""
    row[#row + 1] = mi == 1 and (#errs > 0 and table.concat(errs, ", ") or "0") or ""
    rows[#rows + 1] = row
  end
end

local function md_table()
  -- drop columns nothing was recorded for (older result files lack some)
  for c = #head, 3, -1 do
    local any = false
    for _, r in ipairs(rows) do
      if r[c] and r[c] ~= "" and r[c] ~= "—" then any = true end
    end
    if not any then
      table.remove(head, c)
      for _, r in ipairs(rows) do table.remove(r, c) end
    end
  end
  local out = { "| " .. table.concat(head, " | ") .. " |" }
  local sep = {}
  for i = 1, #head do sep[i] = i <= 2 and "---" or "---:" end
  out[#out + 1] = "| " .. table.concat(sep, " | ") .. " |"
  for _, r in ipairs(rows) do out[#out + 1] = "| " .. table.concat(r, " | ") .. " |" end
  return table.concat(out, "\n")
end

local table_md = md_table()
local reps = 0
for _, r in ipairs(runs) do if r.rep > reps then reps = r.rep end end

-- figure: echo throughput and idle memory against connection count
local function series(pred, key, scale)
  local by = {}
  for _, case in ipairs(cases) do
    if pred(case) then
      local c = tonumber(case:match("^%a+:(%d+)"))
      for _, s in ipairs(servers) do
        local v = collect(case, s, key)
        if v then
          by[s] = by[s] or {}
          by[s][#by[s] + 1] = { c, v * (scale or 1) }
        end
      end
    end
  end
  return by
end

local function write_dat(path, pts)
  table.sort(pts, function(a, b) return a[1] < b[1] end)
  local f = assert(io.open(path, "w"))
  for _, p in ipairs(pts) do f:write(p[1], " ", p[2], "\n") end
  f:close()
end

local png = update_readme and (bench .. "/figures/bench.png") or (outdir .. "/bench.png")
local plots = { {}, {} }
local colors = { ["c-lws"] = "#1f77b4", ["node-ws"] = "#2ca02c" }
local palette = { "#d62728", "#9467bd", "#8c564b", "#e377c2" }
local function color(s)
  if not colors[s] then colors[s] = table.remove(palette, 1) or "#7f7f7f" end
  return colors[s]
end
for _, spec in ipairs({ { "1", "strict", 1 }, { "16", "16 in flight", 2 } }) do
  local by = series(function(c) return c:match("^echo:%d+:32:" .. spec[1] .. "$") end, "msgs_per_s")
  for _, s in ipairs(servers) do
    if by[s] and #by[s] > 0 then
      local dat = string.format("%s/plot-echo-%s-%s.dat", outdir, s, spec[1])
      write_dat(dat, by[s])
      plots[1][#plots[1] + 1] = string.format("'%s' with linespoints lw 2 dt %d lc rgb '%s' title '%s, 32 B %s'",
        dat, spec[3], color(s), s, spec[2])
    end
  end
end
do
  local by = series(function(c) return c:match("^idle:") end, "kib_per_conn")
  for _, s in ipairs(servers) do
    if by[s] and #by[s] > 0 then
      -- KiB per conn times conns = server RSS growth, in MiB
      for _, p in ipairs(by[s]) do p[2] = p[2] * p[1] / 1024 end
      local dat = string.format("%s/plot-idle-%s.dat", outdir, s)
      write_dat(dat, by[s])
      plots[2][#plots[2] + 1] = string.format("'%s' with linespoints lw 2 lc rgb '%s' title '%s'",
        dat, color(s), s)
    end
  end
end

local have_gnuplot = os.execute("command -v gnuplot >/dev/null 2>&1")
local figure_ok = false
if have_gnuplot and (#plots[1] > 0 or #plots[2] > 0) then
  os.execute("mkdir -p '" .. png:match("^(.*)/") .. "'")
  local gp = outdir .. "/bench.gp"
  local f = assert(io.open(gp, "w"))
  f:write("set terminal pngcairo size 1200,480 font 'sans,10'\n")
  f:write("set output '", png, "'\n")
  f:write("set multiplot layout 1,2\nset logscale x\nset grid\nset key bottom left\n")
  f:write("set xlabel 'connections'\nset format y '%.0s%c'\n")
  f:write("set title 'echo round trips/s (higher is better)'\nset yrange [0:*]\n")
  if #plots[1] > 0 then f:write("plot ", table.concat(plots[1], ", \\\n  "), "\n") end
  f:write("set title 'server RSS growth with idle connections, MiB (lower is better)'\n")
  f:write("set format y '%g'\nset key top left\n")
  if #plots[2] > 0 then f:write("plot ", table.concat(plots[2], ", \\\n  "), "\n") end
  f:write("unset multiplot\n")
  f:close()
  figure_ok = os.execute("gnuplot '" .. gp .. "' 2>'" .. outdir .. "/gnuplot.log'")
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p and p:read("a") or ""
  if p then p:close() end
  return (s:gsub("%s+$", ""))
end

local cpu = sh("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1")
local env = string.format("%s, %s cores, Linux %s; libwebsockets %s; Node %s, ws %s",
  cpu ~= "" and cpu or "unknown CPU", sh("nproc"), sh("uname -r"),
  (sh("pkg-config --modversion libwebsockets"):gsub("%-$", "")), sh("node --version"),
  sh("node -p \"require('" .. bench .. "/../node_modules/ws/package.json').version\""))
-- bench/build-uws records what it built
local uws = sh("cat " .. bench .. "/bin/uws_server.version")
if uws ~= "" then env = env .. "; " .. uws end

local out = {}
-- bench/run names results by their start time: results-20260101T120000Z.txt
local y, mo, d, h, mi = results_path:match("results%-(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)")
local when = y and string.format("%s-%s-%s %s:%s", y, mo, d, h, mi) or os.date("!%Y-%m-%d %H:%M")
out[#out + 1] = string.format("Measured from %s UTC on %s.", when, env)
out[#out + 1] = ""
local has = {}
for _, col in ipairs(head) do has[col] = true end
out[#out + 1] = string.format("Settings: `%s`; %d repetition%s per case, servers interleaved, " ..
  "medians shown; ratios are median ÷ median (↑ higher is better, ↓ lower is better). " ..
  "\"CPU: server / loadgen\" is the median share of a CPU each process used while " ..
  "measured, per server", settings, reps, reps == 1 and "" or "s") ..
  (has["CPU 0 / 1 busy"] and "; \"CPU 0 / 1 busy\" is how busy the server's core and the " ..
    "load generator's core were, kernel softirq work included (about 100% on CPU 0 " ..
    "and less on CPU 1 means the server was the bottleneck)" or "") ..
  (has["drops / retrans max"] and "; \"drops / retrans\" are the most loopback packets " ..
    "dropped from the kernel's per-CPU backlog and TCP segments retransmitted during " ..
    "one run of the case" or "") .. "."
out[#out + 1] = ""
out[#out + 1] = table_md
out[#out + 1] = ""
local busy, checked = {}, 0
for _, r in ipairs(runs) do
  if type(r.other_cpu) == "number" or type(r.noise) == "number" then checked = checked + 1 end
  local other = type(r.other_cpu) == "number" and r.other_cpu or -1
  local before = type(r.noise) == "number" and r.noise * 2 or -1   -- noise is of 2 CPUs
  if other > 0.10 or before > 0.20 then
    busy[#busy + 1] = string.format("%s %s rep %d (%.2f of a CPU)", case_label(r.case),
      r.server, r.rep, math.max(other, before))
  end
end
if #busy > 0 then
  out[#out + 1] = "Runs during which other work on the machine used more than 0.1 of a CPU: " ..
    table.concat(busy, "; ") .. "."
  out[#out + 1] = ""
elseif checked == #runs then
  out[#out + 1] = "No other work used more than 0.1 of a CPU during any run (checked from /proc/stat)."
  out[#out + 1] = ""
else
  out[#out + 1] = string.format("Other load on the machine was not recorded for %d of %d runs.",
    #runs - checked, #runs)
  out[#out + 1] = ""
end
if #problems > 0 then
  out[#out + 1] = "Runs with errors (⚠): " .. table.concat(problems, "; ") .. "."
else
  out[#out + 1] = "Every run finished with errors=0 (all payloads verified, nothing lost, " ..
    "duplicated or reordered, clean close handshakes)."
end
if figure_ok then
  out[#out + 1] = ""
  out[#out + 1] = update_readme and "![echo throughput and idle memory against connections](figures/bench.png)"
    or ("Figure: " .. png)
end
local section = table.concat(out, "\n")

local f = assert(io.open(outdir .. "/table.md", "w"))
f:write(section, "\n")
f:close()
print(section)

if update_readme then
  local readme = bench .. "/README.md"
  local rf = assert(io.open(readme))
  local text = rf:read("a")
  rf:close()
  local b, e = "<!-- BEGIN GENERATED by bench/run -->", "<!-- END GENERATED -->"
  local i = text:find(b, 1, true)
  local j = text:find(e, 1, true)
  if not (i and j and j > i) then
    io.stderr:write("report: markers not found in " .. readme .. "\n")
    os.exit(1)
  end
  text = text:sub(1, i + #b - 1) .. "\n" .. section .. "\n" .. text:sub(j)
  rf = assert(io.open(readme, "w"))
  rf:write(text)
  rf:close()
  io.stderr:write("report: updated " .. readme .. "\n")
end
