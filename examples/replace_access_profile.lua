-- Replaces one access profile by another in every role that grants it, then
-- runs a role propagation so that member identities lose the old access and
-- get the new, waits for it and reports the outcome.
--
--   isclua examples/replace_access_profile.lua "AD Baseline" "AD Baseline 2026"
--   isclua --sim examples/replace_access_profile.lua OLD NEW
--
-- Access profiles are named by name or id. Exits 0 when the propagation
-- succeeded, 1 when a role could not be changed or the propagation failed
-- (isclua's own codes otherwise: 5 on timeout, 130 on Ctrl-C, ...).
local isc = require "isc"

if #arg ~= 2 then
  io.stderr:write("usage: replace_access_profile.lua OLD NEW (access profile names or ids)\n")
  os.exit(2)
end

local c = isc.client()

-- An access profile by id or by name (see "Looking things up" in README.md).
local function access_profile(name_or_id)
  for _, field in ipairs { "id", "name" } do
    local found = c:paginate("/v2024/access-profiles",
      { filters = string.format("%s eq %q", field, name_or_id), max_limit = 50 }):collect()[1]
    if found then return found end
  end
  error("no access profile " .. name_or_id, 0)
end

local old, new = access_profile(arg[1]), access_profile(arg[2])

-- Collect first, patch after: the roles to change and where the old access
-- profile sits in each one's list.
local targets = {}
for role in c.roles:list { sorters = "created" } do
  local has_new, at = false, nil
  for i, ap in ipairs(role.accessProfiles or {}) do
    if ap.id == old.id then at = i - 1 end -- JSON Patch counts from 0
    if ap.id == new.id then has_new = true end
  end
  if at then targets[#targets + 1] = { role = role, at = at, has_new = has_new } end
end

-- Each patch first tests that the old profile is still where it was read,
-- so a role someone changed meanwhile is left alone rather than damaged.
-- Eight at a time: on a real tenant each waits 100-300 ms for its answer.
local results, failures = c:each(targets, function(t)
  local where = "/accessProfiles/" .. t.at
  local ops = { { op = "test", path = where .. "/id", value = old.id } }
  if t.has_new then
    ops[2] = { op = "remove", path = where }
  else
    ops[2] = { op = "replace", path = where, value = { type = "ACCESS_PROFILE", id = new.id } }
  end
  c.roles:patch(t.role.id, ops)
  return true
end, { concurrency = 8 })
local failed = #failures
for i, t in ipairs(targets) do
  print(string.format("%-40s %s", t.role.name, results[i] and "changed" or "NOT changed"))
end
for _, f in ipairs(failures) do print(string.format("%s: %s", f.item.role.name, tostring(f.error))) end
print(string.format("%d roles granted %q; %d now grant %q instead", #targets, old.name, #targets - failed, new.name))
-- No role changed: there is nothing to propagate.
if #targets == failed then os.exit(failed > 0 and 1 or 0) end

-- Starts a propagation and waits for it; when another one is already running,
-- waits for that one first, since ours must see the changes just made.
local function propagate(opts)
  local ok, result = pcall(c.propagation.run, c.propagation, opts)
  if ok then return result end
  if not isc.is_error(result, "already_running") then error(result, 0) end
  print("another propagation is running (" .. result.running_id .. "); waiting for it first")
  c.propagation:wait(result.running_id, opts)
  return c.propagation:run(opts)
end

-- No on_progress: on a terminal isclua shows the stage and the time elapsed;
-- under cron, each stage is logged.
local status = propagate { timeout = 4 * 3600 }
print(string.format("propagation %s: %s", status.id, status.executionStage))
if status.failureReason then print("reason: " .. status.failureReason) end
os.exit(failed == 0 and status.executionStage == "SUCCEEDED" and 0 or 1)
