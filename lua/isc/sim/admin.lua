-- The simulator's control API under the reserved prefix /__sim/ (not counted
-- in stats): clock, reset, stats, settings, save. Only the user who started
-- the simulator can reach it: it is served on loopback only (see
-- config.start), and every request must carry the control token printed at
-- start, name this simulator in Host (a loopback name and its port, so that
-- a DNS-rebound name is refused), come from no web page (Origin), and send
-- its POSTs as application/json, which a page cannot send without asking.
--   GET  /__sim/health                 -> {"ok": true}
--   GET  /__sim/clock                  -> {"now": epoch, "offset": s, "frozen": bool}
--   POST /__sim/clock  {"advance": s} | {"set": epoch} | {"freeze": bool}
--   POST /__sim/reset                  -> back to the seeded start (answers the credentials)
--   GET  /__sim/stats                  -> request counters
--   GET  /__sim/config                 -> the current settings
--   POST /__sim/config {setting: value, ...} (see isc.sim.config)
--   POST /__sim/save                   -> writes the tenant to the state file it started with
local core = require "isc.core"
local config = require "isc.sim.config"
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

-- Whether "host:port" names this simulator: a loopback name or address, and its port.
local function names_us(t, authority)
  local host, port = authority:match("^(%[.*%]):(%d+)$")
  if not host then host, port = authority:match("^([^:]*):(%d+)$") end
  return host ~= nil and config.is_loopback(host) and tonumber(port) == t.config.port
end

-- The refusal of a request that does not come from a local program holding
-- the token, or nil.
local function refusal(t, req)
  if not t.config.control then
    return fail(404, "the control API is off (the simulator was started with control off)")
  end
  local host = req.headers["host"] or ""
  if not names_us(t, host) then
    return fail(403, string.format("Host %q is not this simulator: control requests name it 127.0.0.1:%d, "
      .. "localhost:%d or [::1]:%d", host, t.config.port, t.config.port, t.config.port))
  end
  local origin = req.headers["origin"]
  if origin and not names_us(t, origin:match("^http://(.*)$") or "") then
    return fail(403, string.format("requests from the web origin %q are refused: the control API is for "
      .. "programs on this machine, not web pages", origin))
  end
  local token = req.headers[config.TOKEN_HEADER:lower()]
  if not token or token == "" then
    return fail(401, "a control token is required: send the " .. config.TOKEN_HEADER
      .. " header with the ISCLUA_SIM_TOKEN that isclua sim printed")
  end
  if token ~= t.config.control_token then
    return fail(401, "wrong control token: send the ISCLUA_SIM_TOKEN that this simulator printed when it started")
  end
  local ctype = req.headers["content-type"] or ""
  if req.method == "POST" and not ctype:lower():match("^application/json%s*;?") then
    return fail(415, string.format("POST %s needs Content-Type: application/json (it had %q)", req.path, ctype))
  end
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

-- The settings as GET /__sim/config shows them (the control token is not shown).
local function config_dto(t)
  local out = {}
  for k, v in pairs(t.config) do out[k] = v end
  out.control_token = nil
  return out
end

-- POST /__sim/save: to the state file given at start, and nowhere else.
local function save(t, body)
  if next(body) ~= nil then
    return fail(400, "save takes no parameters: it writes only the state file the simulator started with")
  end
  local file = t.config.state
  if not file then return fail(400, "no state file: start the simulator with --state FILE to save it") end
  local ok, err = state.save(t, file)
  if not ok then return fail(500, err) end
  return reply(200, { saved = file, roles = t.store:count() })
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
  ["POST /__sim/save"] = save,
}

---Answers a request under /__sim/.
---@param t table tenant
---@param req table
---@return table response
function M.handle(t, req)
  local refused = refusal(t, req)
  if refused then return refused end
  local path = req.path:gsub("/+$", "")
  local handler = HANDLERS[req.method .. " " .. path]
  if not handler then
    if HANDLERS["GET " .. path] or HANDLERS["POST " .. path] then return fail(405, "method not allowed") end
    return fail(404, "no such simulator endpoint: they are /__sim/health, clock, reset, stats, config and save")
  end
  local body, err = body_object(req)
  if not body then return err end
  return handler(t, body)
end

return M
