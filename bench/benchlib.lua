-- What the benchmarks under bench/ share: servers of a handler module on
-- their own thread, the load generator, timing helpers, and the one table
-- row each result prints. A result is compared with a baseline measured in
-- the same run, on the same machine, and only the ratio has a target, so a
-- busy machine slows both sides and fails nothing:
--   name  value unit  baseline: value unit  ratio  target  ok|MISSED
-- A benchmark file is bench/<name>_bench.lua; scripts/bench runs them all
-- (or those named) and fails when a ratio misses its target.
local core = require "isc.core"
local sim_server = require "isc.sim.server"

local M = { missed = 0 }

-- scripts/bench sets these; the defaults suit a quick manual run.
M.load_bin = os.getenv("ISCLUA_BENCH_LOAD") or "build/bench/load"
M.isclua_bin = os.getenv("ISCLUA_BIN") or "build/isclua"
M.seconds = tonumber(os.getenv("ISCLUA_BENCH_SECONDS")) or 5

-- The columns of a row, which scripts/bench prints as the table's head.
M.row_format = "%-28s %-16s %-44s %9s %9s  %s"

local function shown(value, unit)
  return (value >= 100 and string.format("%.0f", value) or string.format("%.3g", value)) .. " " .. unit
end

---Prints one row: a result, its baseline and their ratio, and remembers a
---ratio that misses its target.
---@param name string
---@param value number
---@param unit string
---@param baseline {name: string, value: number, unit: string}
---@param cmp ">="|"<=" which side of the target a good ratio is on
---@param target number the ratio value / baseline.value to meet
function M.report(name, value, unit, baseline, cmp, target)
  local ratio = value / baseline.value
  local ok = (cmp == ">=" and ratio >= target) or (cmp == "<=" and ratio <= target)
  if not ok then M.missed = M.missed + 1 end
  print(string.format(M.row_format, name, shown(value, unit),
    baseline.name .. ": " .. shown(baseline.value, baseline.unit),
    string.format("%.3g", ratio), cmp .. " " .. target, ok and "ok" or "MISSED"))
  io.stdout:flush()
end

---s quoted for the shell.
---@param s string
---@return string
function M.quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

---Runs the load generator against url.
---@param url string
---@param opts? {connections?: integer, seconds?: number, headers?: string[]}
---@return table counts {requests, errors, bytes, seconds, connects}
function M.load(url, opts)
  opts = opts or {}
  local words = { M.load_bin, "-c", opts.connections or 8, "-d", opts.seconds or M.seconds }
  for _, h in ipairs(opts.headers or {}) do
    words[#words + 1] = "-H"
    words[#words + 1] = M.quote(h)
  end
  words[#words + 1] = "'" .. url .. "'"
  local p = assert(io.popen(table.concat(words, " ")))
  local line = p:read("a")
  local ok = p:close()
  local counts = {}
  for k, v in line:gmatch("(%w+)=([%d.]+)") do counts[k] = tonumber(v) end
  assert(ok and counts.requests, "load generator failed: " .. line)
  return counts
end

---The header a simulated tenant's API wants, with a token fetched from it.
---@param s table a started isc.sim
---@return string "Authorization: Bearer ..."
function M.auth_header(s)
  local status, _, body = core.http_new({}):perform { method = "POST", url = s.url .. "/oauth/token",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
    body = "grant_type=client_credentials&client_id=" .. s.client_id .. "&client_secret=" .. s.client_secret }
  assert(status == 200, "token request failed: " .. tostring(status))
  return "Authorization: Bearer " .. core.json_decode(body).access_token
end

---Pages per second the load generator gets from url; the counts go to stderr
---under name.
---@param name string
---@param url string
---@param opts? {connections?: integer, seconds?: number, headers?: string[]}
---@return number pages_per_second
function M.pages(name, url, opts)
  local c = M.load(url, opts)
  io.stderr:write(string.format("%s: %d pages in %gs on %d connections, %d errors, %.1f KB/page\n", name,
    c.requests, c.seconds, c.connects, c.errors, c.bytes / math.max(c.requests, 1) / 1024))
  assert(c.errors == 0, name .. ": the server answered errors under load")
  return c.requests / c.seconds
end

---The median time fn() takes, in milliseconds.
---@param fn fun()
---@param runs? integer (default 15)
---@return number
function M.median_ms(fn, runs)
  local times = {}
  for i = 1, runs or 15 do
    local t0 = core.monotonic()
    fn()
    times[i] = core.monotonic() - t0
  end
  table.sort(times)
  return times[(#times + 1) // 2] * 1000
end

---The median time a shell command takes to run, in milliseconds, as perf
---stat -r counts it: fork, exec, run and wait. One shell runs a batch of
---runs, so that its own start (as long as lua5.4's) is not counted in each.
---@param command string
---@param runs? integer batches (default 15)
---@param batch? integer runs per batch (default 20)
---@return number
function M.command_ms(command, runs, batch)
  batch = batch or 20
  local script = string.format("i=0; while [ $i -lt %d ]; do %s >/dev/null || exit 1; i=$((i + 1)); done",
    batch, command)
  return M.median_ms(function() assert(os.execute(script), command .. " failed") end, runs) / batch
end

---The median start-up of a handler module's server, in milliseconds:
---serve_thread returns once the module is loaded and the socket listens.
---@param opts {module: string, config?: table, runs?: integer}
---@return number
function M.startup_ms(opts)
  return M.median_ms(function()
    sim_server.serve_thread({ module = opts.module, config = opts.config }):stop()
  end, opts.runs)
end

---Ends a benchmark file: its exit status says whether every ratio met its target.
function M.exit()
  os.exit(M.missed == 0)
end

return M
