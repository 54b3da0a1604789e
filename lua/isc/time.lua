--- Time as ISC writes it: ISO-8601 / RFC 3339 date-times in UTC, and the
--- calendar arithmetic under them, shared by the client (journal, undo,
--- Retry-After dates, rehearsed answers) and the simulator.
local M = {}

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

---Seconds since the epoch of a UTC calendar time.
---@return integer
function M.epoch(y, m, d, h, mi, s)
  return days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s
end

return M
