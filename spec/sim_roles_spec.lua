-- The simulated tenant's Roles API, driven over plain HTTP (libcurl through
-- the controller, not isclua's client), under both layouts: the
-- year-versioned /v2024/roles and the per-resource /roles/v1. Responses are
-- checked against the official OpenAPI schemas (spec/fixtures/openapi/roles.yaml).
local core = require "isc.core"
local H = require "helpers"
local openapi = require "openapi_check"
local sim_api = require "sim_api"

local msg = sim_api.message
local function assert_error(...) sim_api.assert_error("roles", ...) end

for _, base in ipairs({ "/v2024/roles", "/roles/v1" }) do
  describe("the simulated Roles API at " .. base, function()
    local sim, api
    H.shared_sim({ roles = 120, identities = 80, seed = 42 }, function(s) sim, api = s, sim_api.new(s) end,
      { reset = true, freeze = true })

    local function call(method, path, opts) return api:call(method, base .. path, opts) end

    -- Every role, in the default order.
    local function all_roles() return api:all(base) end

    local ids = H.ids_of

    local function first(list, pred)
      for _, x in ipairs(list) do if pred(x) then return x end end
    end

    describe("list", function()
      it("answers 50 roles by default, in created-then-id order, each a valid Role", function()
        local status, page, headers = call("GET", "")
        assert.equal(200, status)
        assert.equal(50, #page)
        assert.equal("application/json;charset=UTF-8", headers["content-type"])
        assert.is_nil(headers["x-total-count"])
        assert.same({}, openapi.each_errors("roles", "role", page))
        for i = 2, #page do
          local a, b = page[i - 1], page[i]
          assert.is_true(a.created < b.created or (a.created == b.created and a.id < b.id))
        end
      end)

      it("fills every Role field with realistic values", function()
        local roles = all_roles()
        assert.equal(120, #roles)
        local seen = { STANDARD = 0, IDENTITY_LIST = 0, none = 0, requestable = 0, metadata = 0, segments = 0 }
        for _, r in ipairs(roles) do
          assert.matches("^2c9180%x+$", r.id)
          assert.equal(32, #r.id)
          assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", r.created)
          assert.is_true(r.modified >= r.created)
          assert.equal("IDENTITY", r.owner.type)
          assert.is_string(r.owner.name)
          local m = r.membership
          if m == core.null then seen.none = seen.none + 1 else seen[m.type] = seen[m.type] + 1 end
          if r.requestable then seen.requestable = seen.requestable + 1 end
          if #r.accessModelMetadata.attributes > 0 then seen.metadata = seen.metadata + 1 end
          if #r.segments > 0 then seen.segments = seen.segments + 1 end
          for _, ap in ipairs(r.accessProfiles) do
            assert.equal("ACCESS_PROFILE", ap.type)
            assert.is_string(ap.name)
          end
        end
        for kind, n in pairs(seen) do assert.is_true(n > 0, "no role with " .. kind) end
      end)

      it("pages with offset and limit, each role exactly once", function()
        local seen, offset = {}, 0
        while true do
          local _, page = call("GET", "", { query = { offset = offset, limit = 7 } })
          for _, r in ipairs(page) do
            assert.is_nil(seen[r.id])
            seen[r.id] = true
          end
          if #page < 7 then break end
          offset = offset + 7
        end
        local n = 0
        for _ in pairs(seen) do n = n + 1 end
        assert.equal(120, n)
      end)

      it("gives X-Total-Count when count=true", function()
        local status, page, headers = call("GET", "", { query = { count = "true", limit = 3 } })
        assert.equal(200, status)
        assert.equal(3, #page)
        assert.equal("120", headers["x-total-count"])
        local _, _, h2 = call("GET", "", { query = { count = "TRUE", filters = "requestable eq true", limit = 1 } })
        local requestable = 0
        for _, r in ipairs(all_roles()) do if r.requestable then requestable = requestable + 1 end end
        assert.equal(tostring(requestable), h2["x-total-count"])
      end)

      it("answers an empty page at or past the end, and for limit=0", function()
        assert.same({}, select(2, call("GET", "", { query = { offset = 120 } })))
        assert.same({}, select(2, call("GET", "", { query = { offset = 5000 } })))
        assert.same({}, select(2, call("GET", "", { query = { limit = 0 } })))
      end)

      it("refuses a limit above 50, a negative limit, a bad offset or count with 400", function()
        local status, body = call("GET", "", { query = { limit = 51 } })
        assert_error(status, 400, body, "400.1 Bad Request Content",
          'limit "51" is invalid: this endpoint accepts an integer from 0 to 50')
        for _, q in ipairs({ { limit = -1 }, { limit = "ten" }, { offset = -5 }, { offset = "x" }, { count = "yes" } }) do
          local s, b = call("GET", "", { query = q })
          assert_error(s, 400, b, "400.1 Bad Request Content")
        end
      end)

      describe("filters", function()
        local roles
        before_each(function() roles = all_roles() end)

        local function listed(filters, extra)
          local q = { filters = filters, limit = 50, count = "true" }
          for k, v in pairs(extra or {}) do q[k] = v end
          local status, page, headers = call("GET", "", { query = q })
          assert.equal(200, status, msg(page))
          assert.equal(#page, math.min(50, tonumber(headers["x-total-count"])))
          return page, tonumber(headers["x-total-count"])
        end

        local function expected(pred)
          local out = {}
          for _, r in ipairs(roles) do if pred(r) then out[#out + 1] = r.id end end
          return out
        end

        it("id eq and id in", function()
          assert.same({ roles[7].id }, ids(listed(string.format('id eq "%s"', roles[7].id))))
          local page = listed(string.format('id in ("%s","%s","nope")', roles[9].id, roles[3].id))
          assert.same({ roles[3].id, roles[9].id }, ids(page))
        end)

        it("name eq (any case) and name sw", function()
          assert.same({ roles[5].id }, ids(listed(string.format('name eq "%s"', roles[5].name:upper()))))
          local page, total = listed('name sw "Finance"')
          assert.same(expected(function(r) return r.name:sub(1, 7) == "Finance" end), ids(page))
          assert.is_true(total > 0)
        end)

        it("created with gt, ge and le, and modified with lt, ge and le: the operators list-roles lists", function()
          local pivot = roles[60]
          local function check(field, op, cmp)
            local page, total = listed(string.format("%s %s %s", field, op, pivot[field]))
            local want = expected(function(r) return cmp(r[field], pivot[field]) end)
            assert.equal(#want, total, field .. " " .. op)
            assert.same({ table.unpack(want, 1, 50) }, ids(page))
          end
          check("created", "gt", function(a, b) return a > b end)
          check("modified", "lt", function(a, b) return a < b end)
          for _, field in ipairs({ "created", "modified" }) do
            check(field, "ge", function(a, b) return a >= b end)
            check(field, "le", function(a, b) return a <= b end)
          end
          for _, case in ipairs({ { "created", "lt", "ge, gt, le" }, { "modified", "gt", "ge, le, lt" } }) do
            local status, body = call("GET", "", { query = { filters = string.format("%s %s %s", case[1], case[2],
              pivot.created) } })
            assert_error(status, 400, body, "400.1 Bad Request Content", string.format('Invalid filter: operator "%s" is '
              .. 'not supported for field "%s". Supported operators: %s. POST /roles/filter takes gt, lt, ge and le on '
              .. "created and modified", case[2], case[1], case[3]))
          end
        end)

        it("owner.id eq and in", function()
          local owner = roles[11].owner.id
          local other = roles[40].owner.id
          local _, total = listed(string.format('owner.id eq "%s"', owner))
          assert.equal(#expected(function(r) return r.owner.id == owner end), total)
          local page = listed(string.format('owner.id in ("%s","%s")', owner, other))
          assert.same(expected(function(r) return r.owner.id == owner or r.owner.id == other end), ids(page))
        end)

        it("requestable eq and dimensional eq", function()
          local _, yes = listed("requestable eq true")
          local _, no = listed("requestable eq false")
          assert.equal(120, yes + no)
          assert.equal(#expected(function(r) return r.requestable end), yes)
          local _, dim = listed("dimensional eq true")
          assert.equal(#expected(function(r) return r.dimensional == true end), dim)
        end)

        it("combined with and, or, not and parentheses", function()
          local page = listed('(name sw "Sales" or name sw "Legal") and not requestable eq true')
          assert.same(expected(function(r)
            return (r.name:sub(1, 5) == "Sales" or r.name:sub(1, 5) == "Legal") and not r.requestable
          end), ids(page))
        end)

        it("refuses fields and operators list-roles does not support, and syntax errors", function()
          local cases = {
            { 'name co "x"', 'Invalid filter: operator "co" is not supported for field "name". Supported operators: eq, sw' },
            { 'description eq "x"', 'Invalid filter: filtering is not supported on field "description" here. '
              .. "Supported fields: created, dimensional, id, modified, name, owner.id, requestable" },
            { 'name EQ "x"', "Invalid filter: operators are lowercase: write 'eq' at position 6 (near 'EQ')" },
            { "requestable eq maybe", 'Invalid filter: "maybe" is not a boolean (field requestable takes true or false)' },
            { "created gt soon", 'Invalid filter: "soon" is not an ISO-8601 date-time (field created)' },
            { "id ne \"x\"", 'Invalid filter: operator "ne" is not supported for field "id". Supported operators: eq, in' },
            { "name pr", 'Invalid filter: operator "pr" is not supported for field "name". Supported operators: eq, sw' },
            { "id isnull", 'Invalid filter: operator "isnull" is not supported for field "id". Supported operators: eq, in' },
            { '(name eq "x"', "Invalid filter: expected ')' at the end of the filter" },
            -- what a tenant refuses, and a lenient server would take
            { "name sw 'E'", 'Invalid filter: single quotes at position 9: strings take double quotes ("E")' },
            { "name sw Eng", 'Invalid filter: name takes a string in double quotes: write "Eng" (position 9)' },
            { 'requestable eq "true"',
              "Invalid filter: requestable takes a bare true or false, not a string: write true (position 16)" },
          }
          for _, case in ipairs(cases) do
            local status, body = call("GET", "", { query = { filters = case[1] } })
            assert_error(status, 400, body, "400.1 Bad Request Content", case[2])
          end
        end)

        it("decodes + as a space and percent escapes in the query string", function()
          local status, page = call("GET", "", { query = "filters=name+sw+%22Finance%22&limit=50" })
          assert.equal(200, status)
          assert.same(expected(function(r) return r.name:sub(1, 7) == "Finance" end), ids(page))
        end)
      end)

      describe("sorters", function()
        local function sorted(sorters)
          local out, offset = {}, 0
          repeat
            local status, page = call("GET", "", { query = { sorters = sorters, offset = offset } })
            assert.equal(200, status, msg(page))
            for _, r in ipairs(page) do out[#out + 1] = r end
            offset = offset + 50
          until #page < 50
          return out
        end

        local function assert_order(list, key, desc)
          for i = 2, #list do
            local a, b = key(list[i - 1]), key(list[i])
            if desc then a, b = b, a end
            assert.is_true(a <= b, string.format("%s before %s", tostring(a), tostring(b)))
          end
        end

        it("sorts by name, created and modified, ascending or descending", function()
          local function lower_name(r) return r.name:lower() end
          assert_order(sorted("name"), lower_name)
          assert_order(sorted("-name"), lower_name, true)
          assert_order(sorted("created"), function(r) return r.created end)
          assert_order(sorted("-created"), function(r) return r.created end, true)
          assert_order(sorted("modified"), function(r) return r.modified end)
          assert_order(sorted("-modified"), function(r) return r.modified end, true)
        end)

        it("sorts by several keys", function()
          local list = sorted("-modified,name")
          assert.equal(120, #list)
          assert_order(list, function(r) return r.modified end, true)
        end)

        it("refuses a sorter list-roles does not support", function()
          local status, body = call("GET", "", { query = { sorters = "name,requestable" } })
          assert_error(status, 400, body, "400.1 Bad Request Content",
            'Invalid sorters: sorting is not supported on field "requestable" here. Supported sorters: created, modified, name')
        end)

        it("refuses a + prefix and an empty field, as a tenant does", function()
          local status, body = call("GET", "", { query = { sorters = "+name" } })
          assert_error(status, 400, body, "400.1 Bad Request Content",
            'Invalid sorters: "+name": there is no "+" (ascending is the default); write "name"')
          status, body = call("GET", "", { query = { sorters = "name,,created" } })
          assert_error(status, 400, body, "400.1 Bad Request Content",
            'Invalid sorters: "name,,created" has an empty field: separate the fields by single commas')
        end)
      end)

      describe("segments and subadmins", function()
        it("for-segment-ids lists the roles in those segments plus unsegmented ones, unless include-unsegmented=false", function()
          local roles = all_roles()
          local seg = first(roles, function(r) return #r.segments > 0 end).segments[1]
          local _, page, h = call("GET", "", { query = { ["for-segment-ids"] = seg, ["include-unsegmented"] = "false",
            count = "true" } })
          local want = {}
          for _, r in ipairs(roles) do
            for _, s in ipairs(r.segments) do if s == seg then want[#want + 1] = r.id end end
          end
          assert.same(want, ids(page))
          assert.equal(tostring(#want), h["x-total-count"])
          local _, _, h2 = call("GET", "", { query = { ["for-segment-ids"] = seg, count = "true" } })
          local unsegmented = 0
          for _, r in ipairs(roles) do if #r.segments == 0 then unsegmented = unsegmented + 1 end end
          assert.equal(tostring(#want + unsegmented), h2["x-total-count"])
        end)

        it("refuses include-unsegmented=false without for-segment-ids, and a non-subadmin for-subadmin", function()
          local status, body = call("GET", "", { query = { ["include-unsegmented"] = "false" } })
          assert_error(status, 400, body, "400.1 Bad Request Content", "include-unsegmented=false needs for-segment-ids")
          status, body = call("GET", "", { query = { ["for-subadmin"] = "me" } })
          assert_error(status, 400, body, "400.1 Bad Request Content",
            "for-subadmin=me needs a user token; the API client isclua-sim has no identity")
          status, body = call("GET", "", { query = { ["for-subadmin"] = "2c9180000000000000000000000000ff" } })
          assert_error(status, 400, body, "400.1 Bad Request Content",
            'Identity "2c9180000000000000000000000000ff" is not a ROLE_SUBADMIN')
        end)
      end)
    end)

    describe("get", function()
      it("answers the role by id", function()
        local _, page = call("GET", "", { query = { limit = 3 } })
        local status, role = call("GET", "/" .. page[3].id)
        assert.equal(200, status)
        assert.same(page[3], role)
        assert.same({}, openapi.errors("roles", "role", role))
      end)

      it("answers 404 with an ErrorResponseDto for an unknown id", function()
        local status, body = call("GET", "/2c91808a7813090a017814121e121518")
        assert_error(status, 404, body, "404 Not found",
          "The server did not find a current representation for the target resource.")
        assert.equal('Role "2c91808a7813090a017814121e121518" was not found.', body.causes[1].text)
      end)
    end)

    describe("create", function()
      local owner, ap, ent, member
      before_each(function()
        local roles = all_roles()
        owner = roles[1].owner
        ap = first(roles, function(r) return #r.accessProfiles > 0 end).accessProfiles[1]
        ent = first(roles, function(r) return #r.entitlements > 0 end).entitlements[1]
        member = first(roles, function(r)
          return r.membership ~= core.null and r.membership.type == "IDENTITY_LIST"
        end).membership.identities[1]
      end)

      local function body(extra)
        local b = { name = "Engineering Base (sim spec)", description = "Baseline access for engineers",
          owner = { type = "IDENTITY", id = owner.id },
          accessProfiles = { { type = "ACCESS_PROFILE", id = ap.id } },
          entitlements = { { type = "ENTITLEMENT", id = ent.id } },
          requestable = true, enabled = true,
          membership = { type = "IDENTITY_LIST", identities = { { id = member.id } } } }
        for k, v in pairs(extra or {}) do b[k] = v end
        return b
      end

      it("answers 201 with the full role: server id and times, names of what it refers to", function()
        local now = sim:now()
        local status, role = call("POST", "", { json = body() })
        assert.equal(201, status, msg(role))
        assert.same({}, openapi.errors("roles", "role", role))
        assert.matches("^%x+$", role.id)
        assert.equal(32, #role.id)
        assert.equal(os.date("!%Y-%m-%dT%H:%M:%S", math.floor(now)), role.created:sub(1, 19))
        assert.equal(role.created, role.modified)
        assert.same({ type = "IDENTITY", id = owner.id, name = owner.name }, role.owner)
        assert.same({ { type = "ACCESS_PROFILE", id = ap.id, name = ap.name } }, role.accessProfiles)
        assert.same({ { type = "ENTITLEMENT", id = ent.id, name = ent.name } }, role.entitlements)
        assert.same({ type = "IDENTITY_LIST", criteria = core.null, identities = { member } }, role.membership)
        assert.same({ attributes = {} }, role.accessModelMetadata)
        assert.is_false(role.dimensional)
        assert.equal(core.null, role.legacyMembershipInfo)
        local _, again = call("GET", "/" .. role.id)
        assert.same(role, again)
        local _, last = call("GET", "", { query = { offset = 120 } })
        assert.same({ role.id }, ids(last))
      end)

      it("accepts STANDARD membership criteria three levels deep", function()
        local criteria = { operation = "OR", children = {
          { operation = "AND", children = {
            { operation = "EQUALS", key = { type = "IDENTITY", property = "attribute.department" }, stringValue = "Finance" },
            { operation = "ENDS_WITH", key = { type = "IDENTITY", property = "attribute.email" }, stringValue = "@acme-corp.com" },
          } },
          { operation = "STARTS_WITH", key = { type = "IDENTITY", property = "attribute.email" }, stringValue = member.aliasName },
        } }
        local status, role = call("POST", "", { json = body({ membership = { type = "STANDARD", criteria = criteria } }) })
        assert.equal(201, status, msg(role))
        assert.same({}, openapi.errors("roles", "role", role))
        assert.equal("OR", role.membership.criteria.operation)
        assert.equal(core.null, role.membership.criteria.key)
        assert.equal(core.null, role.membership.criteria.children[2].children)
        assert.equal(core.null, role.membership.criteria.children[1].children[1].key.sourceId)
        assert.equal(core.null, role.membership.identities)
      end)

      it("refuses bodies ISC refuses, saying why", function()
        local long = string.rep("x", 129)
        local cases = {
          { { name = core.null }, "name is required" },
          { { name = long }, "name must be at most 128 characters" },
          { { owner = core.null }, "owner is required" },
          { { owner = { type = "GOVERNANCE_GROUP", id = owner.id } }, "owner.type must be IDENTITY (or null)" },
          { { owner = { id = owner.id, name = "Somebody Else" } },
            string.format('owner.name "Somebody Else" does not match the current display name %q', owner.name) },
          { { id = "2c9180000000000000000000000000aa" }, "id must be null when creating a role" },
          { { description = string.rep("d", 2001) }, "description must be at most 2000 characters" },
          { { accessModelMetadata = { attributes = { { key = "iscPrivacy", values = { { value = "public" } } } } } },
            "accessModelMetadata must be empty when creating a role; add values with POST roles/{id}/access-model-metadata/{key}/values/{value}" },
          { { requestable = "yes" }, "requestable must be true or false" },
          { { accessProfiles = { { type = "ENTITLEMENT", id = ap.id } } }, "accessProfiles[0].type must be ACCESS_PROFILE (or null)" },
          { { membership = { type = "STANDARD" } }, "membership.criteria is required for STANDARD membership" },
          { { membership = { type = "ROLE" } }, "membership.type must be STANDARD or IDENTITY_LIST" },
          { { membership = { type = "STANDARD", criteria = { operation = "AND", children = {
              { operation = "AND", children = { { operation = "EQUALS", key = { type = "IDENTITY", property = "x" }, stringValue = "y" } } } } } } },
            "membership.criteria.children[0]: AND nodes cannot be children of AND nodes" },
          { { membership = { type = "STANDARD", criteria = { operation = "OR", children = { { operation = "AND", children = {
              { operation = "OR", children = { { operation = "EQUALS", key = { type = "IDENTITY", property = "x" }, stringValue = "y" } } } } } } } } },
            "membership.criteria.children[0].children[0]: criteria are at most three levels deep, leaves included" },
          { { membership = { type = "STANDARD", criteria = { operation = "EQUALS", key = { type = "IDENTITY", property = "x" } } } },
            "membership.criteria.stringValue: required for EQUALS" },
          { { membership = { type = "STANDARD", criteria = { operation = "EQUALS", key = { type = "ACCOUNT", property = "x" }, stringValue = "y" } } },
            "membership.criteria.key.sourceId: required when the key type is ACCOUNT" },
          { { accessRequestConfig = { approvalSchemes = { { approverType = "GOVERNANCE_GROUP" } } } },
            "accessRequestConfig.approvalSchemes[0].approverId is required for GOVERNANCE_GROUP" },
        }
        for _, case in ipairs(cases) do
          local status, b = call("POST", "", { json = body(case[1]) })
          assert_error(status, 400, b, "400.1 Bad Request Content", case[2])
        end
      end)

      it("refuses a name another role has (in any case)", function()
        local taken = all_roles()[4].name
        local status, b = call("POST", "", { json = body({ name = taken:lower() }) })
        assert_error(status, 400, b, "400.1 Bad Request Content", string.format("A role named %q already exists", taken:lower()))
      end)

      it("answers 400 400.1.404 for references to unknown objects", function()
        local cases = {
          { { owner = { id = "2c9180000000000000000000000000aa" } },
            'Referenced identity "2c9180000000000000000000000000aa" (owner) was not found.' },
          { { accessProfiles = { { id = "nope" } } }, 'Referenced access profile "nope" was not found.' },
          { { entitlements = { { id = "nope" } } }, 'Referenced entitlement "nope" was not found.' },
          { { segments = { "nope" } }, 'Referenced segment "nope" was not found.' },
          { { dimensional = true, dimensionRefs = { { type = "DIMENSION", id = "2c9180000000000000000000000000dd" } } },
            'Referenced dimension "2c9180000000000000000000000000dd" was not found.' },
        }
        for _, case in ipairs(cases) do
          local status, b = call("POST", "", { json = body(case[1]) })
          assert_error(status, 400, b, "400.1.404 Referenced object not found", case[2])
        end
      end)

      it("takes dimensionRefs only on a dimensional role, and only to the tenant's dimensions", function()
        local dim = first(all_roles(), function(r) return r.dimensional end).dimensionRefs[1]
        local status, b = call("POST", "", { json = body({ dimensionRefs = { { type = "DIMENSION", id = dim.id } } }) })
        assert_error(status, 400, b, "400.1 Bad Request Content",
          "dimensionRefs are only for dimensional roles: set dimensional to true, or leave dimensionRefs out")
        status, b = call("POST", "", { json = body({ dimensional = true, dimensionRefs = { { id = dim.id } } }) })
        assert.equal(201, status, msg(b))
        assert.same({ { type = "DIMENSION", id = dim.id, name = dim.name } }, b.dimensionRefs)
      end)

      it("answers 400 for a malformed or missing JSON body", function()
        local status, b = call("POST", "", { body = '{"name": "x",', headers = { ["Content-Type"] = "application/json" } })
        assert_error(status, 400, b, "400.1 Bad Request Content")
        assert.matches("^The request body is not valid JSON", msg(b))
        status, b = call("POST", "", { body = "" })
        assert_error(status, 400, b, "400.1 Bad Request Content", "The request body is required.")
        status, b = call("POST", "", { json = { 1, 2 } })
        assert_error(status, 400, b, "400.1 Bad Request Content", "The request body must be an object")
      end)
    end)

    describe("patch", function()
      local PATCH = { ["Content-Type"] = "application/json-patch+json" }
      local role

      before_each(function() role = all_roles()[10] end)

      local function patch(ops, id) return call("PATCH", "/" .. (id or role.id), { json = ops, headers = PATCH }) end

      it("applies JSON Patch operations to the patchable fields and answers the role", function()
        local ent = first(all_roles(), function(r) return #r.entitlements > 0 end).entitlements[1]
        sim:advance(60)
        local status, patched = patch({
          { op = "replace", path = "/requestable", value = not role.requestable },
          { op = "replace", path = "/description", value = "Patched by the spec" },
          { op = "add", path = "/entitlements/-", value = { type = "ENTITLEMENT", id = ent.id } },
          { op = "add", path = "/accessModelMetadata/attributes/0", value = { key = "iscPrivacy", values = { { value = "private" } } } },
        })
        assert.equal(200, status, msg(patched))
        assert.same({}, openapi.errors("roles", "role", patched))
        assert.equal(not role.requestable, patched.requestable)
        assert.equal("Patched by the spec", patched.description)
        assert.same({ type = "ENTITLEMENT", id = ent.id, name = ent.name }, patched.entitlements[#patched.entitlements])
        assert.equal("Private", patched.accessModelMetadata.attributes[1].values[1].name)
        assert.equal("governance", patched.accessModelMetadata.attributes[1].type)
        assert.equal(role.created, patched.created)
        assert.is_true(patched.modified > role.modified)
        local _, again = call("GET", "/" .. role.id)
        assert.same(patched, again)
      end)

      it("takes revokeRequestConfig, the spec's name, for revocationRequestConfig", function()
        local status, patched = patch({ { op = "replace", path = "/revokeRequestConfig",
          value = { commentsRequired = true, approvalSchemes = { { approverType = "MANAGER" } } } } })
        assert.equal(200, status, msg(patched))
        assert.is_true(patched.revocationRequestConfig.commentsRequired)
        assert.equal("MANAGER", patched.revocationRequestConfig.approvalSchemes[1].approverType)
      end)

      it("supports remove, move, copy and test", function()
        local status, patched = patch({
          { op = "test", path = "/name", value = role.name },
          { op = "copy", from = "/name", path = "/description" },
          { op = "remove", path = "/segments" },
        })
        assert.equal(200, status, msg(patched))
        assert.equal(role.name, patched.description)
        assert.same({}, patched.segments)
        status, patched = patch({ { op = "move", from = "/description", path = "/name" } })
        assert.equal(200, status, msg(patched))
        assert.equal(core.null, patched.description)
      end)

      it("renames, and then the old name is free and the new one taken", function()
        local status = patch({ { op = "replace", path = "/name", value = "Renamed Role" } })
        assert.equal(200, status)
        local s2, dup = call("POST", "", { json = { name = "renamed role", owner = { id = role.owner.id } } })
        assert_error(s2, 400, dup, "400.1 Bad Request Content", 'A role named "renamed role" already exists')
        local s3 = call("POST", "", { json = { name = role.name, owner = { id = role.owner.id } } })
        assert.equal(201, s3)
      end)

      it("refuses fields that are not patchable, failed tests and bad paths with 400", function()
        local cases = {
          { { op = "replace", path = "/id", value = "x" }, "operation 0: /id is not a patchable field of a role" },
          { { op = "replace", path = "/dimensional", value = true }, "operation 0: /dimensional is not a patchable field of a role" },
          { { op = "test", path = "/name", value = "not the name" }, "Invalid patch: test failed: /name is not the given value" },
          { { op = "remove", path = "/entitlements/99" }, "Invalid patch: path /entitlements/99 does not exist" },
          { { op = "replace", path = "/requestable" }, "Invalid patch: operation 0 (replace) needs a value" },
          { { op = "jump", path = "/requestable", value = 1 }, "Invalid patch: operation 0: op must be one of add, remove, replace, move, copy, test" },
          { { op = "replace", path = "/enabled", value = "yes" }, "enabled must be true or false" },
        }
        for _, case in ipairs(cases) do
          local status, b = patch({ case[1] })
          assert_error(status, 400, b, "400.1 Bad Request Content", case[2])
        end
        local status, b = patch({ op = "replace" })
        assert_error(status, 400, b, "400.1 Bad Request Content", "A JSON Patch document must be an array of operations")
      end)

      it("wants application/json-patch+json (415 otherwise), a JSON body, and a known id", function()
        local status, b = call("PATCH", "/" .. role.id, { json = { { op = "replace", path = "/enabled", value = true } } })
        assert_error(status, 415, b, "415 Unsupported Media Type")
        status, b = call("PATCH", "/" .. role.id, { body = "[{", headers = PATCH })
        assert_error(status, 400, b, "400.1 Bad Request Content")
        status, b = patch({ { op = "replace", path = "/enabled", value = true } }, "2c9180000000000000000000000000aa")
        assert_error(status, 404, b, "404 Not found")
      end)
    end)

    describe("delete", function()
      it("answers 204 and the role is gone", function()
        local victim = all_roles()[20]
        local status, body = call("DELETE", "/" .. victim.id)
        assert.equal(204, status)
        assert.equal("", body)
        assert.equal(404, (call("GET", "/" .. victim.id)))
        assert.equal(404, (call("DELETE", "/" .. victim.id)))
        local _, _, h = call("GET", "", { query = { count = "true" } })
        assert.equal("119", h["x-total-count"])
      end)
    end)

    describe("bulk-delete", function()
      it("answers 202 with a TaskResultDto and removes the roles after bulk_delete_seconds", function()
        local roles = all_roles()
        local status, task = call("POST", "/bulk-delete", { json = { roleIds = { roles[1].id, roles[2].id } } })
        assert.equal(202, status)
        assert.same({}, openapi.errors("roles", "taskresultdto", task))
        assert.equal("TASK_RESULT", task.type)
        assert.equal(core.null, task.name)
        assert.equal(200, (call("GET", "/" .. roles[1].id)), "still there until the task runs")
        sim:advance(1)
        assert.equal(404, (call("GET", "/" .. roles[1].id)))
        assert.equal(404, (call("GET", "/" .. roles[2].id)))
        assert.equal(200, (call("GET", "/" .. roles[3].id)))
      end)

      it("refuses more than 50 ids, unknown ids and a body without roleIds", function()
        local roles, many = all_roles(), {}
        for i = 1, 51 do many[i] = roles[i].id end
        local status, body = call("POST", "/bulk-delete", { json = { roleIds = many } })
        assert_error(status, 400, body, "400.1 Bad Request Content", "roleIds count exceeded max limit of 50 for bulk-delete.")
        status, body = call("POST", "/bulk-delete", { json = { roleIds = { roles[1].id, "2c91808876438bb2017668b91919ecca" } } })
        assert_error(status, 400, body, "400.1.404 Referenced object not found",
          'Referenced roleIds ["2c91808876438bb2017668b91919ecca"] was not found.')
        status, body = call("POST", "/bulk-delete", { json = { ids = {} } })
        assert_error(status, 400, body, "400.1 Bad Request Content", "roleIds is required: a list of role ids")
        sim:advance(10)
        assert.equal(200, (call("GET", "/" .. roles[1].id)), "nothing was deleted")
      end)
    end)

    describe("assigned-identities", function()
      it("lists the identities of an IDENTITY_LIST role as ROLE_MEMBERSHIP", function()
        local role = first(all_roles(), function(r) return r.membership ~= core.null and r.membership.type == "IDENTITY_LIST" end)
        local status, rows = call("GET", "/" .. role.id .. "/assigned-identities")
        assert.equal(200, status)
        assert.same({}, openapi.each_errors("roles", "roleidentity", rows))
        local want = {}
        for i, m in ipairs(role.membership.identities) do
          want[i] = { id = m.id, name = m.name, aliasName = m.aliasName, email = m.aliasName .. "@acme-corp.com",
            roleAssignmentSource = "ROLE_MEMBERSHIP" }
        end
        local got = {}
        for _, r in ipairs(rows) do if r.roleAssignmentSource == "ROLE_MEMBERSHIP" then got[#got + 1] = r end end
        assert.same(want, got)
      end)

      it("evaluates STANDARD criteria on the identities", function()
        local member = first(all_roles(), function(r)
          return r.membership ~= core.null and r.membership.type == "IDENTITY_LIST"
        end).membership.identities[1]
        local owner = all_roles()[1].owner
        local function criteria_role(name, criteria)
          local status, role = call("POST", "", { json = { name = name, owner = { id = owner.id },
            membership = { type = "STANDARD", criteria = criteria } } })
          assert.equal(201, status, msg(role))
          return role
        end
        local everyone = criteria_role("Everyone", { operation = "ENDS_WITH",
          key = { type = "IDENTITY", property = "attribute.email" }, stringValue = "@ACME-corp.com" })
        local _, _, h = call("GET", "/" .. everyone.id .. "/assigned-identities", { query = { count = "true", limit = 1 } })
        assert.equal("80", h["x-total-count"])
        local one = criteria_role("Just one", { operation = "AND", children = {
          { operation = "EQUALS", key = { type = "IDENTITY", property = "attribute.email" }, stringValue = member.aliasName .. "@acme-corp.com" },
          { operation = "NOT_EQUALS", key = { type = "IDENTITY", property = "attribute.cloudLifecycleState" }, stringValue = "gone" },
        } })
        local _, rows = call("GET", "/" .. one.id .. "/assigned-identities")
        assert.same({ member.id }, ids(rows))
      end)

      it("lists identities who requested a role as ACCESS_REQUEST", function()
        local found
        for _, r in ipairs(all_roles()) do
          if r.requestable then
            local _, rows = call("GET", "/" .. r.id .. "/assigned-identities")
            found = found or first(rows, function(x) return x.roleAssignmentSource == "ACCESS_REQUEST" end)
          end
        end
        assert.is_table(found)
      end)

      it("filters on id, aliasName, email and name, and sorts on them", function()
        local _, everyone = call("POST", "", { json = { name = "All of them", owner = { id = all_roles()[1].owner.id },
          membership = { type = "STANDARD", criteria = { operation = "CONTAINS",
            key = { type = "IDENTITY", property = "attribute.email" }, stringValue = "@" } } } })
        local path = "/" .. everyone.id .. "/assigned-identities"
        local _, rows = call("GET", path)
        assert.equal(80, #rows)
        local x = rows[17]
        local function only(filters) return ids(select(2, call("GET", path, { query = { filters = filters } }))) end
        assert.same({ x.id }, only(string.format('id eq "%s"', x.id)))
        assert.same({ x.id }, only(string.format('id in ("%s")', x.id)))
        assert.same({ x.id }, only(string.format('aliasName eq "%s"', x.aliasName)))
        assert.same({ x.id }, only(string.format('email eq "%s"', x.email)))
        assert.same({ x.id }, only(string.format('name eq "%s"', x.name)))
        local function count_where(pred)
          local n = 0
          for _, r in ipairs(rows) do if pred(r) then n = n + 1 end end
          return n
        end
        local first_letter = x.aliasName:sub(1, 1)
        assert.equal(count_where(function(r) return r.aliasName:sub(1, 1) == first_letter end),
          #only(string.format('aliasName sw "%s"', first_letter)))
        assert.equal(count_where(function(r) return r.email:sub(1, 1) == first_letter end),
          #only(string.format('email sw "%s"', first_letter)))
        local last = x.name:match("(%S+)$")
        assert.equal(count_where(function(r) return r.name:find(last, 1, true) end), #only(string.format('name co "%s"', last)))
        assert.equal(count_where(function(r) return r.name:sub(1, 2) == x.name:sub(1, 2) end),
          #only(string.format('name sw "%s"', x.name:sub(1, 2))))
        for _, key in ipairs({ "id", "name", "aliasName", "email" }) do
          local _, sorted = call("GET", path, { query = { sorters = "-" .. key } })
          for i = 2, #sorted do assert.is_true(sorted[i - 1][key]:lower() >= sorted[i][key]:lower()) end
        end
        local status, body = call("GET", path, { query = { filters = 'email co "x"' } })
        assert_error(status, 400, body, "400.1 Bad Request Content",
          'Invalid filter: operator "co" is not supported for field "email". Supported operators: eq, sw')
        status, body = call("GET", path, { query = { sorters = "roleAssignmentSource" } })
        assert_error(status, 400, body, "400.1 Bad Request Content")
      end)

      it("pages 250 at most, 250 by default, and 404s for an unknown role", function()
        local role = all_roles()[1]
        local status, body = call("GET", "/" .. role.id .. "/assigned-identities", { query = { limit = 251 } })
        assert_error(status, 400, body, "400.1 Bad Request Content",
          'limit "251" is invalid: this endpoint accepts an integer from 0 to 250')
        assert.equal(200, (call("GET", "/" .. role.id .. "/assigned-identities", { query = { limit = 250 } })))
        status, body = call("GET", "/2c9180000000000000000000000000aa/assigned-identities")
        assert_error(status, 404, body, "404 Not found")
      end)
    end)

    describe("entitlements", function()
      local role
      before_each(function()
        local roles = all_roles()
        local with_ent = first(roles, function(r) return #r.entitlements > 0 end)
        local with_ap = first(roles, function(r) return #r.accessProfiles > 0 end)
        local status
        status, role = call("POST", "", { json = { name = "Entitlement holder", owner = { id = roles[1].owner.id },
          entitlements = { with_ent.entitlements[1] }, accessProfiles = { with_ap.accessProfiles[1] } } })
        assert.equal(201, status)
      end)

      it("lists the role's entitlements, its own and its access profiles', as Entitlement objects", function()
        local status, ents, h = call("GET", "/" .. role.id .. "/entitlements", { query = { count = "true" } })
        assert.equal(200, status)
        assert.same({}, openapi.each_errors("roles", "entitlement", ents))
        assert.is_true(#ents >= 2)
        assert.equal(tostring(#ents), h["x-total-count"])
        assert.equal(role.entitlements[1].id, ents[1].id)
        assert.equal(role.entitlements[1].name, ents[1].name)
        assert.equal("SOURCE", ents[1].source.type)
      end)

      it("filters on each documented field and sorts on name, attribute, value, created and modified", function()
        local path = "/" .. role.id .. "/entitlements"
        local _, ents = call("GET", path)
        local e = ents[2]
        local function only(filters)
          local status, rows = call("GET", path, { query = { filters = filters } })
          assert.equal(200, status, msg(rows))
          return ids(rows)
        end
        local function has(list, id)
          for _, x in ipairs(list) do if x == id then return true end end
          return false
        end
        assert.same({ e.id }, only(string.format('id eq "%s"', e.id)))
        assert.same({ e.id }, only(string.format('id in ("%s")', e.id)))
        assert.is_true(has(only(string.format('name eq "%s"', e.name)), e.id))
        assert.is_true(has(only(string.format('name sw "%s"', e.name:sub(1, 3))), e.id))
        assert.is_true(has(only(string.format('attribute eq "%s"', e.attribute)), e.id))
        assert.is_true(has(only(string.format('attribute sw "%s"', e.attribute:sub(1, 2))), e.id))
        assert.is_true(has(only(string.format('value eq "%s"', e.value)), e.id))
        assert.is_true(has(only(string.format('value sw "%s"', e.value:sub(1, 4))), e.id))
        assert.is_true(has(only(string.format('source.id eq "%s"', e.source.id)), e.id))
        assert.is_true(has(only(string.format('source.id in ("%s")', e.source.id)), e.id))
        assert.is_true(has(only(string.format('owner.id eq "%s"', e.owner.id)), e.id))
        assert.is_true(has(only(string.format('owner.id in ("%s")', e.owner.id)), e.id))
        for _, op in ipairs({ "ge", "le" }) do
          assert.is_true(has(only(string.format("created %s %s", op, e.created)), e.id))
          assert.is_true(has(only(string.format("modified %s %s", op, e.modified)), e.id))
        end
        for _, op in ipairs({ "gt", "lt" }) do
          assert.is_false(has(only(string.format("created %s %s", op, e.created)), e.id))
          assert.is_false(has(only(string.format("modified %s %s", op, e.modified)), e.id))
        end
        for _, key in ipairs({ "name", "attribute", "value", "created", "modified" }) do
          local _, sorted = call("GET", path, { query = { sorters = key } })
          for i = 2, #sorted do assert.is_true(sorted[i - 1][key]:lower() <= sorted[i][key]:lower(), key) end
        end
        local status, body = call("GET", path, { query = { filters = 'description eq "x"' } })
        assert_error(status, 400, body, "400.1 Bad Request Content")
        status, body = call("GET", path, { query = { sorters = "source.id" } })
        assert_error(status, 400, body, "400.1 Bad Request Content")
        status, body = call("GET", path, { query = { limit = 51 } })
        assert_error(status, 400, body, "400.1 Bad Request Content",
          'limit "51" is invalid: this endpoint accepts an integer from 0 to 50')
      end)

      it("does not need the experimental header, unless experimental_entitlements is set", function()
        local path = "/" .. role.id .. "/entitlements"
        assert.equal(200, (call("GET", path)))
        sim:configure { experimental_entitlements = true }
        local status, body = call("GET", path)
        assert.equal(400, status)
        assert.same({ error = "Experimental Header is missing or invalid." }, body)
        assert.equal(200, (call("GET", path, { experimental = true })))
      end)

      it("404s for an unknown role", function()
        local status, body = call("GET", "/2c9180000000000000000000000000aa/entitlements")
        assert_error(status, 404, body, "404 Not found")
      end)
    end)

    describe("search by filter (POST /filter)", function()
      it("takes filters in the body and paging and sorters in the query, limit up to 250", function()
        local status, page, h = call("POST", "/filter", { query = { limit = 250, count = "true", sorters = "-name" },
          json = { filters = "requestable eq false" } })
        assert.equal(200, status, msg(page))
        assert.same({}, openapi.each_errors("roles", "role", page))
        assert.equal(tostring(#page), h["x-total-count"])
        for i, r in ipairs(page) do
          assert.is_false(r.requestable)
          if i > 1 then assert.is_true(page[i - 1].name:lower() >= r.name:lower()) end
        end
        status, page = call("POST", "/filter", { json = {} })
        assert.equal(200, status)
        assert.equal(50, #page, "default limit 50")
        status, page = call("POST", "/filter", { query = { limit = 251 } })
        assert_error(status, 400, page, "400.1 Bad Request Content",
          'limit "251" is invalid: this endpoint accepts an integer from 0 to 250')
      end)

      it("accepts all four order operators on created and modified, and dimensional as its example does", function()
        local roles = all_roles()
        for _, q in ipairs({ "created gt %s", "created lt %s", "modified gt %s", "modified lt %s" }) do
          local status = call("POST", "/filter", { json = { filters = string.format(q, roles[50].created) } })
          assert.equal(200, status, q)
        end
        assert.equal(200, (call("POST", "/filter", { json = { filters = "dimensional eq false" } })))
      end)

      it("matches ammKeyValues on metadata, by key alone when values is empty", function()
        local roles = all_roles()
        local tagged = first(roles, function(r) return #r.accessModelMetadata.attributes > 0 end)
        local attr = tagged.accessModelMetadata.attributes[1]
        local _, page = call("POST", "/filter", { query = { limit = 250 },
          json = { ammKeyValues = { { attribute = attr.key, values = { attr.values[1].value } } } } })
        assert.is_true(#page >= 1)
        for _, r in ipairs(page) do
          local ok = false
          for _, a in ipairs(r.accessModelMetadata.attributes) do
            for _, v in ipairs(a.values) do
              if a.key == attr.key and v.value == attr.values[1].value then ok = true end
            end
          end
          assert.is_true(ok)
        end
        local _, by_key = call("POST", "/filter", { query = { limit = 250 },
          json = { ammKeyValues = { { attribute = attr.key, values = {} } } } })
        assert.is_true(#by_key >= #page)
      end)

      it("takes a bodiless POST with a form Content-Type as no filter", function()
        local status, page = call("POST", "/filter", { headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
          body = "", query = { limit = 5 } })
        assert.equal(200, status)
        assert.equal(5, #page)
      end)

      it("refuses filters in the query string, which it does not take, rather than ignore them", function()
        local status, body = call("POST", "/filter", { query = { filters = 'name sw "Sales"' }, json = {} })
        assert_error(status, 400, body, "400.1 Bad Request Content",
          'POST /roles/filter takes its filters in the body ({"filters": "..."}), not in the query string')
      end)

      it("answers 400 for bad filters and malformed JSON", function()
        local status, body = call("POST", "/filter", { json = { filters = 'name co "x"' } })
        assert_error(status, 400, body, "400.1 Bad Request Content",
          'Invalid filter: operator "co" is not supported for field "name". Supported operators: eq, sw')
        status, body = call("POST", "/filter", { body = "{filters:", headers = { ["Content-Type"] = "application/json" } })
        assert_error(status, 400, body, "400.1 Bad Request Content")
      end)
    end)

    describe("routing", function()
      it("answers 405 for a method a path does not take, and 404 for an unknown path", function()
        local status, body = call("PUT", "")
        assert_error(status, 405, body, "405 Method Not Allowed")
        status, body = call("GET", "/x/y/z")
        assert_error(status, 404, body, "404 Not found")
      end)

      it("answers 400 for a path that is not UTF-8 once percent-decoded (and goes on serving)", function()
        for _, path in ipairs({ "/%ff%fe", "/%c3" }) do
          local status, body = call("GET", path)
          assert_error(status, 400, body, "400.1 Bad Request Content", "The request URL has bytes that are not UTF-8 "
            .. "once percent-decoded: percent-encode the UTF-8 bytes of the text")
        end
        assert.equal(400, (call("GET", "", { query = "filters=name%20eq%20%22%ff%22" })))
        assert.equal(404, (call("GET", "/%c3%a9t%c3%a9")), "UTF-8 is fine")
      end)

      it("answers GET on a literal segment of another route as an id (404 for the role)", function()
        local status, body = call("GET", "/filter")
        assert_error(status, 404, body, "404 Not found")
        assert.equal('Role "filter" was not found.', body.causes[1].text)
      end)

      it("counts requests per route template", function()
        local role = all_roles()[1]
        sim:reset()
        call("GET", "/" .. role.id)
        call("GET", "", { query = { limit = 1 } })
        local stats = sim:stats()
        assert.equal(1, stats.by_route["GET " .. base .. "/{id}"])
        assert.equal(1, stats.by_route["GET " .. base])
        assert.equal(2, stats.requests)
      end)
    end)
  end)
end
