--- Where a client's settings come from. The first source that names a tenant
--- supplies all of its credentials, so a base URL from one place is never
--- paired with a secret from another. Order:
---   1. fields given to isc.client{...} (each one wins over the source below)
---   2. the process layer (the embedded simulator of `isclua --sim`)
---   3. the profile named by isc.client{profile=}, `--profile NAME` or ISCLUA_PROFILE
---   4. SAIL_BASE_URL, SAIL_CLIENT_ID, SAIL_CLIENT_SECRET (as the SailPoint SDKs)
---   5. ./config.json with BaseURL, ClientId, ClientSecret (as the SailPoint SDKs)
---   6. the default profile of isclua's config file
local core = require "isc.core"
local errors = require "isc.errors"

local M = {}

--- Process-wide settings the isclua command line sets (--sim, --profile, -v, --dry-run, --journal).
M.process = { settings = nil, profile = nil, verbose = false, dry_run = false, journal = nil }

local credential_fields = { "base_url", "client_id", "client_secret", "secret_command", "token" }

--- The path of isclua's own config file.
function M.config_file()
  local explicit = os.getenv("ISCLUA_CONFIG")
  if explicit and explicit ~= "" then return explicit end
  local base = os.getenv("XDG_CONFIG_HOME")
  if not base or base == "" then base = (os.getenv("HOME") or ".") .. "/.config" end
  return base .. "/isclua/config.lua"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local warned = {}

-- Warns once per file when a file holding a secret can be read by others.
local function check_private(path, holds_secret)
  if not holds_secret or warned[path] then return end
  local mode = core.file_mode(path)
  if mode and mode & 0x3f ~= 0 then
    warned[path] = true
    io.stderr:write(string.format(
      "isclua: warning: %s holds a client secret and is readable by other users; run: chmod 600 %s\n",
      path, path))
  end
end

local function config_error(looked_at, headline)
  local lines = { headline or "no ISC tenant configured; looked in:" }
  for _, l in ipairs(looked_at) do lines[#lines + 1] = "  - " .. l end
  lines[#lines + 1] = "Set SAIL_BASE_URL, SAIL_CLIENT_ID and SAIL_CLIENT_SECRET, or add a profile to "
    .. M.config_file() .. " (see README: Configuration), or pass isc.client{base_url=, client_id=, client_secret=}."
  errors.raise("config", table.concat(lines, "\n"), { looked_at = looked_at })
end

-- Loads isclua's config file: a Lua chunk setting `default` and `profiles`
-- (or returning a table with them). Runs with no access to anything.
local function load_profiles(looked_at)
  local path = M.config_file()
  local src = read_file(path)
  if not src then
    looked_at[#looked_at + 1] = path .. " (no such file)"
    return nil, path
  end
  local env = {}
  local chunk, err = load(src, "@" .. path, "t", env)
  if not chunk then config_error({ err }, "cannot read " .. path .. ":") end
  local ok, ret = pcall(chunk)
  if not ok then config_error({ tostring(ret) }, "error in " .. path .. ":") end
  local conf = type(ret) == "table" and ret or env
  if conf.profiles ~= nil and type(conf.profiles) ~= "table" then
    config_error({ "'profiles' must be a table of name = { base_url=..., ... }" }, "error in " .. path .. ":")
  end
  return conf, path
end

-- The settings of the named profile (or the default one), or nil, noting in
-- looked_at why there is none.
local function profile_source(name, looked_at)
  local conf, path = load_profiles(looked_at)
  if not conf then return nil end
  name = name or conf.default
  if not name then
    looked_at[#looked_at + 1] = path .. " (no 'default' profile named)"
    return nil
  end
  local p = (conf.profiles or {})[name]
  if type(p) ~= "table" then
    looked_at[#looked_at + 1] = path .. " (no profile '" .. name .. "')"
    return nil
  end
  check_private(path, p.client_secret ~= nil or p.token ~= nil)
  local s = {}
  for _, k in ipairs(credential_fields) do s[k] = p[k] end
  s.source = "profile '" .. name .. "' of " .. path
  return s
end

local function env_source(looked_at)
  local url = os.getenv("SAIL_BASE_URL")
  if not url or url == "" then
    looked_at[#looked_at + 1] = "environment: SAIL_BASE_URL (not set)"
    return nil
  end
  return {
    base_url = url, client_id = os.getenv("SAIL_CLIENT_ID"),
    client_secret = os.getenv("SAIL_CLIENT_SECRET"), source = "environment (SAIL_*)",
  }
end

local function json_source(looked_at)
  local path = "config.json"
  local src = read_file(path)
  if not src then
    looked_at[#looked_at + 1] = "./config.json (no such file)"
    return nil
  end
  local t, err = core.json_decode(src)
  if type(t) ~= "table" then
    config_error({ "./config.json: " .. (err or "not a JSON object") }, "cannot read ./config.json:")
  end
  if not t.BaseURL then
    looked_at[#looked_at + 1] = "./config.json (no BaseURL)"
    return nil
  end
  check_private(path, t.ClientSecret ~= nil)
  return { base_url = t.BaseURL, client_id = t.ClientId, client_secret = t.ClientSecret, source = "./config.json" }
end

--- Resolves a client's settings. Returns a table with base_url, client_id,
--- client_secret or secret_command, or token, and `source` saying where they
--- came from. Raises a config error listing every place looked at.
---@param opts table the isc.client{} options
function M.resolve(opts)
  local looked_at = {}
  local found
  if opts.base_url then
    found = { source = "isc.client{} arguments" }
  elseif M.process.settings then
    found = M.process.settings
  else
    local named = opts.profile or M.process.profile or os.getenv("ISCLUA_PROFILE")
    if named == "" then named = nil end
    if named then
      found = profile_source(named, looked_at)
        or config_error(looked_at, "profile '" .. named .. "' not found; looked in:")
    else
      found = env_source(looked_at) or json_source(looked_at) or profile_source(nil, looked_at)
    end
  end
  if not found then config_error(looked_at) end
  local s = {}
  for _, k in ipairs(credential_fields) do
    if opts[k] ~= nil then s[k] = opts[k] else s[k] = found[k] end
  end
  s.source = found.source
  if type(s.base_url) ~= "string" or not s.base_url:match("^https?://[^/]+") then
    config_error({ s.source .. ": base_url " .. tostring(s.base_url) }, "the tenant's base URL must start with https:// (or http://):")
  end
  s.base_url = s.base_url:gsub("/+$", "")
  if not s.token and not (s.client_id and (s.client_secret or s.secret_command)) then
    config_error({ s.source .. " names " .. s.base_url .. " but no client_id with client_secret (or secret_command), nor a token" },
      "incomplete ISC settings:")
  end
  return s
end

--- Runs a profile's secret_command and returns its first line of output.
function M.run_secret_command(cmd)
  local p = io.popen(cmd, "r")
  local out = p and p:read("l")
  local ok, _, code = true, nil, 0
  if p then ok, _, code = p:close() end
  if not ok or not out or out == "" then
    errors.raise("config", string.format("the secret_command of this profile failed (exit %s) or printed nothing: %s",
      tostring(code), cmd))
  end
  return out
end

return M
