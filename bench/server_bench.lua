-- The server loop alone: a fixed page of 50 roles, as fast as it goes.
-- The tenant must serve 2,000 such pages per second; the loop must leave
-- it most of that budget.
local bench = require "benchlib"

bench.pages("server_fixed_page", { module = "fixed_page", config = { items = 50 },
  path = "/v2024/roles?limit=50", target = 2000 })
bench.exit()
