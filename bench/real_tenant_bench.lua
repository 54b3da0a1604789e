-- A real tenant's shape: 200 ms per request and 100 requests per 10 s
-- (the simulator's --latency-ms and --rate-limit). Each client is its own
-- isclua process, timed by /usr/bin/time, so that its CPU and memory are its
-- own and not the simulator's (which runs here, on a thread). The floors are
-- arithmetic: N requests at 100 per 10 s cannot take less than N / 10 s.
local bench = require "benchlib"
local core = require "isc.core"
local sim = require "isc.sim"

local isclua = "'" .. bench.isclua_bin .. "'"

local quote = bench.quote

-- The command line of an isclua process running a Lua chunk as a client of s
-- (env execs it, so that a /usr/bin/time before it times isclua itself).
local function client_command(s, chunk)
  return string.format("env SAIL_BASE_URL=%s SAIL_CLIENT_ID=%s SAIL_CLIENT_SECRET=%s %s -e %s", quote(s.url),
    quote(s.client_id), quote(s.client_secret), isclua, quote(chunk))
end

-- Runs a Lua chunk in an isclua process as a client of s; returns its wall
-- time, CPU seconds (user + system) and peak RSS in MB.
local function client(s, chunk)
  local out = os.tmpname()
  local cmd = string.format("/usr/bin/time -o %s -f '%%e %%U %%S %%M' %s", out, client_command(s, chunk))
  local t0 = core.monotonic()
  assert(os.execute(cmd), "client failed: " .. chunk)
  local wall = core.monotonic() - t0
  local f = assert(io.open(out))
  local _, user, sys, kb = f:read("a"):match("([%d.]+) ([%d.]+) ([%d.]+) (%d+)")
  f:close()
  os.remove(out)
  return wall, tonumber(user) + tonumber(sys), tonumber(kb) / 1024
end

-- A client listing every role; `loopback`: a tenant with no rate limit, so
-- the client keeps none either.
local function list_all(concurrency, per_page_work, loopback)
  return string.format([[
local c, n = require("isc").client { rate_limit = %s }, 0
for _ in c.roles:list { concurrency = %d } do
  n = n + 1
  if %g > 0 and n %% 50 == 1 then local t = os.clock() + %g; repeat until os.clock() >= t end
end
io.stderr:write(n, " roles\n")]], loopback and "false" or "nil", concurrency, per_page_work, per_page_work)
end

do
  local s <close> = sim.start { roles = 10000, identities = 100, seed = 2, latency_ms = 200, rate_limit = "100/10s" }
  local floor = { name = "200 requests at 10/s", value = 20, unit = "s" }
  local ahead = client(s, list_all(4, 0))
  bench.report("list_10000_latency_200ms", ahead, "s", floor, "<=", 1.1)
  bench.report("list_10000_429s", s:stats().rate_limited, "", { name = "one 429", value = 1, unit = "" }, "<=", 0)
  local one = client(s, list_all(1, 0))
  bench.report("list_10000_vs_concurrency_1", ahead, "s", { name = "concurrency = 1", value = one, unit = "s" },
    "<=", 0.55)

  -- The patches: ids read first (20 requests), then timed alone.
  s:reset()
  local patches = [[
local isc = require "isc"
local c = isc.client()
local ids = {}
for role in c.roles:list { max = 1000 } do ids[#ids + 1] = role.id end
local t0 = require("isc.core").monotonic()
local _, failures = c:each(ids, function(id)
  c.roles:patch(id, { { op = "replace", path = "/description", value = "patched" } })
end, { concurrency = 8 })
assert(#failures == 0, tostring(failures[1] and failures[1].error))
io.stdout:write(require("isc.core").monotonic() - t0, "\n")]]
  local p = assert(io.popen(client_command(s, patches)))
  local took = tonumber(p:read("a"))
  assert(p:close() and took, "the patching client failed")
  bench.report("patch_1000_each_concurrency_8", took, "s", { name = "1000 requests at 10/s", value = 100, unit = "s" },
    "<=", 1.1)
end

do
  -- A script's own work, 200 ms of CPU per page: the next pages travel meanwhile.
  local s <close> = sim.start { roles = 2000, identities = 50, seed = 3, latency_ms = 200, rate_limit = "100/10s" }
  local wall = client(s, list_all(4, 0.2))
  bench.report("list_2000_with_200ms_work_per_page", wall, "s", { name = "the work alone, 40 x 0.2", value = 8,
    unit = "s" }, "<=", 1.1)
end

do
  -- Loopback: the client's CPU against curl fetching the same pages over one
  -- connection and lua-cjson decoding them.
  local s <close> = sim.start { roles = 10000, identities = 100, seed = 2, rate_limit = false }
  client(s, list_all(4, 0, true)) -- warm the tenant's encoded roles
  local _, cpu = client(s, list_all(4, 0, true))
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local auth = bench.auth_header(s)
  local urls = {}
  for i = 0, 199 do
    urls[#urls + 1] = string.format("-o %s/%d.json '%s/v2024/roles?limit=50&offset=%d'", dir, i, s.url, i * 50)
  end
  local times = os.tmpname()
  assert(os.execute(string.format("/usr/bin/time -o %s -f '%%U %%S' curl -s -H %s %s", times, quote(auth),
    table.concat(urls, " "))))
  assert(os.execute(string.format("/usr/bin/time -a -o %s -f '%%U %%S' lua5.4 -e %s", times, quote(string.format([[
local cjson = require "cjson"
local n = 0
for i = 0, 199 do
  local f = assert(io.open("%s/" .. i .. ".json"))
  n = n + #cjson.decode(f:read("a"))
  f:close()
end
assert(n == 10000, n)]], dir)))))
  local f = assert(io.open(times))
  local base = 0
  for u, sy in f:read("a"):gmatch("([%d.]+) ([%d.]+)") do base = base + tonumber(u) + tonumber(sy) end
  f:close()
  os.remove(times)
  os.execute("rm -rf " .. dir)
  bench.report("list_10000_loopback_cpu", cpu, "s", { name = "curl + lua-cjson", value = base, unit = "s" },
    "<=", 1.2)
end

do
  local s <close> = sim.start { roles = 100000, identities = 100, seed = 4, rate_limit = false }
  local _, _, mb = client(s, list_all(4, 0, true))
  bench.report("list_100000_peak_rss", mb, "MB", { name = "budget", value = 20, unit = "MB" }, "<=", 1)
end
bench.exit()
