-- Nightly role hygiene, run by cron or a systemd timer (see the crontab and
-- the isclua-nightly.service/.timer files next to this one).
--
-- Disables every enabled role that grants nothing (no access profiles, no
-- entitlements, no membership), then runs a role propagation so the change
-- reaches the identities, and waits for it. The report - one CSV line per
-- role disabled - goes to stdout; logs go to stderr or --log-file.
--
--   isclua --sim --lock /tmp/nightly.lock --log-format json examples/cron/nightly-roles.lua
--   isclua --dry-run examples/cron/nightly-roles.lua    rehearse on the real tenant
--
-- --lock makes a second run exit at once with code 6 while this one runs;
-- --log-format json writes one JSON object per log line, for a log collector.
local isc = require "isc"

local c = isc.client()

local function grants_nothing(role)
  return role.enabled and #(role.accessProfiles or {}) == 0 and #(role.entitlements or {}) == 0
    and not role.membership
end

-- Collect first, disable after: patching while listing would change the
-- roles' modified times under the pager.
local checked, disabled = 0, {}
for role in c.roles:list { sorters = "created" } do
  checked = checked + 1
  if grants_nothing(role) then disabled[#disabled + 1] = role end
end

print("id,name")
for _, role in ipairs(disabled) do
  c.roles:patch(role.id, { { op = "replace", path = "/enabled", value = false } })
  isc.log.info("role disabled", { id = role.id, name = role.name })
  print(string.format('%s,"%s"', role.id, (role.name:gsub('"', '""'))))
end
isc.log.info("roles checked", { checked = checked, disabled = #disabled })

if #disabled > 0 then
  -- The propagation may take long: bound it here, and the whole run with --timeout.
  -- Under cron each stage is logged as it is reached, and a heartbeat while it runs.
  local final = c.propagation:run { skip_role_refresh = true, timeout = 3 * 3600, raise_on_failure = true }
  isc.log.info("role propagation finished", { id = final.id, stage = final.executionStage })
end
