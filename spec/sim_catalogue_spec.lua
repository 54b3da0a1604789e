-- The simulated tenant's read endpoints for what roles refer to (identities,
-- access profiles, entitlements, segments, governance groups, access-model
-- metadata attributes and values) and the task status of a bulk delete,
-- driven over plain HTTP. Answers are checked against the OpenAPI schemas
-- (spec/fixtures/openapi/lookups.yaml, and roles.yaml for Entitlement and
-- AttributeDTO, which the Roles API shares).
local H = require "helpers"
local openapi = require "openapi_check"
local sim_api = require "sim_api"

local null = require("isc.core").null

local function by_key(x) return x.key end
local function by_value(x) return x.value end

-- Each listing: its path, schema, default and largest page, how many items
-- the seeded tenant has, and an unknown id.
local LISTINGS = {
  { path = "/identities", doc = "lookups", schema = "Identity", default = 250, max = 250, total = 80 },
  { path = "/access-profiles", doc = "lookups", schema = "AccessProfile", default = 50, max = 50, total = 53 },
  { path = "/entitlements", doc = "roles", schema = "entitlement", default = 250, max = 250, total = 91 },
  { path = "/segments", doc = "lookups", schema = "Segment", default = 250, max = 250, total = 4 },
  { path = "/workgroups", doc = "lookups", schema = "WorkgroupDto", default = 50, max = 50, total = 5 },
  { path = "/access-model-metadata/attributes", doc = "roles", schema = "attributedto", default = 250, max = 250,
    total = 5, id = by_key },
  { path = "/access-model-metadata/attributes/dataCategory/values", doc = "roles", schema = "attributevaluedto",
    default = 250, max = 250, total = 20, id = by_value },
}

describe("the simulated tenant's lookups", function()
  local sim, api
  -- No rate limit: one spec walks every reference of 120 roles on a frozen clock.
  H.shared_sim({ roles = 120, identities = 80, seed = 42, rate_limit = false }, function(s) sim, api = s, sim_api.new(s) end,
    { reset = true, freeze = true })

  local function get(path, query) return api:call("GET", "/v2024" .. path, { query = query }) end

  -- One field of each item of a page, in its order.
  local function field_of(page, field)
    local out = {}
    for i, x in ipairs(page) do out[i] = x[field or "name"] end
    return out
  end

  -- The items a filter selects, as a sorted list of one field's values.
  local function selected(path, filters, field)
    local status, page = get(path, { filters = filters })
    assert.equal(200, status, sim_api.message(page))
    local out = field_of(page, field)
    table.sort(out)
    return out
  end

  local function assert_bad(path, query, text)
    local status, body = get(path, query)
    sim_api.assert_error("roles", status, 400, body, "400.1 Bad Request Content")
    if text then assert.matches(text, sim_api.message(body), 1, true) end
  end

  for _, l in ipairs(LISTINGS) do
    local id = l.id or function(x) return x.id end
    describe("GET " .. l.path, function()
      it("answers a first page of " .. math.min(l.default, l.total) .. ", each item valid", function()
        local status, page, headers = get(l.path)
        assert.equal(200, status)
        assert.equal(math.min(l.default, l.total), #page)
        assert.is_nil(headers["x-total-count"])
        assert.same({}, openapi.each_errors(l.doc, l.schema, page))
      end)

      it("pages with offset and limit, counting all " .. l.total .. " with count=true", function()
        local seen, offset = {}, 0
        repeat
          local status, page, headers = get(l.path, { offset = offset, limit = 3, count = "true" })
          assert.equal(200, status)
          assert.equal(tostring(l.total), headers["x-total-count"])
          for _, x in ipairs(page) do
            assert.is_nil(seen[id(x)])
            seen[id(x)] = true
          end
          offset = offset + 3
        until #page < 3
        local n = 0
        for _ in pairs(seen) do n = n + 1 end
        assert.equal(l.total, n)
      end)

      it("refuses a limit above " .. l.max, function()
        assert_bad(l.path, { limit = l.max + 1 }, "accepts an integer from 0 to " .. l.max)
      end)

      it("refuses a filter on a field it does not filter", function()
        assert_bad(l.path, { filters = 'color eq "blue"' }, 'filtering is not supported on field "color"')
      end)
    end)
  end

  describe("one item by its id", function()
    for _, case in ipairs({
      { "/identities", "Identity" }, { "/access-profiles", "AccessProfile" }, { "/segments", "Segment" },
      { "/workgroups", "WorkgroupDto" }, { "/entitlements", "entitlement", "roles" },
    }) do
      local path, schema, doc = case[1], case[2], case[3] or "lookups"
      it("GET " .. path .. "/{id} answers the item listed, and 404 for an unknown id", function()
        local _, page = get(path, { limit = 2 })
        local status, item = get(path .. "/" .. page[2].id)
        assert.equal(200, status)
        assert.same({}, openapi.errors(doc, schema, item))
        assert.equal(H.canon(page[2]), H.canon(item))
        local nstatus, body = get(path .. "/2c9180000000000000000000000000ff")
        sim_api.assert_error("roles", nstatus, 404, body, "404 Not found")
      end)
    end

    it("GET access-model-metadata/attributes/{key} and .../values/{value}, 404 for an unknown one", function()
      local status, attr = get("/access-model-metadata/attributes/costCenter")
      assert.equal(200, status)
      assert.same({}, openapi.errors("roles", "attributedto", attr))
      assert.equal("Cost Center", attr.name)
      local vstatus, value = get("/access-model-metadata/attributes/costCenter/values/cc1000")
      assert.equal(200, vstatus)
      assert.same({ value = "cc1000", name = "CC-1000 Engineering", status = "active" }, value)
      for _, path in ipairs({ "/access-model-metadata/attributes/nope", "/access-model-metadata/attributes/nope/values",
        "/access-model-metadata/attributes/costCenter/values/cc9999" }) do
        local nstatus, body = get(path)
        sim_api.assert_error("roles", nstatus, 404, body, "404 Not found")
      end
    end)
  end)

  describe("filters, as each endpoint's spec lists them", function()
    it("identities by name, alias, email, first or last name and id", function()
      assert.same({ "James Smith" }, selected("/identities", 'name eq "james smith"'))
      assert.same({ "james.smith" }, selected("/identities", 'alias eq "james.smith"', "alias"))
      assert.same({ "james.smith@acme-corp.com" },
        selected("/identities", 'email sw "james.smith@"', "emailAddress"))
      local by_first = selected("/identities", 'firstname eq "James"')
      assert.is_true(#by_first >= 1)
      for _, name in ipairs(by_first) do assert.matches("^James ", name) end
      local _, two = get("/identities", { limit = 2 })
      assert.same(H.ids_of(two), selected("/identities", string.format('id in ("%s", "%s")', two[1].id, two[2].id), "id"))
      assert_bad("/identities", { filters = 'name co "Smith"' }, 'operator "co" is not supported for field "name"')
      assert_bad("/identities", { defaultFilter = "EVERYONE" }, "CORRELATED_ONLY or NONE")
      assert.equal(80, #selected("/identities", "correlated eq true"))
    end)

    it("access profiles by name, source and requestability", function()
      assert.same({ "AD Engineering Baseline", "AD Engineering Managers" },
        selected("/access-profiles", 'name sw "AD Engineering"'))
      local _, ap = get("/access-profiles", { filters = 'name eq "GitHub Enterprise - Engineering"' })
      for _, name in ipairs(selected("/access-profiles", 'source.id eq "' .. ap[1].source.id .. '"')) do
        assert.matches("^GitHub Enterprise %- ", name)
      end
      local _, page = get("/access-profiles", { filters = "requestable eq false" })
      for _, x in ipairs(page) do assert.is_false(x.requestable) end
      assert_bad("/access-profiles", { filters = 'name co "AD"' }, 'operator "co" is not supported')
    end)

    it("entitlements by name, type, value and source", function()
      assert.same({ "Domain Admins" }, selected("/entitlements", 'name eq "Domain Admins"'))
      assert.same({ "acme/backend" }, selected("/entitlements", 'value eq "acme/backend"', "value"))
      local _, page = get("/entitlements", { filters = 'type eq "PermissionSet"' })
      assert.equal(8, #page)
      for _, e in ipairs(page) do assert.equal("Salesforce", e.source.name) end
    end)

    it("governance groups by name and by member", function()
      local _, groups = get("/workgroups", { filters = 'name in ("Finance Approvers", "Security Reviewers")' })
      assert.equal(2, #groups)
      local t = require("isc.sim.tenant").new { roles = 0, identities = 80, seed = 42 }
      local group = t.world.governance_groups_by_id[groups[1].id]
      assert.equal(#group.member_ids, groups[1].memberCount)
      local with_member = selected("/workgroups", 'memberships.identityId eq "' .. group.member_ids[1] .. '"')
      assert.is_true(#with_member >= 1)
      assert.truthy(table.concat(with_member, "|"):find(groups[1].name, 1, true))
    end)

    it("metadata attributes by name, key, type and object type; their values take none", function()
      assert.same({ "costCenter" }, selected("/access-model-metadata/attributes", 'name eq "Cost Center"', "key"))
      assert.same({ "costCenter", "dataCategory" }, selected("/access-model-metadata/attributes", 'type eq "custom"', "key"))
      assert.same({ "iscCsp", "iscFederalClassifications" },
        selected("/access-model-metadata/attributes", 'objectTypes eq "general"', "key"))
      assert_bad("/access-model-metadata/attributes/costCenter/values", { filters = 'name eq "x"' })
    end)

    it("sorts by the sorters the spec lists, and refuses others", function()
      local _, groups = get("/workgroups", { sorters = "-name" })
      assert.same({ "Security Reviewers", "HR Business Partners", "Finance Approvers", "Engineering Leads",
        "Access Review Board" }, field_of(groups))
      local _, desc = get("/identities", { sorters = "-name", limit = 2 })
      assert.is_true(desc[1].name:lower() >= desc[2].name:lower())
      assert_bad("/identities", { sorters = "email" }, 'sorting is not supported on field "email"')
    end)
  end)

  it("finds every owner, access profile, entitlement, segment, group and metadata value the roles use", function()
    local checked = 0
    local function found(path, name)
      local status, item = get(path)
      assert.equal(200, status, path)
      if name then assert.equal(name, item.name) end
      checked = checked + 1
    end
    for _, r in ipairs(api:all("/v2024/roles")) do
      found("/identities/" .. r.owner.id, r.owner.name)
      for _, ap in ipairs(r.accessProfiles) do found("/access-profiles/" .. ap.id, ap.name) end
      for _, e in ipairs(r.entitlements) do found("/entitlements/" .. e.id, e.name) end
      for _, s in ipairs(r.segments) do found("/segments/" .. s) end
      for _, o in ipairs(r.additionalOwners) do found("/workgroups/" .. o.id, o.name) end
      for _, a in ipairs(r.accessModelMetadata.attributes) do
        for _, v in ipairs(a.values) do found("/access-model-metadata/attributes/" .. a.key .. "/values/" .. v.value, v.name) end
      end
    end
    assert.is_true(checked > 300)
  end)

  it("serves the same lookups under /v2025 and /v2026", function()
    for _, version in ipairs({ "/v2025", "/v2026" }) do
      local status, page = api:call("GET", version .. "/identities", { query = { limit = 1 } })
      assert.equal(200, status)
      assert.same({}, openapi.each_errors("lookups", "Identity", page))
    end
  end)

  describe("task status", function()
    it("follows a roles bulk delete: running, then SUCCESS once the roles are gone", function()
      local roles = api:all("/v2024/roles")
      local _, task = api:call("POST", "/v2024/roles/bulk-delete", { json = { roleIds = { roles[1].id, roles[2].id } } })
      local status, running = get("/task-status/" .. task.id)
      assert.equal(200, status)
      assert.same({}, openapi.errors("lookups", "TaskStatus", running))
      assert.equal(null, running.completionStatus)
      assert.equal(null, running.completed)
      assert.equal(0, running.percentComplete)
      assert.equal(200, (api:call("GET", "/v2024/roles/" .. roles[1].id)))

      sim:advance(1)
      local _, done = get("/task-status/" .. task.id)
      assert.same({}, openapi.errors("lookups", "TaskStatus", done))
      assert.equal("SUCCESS", done.completionStatus)
      assert.equal(100, done.percentComplete)
      assert.equal(404, (api:call("GET", "/v2024/roles/" .. roles[1].id)))
    end)

    it("answers 404 for a task it never ran", function()
      local status, body = get("/task-status/0123456789abcdef0123456789abcdef")
      sim_api.assert_error("roles", status, 404, body, "404 Not found")
    end)
  end)
end)
