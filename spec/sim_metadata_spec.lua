-- The simulated tenant's access-model metadata operations on roles, over
-- plain HTTP under both layouts: one value added or removed, and the
-- asynchronous bulk updates (by ids, by filter, by search query) moving
-- through their statuses on the simulator's clock.
local core = require "isc.core"
local H = require "helpers"
local openapi = require "openapi_check"
local sim_api = require "sim_api"

local msg = sim_api.message
local function assert_error(...) sim_api.assert_error("roles", ...) end

local STAGE = 5 -- bulk_update_stage_seconds

for _, base in ipairs({ "/v2024/roles", "/roles/v1" }) do
  describe("the simulated role metadata API at " .. base, function()
    local sim, api, roles
    H.shared_sim({ roles = 60, identities = 30, seed = 9, bulk_update_stage_seconds = STAGE },
      function(s) sim, api = s, sim_api.new(s) end, { reset = true, freeze = true })
    before_each(function()
      local _, a = api:call("GET", base, { query = { limit = 50 } })
      local _, b = api:call("GET", base, { query = { limit = 50, offset = 50 } })
      roles = a
      for _, r in ipairs(b) do roles[#roles + 1] = r end
    end)

    local function call(method, path, opts) return api:call(method, base .. path, opts) end

    local function value_path(id, key, value)
      return string.format("/%s/access-model-metadata/%s/values/%s", id, key, value)
    end

    local function values_of(role, key)
      for _, a in ipairs(role.accessModelMetadata.attributes) do
        if a.key == key then
          local out = {}
          for i, v in ipairs(a.values) do out[i] = v.value end
          return out
        end
      end
      return {}
    end

    local function bare(n)
      for _, r in ipairs(roles) do
        if #r.accessModelMetadata.attributes == 0 then
          n = n - 1
          if n == 0 then return r end
        end
      end
    end


    describe("one value", function()
      it("POST adds a value and answers the role with the catalogue's attribute", function()
        local role = bare(1)
        sim:advance(30)
        local status, updated = call("POST", value_path(role.id, "iscPrivacy", "public"))
        assert.equal(200, status, msg(updated))
        assert.same({}, openapi.errors("roles", "role", updated))
        assert.same({ attributes = { {
          key = "iscPrivacy", name = "Privacy", multiselect = false, status = "active", type = "governance",
          objectTypes = { "all" }, description = "Specifies the level of privacy associated with an access item.",
          values = { { value = "public", name = "Public", status = "active" } },
        } } }, updated.accessModelMetadata)
        assert.is_true(updated.modified > role.modified)
        local _, again = call("GET", "/" .. role.id)
        assert.same(updated, again)
      end)

      it("is idempotent, replaces a single-select value and accumulates multi-select ones", function()
        local role = bare(1)
        call("POST", value_path(role.id, "iscPrivacy", "public"))
        local _, same = call("POST", value_path(role.id, "iscPrivacy", "public"))
        assert.same({ "public" }, values_of(same, "iscPrivacy"))
        local _, replaced = call("POST", value_path(role.id, "iscPrivacy", "private"))
        assert.same({ "private" }, values_of(replaced, "iscPrivacy"))
        call("POST", value_path(role.id, "iscFederalClassifications", "secret"))
        local _, both = call("POST", value_path(role.id, "iscFederalClassifications", "topSecret"))
        assert.same({ "secret", "topSecret" }, values_of(both, "iscFederalClassifications"))
      end)

      it("refuses a 26th value", function()
        local role = bare(1)
        local n = 0
        for _, pair in ipairs({ { "dataCategory", { "pii", "phi", "pci", "financial", "hr", "legal", "sourceCode",
          "customer", "marketing", "operational", "security", "publicData", "research", "contracts", "payroll",
          "pricing", "telemetry", "backups", "credentials", "audit" } },
          { "iscFederalClassifications", { "unclassified", "confidential", "secret", "topSecret" } },
          { "iscCsp", { "development" } } }) do
          for _, v in ipairs(pair[2]) do
            local status, body = call("POST", value_path(role.id, pair[1], v))
            assert.equal(200, status, msg(body))
            n = n + 1
          end
        end
        assert.equal(25, n)
        local status, body = call("POST", value_path(role.id, "iscCsp", "staging"))
        assert_error(status, 400, body, "400.1 Bad Request Content", "A role can have at most 25 metadata values")
      end)

      it("DELETE removes a value with 202 and no body, and is a no-op for a value the role lacks", function()
        local role = bare(1)
        call("POST", value_path(role.id, "iscFederalClassifications", "secret"))
        call("POST", value_path(role.id, "iscFederalClassifications", "topSecret"))
        local status, body = call("DELETE", value_path(role.id, "iscFederalClassifications", "secret"))
        assert.equal(202, status)
        assert.equal("", body)
        local _, after = call("GET", "/" .. role.id)
        assert.same({ "topSecret" }, values_of(after, "iscFederalClassifications"))
        assert.equal(202, (call("DELETE", value_path(role.id, "iscFederalClassifications", "secret"))))
        call("DELETE", value_path(role.id, "iscFederalClassifications", "topSecret"))
        local _, empty = call("GET", "/" .. role.id)
        assert.same({}, empty.accessModelMetadata.attributes)
      end)

      it("answers 400.1.404 for an unknown key or value and 404 for an unknown role", function()
        local role = bare(1)
        for _, method in ipairs({ "POST", "DELETE" }) do
          local status, body = call(method, value_path(role.id, "nope", "public"))
          assert_error(status, 400, body, "400.1.404 Referenced object not found",
            'Referenced attribute key "nope" was not found.')
          status, body = call(method, value_path(role.id, "iscPrivacy", "nope"))
          assert_error(status, 400, body, "400.1.404 Referenced object not found",
            'Referenced attribute value "nope" of "iscPrivacy" was not found.')
          status, body = call(method, value_path("2c9180000000000000000000000000aa", "iscPrivacy", "public"))
          assert_error(status, 404, body, "404 Not found")
        end
      end)
    end)

    describe("bulk updates", function()
      local function job_status(id)
        local status, job = call("GET", "/access-model-metadata/bulk-update/" .. id)
        assert.equal(202, status, msg(job))
        assert.same({}, openapi.errors("roles", "rolebulkupdateresponse", job))
        return job.status
      end

      it("by ids: 202 CREATED, listed while unfinished, applied when COMPLETED", function()
        local a, b = bare(1), bare(2)
        local status, job = call("POST", "/access-model-metadata/bulk-update/ids", { json = {
          roles = { a.id, b.id }, operation = "ADD", replaceScope = "ALL",
          values = { { attribute = "iscFederalClassifications", values = { "topSecret" } } } } })
        assert.equal(202, status, msg(job))
        assert.same({}, openapi.errors("roles", "rolebulkupdateresponse", job))
        assert.equal("CREATED", job.status)
        assert.equal("ROLE", job.type)
        local _, list = call("GET", "/access-model-metadata/bulk-update")
        assert.same({}, openapi.each_errors("roles", "rolegetallbulkupdateresponse", list))
        assert.same({ job }, list)
        sim:advance(STAGE)
        assert.equal("PRE_PROCESS", job_status(job.id))
        sim:advance(STAGE)
        assert.equal("CHUNK_PROCESSING", job_status(job.id))
        local _, unchanged = call("GET", "/" .. a.id)
        assert.same({}, values_of(unchanged, "iscFederalClassifications"))
        sim:advance(STAGE)
        assert.equal("COMPLETED", job_status(job.id))
        for _, r in ipairs({ a, b }) do
          local _, changed = call("GET", "/" .. r.id)
          assert.same({ "topSecret" }, values_of(changed, "iscFederalClassifications"))
        end
        assert.same({}, select(2, call("GET", "/access-model-metadata/bulk-update")))
      end)

      it("answers the literal /bulk-update/id (what the SDKs send) with the latest job", function()
        call("POST", "/access-model-metadata/bulk-update/ids", { json = { roles = { bare(1).id }, operation = "ADD",
          values = { { attribute = "iscCsp", values = { "production" } } } } })
        local _, second = call("POST", "/access-model-metadata/bulk-update/ids", { json = { roles = { bare(2).id },
          operation = "ADD", values = { { attribute = "iscCsp", values = { "staging" } } } } })
        local status, job = call("GET", "/access-model-metadata/bulk-update/id")
        assert.equal(202, status)
        assert.equal(second.id, job.id)
        local s2, body = call("GET", "/access-model-metadata/bulk-update/2d82ac17-eb0d-4ba6-9918-dcad6ee0294d")
        assert_error(s2, 404, body, "404 Not found")
      end)

      it("REPLACE with scope ALL replaces all metadata, with ATTRIBUTE only the named attribute's values", function()
        local r = bare(1)
        call("POST", value_path(r.id, "iscPrivacy", "public"))
        call("POST", value_path(r.id, "iscCsp", "development"))
        local function run(body)
          body.roles = { r.id }
          local status, job = call("POST", "/access-model-metadata/bulk-update/ids", { json = body })
          assert.equal(202, status, msg(job))
          sim:advance(3 * STAGE)
          return select(2, call("GET", "/" .. r.id))
        end
        local after = run({ operation = "REPLACE", replaceScope = "ATTRIBUTE",
          values = { { attribute = "iscCsp", values = { "production", "staging" } } } })
        assert.same({ "public" }, values_of(after, "iscPrivacy"))
        assert.same({ "production", "staging" }, values_of(after, "iscCsp"))
        after = run({ operation = "REMOVE", values = { { attribute = "iscCsp", values = { "staging" } } } })
        assert.same({ "production" }, values_of(after, "iscCsp"))
        after = run({ operation = "REPLACE", replaceScope = "ALL",
          values = { { attribute = "iscFederalClassifications", values = { "secret" } } } })
        assert.equal(1, #after.accessModelMetadata.attributes)
        assert.same({ "secret" }, values_of(after, "iscFederalClassifications"))
      end)

      it("REPLACE with scope ATTRIBUTE gives a role the attribute it did not have", function()
        local r = bare(1)
        call("POST", value_path(r.id, "iscPrivacy", "public"))
        local status, job = call("POST", "/access-model-metadata/bulk-update/ids", { json = { roles = { r.id },
          operation = "REPLACE", replaceScope = "ATTRIBUTE",
          values = { { attribute = "iscCsp", values = { "production" } } } } })
        assert.equal(202, status, msg(job))
        sim:advance(3 * STAGE)
        local _, after = call("GET", "/" .. r.id)
        assert.same({ "public" }, values_of(after, "iscPrivacy"))
        assert.same({ "production" }, values_of(after, "iscCsp"))
      end)

      it("accepts the value items as the SDK models name them (attributeKey, attributeValue)", function()
        local r = bare(1)
        local status = call("POST", "/access-model-metadata/bulk-update/ids", { json = { roles = { r.id },
          operation = "ADD", values = { { attributeKey = "iscCsp", attributeValue = { "staging" } } } } })
        assert.equal(202, status)
        sim:advance(3 * STAGE)
        assert.same({ "staging" }, values_of(select(2, call("GET", "/" .. r.id)), "iscCsp"))
      end)

      it("refuses more than 3000 roles, unknown roles, and bad operations or values", function()
        local many = {}
        for i = 1, 3001 do many[i] = roles[1].id end
        local values = { { attribute = "iscCsp", values = { "staging" } } }
        local status, body = call("POST", "/access-model-metadata/bulk-update/ids",
          { json = { roles = many, operation = "ADD", values = values } })
        assert_error(status, 400, body, "400.1 Bad Request Content", "roles count exceeded max limit of 3000 for bulk-update.")
        status, body = call("POST", "/access-model-metadata/bulk-update/ids",
          { json = { roles = { "2c9180000000000000000000000000aa" }, operation = "ADD", values = values } })
        assert_error(status, 400, body, "400.1.404 Referenced object not found",
          'Referenced roles ["2c9180000000000000000000000000aa"] was not found.')
        status, body = call("POST", "/access-model-metadata/bulk-update/ids",
          { json = { roles = { roles[1].id }, operation = "MERGE", values = values } })
        assert_error(status, 400, body, "400.1 Bad Request Content", "operation is required: ADD, REMOVE or REPLACE")
        status, body = call("POST", "/access-model-metadata/bulk-update/ids",
          { json = { roles = { roles[1].id }, operation = "ADD", replaceScope = "SOME", values = values } })
        assert_error(status, 400, body, "400.1 Bad Request Content", "replaceScope must be ALL or ATTRIBUTE")
        status, body = call("POST", "/access-model-metadata/bulk-update/ids",
          { json = { roles = { roles[1].id }, operation = "ADD", values = { { attribute = "iscCsp", values = { "moon" } } } } })
        assert_error(status, 400, body, "400.1.404 Referenced object not found",
          'Referenced attribute value "moon" of "iscCsp" was not found.')
        status, body = call("POST", "/access-model-metadata/bulk-update/ids", { body = "{", headers = { ["Content-Type"] = "application/json" } })
        assert_error(status, 400, body, "400.1 Bad Request Content")
      end)

      it("by filter: updates the roles the filter selects when the job completes", function()
        local status, job = call("POST", "/access-model-metadata/bulk-update/filter", { json = {
          filters = "requestable eq true", operation = "ADD",
          values = { { attribute = "iscCsp", values = { "production" } } } } })
        assert.equal(202, status, msg(job))
        assert.same({}, openapi.errors("roles", "rolebulkupdateresponse", job))
        sim:advance(3 * STAGE)
        local requestable = 0
        for _, r in ipairs(roles) do
          local _, now = call("GET", "/" .. r.id)
          local before, after = values_of(r, "iscCsp"), values_of(now, "iscCsp")
          if r.requestable then
            requestable = requestable + 1
            local has = false
            for _, v in ipairs(after) do has = has or v == "production" end
            assert.is_true(has, r.name)
          else
            assert.same(before, after)
          end
        end
        assert.is_true(requestable > 0)
        status, job = call("POST", "/access-model-metadata/bulk-update/filter", { json = {
          filters = 'name co "x"', operation = "ADD", values = { { attribute = "iscCsp", values = { "production" } } } } })
        assert_error(status, 400, job, "400.1 Bad Request Content",
          'Invalid filter: operator "co" is not supported for field "name". Supported operators: eq, sw')
        status, job = call("POST", "/access-model-metadata/bulk-update/filter", { json = {
          operation = "ADD", values = { { attribute = "iscCsp", values = { "production" } } } } })
        assert_error(status, 400, job, "400.1 Bad Request Content", "filters is required")
      end)

      it("by query: a TEXT search or a query string over the roles", function()
        local target, other = bare(1), bare(2)
        local status, job = call("POST", "/access-model-metadata/bulk-update/query", { json = {
          query = { indices = { "roles" }, queryType = "TEXT",
            textQuery = { terms = { target.id }, fields = { "id" }, matchAny = false, contains = true } },
          operation = "REPLACE", replaceScope = "ALL", values = { { attribute = "iscFederalClassifications", values = { "secret" } } } } })
        assert.equal(202, status, msg(job))
        -- the spec's own example nests the search under a stray key `query"`
        status = call("POST", "/access-model-metadata/bulk-update/query", { json = {
          query = { ['query"'] = { indices = { "roles" }, query = { query = string.format('name:"%s"', other.name) } } },
          operation = "ADD", values = { { attribute = "iscCsp", values = { "staging" } } } } })
        assert.equal(202, status)
        sim:advance(3 * STAGE)
        assert.same({ "secret" }, values_of(select(2, call("GET", "/" .. target.id)), "iscFederalClassifications"))
        assert.same({ "staging" }, values_of(select(2, call("GET", "/" .. other.id)), "iscCsp"))
        local untouched = bare(3)
        assert.same({}, select(2, call("GET", "/" .. untouched.id)).accessModelMetadata.attributes)
        local s2, body = call("POST", "/access-model-metadata/bulk-update/query", { json = {
          query = { indices = { "identities" }, query = { query = "*" } }, operation = "ADD",
          values = { { attribute = "iscCsp", values = { "staging" } } } } })
        assert_error(s2, 400, body, "400.1 Bad Request Content", "query.indices must include roles")
      end)
    end)
  end)
end

describe("the simulated role metadata catalogue", function()
  it("serves metadata attributes that validate as AttributeDTO", function()
    local sim <close> = require("isc.sim").start { roles = 40, identities = 10, seed = 2 }
    local api = sim_api.new(sim)
    local _, page = api:call("GET", "/v2024/roles", { query = { limit = 40 } })
    local n = 0
    for _, r in ipairs(page) do
      for _, a in ipairs(r.accessModelMetadata.attributes) do
        n = n + 1
        assert.same({}, openapi.errors("roles", "attributedto", a))
        assert.is_not.equal(core.null, a.values)
      end
    end
    assert.is_true(n > 0)
  end)
end)
