-- The simulator's settings in one place: their defaults, what each means,
-- and the checks shared by `isclua sim`, sim.start{} and POST /__sim/config.
local core = require "isc.core"

local M = {}

---Every setting, its default (nil = off) and its meaning.
M.settings = {
  { "host", "string", "127.0.0.1", "address to listen on (loopback unless told otherwise)" },
  { "port", "port", 8765, "port of `isclua sim` (sim.start listens on a free port unless given one)" },
  { "client_id", "string", "isclua-sim", "client id accepted by /oauth/token" },
  { "client_secret", "string", "sim-secret", "client secret accepted by /oauth/token" },
  { "client_name", "string", "isclua sim", "name of the API client (launchedBy.name of propagations)" },
  { "roles", "count", 250, "number of generated roles" },
  { "identities", "count", 1000, "number of generated identities" },
  { "seed", "int", 1, "seed of the generated tenant" },
  { "state", "string", nil, "JSON file loaded at start (if it exists) and saved on exit / POST /__sim/save" },
  { "token_ttl", "seconds", 749, "access token lifetime (expires_in)" },
  { "rate_limit", "rate", nil, "'100/10s': requests per window per client_id and API version; 429 beyond" },
  { "faults", "faults", nil, "'http500=0.03,http503=0.03,reset=0.02,http429=0.02,slow=0.01,truncate=0.01'" },
  { "fault_seed", "int", 1, "seed of the fault sequence" },
  { "fault_match", "string", nil, "Lua pattern on 'METHOD /path': faults strike only the requests it matches" },
  { "slow_seconds", "seconds", 2, "delay of a 'slow' fault" },
  { "propagation_stage_seconds", "stages", 1, "duration of each running propagation stage (or a table per stage)" },
  { "propagation_enabled", "boolean", true, "initial value of the role-propagation-config switch" },
  { "role_refresh_running", "boolean", false, "a role refresh is running: start without skipRoleRefresh fails" },
  { "fail_next_propagation", "string", nil, "failureReason of the next propagation, which then FAILS" },
  { "fail_at_stage", "stage", nil, "stage at whose end that propagation fails (default LAUNCH_PROVISIONING)" },
  { "bulk_delete_seconds", "seconds", 1, "delay before bulk-deleted roles disappear" },
  { "bulk_update_stage_seconds", "seconds", 1, "duration of each stage of a bulk metadata update" },
  { "experimental_entitlements", "boolean", false,
    "GET roles/{id}/entitlements requires X-SailPoint-Experimental (older specs; the newest does not)" },
  { "log", "boolean", false, "the server logs one line per request to stderr" },
}

M.defaults = {}
local kinds = {}
for _, s in ipairs(M.settings) do
  M.defaults[s[1]] = s[3]
  kinds[s[1]] = s[2]
end

-- reset, http5xx and http429 strike before the endpoint runs (nothing is
-- done); truncate and the *_after kinds after it (the change is made, the
-- response is lost or replaced by a gateway's 504).
M.FAULT_KINDS = { "http500", "http503", "http429", "reset", "slow", "truncate",
  "reset_after", "truncate_after", "http504_after" }
M.RUNNING_STAGES = { "PENDING", "DATA_AGGREGATION_RUNNING", "LAUNCH_PROVISIONING" }

-- Values that switch an optional setting off.
local function is_off(v)
  return v == false or v == core.null or v == "" or v == "off" or v == "none"
end

---Parses "100/10s" (also "100/10", "5/1m") into count and window seconds.
---@param s string
---@return integer|nil count, number|string window or message
function M.parse_rate_limit(s)
  local n, w, unit = tostring(s):match("^%s*(%d+)%s*/%s*(%d*%.?%d*)%s*([smh]?)%s*$")
  n, w = tonumber(n), tonumber(w ~= "" and w or "1")
  if not n or not w or n < 1 or w <= 0 then
    return nil, string.format("rate limit %q: expected COUNT/WINDOW such as 100/10s", tostring(s))
  end
  return math.tointeger(n), w * ({ s = 1, m = 60, h = 3600 })[unit ~= "" and unit or "s"]
end

---Parses "http500=0.03,reset=0.02" (or a table) into {kind = rate}.
---@param v string|table
---@return table|nil rates, string|nil message
function M.parse_faults(v)
  local rates, known, total = {}, {}, 0
  for _, k in ipairs(M.FAULT_KINDS) do known[k] = true end
  local pairs_list = {}
  if type(v) == "table" then
    for k, r in pairs(v) do pairs_list[#pairs_list + 1] = { k, r } end
  else
    for item in tostring(v):gmatch("[^,]+") do
      local k, r = item:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
      if not k then return nil, string.format("faults: %q is not KIND=RATE", item) end
      pairs_list[#pairs_list + 1] = { k, r }
    end
  end
  for _, kv in ipairs(pairs_list) do
    local k, r = kv[1], tonumber(kv[2])
    if not known[k] then
      return nil, string.format("faults: unknown kind %q (kinds: %s)", tostring(k), table.concat(M.FAULT_KINDS, ", "))
    end
    if not r or r < 0 or r > 1 then
      return nil, string.format("faults: rate of %s must be a number from 0 to 1", k)
    end
    rates[k], total = r, total + r
  end
  if total > 1 + 1e-9 then return nil, "faults: the rates add up to more than 1" end
  return rates
end

local function check_stage(v)
  for _, s in ipairs(M.RUNNING_STAGES) do
    if v == s then return v end
  end
  return nil, "expected one of " .. table.concat(M.RUNNING_STAGES, ", ")
end

-- Checks and converts one value of the given kind; returns value or nil, why.
local checkers = {
  string = function(v)
    if type(v) ~= "string" then return nil, "expected a string" end
    return v
  end,
  boolean = function(v)
    if v == true or v == "true" then return true end
    if v == false or v == "false" then return false end
    return nil, "expected true or false"
  end,
  int = function(v)
    local n = math.tointeger(tonumber(v))
    if not n then return nil, "expected an integer" end
    return n
  end,
  count = function(v)
    local n = math.tointeger(tonumber(v))
    if not n or n < 0 then return nil, "expected a whole number >= 0" end
    return n
  end,
  port = function(v)
    local n = math.tointeger(tonumber(v))
    if not n or n < 0 or n > 65535 then return nil, "expected a port number from 0 to 65535" end
    return n
  end,
  seconds = function(v)
    local n = tonumber(v)
    if not n or n < 0 then return nil, "expected a number of seconds >= 0" end
    return n
  end,
  rate = function(v)
    local n, w = M.parse_rate_limit(v)
    if not n then return nil, w end
    return string.format("%d/%gs", n, w)
  end,
  faults = function(v)
    local rates, err = M.parse_faults(v)
    if not rates then return nil, err end
    local parts = {}
    for _, k in ipairs(M.FAULT_KINDS) do
      if rates[k] then parts[#parts + 1] = string.format("%s=%g", k, rates[k]) end
    end
    return table.concat(parts, ",")
  end,
  stage = check_stage,
  stages = function(v)
    if type(v) == "table" then
      local out = {}
      for k, d in pairs(v) do
        if not check_stage(k) then return nil, "unknown stage " .. tostring(k) end
        out[k] = tonumber(d)
        if not out[k] or out[k] < 0 then return nil, "stage durations must be numbers >= 0" end
      end
      return out
    end
    local n = tonumber(v)
    if not n or n < 0 then return nil, "expected a number of seconds >= 0 or a table per stage" end
    return n
  end,
}

---Merges settings into a copy of base (default: the defaults), checking each.
---Values may be strings (command line) or typed (Lua, JSON); false, null,
---"" or "off" switch an optional setting off.
---@param input table
---@param base? table
---@return table|nil config, string|nil message naming the setting
function M.merge(input, base)
  local out = {}
  for k, v in pairs(base or M.defaults) do out[k] = v end
  for k, v in pairs(input or {}) do
    local kind = kinds[k]
    if not kind then
      local known = {}
      for _, s in ipairs(M.settings) do known[#known + 1] = s[1] end
      return nil, string.format("unknown setting %q (settings: %s)", tostring(k), table.concat(known, ", "))
    end
    if is_off(v) and M.defaults[k] == nil then
      out[k] = nil
    else
      local value, err = checkers[kind](v)
      if value == nil then return nil, string.format("%s: %s", k, err) end
      out[k] = value
    end
  end
  return out
end

return M
