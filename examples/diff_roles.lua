-- Compares a saved snapshot of the roles with the tenant as it is now: the
-- roles added, removed and changed since, and which fields changed.
--
--   isclua examples/export_roles.lua roles-monday.json     (the snapshot)
--   isclua examples/diff_roles.lua roles-monday.json        (later)
--   isclua --sim examples/diff_roles.lua roles-monday.json
--
-- Exits 0 when nothing changed and 1 when something did, as diff(1) does.
local isc = require "isc"

local path = arg[1]
if not path or arg[2] then
  io.stderr:write("usage: diff_roles.lua SNAPSHOT.json\n")
  os.exit(2)
end

local f = assert(io.open(path, "rb"))
-- without null members, as the client reads the tenant's roles, so that a
-- snapshot written with nulls compares equal to the same role now
local saved = assert(isc.json.decode(f:read("a"), { drop_nulls = true }))
f:close()
-- A list of roles (export_roles.lua), or a tenant saved by `isclua sim --state`.
saved = saved.roles or saved

local before = {}
for _, role in ipairs(saved) do before[role.id] = role end

-- The fields that differ between two versions of a role (`modified` aside:
-- it only says that something else changed).
local function changed_fields(old, new)
  local fields = {}
  for _, side in ipairs { old, new } do
    for k in pairs(side) do
      if k ~= "modified" and not fields[k] and not isc.json.equal(old[k], new[k]) then
        fields[k], fields[#fields + 1] = true, k
      end
    end
  end
  table.sort(fields)
  return fields
end

local c = isc.client()
local added, removed, changed = 0, 0, 0
for role in c.roles:list { sorters = "created" } do
  local old = before[role.id]
  if not old then
    added = added + 1
    print(string.format("added    %s  %q", role.id, role.name))
  else
    before[role.id] = nil
    local fields = changed_fields(old, role)
    if #fields > 0 then
      changed = changed + 1
      print(string.format("changed  %s  %q: %s", role.id, role.name, table.concat(fields, ", ")))
    end
  end
end
-- What is left of the snapshot is gone from the tenant.
for _, role in ipairs(saved) do
  if before[role.id] then
    removed = removed + 1
    print(string.format("removed  %s  %q", role.id, role.name))
  end
end

print(string.format("%d added, %d removed, %d changed since %s", added, removed, changed, path))
os.exit(added + removed + changed == 0 and 0 or 1)
