-- The simulated tenant itself. An unfiltered page of 50 roles out of 10,000,
-- against the server loop serving a fixed page of 50 such roles in the same
-- run: the tenant's own work (filtering, paging, encoding) must leave it a
-- good share of the loop's speed, so that it never dominates the client's
-- benchmarks. The aim is 0.3x what nginx would serve of the same page; nginx
-- is not among the build's packages, and the server loop alone (faster
-- than a general web server at one fixed page) stands in for it. Its
-- start-up with 10,000 roles, against making 10,000 such roles as Lua tables.
local bench = require "benchlib"
local fixed_page = require "fixed_page"
local sim = require "isc.sim"
local sim_server = require "isc.sim.server"

-- no rate limit: the load is the point, and ISC's 100/10 s would turn it into 429s
local config = { roles = 10000, identities = 2000, seed = 1, rate_limit = false }
local s <close> = sim.start(config)
local auth = bench.auth_header(s)

local url = s.url .. "/v2024/roles?limit=50"
bench.load(url, { headers = { auth }, seconds = 1 }) -- warm: each role is encoded once, then cached
local tenant = bench.pages("sim_roles_page", url, { headers = { auth } })
local fixed do
  local server <close> = sim_server.serve_thread { module = "fixed_page", config = { items = 50 } }
  fixed = bench.pages("server_fixed_page", server:url() .. "/v2024/roles?limit=50")
end
s:stop()
bench.report("sim_roles_page", tenant, "pages/s", { name = "fixed page, same server", value = fixed, unit = "pages/s" },
  ">=", 0.3)

local make = bench.median_ms(function() fixed_page.roles(config.roles) end, 5)
bench.report("sim_startup_10000_roles", bench.startup_ms { module = "isc.sim.tenant", config = config }, "ms",
  { name = "make 10000 roles in Lua", value = make, unit = "ms" }, "<=", 0.5)
bench.exit()
