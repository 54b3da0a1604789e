-- Audits requestable roles: finds every enabled, requestable role that has no
-- owner or grants no access (no access profile and no entitlement), which
-- users could request to no effect or with nobody to approve it. Reports them;
-- with --fix, makes them non-requestable, or gives an ownerless role that
-- grants access the owner named by --owner.
--
--   isclua examples/roles_audit.lua [--fix] [--owner IDENTITY_ID]
--   isclua --sim examples/roles_audit.lua --demo --fix
--
-- --demo first creates three flawed roles, since a simulated tenant's
-- generated roles are all sound. Each fix is a JSON Patch guarded by a
-- `test` op, so a role someone changed meanwhile is left alone.
local isc = require "isc"

local opts = {}
do
  local argv = { ... }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--fix" then
      opts.fix = true
    elseif a == "--demo" then
      opts.demo = true
    elseif a == "--owner" and argv[i + 1] then
      opts.owner, i = argv[i + 1], i + 1
    else
      io.stderr:write("usage: roles_audit.lua [--fix] [--owner IDENTITY_ID] [--demo]\n")
      os.exit(2)
    end
    i = i + 1
  end
end

local c = isc.client()

local function empty(list)
  return list == nil or list == isc.null or #list == 0
end

local function has_owner(role)
  return type(role.owner) == "table" and type(role.owner.id) == "string"
end

-- Creates enabled, requestable roles that grant nothing, named after the run.
local function create_demo_roles()
  local someone = c.roles:list({ max = 1 }):collect()[1].owner
  local stamp = os.date("!%Y%m%d%H%M%S")
  for k = 1, 3 do
    local role = c.roles:create {
      name = string.format("Audit demo %s-%d", stamp, k),
      description = "Created by roles_audit.lua --demo: requestable, but grants no access.",
      owner = { type = "IDENTITY", id = someone.id },
      accessProfiles = isc.array {}, entitlements = isc.array {},
      enabled = true, requestable = true,
    }
    print("created demo role " .. role.name .. " (" .. role.id .. ")")
  end
end

-- The problems of one role, as short phrases (empty when it is sound).
local function problems_of(role)
  local found = {}
  if not has_owner(role) then found[#found + 1] = "no owner" end
  if empty(role.accessProfiles) and empty(role.entitlements) then found[#found + 1] = "no access" end
  return found
end

-- The JSON Patch that fixes a role, and what it does in words.
local function fix_of(problems)
  local only_owner = #problems == 1 and problems[1] == "no owner"
  if only_owner and opts.owner then
    return { { op = "test", path = "/requestable", value = true },
      { op = "add", path = "/owner", value = { type = "IDENTITY", id = opts.owner } } }, "owner set to " .. opts.owner
  end
  return { { op = "test", path = "/requestable", value = true },
    { op = "replace", path = "/requestable", value = false } }, "made non-requestable"
end

if opts.demo then create_demo_roles() end

-- Collect first, fix after: fixing while paging a `requestable eq true`
-- listing would shrink it under the pager and skip roles.
local flawed, checked = {}, 0
for role in c.roles:list { filters = "requestable eq true", sorters = "name" } do
  checked = checked + 1
  if role.enabled then
    local problems = problems_of(role)
    if #problems > 0 then flawed[#flawed + 1] = { role = role, problems = problems } end
  end
end

print(string.format("%d requestable roles checked; %d enabled ones need attention", checked, #flawed))
local fixed, failed = 0, 0
for _, f in ipairs(flawed) do
  local line = string.format("  %-48s %s  %s", f.role.name, f.role.id, table.concat(f.problems, ", "))
  if opts.fix then
    local ops, what = fix_of(f.problems)
    local ok, err = pcall(c.roles.patch, c.roles, f.role.id, ops)
    if ok then
      fixed = fixed + 1
      line = line .. "  -> " .. what
    else
      failed = failed + 1
      line = line .. "  -> not fixed: " .. tostring(err)
    end
  end
  print(line)
end
if opts.fix then
  print(string.format("%d fixed, %d failed", fixed, failed))
  if failed > 0 then os.exit(3) end
elseif #flawed > 0 then
  print("run with --fix to make them non-requestable (or --fix --owner ID to give ownerless ones an owner)")
end
