-- Nightly role hygiene, run by cron or a systemd timer (see the crontab and
-- the isclua-nightly.service/.timer files next to this one).
--
-- Disables every enabled role that grants nothing (no access profiles, no
-- entitlements, no membership criteria), then runs a role propagation so
-- the change reaches the identities, and waits for it. The report - one CSV
-- line per role disabled - goes to stdout; logs go to stderr or --log-file.
--
--   isclua --sim examples/cron/nightly-roles.lua        try it on the simulator
--   isclua --dry-run examples/cron/nightly-roles.lua    rehearse on the real tenant
local isc = require "isc"
local log = require "isc.log"

local c = isc.client()

local function grants_nothing(role)
  return role.enabled and #(role.accessProfiles or {}) == 0 and #(role.entitlements or {}) == 0
    and (role.membership == nil or role.membership == isc.null)
end

local checked, disabled = 0, {}
for role in c.roles:list { sorters = "name" } do
  checked = checked + 1
  if grants_nothing(role) then
    c.roles:patch(role.id, { { op = "replace", path = "/enabled", value = false } })
    disabled[#disabled + 1] = role
  end
end
log.info("roles checked", { checked = checked, disabled = #disabled })

print("id,name")
for _, role in ipairs(disabled) do
  print(string.format('%s,"%s"', role.id, role.name:gsub('"', '""')))
end

if #disabled > 0 then
  -- The propagation may take long: bound it here, and the whole run with --timeout.
  local final = c.propagation:run { skip_role_refresh = true, timeout = 3 * 3600, raise_on_failure = true }
  log.info("role propagation finished", { id = final.id, status = final.status })
end
