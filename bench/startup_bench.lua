-- Start-up time: from isc.sim.server's serve_thread to a listening server whose handler
-- module is loaded. Add a line here for each module whose start-up matters.
local bench = require "benchlib"

bench.startup("server_startup_fixed_page", { module = "fixed_page", config = { items = 50 }, target_ms = 50 })
bench.exit()
