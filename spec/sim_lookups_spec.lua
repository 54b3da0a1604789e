-- A role script's whole job on the simulated tenant, through isclua's
-- client: look up what the new role refers to by name (its owner among the
-- identities, an access profile, a cost-center metadata value), create the
-- role with them, tag it and propagate it. These are the recipes of the
-- README's "Looking things up".
local H = require "helpers"

-- The one item a lookup must find, or a failure naming the lookup.
local function only(list, what)
  assert(#list == 1, string.format("expected exactly one %s, found %d", what, #list))
  return list[1]
end

describe("a role script on the simulated tenant", function()
  local sim
  H.shared_sim({ roles = 120, identities = 80, seed = 42 }, function(s) sim = s end, { reset = true })

  it("finds an owner, an access profile and a metadata value by name, creates the role and propagates it", function()
    local c = H.sim_client(sim)

    local owner = only(c:paginate("/v2024/identities", { filters = 'name eq "James Smith"' }):collect(), "identity")
    local ap = only(c:paginate("/v2024/access-profiles", { filters = 'name eq "AD Engineering Baseline"', max_limit = 50 })
      :collect(), "access profile")
    local cost = only(c:paginate("/v2024/access-model-metadata/attributes", { filters = 'name eq "Cost Center"' })
      :collect(), "metadata attribute")
    local value
    for v in c:paginate("/v2024/access-model-metadata/attributes/" .. cost.key .. "/values") do
      if v.name == "CC-1000 Engineering" then value = v end
    end

    local role = c.roles:create {
      name = "Engineering Platform Access",
      owner = { type = "IDENTITY", id = owner.id },
      accessProfiles = { { type = "ACCESS_PROFILE", id = ap.id } },
      membership = { type = "IDENTITY_LIST", identities = { { type = "IDENTITY", id = owner.id } } },
    }
    role = c.roles:add_metadata(role.id, cost.key, value.value)
    local status = c.propagation:run { timeout = 3600 }

    assert.equal("SUCCEEDED", status.executionStage)
    local stored = c.roles:get(role.id)
    assert.same({ type = "IDENTITY", id = owner.id, name = "James Smith" }, stored.owner)
    assert.equal("AD Engineering Baseline", stored.accessProfiles[1].name)
    assert.equal("costCenter", stored.accessModelMetadata.attributes[1].key)
    assert.equal("cc1000", stored.accessModelMetadata.attributes[1].values[1].value)
    assert.equal("james.smith@acme-corp.com", owner.emailAddress)
  end)

  it("finds a governance group and a segment to put on the role, and reads them back by id", function()
    local c = H.sim_client(sim)
    local group = only(c:paginate("/v2024/workgroups", { filters = 'name eq "Finance Approvers"', max_limit = 50 })
      :collect(), "governance group")
    local segment
    for s in c:paginate("/v2024/segments") do
      if s.name == "EMEA" then segment = s end
    end

    local owner = c:paginate("/v2024/identities", { limit = 1, max = 1 }):collect()[1]
    local role = c.roles:create {
      name = "Finance EMEA Approvals",
      owner = { type = "IDENTITY", id = owner.id },
      additionalOwners = { { type = "GOVERNANCE_GROUP", id = group.id } },
      segments = { segment.id },
    }

    assert.equal("Finance Approvers", role.additionalOwners[1].name)
    assert.same({ segment.id }, role.segments)
    assert.equal("Finance Approvers", (c:request("GET", "/v2024/workgroups/" .. group.id)).name)
    assert.equal("EMEA", (c:request("GET", "/v2024/segments/" .. segment.id)).name)
  end)

  it("follows a bulk delete's task to SUCCESS, when the roles are gone", function()
    local c = H.sim_client(sim)
    local ids = H.ids_of(c.roles:list { limit = 3, max = 3 }:collect())
    local task = c:request("POST", "/v2024/roles/bulk-delete", { body = { roleIds = ids } })
    local function left() return c.roles:list { filters = 'id in ("' .. table.concat(ids, '","') .. '")' }:count() end

    assert.is_nil(c:request("GET", "/v2024/task-status/" .. task.id).completionStatus, "null while it runs")
    assert.equal(3, left())
    sim:advance(1)
    local done = c:request("GET", "/v2024/task-status/" .. task.id)
    assert.equal("SUCCESS", done.completionStatus)
    assert.equal(100, done.percentComplete)
    assert.equal(0, left())
  end)
end)
