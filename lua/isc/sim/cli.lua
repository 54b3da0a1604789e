-- `isclua sim [options]`: runs a simulated tenant until Ctrl-C / SIGTERM,
-- describing itself on stderr and printing only the `export` lines (SAIL_*,
-- ISCLUA_SIM_TOKEN, ISCLUA_SIM_PID) on stdout, which it then closes, so that
-- `eval "$(isclua sim ... &)"` sets them and returns while the simulator
-- runs on; with --state FILE the tenant is loaded from FILE (if it exists)
-- and saved back on exit.
local core = require "isc.core"
local server = require "isc.sim.server"
local config = require "isc.sim.config"

local M = {}

-- Command-line options and the settings they set (these names are fixed:
-- scripts and docs rely on them). nil marks a flag without a value.
local OPTIONS = {
  ["--port"] = "port", ["--host"] = "host", ["--control"] = "control",
  ["--client-id"] = "client_id", ["--client-secret"] = "client_secret", ["--client"] = "clients",
  ["--roles"] = "roles", ["--identities"] = "identities", ["--seed"] = "seed", ["--state"] = "state",
  ["--rate-limit"] = "rate_limit", ["--faults"] = "faults", ["--fault-seed"] = "fault_seed",
  ["--fault-match"] = "fault_match", ["--latency-ms"] = "latency_ms", ["--jitter-ms"] = "jitter_ms",
  ["--token-ttl"] = "token_ttl", ["--propagation-stage-seconds"] = "propagation_stage_seconds",
}
local FLAGS = { ["--log"] = "log" }
-- Settings whose option may be given again, each time adding to a list.
local REPEATABLE = { clients = true }

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
    "and the /roles/v1, /role-propagation/v1 layout) until Ctrl-C. It prints only export lines",
    "on stdout (SAIL_*, ISCLUA_SIM_TOKEN, ISCLUA_SIM_PID), then closes it: eval \"$(isclua sim &)\"",
    "sets them and returns while it runs.",
    "",
    "  --port N                     port to listen on (default " .. d("port") .. "; 0 = any free port)",
    "  --host ADDR                  address to listen on (default " .. d("host") .. "); one that is",
    "                               not loopback needs --control off",
    "  --control off                no control API (/__sim/)",
    "  --client-id ID               client id accepted by /oauth/token, an admin (default " .. d("client_id") .. ")",
    "  --client-secret SECRET       its secret (default " .. d("client_secret") .. ")",
    "  --client ID:SECRET[:ROLE]    one more API client (repeatable); ROLE admin (default),",
    "                               read-only (a change is answered 403) or subadmin:IDENTITY_ID",
    "  --roles N                    generated roles (default " .. d("roles") .. ")",
    "  --identities N               generated identities (default " .. d("identities") .. ")",
    "  --seed S                     seed of the generated data (default " .. d("seed") .. ")",
    "  --state FILE                 load the tenant from FILE if it exists (a saved tenant or",
    "                               a JSON list of roles) and save it back on exit",
    "  --rate-limit N/Ws|off        requests per window per client and API version (default",
    "                               " .. d("rate_limit") .. ", as ISC); 429 with Retry-After beyond",
    "  --faults SPEC                injected faults, e.g.",
    "                               http500=0.03,http503=0.03,reset=0.02,http429=0.02,slow=0.01,truncate=0.01",
    "                               (http500, http503, http429, reset: before the change is made;",
    "                               truncate, reset_after, truncate_after, http504_after: after it)",
    "  --fault-seed N               seed of the fault sequence (default " .. d("fault_seed") .. ")",
    "  --latency-ms N               answer each API request N ms late, as a real tenant (100-300 ms)",
    "  --jitter-ms N                and up to N ms more, drawn per request",
    "  --fault-match PATTERN        faults strike only requests whose 'METHOD /path' (or with ?query) matches",
    "                               this Lua pattern, e.g. '^POST ' for creating calls only",
    "  --token-ttl SECONDS          access token lifetime (default " .. d("token_ttl") .. ")",
    "  --propagation-stage-seconds S  duration of each propagation stage (default " .. d("propagation_stage_seconds") .. ")",
    "  --log                        log one line per request to stderr",
    "  --help                       show this help",
    "",
    "Control API, from this machine only, each request with the header",
    config.TOKEN_HEADER .. ": $ISCLUA_SIM_TOKEN (printed at start) and POSTs as application/json:",
    "GET/POST /__sim/clock {\"advance\": s}, POST /__sim/reset, GET /__sim/stats,",
    "GET/POST /__sim/config, POST /__sim/save (to the --state file).",
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
    if REPEATABLE[key] then
      out[key] = out[key] or {}
      table.insert(out[key], checked[key][1])
    else
      out[key] = checked[key]
    end
    i = i + 1
  end
  return out
end

-- A value as one shell word (quoted only when it has to be).
local function shell_word(v)
  if v:match("^[%w%-_./:@%%+=,]+$") then return v end
  return "'" .. v:gsub("'", "'\\''") .. "'"
end

-- The simulator's base URL once it listens on port.
local function base_url(c, port)
  local host = ({ ["0.0.0.0"] = "127.0.0.1", ["::"] = "::1" })[c.host] or c.host
  return string.format(host:find(":", 1, true) and "http://[%s]:%d" or "http://%s:%d", host, port)
end

-- What `isclua sim` says on stderr once it listens.
local function banner(c, url)
  local lines = {
    "isclua sim: simulated ISC tenant listening on " .. url,
    string.format("  client id %s, client secret %s (admin)", c.client_id, c.client_secret),
  }
  for _, client in ipairs(c.clients or {}) do
    lines[#lines + 1] = string.format("  client id %s, client secret %s (%s)", client.id, client.secret, client.role)
  end
  lines[#lines + 1] = string.format("  %d roles, %d identities, seed %d, rate limit %s%s%s", c.roles, c.identities,
    c.seed, c.rate_limit or "off", c.faults and (", faults " .. c.faults) or "", c.state and (", state " .. c.state) or "")
  lines[#lines + 1] = c.control and ("  control: " .. url .. "/__sim/ with " .. config.TOKEN_HEADER
    .. ": $ISCLUA_SIM_TOKEN (clock, reset, stats, config, save)") or "  control API off"
  lines[#lines + 1] = "  Ctrl-C or kill $ISCLUA_SIM_PID stops it; stdout has the export lines, for eval \"$(isclua sim ... &)\""
  lines[#lines + 1] = ""
  return table.concat(lines, "\n")
end

-- The lines `isclua sim` prints on stdout, for a shell to eval.
local function exports(c, url)
  local vars = { { "SAIL_BASE_URL", url }, { "SAIL_CLIENT_ID", c.client_id }, { "SAIL_CLIENT_SECRET", c.client_secret } }
  if c.control then vars[#vars + 1] = { "ISCLUA_SIM_TOKEN", c.control_token } end
  vars[#vars + 1] = { "ISCLUA_SIM_PID", tostring(core.getpid()) }
  local lines = {}
  for i, v in ipairs(vars) do lines[i] = string.format("export %s=%s\n", v[1], shell_word(v[2])) end
  return table.concat(lines)
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
  local c, cerr = config.start(settings)
  if not c then
    io.stderr:write("isclua sim: ", cerr, "\nTry 'isclua sim --help'.\n")
    return 2
  end
  local ok, t = pcall(require("isc.sim.tenant").new, c)
  if not ok then
    io.stderr:write("isclua sim: ", tostring(t), "\n")
    return 1
  end
  local served, serr = pcall(server.serve, {
    host = c.host, port = c.port, log = c.log,
    handler = function(req) return t:handle(req) end,
    on_listen = function(port)
      t:listening(port)
      local url = base_url(c, port)
      io.stderr:write(banner(c, url))
      io.stdout:write(exports(c, url))
      assert(core.release_stdout())
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
      io.stderr:write("isclua sim: ", werr, "\n")
      return 1
    end
    io.stderr:write(string.format("isclua sim: saved %d roles to %s\n", t.store:count(), c.state))
  end
  return 0
end

return M
