-- The simulator's clock (real time plus an offset that tests move, optionally
-- frozen) and the ISO-8601 conversions every time-stamped field uses.
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

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (m > 2 and m - 3 or m + 9) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

---Formats epoch seconds as UTC ISO-8601: `2021-03-01T22:32:58.104Z` with
---millis, `2025-05-29T17:18:31Z` without.
---@param t number
---@param millis? boolean
---@return string
function M.iso(t, millis)
  local ms = math.floor(t * 1000 + 0.5)
  local s = os.date("!%Y-%m-%dT%H:%M:%S", ms // 1000)
  if millis then return string.format("%s.%03dZ", s, ms % 1000) end
  return s .. "Z"
end

---Parses an ISO-8601 / RFC 3339 date-time (or a bare date) to epoch seconds.
---@param s string
---@return number|nil
function M.parse_iso(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, sec, frac, zone = 0, 0, 0, "", ""
  if rest ~= "" then
    h, mi, sec, frac, zone = rest:match("^[Tt ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
    if not h then
      h, mi, zone = rest:match("^[Tt ](%d%d):(%d%d)(.*)$")
      if not h then return nil end
      sec, frac = 0, ""
    end
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  local t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec
  if frac ~= "" then
    if frac == "." then return nil end
    t = t + tonumber("0" .. frac)
  end
  if zone == "" or zone == "Z" or zone == "z" then return t end
  local sign, zh, zm = zone:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then return nil end
  local off = tonumber(zh) * 3600 + tonumber(zm) * 60
  return sign == "+" and t - off or t + off
end

return M
