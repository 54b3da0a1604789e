-- The server loop alone: a fixed page of 50 roles, as fast as it goes on 8
-- connections, against curl fetching the same page over one connection, one
-- request after the other (the rate a single client sees).
local bench = require "benchlib"
local core = require "isc.core"
local sim_server = require "isc.sim.server"

local server <close> = sim_server.serve_thread { module = "fixed_page", config = { items = 50 } }
local url = server:url() .. "/v2024/roles?limit=50"
local served = bench.pages("server_fixed_page", url)

-- curl's URL globbing makes one process fetch the page n times, reusing its connection
local n = 2000
local t0 = core.monotonic()
assert(os.execute("curl -sf -o /dev/null '" .. url .. "&n=[1-" .. n .. "]'"), "curl failed")
local curl = n / (core.monotonic() - t0)
bench.report("server_fixed_page", served, "pages/s", { name = "curl, 1 connection", value = curl, unit = "pages/s" }, ">=", 1)
bench.exit()
