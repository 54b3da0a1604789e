-- The simulator's control API under the reserved prefix /__sim/ (no auth,
-- not counted in stats): clock, reset, stats, settings, save.
--   GET  /__sim/health                 -> {"ok": true}
--   GET  /__sim/clock                  -> {"now": epoch, "offset": s, "frozen": bool}
--   POST /__sim/clock  {"advance": s} | {"set": epoch} | {"freeze": bool}
--   POST /__sim/reset                  -> back to the seeded start (answers the credentials)
--   GET  /__sim/stats                  -> request counters
--   GET  /__sim/config                 -> the current settings
--   POST /__sim/config {setting: value, ...} (see isc.sim.config)
--   POST /__sim/save   {"file": path}? -> writes the tenant as JSON (default: the state setting)
local core = require "isc.core"
local state = require "isc.sim.state"

local M = {}

-- A JSON answer of the control API.
local function reply(status, value)
  return { status = status, headers = { ["Content-Type"] = "application/json" }, body = core.json_encode(value) }
end

-- A control API error: {"error": msg}.
local function fail(status, msg)
  return reply(status, { error = msg })
end

-- The request body as a JSON object ({} when empty).
local function body_object(req)
  if not req.body or req.body:match("^%s*$") then return {} end
  local v, err = core.json_decode(req.body)
  if type(v) ~= "table" or getmetatable(v) == core.array_mt then
    return nil, fail(400, "the body must be a JSON object" .. (err and (": " .. err) or ""))
  end
  return v
end

local function clock_dto(t)
  local c = t.clock
  return { now = c:now(), offset = c.offset, frozen = c.frozen ~= nil }
end

-- POST /__sim/clock: freeze, set, then advance, as given.
local function set_clock(t, body)
  local c = t.clock
  if body.freeze ~= nil then
    if type(body.freeze) ~= "boolean" then return fail(400, "freeze must be true or false") end
    c:freeze(body.freeze)
  end
  if body.set ~= nil then
    if type(body.set) ~= "number" then return fail(400, "set must be epoch seconds") end
    c:set(body.set)
  end
  if body.advance ~= nil then
    if type(body.advance) ~= "number" then return fail(400, "advance must be a number of seconds") end
    c:advance(body.advance)
  end
  return reply(200, clock_dto(t))
end

local function config_dto(t)
  local out = {}
  for k, v in pairs(t.config) do out[k] = v end
  return out
end

local HANDLERS = {
  ["GET /__sim/health"] = function() return reply(200, { ok = true }) end,
  ["GET /__sim/clock"] = function(t) return reply(200, clock_dto(t)) end,
  ["POST /__sim/clock"] = function(t, body) return set_clock(t, body) end,
  ["POST /__sim/reset"] = function(t)
    t:reset()
    return reply(200, { ok = true, now = t.clock:now(), client_id = t.config.client_id,
      client_secret = t.config.client_secret })
  end,
  ["GET /__sim/stats"] = function(t) return reply(200, t.stats) end,
  ["GET /__sim/config"] = function(t) return reply(200, config_dto(t)) end,
  ["POST /__sim/config"] = function(t, body)
    local _, err = t:configure(body)
    if err then return fail(400, err) end
    return reply(200, config_dto(t))
  end,
  ["POST /__sim/save"] = function(t, body)
    local file = body.file or t.config.state
    if type(file) ~= "string" then return fail(400, "no file: give {\"file\": path} or start with a state file") end
    local ok, err = state.save(t, file)
    if not ok then return fail(500, err) end
    return reply(200, { saved = file, roles = t.store:count() })
  end,
}

---Answers a request under /__sim/.
---@param t table tenant
---@param req table
---@return table response
function M.handle(t, req)
  local path = req.path:gsub("/+$", "")
  local handler = HANDLERS[req.method .. " " .. path]
  if not handler then
    if HANDLERS["GET " .. path] or HANDLERS["POST " .. path] then return fail(405, "method not allowed") end
    return fail(404, "unknown simulator endpoint " .. path)
  end
  local body, err = body_object(req)
  if not body then return err end
  return handler(t, body)
end

return M
