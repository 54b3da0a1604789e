-- c.roles, changing the tenant: create, JSON Patch, delete, bulk delete,
-- access-model metadata one value at a time and in bulk, and the checks on
-- what is sent. Each spec starts from the same seeded tenant (sim:reset()).
local isc = require "isc"
local core = require "isc.core"
local H = require "helpers"

-- The metadata values of a role, as {key = {value, ...}}.
local function metadata(role)
  local out = {}
  for _, attr in ipairs(role.accessModelMetadata.attributes) do
    out[attr.key] = {}
    for _, v in ipairs(attr.values) do table.insert(out[attr.key], v.value) end
  end
  return out
end

describe("c.roles changes", function()
  local sim, c
  H.shared_sim({ roles = 200, identities = 40, seed = 21, bulk_delete_seconds = 5, bulk_update_stage_seconds = 10 },
    function(s) sim = s end, { reset = true })
  before_each(function() c = H.sim_client(sim) end)

  local function refused(...) return H.refused(sim, ...) end

  local function some_role()
    return c.roles:list({ max = 1 }):collect()[1]
  end

  describe("create", function()
    it("creates a role from ISC's JSON; [] and null go out; null comes back absent, or isc.null with keep_nulls", function()
      local owner = some_role().owner
      local role = c.roles:create {
        name = "Audit Readers",
        owner = { type = "IDENTITY", id = owner.id },
        description = isc.null,
        entitlements = isc.array {},
        accessProfiles = isc.array {},
        requestable = false,
      }
      assert.is_string(role.id)
      assert.equal("Audit Readers", role.name)
      assert.equal(owner.name, role.owner.name)
      assert.is_nil(role.description, "a JSON null member reads as absent: `if role.description then` works")
      assert.equal(isc.null, c:request("GET", "/v2024/roles/" .. role.id, { keep_nulls = true }).description)
      assert.equal(isc.null, H.sim_client(sim, { keep_nulls = true }).roles:get(role.id).description)
      assert.equal("[]", core.json_encode(role.entitlements))
      assert.equal("[]", core.json_encode(role.accessProfiles))
      assert.equal(role.id, c.roles:get(role.id).id)
    end)

    it("copies a fetched role: get, change and create keep every []", function()
      local original = some_role()
      if #original.entitlements > 0 then
        original = c.roles:patch(original.id, { { op = "replace", path = "/entitlements", value = isc.array {} } })
      end
      local copy = c.roles:get(original.id)
      copy.id, copy.created, copy.modified = nil, nil, nil
      copy.accessModelMetadata = nil -- ISC refuses metadata on create
      copy.name = original.name .. " (copy)"
      local created = c.roles:create(copy)
      assert.are_not.equal(original.id, created.id)
      assert.equal("[]", core.json_encode(created.entitlements))
      assert.equal(H.canon(original.accessProfiles), H.canon(created.accessProfiles))
      assert.equal(H.canon(original.membership), H.canon(created.membership))
      assert.equal(H.canon(original.dimensionRefs), H.canon(created.dimensionRefs))
      assert.equal(H.canon(original.accessRequestConfig), H.canon(created.accessRequestConfig))
    end)

    it("surfaces ISC's message when the tenant refuses the role", function()
      local err = H.catch(c.roles.create, c.roles, { name = "No Owner" })
      assert.equal(400, err.status)
      assert.matches("owner", err.message)
    end)

    it("needs a table with a name", function()
      refused("roles:create: argument #1 must be table, got string", c.roles.create, c.roles, "Audit Readers")
      refused("roles:create: role.name must be a non%-empty string", c.roles.create, c.roles, { owner = {} })
    end)
  end)

  describe("patch", function()
    it("sends JSON Patch as application/json-patch+json and returns the updated role", function()
      local role = some_role()
      local patched = c.roles:patch(role.id, {
        { op = "replace", path = "/requestable", value = not role.requestable },
        { op = "replace", path = "/description", value = "Patched by the spec" },
      })
      assert.equal(not role.requestable, patched.requestable)
      assert.equal("Patched by the spec", patched.description)
      assert.equal(1, H.hits(sim, "PATCH /v2024/roles/{id}"))
    end)

    it("round-trips a fetched role's empty arrays and nulls (keep_nulls) through get, change and patch", function()
      local c = H.sim_client(sim, { keep_nulls = true })
      local role
      for r in c.roles:list() do
        if #r.segments == 0 and #r.additionalOwners == 0 then role = c.roles:get(r.id) break end
      end
      assert.is_table(role)
      local patched = c.roles:patch(role.id, {
        { op = "replace", path = "/segments", value = role.segments },
        { op = "replace", path = "/additionalOwners", value = role.additionalOwners },
        { op = "replace", path = "/description", value = isc.null },
        { op = "replace", path = "/membership", value = role.membership },
      })
      assert.equal("[]", core.json_encode(patched.segments))
      assert.equal("[]", core.json_encode(patched.additionalOwners))
      assert.equal(isc.null, patched.description)
      assert.equal(H.canon(role.membership), H.canon(patched.membership))
      local again = c.roles:get(role.id)
      assert.equal("[]", core.json_encode(again.segments))
      assert.equal(isc.null, again.description)
    end)

    it("appends with add and guards with test", function()
      local role
      for r in c.roles:list() do
        if #r.entitlements > 0 and #r.accessProfiles > 0 then role = r break end
      end
      local ent = role.entitlements[1]
      local patched = c.roles:patch(role.id, {
        { op = "test", path = "/name", value = role.name },
        { op = "remove", path = "/entitlements/0" },
        { op = "add", path = "/entitlements/-", value = { type = "ENTITLEMENT", id = ent.id } },
      })
      assert.equal(ent.id, patched.entitlements[#patched.entitlements].id)
      local err = H.catch(c.roles.patch, c.roles, role.id, {
        { op = "test", path = "/name", value = "Not " .. role.name },
        { op = "replace", path = "/enabled", value = false },
      })
      assert.equal(400, err.status)
      assert.equal(patched.enabled, c.roles:get(role.id).enabled)
    end)

    it("checks every operation's shape before sending anything", function()
      local p = function(ops) return c.roles:patch("2c918086749d78830174a1a40e121518", ops) end
      refused("roles:patch: argument #2 must be table", p, nil)
      refused("roles:patch: ops must not be empty", p, {})
      refused("ops must be a list of operations; wrap a single one", p, { op = "remove", path = "/x" })
      refused("op #1: 'op' must be one of add, remove, replace, move, copy, test, got delete", p,
        { { op = "delete", path = "/description" } })
      refused("op #1: 'path' must be a JSON Pointer string starting with '/', got \"description\"", p,
        { { op = "remove", path = "description" } })
      refused("op #2: 'path' must be a JSON Pointer string", p,
        { { op = "remove", path = "/description" }, { op = "remove" } })
      refused("op #1: 'replace' needs a 'value' %(use isc.null for JSON null%)", p,
        { { op = "replace", path = "/description" } })
      refused("op #1: 'test' needs a 'value'", p, { { op = "test", path = "/name" } })
      refused("op #1: 'move' needs 'from'", p, { { op = "move", path = "/description" } })
      refused("op #1 has unknown field 'valeu'", p, { { op = "add", path = "/segments/-", valeu = "x", value = "y" } })
      refused("op #1 must be a table, got string", p, { "replace /enabled true" })
      refused("roles:patch: argument #1 must be string", c.roles.patch, c.roles, nil, { { op = "remove", path = "/x" } })
    end)
  end)

  describe("delete", function()
    it("deletes a role; it then answers 404", function()
      local role = some_role()
      assert.is_nil(c.roles:delete(role.id))
      assert.equal(404, H.catch(c.roles.get, c.roles, role.id).status)
      assert.equal(404, H.catch(c.roles.delete, c.roles, role.id).status)
    end)
  end)

  describe("bulk_delete", function()
    it("deletes 120 roles in three requests of at most 50 ids", function()
      local doomed = H.ids_of(c.roles:list({ max = 120 }):collect())
      local task, tasks = c.roles:bulk_delete(doomed)
      assert.equal("TASK_RESULT", task.type)
      assert.is_string(task.id)
      assert.equal(3, #tasks)
      assert.equal(task, tasks[1])
      assert.equal(3, H.hits(sim, "POST /v2024/roles/bulk-delete"))
      sim:advance(5) -- ISC deletes in the background
      assert.equal(80, c.roles:list():count())
      local left = {}
      for role in c.roles:list() do left[role.id] = true end
      for _, id in ipairs(doomed) do assert.is_nil(left[id]) end
    end)

    it("sends a repeated id once", function()
      local ids = H.ids_of(c.roles:list({ max = 50 }):collect())
      ids[#ids + 1] = ids[1]
      local _, tasks = c.roles:bulk_delete(ids)
      assert.equal(1, #tasks)
    end)

    it("says which ids were deleted and which refused when a later batch is refused", function()
      local ids = H.ids_of(c.roles:list({ max = 60 }):collect())
      ids[55] = "0000000000000000000000000000dead"
      local err = H.catch(c.roles.bulk_delete, c.roles, ids)
      assert.is_true(isc.is_error(err, "api"))
      assert.equal(400, err.status)
      assert.equal("400.1.404 Referenced object not found", err.cause.detail_code)
      assert.equal(1, #err.tasks)
      assert.equal("TASK_RESULT", err.tasks[1].type)
      assert.same(table.move(ids, 1, 50, 1, {}), err.done)
      assert.same(table.move(ids, 51, 60, 1, {}), err.failed)
      assert.same({}, err.not_sent)
      assert.same({}, err.unknown)
      assert.matches("60 roles in 2 batches: 50 done, 0 not sent, 10 failed, 0 unknown (first failure, batch 2:",
        err.message, 1, true)
    end)

    it("checks the ids before sending anything", function()
      refused("roles:bulk_delete: ids must not be empty", c.roles.bulk_delete, c.roles, {})
      refused("roles:bulk_delete: id #2 must be a non%-empty string, got table", c.roles.bulk_delete, c.roles,
        { "a", { id = "b" } })
      refused("roles:bulk_delete: argument #1 must be table", c.roles.bulk_delete, c.roles, "a")
    end)
  end)

  describe("access-model metadata", function()
    it("adds and removes one value", function()
      local role
      for r in c.roles:list() do
        if not metadata(r).iscCsp then role = r break end
      end
      local with = c.roles:add_metadata(role.id, "iscCsp", "production")
      assert.same({ "production" }, metadata(with).iscCsp)
      assert.is_nil(c.roles:remove_metadata(role.id, "iscCsp", "production"))
      assert.is_nil(metadata(c.roles:get(role.id)).iscCsp)
      -- removing a value the role lacks is no error
      c.roles:remove_metadata(role.id, "iscCsp", "production")
      assert.equal(1, H.hits(sim, "POST /v2024/roles/{id}/access-model-metadata/{attributeKey}/values/{attributeValue}"))
    end)

    it("surfaces ISC's message for an unknown attribute", function()
      local err = H.catch(c.roles.add_metadata, c.roles, some_role().id, "noSuchKey", "x")
      assert.equal(400, err.status)
      assert.matches("noSuchKey", err.message)
    end)

    it("checks its arguments", function()
      refused("roles:add_metadata: argument #2 must be string, got nil", c.roles.add_metadata, c.roles, "id")
      refused("roles:remove_metadata: argument #3 %(attribute value%) must not be empty",
        c.roles.remove_metadata, c.roles, "id", "iscCsp", "")
    end)
  end)

  describe("bulk_update_metadata", function()
    local values = { { attribute = "iscFederalClassifications", values = { "secret" } } }

    -- Follows a job with bulk_update_status until COMPLETED, on the sim's clock.
    local function completes(job)
      local seen = { job.status }
      for _ = 1, 10 do
        local st = c.roles:bulk_update_status(job.id)
        assert.equal(job.id, st.id)
        if seen[#seen] ~= st.status then seen[#seen + 1] = st.status end
        if st.status == "COMPLETED" then return seen end
        sim:advance(10)
      end
      error("the job did not complete: " .. table.concat(seen, ", "))
    end

    it("updates roles by ids, listed as unfinished until it completes", function()
      local ids = H.ids_of(c.roles:list({ max = 3 }):collect())
      local job = c.roles:bulk_update_metadata { ids = ids, operation = "ADD", values = values }
      assert.is_string(job.id)
      assert.equal("CREATED", job.status)
      assert.equal(1, H.hits(sim, "POST /v2024/roles/access-model-metadata/bulk-update/ids"))
      assert.same({ job.id }, H.ids_of(c.roles:bulk_update_statuses()))
      assert.same({ "CREATED", "PRE_PROCESS", "CHUNK_PROCESSING", "COMPLETED" }, completes(job))
      assert.same({}, c.roles:bulk_update_statuses())
      for _, id in ipairs(ids) do
        local classes = metadata(c.roles:get(id)).iscFederalClassifications
        assert.is_table(classes)
        assert.truthy(table.concat(classes, ","):find("secret"))
      end
    end)

    it("updates the roles a filter picks; replace_scope ATTRIBUTE keeps their other metadata", function()
      local picked = H.ids_of(c.roles:list({ max = 3 }):collect())
      local filters = string.format('id in ("%s", "%s", "%s")', picked[1], picked[2], picked[3])
      for _, id in ipairs(picked) do c.roles:add_metadata(id, "costCenter", "cc2000") end
      completes(c.roles:bulk_update_metadata {
        filters = filters, operation = "ADD", values = { { attribute = "iscPrivacy", values = { "internal" } } },
      })
      completes(c.roles:bulk_update_metadata {
        filters = filters, operation = "replace", replace_scope = "attribute",
        values = { { attribute = "iscPrivacy", values = { "confidential" } } },
      })
      assert.equal(2, H.hits(sim, "POST /v2024/roles/access-model-metadata/bulk-update/filter"))
      local n = 0
      for role in c.roles:list { filters = filters } do
        assert.same({ "confidential" }, metadata(role).iscPrivacy)
        assert.same({ "cc2000" }, metadata(role).costCenter)
        n = n + 1
      end
      assert.equal(3, n)
    end)

    it("updates the roles a search query picks", function()
      local name = some_role().name
      local job = c.roles:bulk_update_metadata {
        query = { indices = { "roles" }, queryType = "TEXT",
          textQuery = { terms = { name }, fields = { "name" }, matchAny = false, contains = false } },
        operation = "ADD", values = { { attribute = "iscCsp", values = { "staging" } } },
      }
      assert.equal(1, H.hits(sim, "POST /v2024/roles/access-model-metadata/bulk-update/query"))
      completes(job)
      local found = c.roles:list({ filters = string.format("name eq %q", name) }):collect()
      assert.same({ "staging" }, metadata(found[1]).iscCsp)
    end)

    it("takes the SDKs' {attributeKey=, attributeValue=} items and sends the spec's {attribute=, values=}", function()
      local ids = H.ids_of(c.roles:list({ max = 2 }):collect())
      completes(c.roles:bulk_update_metadata { ids = ids, operation = "ADD",
        values = { { attributeKey = "iscPrivacy", attributeValue = { "internal" } },
          { attributeKey = "iscCsp", values = { "staging" } } } })
      for _, id in ipairs(ids) do
        local role = c.roles:get(id)
        assert.same({ "internal" }, metadata(role).iscPrivacy)
        assert.same({ "staging" }, metadata(role).iscCsp)
      end
    end)

    it("checks its options before sending anything", function()
      local f = function(opts) return c.roles:bulk_update_metadata(opts) end
      refused("option 'values' item #1 gives both 'attribute' and 'attributeKey'; give one", f,
        { ids = { "a" }, operation = "ADD", values = { { attribute = "a", attributeKey = "a", values = {} } } })
      refused("option 'values' item #1 gives both 'values' and 'attributeValue'; give one", f,
        { ids = { "a" }, operation = "ADD", values = { { attribute = "a", values = {}, attributeValue = {} } } })
      refused("give exactly one of 'ids', 'filters' or 'query' to choose the roles %(got none%)", f,
        { operation = "ADD", values = values })
      refused("%(got ids and filters%)", f, { ids = { "a" }, filters = "x", operation = "ADD", values = values })
      refused("option 'operation' is required", f, { ids = { "a" }, values = values })
      refused("option 'operation' must be ADD, REMOVE or REPLACE, got 'UPSERT'", f,
        { ids = { "a" }, operation = "UPSERT", values = values })
      refused("option 'replace_scope' must be ALL or ATTRIBUTE, got 'SOME'", f,
        { ids = { "a" }, operation = "REPLACE", replace_scope = "SOME", values = values })
      refused("option 'values' is required", f, { ids = { "a" }, operation = "ADD" })
      refused("option 'values' must not be empty", f, { ids = { "a" }, operation = "ADD", values = {} })
      refused("option 'values' item #1 has unknown field 'value'", f,
        { ids = { "a" }, operation = "ADD", values = { { attribute = "iscPrivacy", value = "public" } } })
      refused("unknown option 'roles'", f, { roles = { "a" }, operation = "ADD", values = values })
      local many = {}
      for i = 1, 3001 do many[i] = string.format("%032x", i) end
      refused("option 'ids' holds 3001 ids; ISC takes at most 3000 per bulk update", f,
        { ids = many, operation = "ADD", values = values })
      refused("roles:bulk_update_status: argument #1 must be string", c.roles.bulk_update_status, c.roles)
    end)
  end)
end)
