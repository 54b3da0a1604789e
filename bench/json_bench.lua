-- Decoding a page of 250 realistic roles (bench/fixed_page.lua's shape):
-- isclua's codec, which keeps [] apart from {} and 64-bit integers exact and
-- builds each table at its final size, against lua-cjson, which does
-- neither of the first two.
local bench = require "benchlib"
local core = require "isc.core"
local cjson = require "cjson"
local page = require "fixed_page"

local text = core.json_encode(page.roles(250))
local isc_ms = bench.median_ms(function() core.json_decode(text) end, 41)
local cjson_ms = bench.median_ms(function() cjson.decode(text) end, 41)
bench.report("json_decode_250_roles", isc_ms, "ms", { name = "lua-cjson 2.1.0", value = cjson_ms, unit = "ms" },
  "<=", 1)
bench.exit()
