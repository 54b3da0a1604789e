-- Reports the roles that need a look: those with no owner (nobody to approve
-- or certify them), no access (no access profile and no entitlement: they
-- grant nothing) or no members (no membership criteria or identity list,
-- and nobody who requested them). Writes CSV to stdout, one line per role
-- found, and changes nothing.
--
--   isclua examples/roles_audit.lua > roles-to-review.csv
--   isclua --sim examples/roles_audit.lua
local isc = require "isc"

local c = isc.client()

local function empty(list)
  return not list or #list == 0
end

-- Whether a role has members: by its membership (criteria or a list of
-- identities), else by identities assigned it. Asking for one assigned
-- identity (max = 1) costs one short request rather than the whole list.
local function has_members(role)
  local m = role.membership
  if m and (m.criteria or not empty(m.identities)) then return true end
  return c.roles:assigned_identities(role.id, { max = 1 }):next() ~= nil
end

-- The problems of one role, as short phrases (empty when it is sound).
local function problems_of(role)
  local found = {}
  if not role.owner then found[#found + 1] = "no owner" end
  if empty(role.accessProfiles) and empty(role.entitlements) then found[#found + 1] = "no access" end
  if not has_members(role) then found[#found + 1] = "no members" end
  return found
end

local function csv_field(s)
  return '"' .. s:gsub('"', '""') .. '"'
end

print("id,name,problems")
local checked, flagged = 0, 0
for role in c.roles:list { sorters = "name" } do
  checked = checked + 1
  local problems = problems_of(role)
  if #problems > 0 then
    flagged = flagged + 1
    print(table.concat({ role.id, csv_field(role.name), csv_field(table.concat(problems, "; ")) }, ","))
  end
end
isc.log.info("roles audited", { checked = checked, flagged = flagged })
