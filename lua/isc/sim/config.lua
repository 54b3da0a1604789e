-- The simulator's settings in one place: their defaults, what each means,
-- and the checks shared by `isclua sim`, sim.start{} and POST /__sim/config.
local core = require "isc.core"
local rng = require "isc.sim.rng"

local M = {}

---Every setting, its default (nil = off) and its meaning.
M.settings = {
  { "host", "string", "127.0.0.1", "address to listen on: a loopback one unless control is off" },
  { "port", "port", 8765, "port of `isclua sim` (sim.start listens on a free port unless given one)" },
  { "control", "boolean", true, "serve the /__sim/ control API (only on a loopback host)" },
  { "control_token", "string", nil, "what control requests send in X-Isclua-Sim-Token (made up at start if not given)" },
  { "client_id", "string", "isclua-sim", "client id accepted by /oauth/token (an admin)" },
  { "client_secret", "string", "sim-secret", "client secret accepted by /oauth/token" },
  { "clients", "clients", nil,
    "more API clients, 'ID:SECRET[:ROLE]' or a list of them; ROLE admin (default), read-only or subadmin:IDENTITY_ID" },
  { "client_name", "string", "isclua sim", "name of the API client (launchedBy.name of propagations)" },
  { "roles", "count", 250, "number of generated roles" },
  { "identities", "count", 1000, "number of generated identities" },
  { "seed", "int", 1, "seed of the generated tenant" },
  { "state", "string", nil, "JSON file loaded at start (if it exists) and saved on exit / POST /__sim/save (only there)" },
  { "token_ttl", "seconds", 749, "access token lifetime (expires_in)" },
  { "rate_limit", "rate", "100/10s", "requests per window per client_id and API version, as ISC; 429 beyond; 'off'" },
  { "faults", "faults", nil, "'http500=0.03,http503=0.03,reset=0.02,http429=0.02,slow=0.01,truncate=0.01'" },
  { "fault_seed", "int", 1, "seed of the fault sequence" },
  { "fault_match", "string", nil, "Lua pattern on 'METHOD /path' or 'METHOD /path?query': faults strike only the requests it matches" },
  { "slow_seconds", "seconds", 2, "delay of a 'slow' fault" },
  { "latency_ms", "count", 0, "added to every API answer, as a real tenant's 100-300 ms (other connections go on)" },
  { "jitter_ms", "count", 0, "up to this much more, drawn per request (from the fault seed)" },
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

---The header that carries the control token on every /__sim/ request.
M.TOKEN_HEADER = "X-Isclua-Sim-Token"

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

local CLIENT_ROLES = "admin, read-only or subadmin:IDENTITY_ID"

-- One API client, "ID:SECRET[:ROLE]" or {id=, secret=, role=}, as
-- {id, secret, role, identity} (identity: the sub-admin's, for that role).
local function parse_client(v)
  if type(v) == "table" then v = string.format("%s:%s:%s", tostring(v.id), tostring(v.secret), tostring(v.role)) end
  local id, secret, role = tostring(v):match("^([^:]+):([^:]+):?(.*)$")
  if not id then
    return nil, string.format("%q: expected ID:SECRET or ID:SECRET:ROLE, ROLE %s (no ':' in ID or SECRET)",
      tostring(v), CLIENT_ROLES)
  end
  role = role == "" and "admin" or role
  local identity = role:match("^subadmin:(.+)$")
  if role ~= "admin" and role ~= "read-only" and not identity then
    return nil, string.format("client %s: unknown role %q (roles: %s)", id, role, CLIENT_ROLES)
  end
  return { id = id, secret = secret, role = role, identity = identity }
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
    if v == true or v == "true" or v == "on" then return true end
    if v == false or v == "false" or v == "off" then return false end
    return nil, "expected true or false (on or off)"
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
    if is_off(v) then return false end
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
  clients = function(v)
    local list = (type(v) == "table" and v.id == nil) and v or { v }
    local out, seen = {}, {}
    for i, item in ipairs(list) do
      local client, err = parse_client(item)
      if not client then return nil, err end
      if seen[client.id] then return nil, string.format("client id %s is given twice", client.id) end
      seen[client.id], out[i] = true, client
    end
    return out
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
  for _, client in ipairs(out.clients or {}) do
    if client.id == out.client_id then
      return nil, string.format("clients: %s is already client_id; give each client its own id", client.id)
    end
  end
  return out
end

---Whether a host name or address is this machine's loopback (localhost,
---127.0.0.0/8, ::1), with or without the brackets of a URL.
---@param host string
---@return boolean
function M.is_loopback(host)
  host = tostring(host):lower():gsub("^%[(.*)%]$", "%1")
  if host == "localhost" or host == "::1" then return true end
  local octets = { host:match("^127%.(%d+)%.(%d+)%.(%d+)$") }
  if #octets ~= 3 then return false end
  for _, o in ipairs(octets) do
    if tonumber(o) > 255 then return false end
  end
  return true
end

---The settings a simulator starts with: merged and checked, the control API
---only on loopback, and a control token made up unless one is given.
---@param input table
---@return table|nil config, string|nil message
function M.start(input)
  local c, err = M.merge(input)
  if not c then return nil, err end
  if c.control and not M.is_loopback(c.host) then
    return nil, string.format("host %s is not a loopback address, and the control API (/__sim/) must not be "
      .. "reachable from other machines: listen on 127.0.0.1 or ::1, or turn it off (--control off)", c.host)
  end
  if c.control and not c.control_token then c.control_token = rng.unpredictable_hex(16) end
  return c
end

-- Settings fixed at start: where it listens and saves, and who controls it.
local FIXED = { host = true, port = true, log = true, state = true, control = true, control_token = true }

---Run-time changes (POST /__sim/config) merged into the current settings;
---the settings fixed at start are refused.
---@param changes table
---@param current table
---@return table|nil config, string|nil message
function M.change(changes, current)
  for k in pairs(changes) do
    if FIXED[k] then
      return nil, string.format("%s is fixed when the simulator starts: start it again to change it", k)
    end
  end
  return M.merge(changes, current)
end

return M
