-- The handler module of spec/sim_server_spec.lua: echoes each request as JSON
-- and, on request, answers with the faults, delays and errors the server
-- must cope with. Runs in the server's own Lua state.
local core = require "isc.core"

local M = {}

local function json(status, value)
  return { status = status, headers = { ["Content-Type"] = "application/json" }, body = core.json_encode(value) }
end

---@param config table {greeting = string, fail_setup = boolean}
---@return fun(req: table): table|string
function M.handler(config)
  if config.fail_setup then error("setup refused by the config") end
  local seen = {}
  local routes = {
    echo = function(req)
      return json(200, { method = req.method, target = req.target, path = req.path, query = req.query,
        headers = req.headers, body = req.body, greeting = config.greeting })
    end,
    missing = function()
      return json(404, { detailCode = "404 Not found", trackingId = "b21b1f7ce4da4d639f2c62a57171b427",
        messages = { { locale = "en-US", localeOrigin = "DEFAULT", text = "no such thing" } } })
    end,
    fail = function() error("deliberate failure") end,
    binary = function() error("bytes JSON cannot hold: \255\254") end,
    nonsense = function() return 42 end,
    reset = function() return { fault = "reset" } end,
    truncate = function() return { body = ("x"):rep(1000), fault = "truncate" } end,
    slow = function(req) return { body = "slow", delay = tonumber(req.query:match("delay=([%d.]+)")) } end,
    -- how many requests for a path arrived so far, answered or not
    seen = function(req) return { body = tostring(seen[req.query:match("path=(.*)")] or 0) } end,
    headers = function() return { status = 201, headers = { ["X-Custom"] = "yes", ["Content-Length"] = "999" }, body = "made" } end,
    stop = function() return "stop" end,
  }
  return function(req)
    seen[req.path] = (seen[req.path] or 0) + 1
    local route = routes[req.path:match("^/(%w+)")]
    if not route then return { status = 404, body = "no route" } end
    return route(req)
  end
end

return M
