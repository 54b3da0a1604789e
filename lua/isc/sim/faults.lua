-- Misbehaviour on demand: seeded fault injection (error statuses,
-- connection resets, slow and truncated responses, reproducible for a given
-- --fault-seed), a real tenant's latency, and the gateway's rate limit (fixed windows per client_id and
-- API version, 429 with Retry-After), both on the sim clock.
local config = require "isc.sim.config"
local rng = require "isc.sim.rng"

local M = {}

local Faults = {}
Faults.__index = Faults

---@param cfg table tenant config (faults, fault_seed, rate_limit)
---@return table
function M.new(cfg)
  local f = setmetatable({}, Faults)
  f:configure(cfg)
  return f
end

---Applies the fault and rate-limit settings; the fault sequence and the
---rate windows start afresh.
---@param cfg table
function Faults:configure(cfg)
  self.rates = cfg.faults and assert(config.parse_faults(cfg.faults)) or {}
  self.active = next(self.rates) ~= nil
  self.rng = rng.new(cfg.fault_seed, "faults")
  self.limit, self.window = nil, nil
  if cfg.rate_limit then self.limit, self.window = config.parse_rate_limit(cfg.rate_limit) end
  self.windows = {}
  self.latency, self.jitter = (cfg.latency_ms or 0) / 1000, (cfg.jitter_ms or 0) / 1000
  self.latency_rng = rng.new(cfg.fault_seed, "latency")
end

---The delay of the next API answer, in seconds: the latency and a draw of
---the jitter (its own sequence, so the faults drawn stay the same).
---@return number
function Faults:delay()
  if self.jitter > 0 then return self.latency + self.jitter * self.latency_rng:float() end
  return self.latency
end

---Draws the fault (if any) for the next request: one draw per request, so
---the sequence depends only on the seed and the number of requests.
---@return string|nil kind one of config.FAULT_KINDS
function Faults:draw()
  if not self.active then return nil end
  local x, cum = self.rng:float(), 0
  for _, kind in ipairs(config.FAULT_KINDS) do
    cum = cum + (self.rates[kind] or 0)
    if x < cum then return kind end
  end
  return nil
end

---Counts a request against its window.
---@param key string client_id and API version
---@param now number sim time
---@return integer|nil seconds to wait when over the limit (Retry-After)
function Faults:over_limit(key, now)
  if not self.limit then return nil end
  local start = math.floor(now / self.window) * self.window
  local w = self.windows[key]
  if not w or w.start ~= start then
    w = { start = start, count = 0 }
    self.windows[key] = w
  end
  w.count = w.count + 1
  if w.count <= self.limit then return nil end
  return math.max(1, math.ceil(start + self.window - now))
end

return M
