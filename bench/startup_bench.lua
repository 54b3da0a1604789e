-- Start-up times, each against a program that starts a Lua state and does
-- nothing: isclua's own start-up against stock lua5.4's, and a handler
-- module's server (serve_thread to a listening socket) against the same.
local bench = require "benchlib"

local lua = { name = "lua5.4 -e ''", value = bench.command_ms("lua5.4 -e ''"), unit = "ms" }
bench.report("isclua_startup", bench.command_ms("'" .. bench.isclua_bin .. "' -e ''"), "ms", lua, "<=", 10)
bench.report("server_startup_fixed_page", bench.startup_ms { module = "fixed_page", config = { items = 50 } },
  "ms", lua, "<=", 2)
bench.exit()
