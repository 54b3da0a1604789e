-- The client walking a long listing through the native pager: items per
-- second against the simulated tenant, and the Lua heap, which must stay
-- flat however long the listing (one page in memory at a time).
local bench = require "benchlib"
local core = require "isc.core"
local isc = require "isc"
local sim = require "isc.sim"

-- no rate limit: 800 pages in a few seconds would meet ISC's 100/10 s
local s <close> = sim.start { roles = 20000, identities = 100, seed = 2, rate_limit = false }
local c = isc.client { base_url = s.url, client_id = s.client_id, client_secret = s.client_secret }
for _ in c.roles:list {} do end -- warm the tenant's encoded roles

collectgarbage()
local base, peak, n = collectgarbage("count"), 0, 0
local t0 = core.monotonic()
for _ in c.roles:list {} do
  n = n + 1
  if n % 2000 == 0 then peak = math.max(peak, collectgarbage("count") - base) end
end
local took = core.monotonic() - t0
assert(n == 20000, "walked " .. n .. " roles")
bench.report("client_listing_20000_roles", n / took, "roles/s", ">=", 5000)
bench.report("client_listing_heap_growth", peak, "KB", "<=", 4096)
bench.exit()
