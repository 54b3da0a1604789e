-- What the benchmarks under bench/ share: a server of a handler module on
-- its own thread, the load generator, and the one line each result prints:
--   name: value unit (target >= N)
-- A benchmark file is bench/<name>_bench.lua; scripts/bench runs them all
-- (or those named) and fails when a result misses its target.
local core = require "isc.core"
local sim_server = require "isc.sim.server"

local M = { missed = 0 }

-- scripts/bench sets these; the defaults suit a quick manual run.
M.load_bin = os.getenv("ISCLUA_BENCH_LOAD") or "build/bench/load"
M.seconds = tonumber(os.getenv("ISCLUA_BENCH_SECONDS")) or 5

---Prints one result line and remembers a missed target.
---@param name string
---@param value number
---@param unit string
---@param cmp ">="|"<=" which side of the target is good
---@param target number
function M.report(name, value, unit, cmp, target)
  local ok = (cmp == ">=" and value >= target) or (cmp == "<=" and value <= target)
  if not ok then M.missed = M.missed + 1 end
  local shown = value >= 100 and string.format("%.0f", value) or string.format("%.3g", value)
  print(string.format("%s: %s %s (target %s %g)%s", name, shown, unit, cmp, target, ok and "" or " MISSED"))
  io.stdout:flush()
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
    words[#words + 1] = "'" .. h:gsub("'", "'\\''") .. "'"
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

---Benchmarks pages per second of a handler module served by sim_server.serve_thread.
---@param name string
---@param opts {module: string, config?: table, path: string, headers?: string[], connections?: integer, target: number}
function M.pages(name, opts)
  local server <close> = sim_server.serve_thread { module = opts.module, config = opts.config }
  local c = M.load(server:url() .. opts.path, opts)
  io.stderr:write(string.format("%s: %d pages in %gs on %d connections, %d errors, %.1f KB/page\n", name,
    c.requests, c.seconds, c.connects, c.errors, c.bytes / math.max(c.requests, 1) / 1024))
  M.report(name, c.requests / c.seconds, "pages/s", ">=", opts.target)
end

---Benchmarks the start-up of a handler module's server: serve_thread returns
---once the module is loaded and the socket listens. Reports the median.
---@param name string
---@param opts {module: string, config?: table, runs?: integer, target_ms: number}
function M.startup(name, opts)
  local times = {}
  for i = 1, opts.runs or 15 do
    local t0 = core.monotonic()
    local server = sim_server.serve_thread { module = opts.module, config = opts.config }
    times[i] = core.monotonic() - t0
    server:stop()
  end
  table.sort(times)
  M.report(name, times[(#times + 1) // 2] * 1000, "ms", "<=", opts.target_ms)
end

---Ends a benchmark file: its exit status says whether every target was met.
function M.exit()
  os.exit(M.missed == 0)
end

return M
