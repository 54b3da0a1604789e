-- The simulated tenant itself: an unfiltered page of 50 roles out of 10,000
-- (the target is 2,000 pages/s on this 2-core machine, so the simulator never
-- dominates the client's benchmarks) and its start-up with 10,000 roles.
local bench = require "benchlib"
local core = require "isc.core"
local sim = require "isc.sim"

-- no rate limit: the load is the point, and ISC's 100/10 s would turn it into 429s
local config = { roles = 10000, identities = 2000, seed = 1, rate_limit = false }
local s <close> = sim.start(config)
local conn = core.http_new {}
local status, _, body = conn:perform { method = "POST", url = s.url .. "/oauth/token",
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
  body = "grant_type=client_credentials&client_id=" .. s.client_id .. "&client_secret=" .. s.client_secret }
assert(status == 200, "token request failed: " .. tostring(status))
local auth = "Authorization: Bearer " .. core.json_decode(body).access_token

local url = s.url .. "/v2024/roles?limit=50"
bench.load(url, { headers = { auth }, seconds = 1 }) -- warm: each role is encoded once, then cached
local c = bench.load(url, { headers = { auth } })
io.stderr:write(string.format("sim_roles_page: %d pages in %gs on %d connections, %d errors, %.1f KB/page\n",
  c.requests, c.seconds, c.connects, c.errors, c.bytes / math.max(c.requests, 1) / 1024))
assert(c.errors == 0, "the tenant answered errors under load")
bench.report("sim_roles_page", c.requests / c.seconds, "pages/s", ">=", 2000)

bench.startup("sim_startup_10000_roles", { module = "isc.sim.tenant", config = config, target_ms = 100 })
bench.exit()
