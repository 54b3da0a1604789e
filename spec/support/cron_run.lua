--- Runs isclua as cron would: no terminal, stdin from /dev/null, stdout and
--- stderr captured apart. For the cron and log specs.
local M = {}

M.bin = os.getenv("ISCLUA_BIN") or "build/isclua"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  os.remove(path)
  return s
end

--- Runs isclua with args to its end.
---@param args string[]
---@param env table|nil environment settings for this run (false unsets)
---@return table {code=, stdout=, stderr=, lines=} (lines: of stderr)
function M.run(args, env)
  local cmd = { "env" }
  for k, v in pairs(env or {}) do
    if v == false then
      cmd[#cmd + 1] = "-u " .. quote(k)
    else
      cmd[#cmd + 1] = quote(k .. "=" .. v)
    end
  end
  cmd[#cmd + 1] = quote(M.bin)
  for _, a in ipairs(args) do cmd[#cmd + 1] = quote(a) end
  local out, err = os.tmpname(), os.tmpname()
  cmd[#cmd + 1] = "</dev/null >" .. quote(out) .. " 2>" .. quote(err)
  local _, how, n = os.execute(table.concat(cmd, " "))
  local r = { code = how == "exit" and n or 128 + n, stdout = slurp(out), stderr = slurp(err) }
  r.lines = {}
  for line in r.stderr:gmatch("[^\n]+") do r.lines[#r.lines + 1] = line end
  return r
end

--- The environment that points a run's isc.client() at a simulator.
---@param sim table a running isc.sim
function M.tenant_env(sim)
  return { SAIL_BASE_URL = sim.url, SAIL_CLIENT_ID = sim.client_id, SAIL_CLIENT_SECRET = sim.client_secret }
end

local made = 0

--- A fresh path in a new private directory under $HOME, which
--- scripts/run-specs empties before every run. Returns the path and the directory.
---@param name string
function M.temp_path(name)
  made = made + 1
  local dir = string.format("%s/tmp/%d-%d", os.getenv("HOME") or "/tmp", require("isc.core").getpid(), made)
  assert(os.execute("mkdir -p -m 700 " .. quote(dir)))
  return dir .. "/" .. name, dir
end

return M
