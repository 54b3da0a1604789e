-- A tour of isclua on one tenant: look around, build a role, change it,
-- propagate the change to its members and wait, then clean up.
--
--   make demo                         (runs this against the embedded simulated tenant)
--   isclua --sim examples/demo.lua
--   isclua examples/demo.lua          (against your own tenant: it creates and deletes one role)
local isc = require "isc"

local c = isc.client()
print("connected: " .. tostring(c))

-- Listings are lazy iterators; :count() asks the tenant for X-Total-Count.
local total = c.roles:list():count()
print(string.format("\n%d roles on the tenant; the first five by name:", total))
for role in c.roles:list { sorters = "name", max = 5 } do
  print(string.format("  %-34s %s  %2d access profiles%s", role.name, role.id, #(role.accessProfiles or {}),
    role.requestable and ", requestable" or ""))
end

-- Borrow an access profile and two identities from a role that has them.
local model, members
for role in c.roles:list { filters = "requestable eq true", sorters = "-modified" } do
  if #(role.accessProfiles or {}) > 0 then
    members = c.roles:assigned_identities(role.id, { max = 2 }):collect()
    if #members == 2 then
      model = role
      break
    end
  end
end
assert(model, "this tenant has no requestable role with an access profile and two members")

local created = c.roles:create {
  name = "isclua demo " .. os.date("!%Y%m%dT%H%M%S"),
  description = "Created by examples/demo.lua; deleted at the end of the demo.",
  owner = { type = "IDENTITY", id = model.owner.id },
  accessProfiles = { model.accessProfiles[1] },
  entitlements = isc.array {},
  membership = { type = "IDENTITY_LIST", identities = {
    { type = "IDENTITY", id = members[1].id }, { type = "IDENTITY", id = members[2].id } } },
  enabled = true,
  requestable = false,
}
print(string.format("\ncreated role %q (%s) granting %q to %s and %s", created.name, created.id,
  model.accessProfiles[1].name, members[1].name, members[2].name))

-- A JSON Patch guarded by a test: it applies only if nobody changed the role meanwhile.
local patched = c.roles:patch(created.id, {
  { op = "test", path = "/requestable", value = false },
  { op = "replace", path = "/requestable", value = true },
  { op = "replace", path = "/description", value = "Requestable now; still deleted at the end of the demo." },
})
print("made it requestable: requestable = " .. tostring(patched.requestable))

-- Propagate the change to every member identity and wait for the outcome.
print("\npropagating role changes to identities...")
local started = os.time()
local status = c.propagation:run {
  timeout = 600,
  interval = 0.5, -- the simulator spends about a second in each stage
  on_progress = function(s) print(string.format("  %3ds  %s", os.time() - started, s.executionStage)) end,
}
print(string.format("propagation %s ended %s", status.id, status.executionStage))

c.roles:delete(created.id)
print(string.format("\ndeleted role %s; %d roles on the tenant again", created.id, c.roles:list():count()))
