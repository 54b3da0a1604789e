-- Removes one access profile from a role, propagates the change so that every
-- member identity loses that access, waits until the tenant is done and
-- reports the outcome.
--
--   isclua examples/propagate_role_change.lua ["Role name"]
--   isclua --sim examples/propagate_role_change.lua      (simulated tenant)
--
-- With no name it takes the first role that grants an access profile. Exits
-- 0 when the propagation succeeded and 1 when it failed or was terminated
-- (isclua's own codes otherwise: 5 on timeout, 130 on Ctrl-C, ...).
local isc = require "isc"

local c = isc.client()

local function find_role(name)
  if name then
    local role = c.roles:list { filters = string.format("name eq %q", name), max = 1 }:next()
    return role or error("no role named " .. name, 0)
  end
  for role in c.roles:list { sorters = "name" } do
    if #role.accessProfiles > 0 then return role end
  end
  error("no role grants an access profile", 0)
end

-- Starts a propagation and waits for it; when another one is already running,
-- waits for that one first, since ours must see the change just made.
local function propagate(opts)
  local ok, result = pcall(c.propagation.run, c.propagation, opts)
  if ok then return result end
  if not isc.is_error(result, "already_running") then error(result, 0) end
  print("another propagation is running (" .. result.running_id .. "); waiting for it first")
  c.propagation:wait(result.running_id, opts)
  return c.propagation:run(opts)
end

-- Seconds between two ISO-8601 times of one day or more ("2025-05-29T17:18:31Z").
local function seconds_between(from, to)
  local function epoch(s)
    local y, mo, d, h, mi, se = s:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
    return y and os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = se }
  end
  local a, b = from and epoch(from), to and epoch(to)
  return a and b and b - a
end

local role = find_role(arg[1])
local removed = role.accessProfiles[1]
local members = c.roles:assigned_identities(role.id):count()
print(string.format("role %q (%s): removing access profile %q; %d identities hold the role",
  role.name, role.id, removed.name or removed.id, members))
c.roles:patch(role.id, { { op = "remove", path = "/accessProfiles/0" } })

-- No on_progress: on a terminal isclua shows the stage and the time elapsed.
local status = propagate { timeout = 4 * 3600, interval = 2 }

local took = seconds_between(status.launched, status.completed)
print(string.format("propagation %s: %s%s", status.id, status.executionStage,
  took and string.format(" after %d s", took) or ""))
if status.executionStage == "FAILED" then
  print("reason: " .. tostring(status.failureReason))
elseif status.executionStage == "TERMINATED" and type(status.terminatedBy) == "table" then
  print("terminated by " .. tostring(status.terminatedBy.name or status.terminatedBy.id))
end
os.exit(status.executionStage == "SUCCEEDED" and 0 or 1, true)
