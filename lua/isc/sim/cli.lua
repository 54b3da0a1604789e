-- `isclua sim [options]`: runs a simulated tenant in the foreground until
-- Ctrl-C / SIGTERM, printing its URL, credentials and the SAIL_* lines to
-- export; with --state FILE the tenant is loaded from FILE (if it exists)
-- and saved back on exit.
local core = require "isc.core"
local config = require "isc.sim.config"

local M = {}

-- Command-line options and the settings they set (these names are fixed:
-- scripts and docs rely on them). nil marks a flag without a value.
local OPTIONS = {
  ["--port"] = "port", ["--host"] = "host", ["--client-id"] = "client_id", ["--client-secret"] = "client_secret",
  ["--roles"] = "roles", ["--identities"] = "identities", ["--seed"] = "seed", ["--state"] = "state",
  ["--rate-limit"] = "rate_limit", ["--faults"] = "faults", ["--fault-seed"] = "fault_seed",
  ["--fault-match"] = "fault_match",
  ["--token-ttl"] = "token_ttl", ["--propagation-stage-seconds"] = "propagation_stage_seconds",
}
local FLAGS = { ["--log"] = "log" }

local function default_text(key)
  local v = config.defaults[key]
  return v == nil and "off" or tostring(v)
end

---The help text.
---@return string
function M.usage()
  local d = default_text
  return table.concat({
    "Usage: isclua sim [options]",
    "Runs a simulated SailPoint ISC tenant (Roles v2024, Role Propagation v2025/v2026,",
    "and the /roles/v1, /role-propagation/v1 layout) until Ctrl-C.",
    "",
    "  --port N                     port to listen on (default " .. d("port") .. "; 0 = any free port)",
    "  --host ADDR                  address to listen on (default " .. d("host") .. ")",
    "  --client-id ID               client id accepted by /oauth/token (default " .. d("client_id") .. ")",
    "  --client-secret SECRET       its secret (default " .. d("client_secret") .. ")",
    "  --roles N                    generated roles (default " .. d("roles") .. ")",
    "  --identities N               generated identities (default " .. d("identities") .. ")",
    "  --seed S                     seed of the generated data (default " .. d("seed") .. ")",
    "  --state FILE                 load the tenant from FILE if it exists (a saved tenant or",
    "                               a JSON list of roles) and save it back on exit",
    "  --rate-limit N/Ws            requests per window per client and API version, e.g. 100/10s",
    "                               (default " .. d("rate_limit") .. "); 429 with Retry-After beyond",
    "  --faults SPEC                injected faults, e.g.",
    "                               http500=0.03,http503=0.03,reset=0.02,http429=0.02,slow=0.01,truncate=0.01",
    "                               (http500, http503, http429, reset: before the change is made;",
    "                               truncate, reset_after, truncate_after, http504_after: after it)",
    "  --fault-seed N               seed of the fault sequence (default " .. d("fault_seed") .. ")",
    "  --fault-match PATTERN        faults strike only requests whose 'METHOD /path' matches",
    "                               this Lua pattern, e.g. '^POST ' for creating calls only",
    "  --token-ttl SECONDS          access token lifetime (default " .. d("token_ttl") .. ")",
    "  --propagation-stage-seconds S  duration of each propagation stage (default " .. d("propagation_stage_seconds") .. ")",
    "  --log                        log one line per request to stderr",
    "  --help                       show this help",
    "",
    "Control API (no auth): GET/POST /__sim/clock {\"advance\": s}, POST /__sim/reset,",
    "GET /__sim/stats, GET/POST /__sim/config, POST /__sim/save.",
    "",
  }, "\n")
end

---Parses the options into settings (only those given).
---@param args string[]
---@return table|nil settings, string|nil message, integer|nil exit code (0 for --help)
function M.parse(args)
  local out, i = {}, 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if name == "--help" or name == "-h" then return nil, M.usage(), 0 end
    local key, value = OPTIONS[name], inline
    if FLAGS[name] then
      key, value = FLAGS[name], inline or "true"
    elseif not key then
      return nil, string.format("unknown option %q", a), 2
    elseif not value then
      i = i + 1
      value = args[i]
      if value == nil then return nil, name .. " needs a value", 2 end
    end
    local checked, err = config.merge({ [key] = value })
    if not checked then return nil, string.format("%s %s: %s", name, value, (err:gsub("^[%w_]+: ", ""))), 2 end
    out[key] = checked[key]
    i = i + 1
  end
  return out
end

-- What `isclua sim` prints once it listens.
local function banner(c, port)
  local host = c.host == "0.0.0.0" and "127.0.0.1" or c.host
  local url = string.format("http://%s:%d", host, port)
  return table.concat({
    "isclua sim: simulated ISC tenant listening on " .. url,
    string.format("  client id %s, client secret %s", c.client_id, c.client_secret),
    string.format("  %d roles, %d identities, seed %d%s%s%s", c.roles, c.identities, c.seed,
      c.rate_limit and (", rate limit " .. c.rate_limit) or "", c.faults and (", faults " .. c.faults) or "",
      c.state and (", state " .. c.state) or ""),
    "  control: " .. url .. "/__sim/ (clock, reset, stats, config); Ctrl-C stops it",
    "export SAIL_BASE_URL=" .. url,
    "export SAIL_CLIENT_ID=" .. c.client_id,
    "export SAIL_CLIENT_SECRET=" .. c.client_secret,
    "",
  }, "\n")
end

---Runs `isclua sim`.
---@param args string[] the words after "sim"
---@return integer exit code (0 after Ctrl-C, 1 on failure, 2 on bad options)
function M.main(args)
  local settings, err, code = M.parse(args)
  if not settings then
    if code == 0 then
      io.stdout:write(err)
      return 0
    end
    io.stderr:write("isclua sim: ", err, "\nTry 'isclua sim --help'.\n")
    return code
  end
  local c = assert(config.merge(settings))
  local ok, t = pcall(require("isc.sim.tenant").new, settings)
  if not ok then
    io.stderr:write("isclua sim: ", tostring(t), "\n")
    return 1
  end
  local served, serr = pcall(core.serve, {
    host = c.host, port = c.port, log = c.log,
    handler = function(req) return t:handle(req) end,
    on_listen = function(port)
      io.stdout:write(banner(c, port))
      io.stdout:flush()
    end,
  })
  -- In the host, the signal that ends serve() surfaces as an "interrupted"
  -- error as serve() returns: that is the normal way to stop.
  if not served and not (type(serr) == "table" and serr.kind == "interrupted") then
    io.stderr:write("isclua sim: ", tostring(serr), "\n")
    return 1
  end
  if c.state then
    local saved, werr = require("isc.sim.state").save(t, c.state)
    if not saved then
      io.stderr:write("isclua sim: cannot save ", c.state, ": ", tostring(werr), "\n")
      return 1
    end
    io.stdout:write(string.format("isclua sim: saved %d roles to %s\n", t.store:count(), c.state))
  end
  return 0
end

return M
