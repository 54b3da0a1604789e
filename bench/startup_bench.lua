-- Start-up times, each against a program that starts a Lua state and does
-- nothing: isclua's own start-ups against stock lua5.4's, and a handler
-- module's server (serve_thread to a listening socket) against the same.
-- None of these makes an HTTP request, so none should pay for libcurl or
-- libedit (which the REPL opens on a terminal only); isclua's Lua is loaded
-- as bytecode.
local bench = require "benchlib"

local lua = { name = "lua5.4 -e ''", value = bench.command_ms("lua5.4 -e ''"), unit = "ms" }
local isclua = "'" .. bench.isclua_bin .. "'"
-- What running a script or a cron job costs before the script's first line.
bench.report("isclua_startup_no_http", bench.command_ms(isclua .. " -e ''"), "ms", lua, "<=", 2)
bench.report("isclua_help", bench.command_ms(isclua .. " --help"), "ms", lua, "<=", 2)
bench.report("isclua_sim_help", bench.command_ms(isclua .. " sim --help"), "ms", lua, "<=", 2)
-- The prompt up to its banner and first "> ", with no tenant configured so
-- that no client (and no HTTP) is made; stdin is no terminal, so no libedit.
-- It loads the REPL and isc.client besides, about 0.4 ms more: 1.5 to 2.2
-- times lua5.4 on the machine measured, hence a looser target.
bench.report("isclua_repl_prompt", bench.command_ms("SAIL_BASE_URL= ISCLUA_PROFILE= "
  .. "ISCLUA_CONFIG=/nonexistent/isclua-bench.lua " .. isclua .. " -i </dev/null"), "ms", lua, "<=", 2.5)
-- With HTTP: the first request (here, asking its version) loads libcurl
-- (curl_api.c), which costs what
-- curl's own start-up costs; isclua should add nothing on top of it.
local curl = { name = "curl --version", value = bench.command_ms("curl --version >/dev/null"), unit = "ms" }
bench.report("isclua_startup_http", bench.command_ms(isclua .. " -e 'require(\"isc.core\").curl_version()'"),
  "ms", curl, "<=", 1.1)
bench.report("server_startup_fixed_page", bench.startup_ms { module = "fixed_page", config = { items = 50 } },
  "ms", lua, "<=", 2)
bench.exit()
