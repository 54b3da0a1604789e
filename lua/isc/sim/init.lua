-- The simulator controller: starts a simulated tenant on a server thread
-- (or connects to one running elsewhere) and drives it through its /__sim/
-- control API over HTTP (libcurl, through core.http_new), sending the
-- control token with each call, so that specs, the demo and `--sim` can move
-- its clock, reset it, read its counters and change its limits and faults.
--
--   local sim = require("isc.sim").start { roles = 500, seed = 7 }
--   sim:advance(60); print(sim:stats().requests); sim:stop()
local core = require "isc.core"
local config = require "isc.sim.config"
local errors = require "isc.errors"

local M = {}

local Sim = {}
Sim.__index = Sim

-- A controller object for the simulator at url.
local function new(url, fields)
  local s = setmetatable(fields, Sim)
  s.url = url
  s.port = tonumber(url:match(":(%d+)$"))
  s.conn = core.http_new { timeout = 60 }
  return s
end

---Starts a simulated tenant on a thread of this process, listening on a
---free loopback port unless `port` is given.
---@param cfg? table settings (isc.sim.config; unknown or bad ones raise)
---@return table sim with url, port, client_id, client_secret, token (of the control API)
function M.start(cfg)
  cfg = cfg or {}
  local c, err = config.start(cfg)
  if not c then errors.raise("argument", "isc.sim.start: " .. err) end
  c.port = cfg.port or 0
  local server = require("isc.sim.server").serve_thread {
    host = c.host, port = c.port, log = c.log, module = "isc.sim.tenant", config = c,
  }
  return new(server:url(), { server = server, client_id = c.client_id, client_secret = c.client_secret,
    token = c.control_token })
end

---Connects to a simulator already running (e.g. `isclua sim` elsewhere).
---@param url string its base URL
---@param token? string its control token (default: $ISCLUA_SIM_TOKEN, which `isclua sim` prints)
---@return table sim (stop() leaves that simulator running)
function M.connect(url, token)
  token = token or os.getenv("ISCLUA_SIM_TOKEN")
  if type(token) ~= "string" or token == "" then
    errors.raise("argument", "isc.sim.connect: give the control token: the ISCLUA_SIM_TOKEN that isclua sim printed")
  end
  local s = new((url:gsub("/+$", "")), { token = token })
  local cfg = s:config()
  s.client_id, s.client_secret = cfg.client_id, cfg.client_secret
  return s
end

---Sends one raw HTTP request to the simulator.
---@param req {method: string, path: string, headers: table, body: string}
---@return integer status, table headers (lowercased), string body
function Sim:request(req)
  if not self.conn then errors.raise("sim", "the simulator controller is stopped") end
  local status, headers, body = self.conn:perform {
    method = req.method or "GET", url = self.url .. req.path, headers = req.headers, body = req.body,
  }
  if not status then error(headers, 0) end
  return status, headers, body
end

---Calls a /__sim/ endpoint (see isc.sim.admin); returns its decoded answer
---or raises a "sim" error.
---@param method string
---@param path string after /__sim/, e.g. "clock"
---@param value? table JSON body
---@return table
function Sim:admin(method, path, value)
  local status, _, body = self:request {
    method = method, path = "/__sim/" .. path,
    headers = { ["Content-Type"] = "application/json", [config.TOKEN_HEADER] = self.token },
    body = value and core.json_encode(value) or (method == "POST" and "" or nil),
  }
  local decoded = core.json_decode(body)
  if status ~= 200 then
    errors.raise("sim", string.format("%s /__sim/%s: %s", method, path,
      type(decoded) == "table" and tostring(decoded.error) or ("HTTP " .. status)), { status = status })
  end
  return decoded
end

---Moves the simulator's clock forward.
---@param seconds number
---@return number the new simulated time (epoch seconds)
function Sim:advance(seconds)
  return self:admin("POST", "clock", { advance = seconds }).now
end

---@return number the simulated time (epoch seconds, with fractions)
function Sim:now()
  return self:admin("GET", "clock").now
end

---Stops (or restarts) the flow of real time in the simulator.
---@param on boolean
---@return number the simulated time
function Sim:freeze(on)
  return self:admin("POST", "clock", { freeze = on }).now
end

---Back to the seeded start: initial settings and data, clock offset 0,
---counters cleared (tokens already issued stay valid).
function Sim:reset()
  local r = self:admin("POST", "reset")
  self.client_id, self.client_secret = r.client_id, r.client_secret
end

---@return table {requests, by_route, by_status, tokens_issued, mutating, rate_limited, faults}
function Sim:stats()
  return self:admin("GET", "stats")
end

---Changes settings at run time (limits, faults, token_ttl, stage
---durations, fail_next_propagation...; see isc.sim.config).
---@param changes table
---@return table the settings now in force
function Sim:configure(changes)
  local cfg = self:admin("POST", "config", changes)
  self.client_id, self.client_secret = cfg.client_id, cfg.client_secret
  return cfg
end

---@return table the settings in force
function Sim:config()
  return self:admin("GET", "config")
end

---Writes the tenant as JSON to the state file it started with (the only
---file the simulator writes).
---@return string the file written
function Sim:save(...)
  if select("#", ...) > 0 then
    errors.raise("argument", "sim:save() takes no file: the simulator saves only to its state setting")
  end
  return self:admin("POST", "save").saved
end

---Stops a started simulator (a connected one keeps running); idempotent.
function Sim:stop()
  if self.server then
    self.server:stop()
    self.server = nil
  end
  if self.conn then
    self.conn:close()
    self.conn = nil
  end
end

Sim.__close = Sim.stop

function Sim:__tostring()
  return string.format("isc.sim(%s%s)", self.url, self.conn and "" or ", stopped")
end

return M
