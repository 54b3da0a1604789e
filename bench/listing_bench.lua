-- The client walking a long listing through the native pager, against the
-- load generator fetching the same tenant's pages over one connection (HTTP
-- alone, no JSON decoding, no Lua); and the Lua heap, which must stay flat
-- however long the listing (one page in memory at a time), against the heap
-- one decoded page takes.
local bench = require "benchlib"
local core = require "isc.core"
local isc = require "isc"
local sim = require "isc.sim"

-- no rate limit on either side: 400 pages in a few seconds would meet ISC's 100/10 s
local s <close> = sim.start { roles = 20000, identities = 100, seed = 2, rate_limit = false }
local c = isc.client { base_url = s.url, client_id = s.client_id, client_secret = s.client_secret, rate_limit = false }
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

local url, auth = s.url .. "/v2024/roles?limit=50", bench.auth_header(s)
local http = bench.pages("listing_pages_http", url, { connections = 1, headers = { auth } }) * 50
bench.report("client_listing_20000_roles", n / took, "roles/s",
  { name = "HTTP alone, 1 connection", value = http, unit = "roles/s" }, ">=", 0.1)

collectgarbage()
local before = collectgarbage("count")
local _, _, body = core.http_new({}):perform { method = "GET", url = url, headers = { Authorization = auth:match(": (.*)") } }
local page = core.json_decode(body)
local one_page = collectgarbage("count") - before
assert(#page == 50 and one_page > 0)
bench.report("client_listing_heap_growth", peak, "KB", { name = "one decoded page", value = one_page, unit = "KB" }, "<=", 8)
bench.exit()
