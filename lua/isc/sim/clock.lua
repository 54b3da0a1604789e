-- The simulator's clock (real time plus an offset that tests move, optionally
-- frozen), with isc.time's ISO-8601 conversions at hand.
local core = require "isc.core"

local M = {}

local Clock = {}
Clock.__index = Clock

---@param wall? fun(): number wall-clock seconds (default core.time)
---@return table clock
function M.new(wall)
  return setmetatable({ wall = wall or core.time, offset = 0, frozen = nil }, Clock)
end

---@return number simulated epoch seconds, with fractions
function Clock:now()
  return (self.frozen or self.wall()) + self.offset
end

---@param seconds number moves simulated time forward (or back, if negative)
function Clock:advance(seconds)
  self.offset = self.offset + seconds
end

---@param epoch number makes now() return this instant
function Clock:set(epoch)
  self.offset = epoch - (self.frozen or self.wall())
end

---Stops (or restarts) the flow of real time; simulated time is continuous
---across the switch.
---@param on boolean
function Clock:freeze(on)
  local now = self:now()
  self.frozen = on and self.wall() or nil
  self:set(now)
end

function Clock:reset()
  self.offset, self.frozen = 0, nil
end

-- The ISO-8601 conversions every time-stamped field uses, as isc.time has them.
local time = require "isc.time"
M.iso, M.parse_iso = time.iso, time.parse_iso

return M
