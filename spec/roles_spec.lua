-- c.roles, reading: the listings (lazy, paged by the native pager, each with
-- its endpoint's page sizes), get, and the argument checks that run before
-- any request. Against the simulated tenant; changes are in
-- roles_changes_spec.lua.
local isc = require "isc"
local H = require "helpers"

-- A client that also records the URL of every request it sends.
local function traced_client(sim, opts)
  local urls = {}
  local o = { trace = function(line)
    local url = line:match("^%u+ (%S+) %-> %d+")
    if url and not url:find("/oauth/token", 1, true) then urls[#urls + 1] = url end
  end }
  for k, v in pairs(opts or {}) do o[k] = v end
  return H.sim_client(sim, o), urls
end

describe("c.roles listings", function()
  local sim, c
  H.shared_sim({ roles = 120, identities = 60, seed = 11 }, function(s) sim, c = s, H.sim_client(s) end)

  describe("list", function()
    it("walks every role once, in pages of 50, with no request past the end", function()
      local before = H.hits(sim, "GET /v2024/roles")
      local seen, n = {}, 0
      for role in c.roles:list() do
        assert.is_nil(seen[role.id], "role listed twice: " .. role.id)
        seen[role.id] = true
        n = n + 1
      end
      assert.equal(120, n)
      assert.equal(3, H.hits(sim, "GET /v2024/roles") - before) -- 50 + 50 + 20
    end)

    it("stops at a known total after full pages: 120 roles in pages of 40 take 3 requests", function()
      local before = H.hits(sim, "GET /v2024/roles")
      assert.equal(120, #c.roles:list({ limit = 40 }):collect())
      assert.equal(3, H.hits(sim, "GET /v2024/roles") - before)
    end)

    it("returns the same roles in the same order as one big collect", function()
      local paged = {}
      for role in c.roles:list { limit = 7 } do paged[#paged + 1] = role.id end
      assert.same(H.ids_of(c.roles:list():collect()), paged)
    end)

    it("sends filters and sorters as ISC's parameters, with spaces and quotes encoded", function()
      local tc, urls = traced_client(sim)
      local names = {}
      for role in tc.roles:list { filters = 'name sw "Engineering"', sorters = { "-name" } } do
        names[#names + 1] = role.name
      end
      assert.is_true(#names > 0)
      assert.matches("filters=name%%20sw%%20%%22Engineering%%22", urls[1])
      assert.matches("sorters=%-name", urls[1])
      for i, name in ipairs(names) do
        assert.matches("^Engineering", name)
        if i > 1 then assert.is_true(names[i - 1] >= name, "not sorted descending: " .. names[i - 1] .. ", " .. name) end
      end
    end)

    it("takes sorters as a string too, comma-separated", function()
      local by_list = H.ids_of(c.roles:list({ sorters = { "name", "-created" }, max = 30 }):collect())
      local by_string = H.ids_of(c.roles:list({ sorters = "name,-created", max = 30 }):collect())
      assert.same(by_list, by_string)
    end)

    it("yields nothing, after one request, when no role matches", function()
      local before = H.hits(sim, "GET /v2024/roles")
      local n = 0
      for _ in c.roles:list { filters = 'name eq "No such role anywhere"' } do n = n + 1 end
      assert.equal(0, n)
      assert.equal(1, H.hits(sim, "GET /v2024/roles") - before)
    end)

    it("stops after max items, in the middle of a page, asking only for what it needs", function()
      local tc, urls = traced_client(sim)
      local got = tc.roles:list({ limit = 5, max = 7 }):collect()
      assert.equal(7, #got)
      assert.same(H.ids_of(c.roles:list({ max = 7 }):collect()), H.ids_of(got))
      assert.equal(2, #urls)
      assert.matches("limit=5", urls[1])
      assert.matches("limit=2", urls[2])
      assert.matches("offset=5", urls[2])
    end)

    it("starts at an offset", function()
      local all = H.ids_of(c.roles:list():collect())
      local from = H.ids_of(c.roles:list({ offset = 115 }):collect())
      assert.same({ all[116], all[117], all[118], all[119], all[120] }, from)
    end)

    it("surfaces ISC's message when the tenant refuses a filter (HTTP 400)", function()
      local err = H.catch(function()
        for _ in c.roles:list { filters = 'description eq "x"' } do end
      end)
      assert.is_true(isc.is_error(err, "api"))
      assert.equal(400, err.status)
      assert.equal("400.1 Bad Request Content", err.detail_code)
      assert.matches("description", err.message)
      assert.matches("description", tostring(err))
    end)

    it("sends for_segment_ids as for-segment-ids, a comma list, from a Lua list or a string", function()
      local segments = {}
      for role in c.roles:list() do
        for _, s in ipairs(role.segments ~= isc.null and role.segments or {}) do segments[s] = true end
      end
      local wanted = {}
      for s in pairs(segments) do wanted[#wanted + 1] = s end
      table.sort(wanted)
      assert.is_true(#wanted >= 2, "the seeded tenant should use two segments or more")
      wanted = { wanted[1], wanted[2] }

      local tc, urls = traced_client(sim)
      local got = tc.roles:list({ for_segment_ids = wanted, include_unsegmented = false }):collect()
      assert.is_true(#got > 0)
      for _, role in ipairs(got) do
        assert.is_true(role.segments[1] == wanted[1] or role.segments[1] == wanted[2])
      end
      assert.truthy(urls[1]:find("for-segment-ids=" .. wanted[1] .. "%2C" .. wanted[2], 1, true), urls[1])
      assert.matches("include%-unsegmented=false", urls[1])
      local as_string = tc.roles:list({ for_segment_ids = wanted[1] .. "," .. wanted[2], include_unsegmented = false }):collect()
      assert.same(H.ids_of(got), H.ids_of(as_string))
    end)

    it("sends for_subadmin as for-subadmin (the tenant answers for the client, which is no sub-admin)", function()
      local err = H.catch(function() c.roles:list({ for_subadmin = "me" }):next() end)
      assert.equal(400, err.status)
      assert.matches("for%-subadmin", err.message)
    end)

    it("is a pager: counts, totals and pages with their offsets", function()
      local p = c.roles:list { limit = 50 }
      assert.equal(120, p:count())
      local pages = {}
      for page in p:pages() do pages[#pages + 1] = page end
      assert.equal(3, #pages)
      assert.same({ 0, 50, 100 }, { pages[1].offset, pages[2].offset, pages[3].offset })
      assert.same({ 50, 50, 20 }, { #pages[1].items, #pages[2].items, #pages[3].items })
      assert.equal(120, pages[1].total)
      assert.equal(120, p:total())
    end)

    it("closes with the generic for: breaking out leaves no page held", function()
      local p, state, control, closing = c.roles:list()
      for _ in p, state, control, closing do break end
      assert.error_matches(function() p:next() end, "closed")
    end)
  end)

  describe("search", function()
    it("posts the filters in the body, with sorters and paging in the query", function()
      local tc, urls = traced_client(sim)
      local before = H.hits(sim, "POST /v2024/roles/filter")
      local got = tc.roles:search({ filters = 'requestable eq true', sorters = "name" }):collect()
      assert.is_true(#got > 0)
      for i, role in ipairs(got) do
        assert.is_true(role.requestable)
        if i > 1 then assert.is_true(got[i - 1].name <= role.name) end
      end
      assert.equal(#H.ids_of(c.roles:list({ filters = "requestable eq true" }):collect()), #got)
      assert.is_nil(urls[1]:find("filters=", 1, true))
      assert.matches("limit=50", urls[1])
      assert.equal(1, H.hits(sim, "POST /v2024/roles/filter") - before)
    end)

    it("pages up to 250 at a time", function()
      local before = H.hits(sim, "POST /v2024/roles/filter")
      assert.equal(120, #c.roles:search({ limit = 250 }):collect())
      assert.equal(1, H.hits(sim, "POST /v2024/roles/filter") - before)
    end)

    it("matches access-model metadata: a key with values, or a key alone", function()
      local with_key = c.roles:search({ amm_key_values = { { attribute = "iscPrivacy" } } }):collect()
      assert.is_true(#with_key > 0, "the seeded tenant should have roles with iscPrivacy")
      local value
      for _, attr in ipairs(with_key[1].accessModelMetadata.attributes) do
        if attr.key == "iscPrivacy" then value = attr.values[1].value end
      end
      local with_value = c.roles:search({ amm_key_values = { { attribute = "iscPrivacy", values = { value } } } }):collect()
      assert.is_true(#with_value > 0 and #with_value <= #with_key)
      for _, role in ipairs(with_value) do
        local found = false
        for _, attr in ipairs(role.accessModelMetadata.attributes) do
          for _, v in ipairs(attr.values) do
            if attr.key == "iscPrivacy" and v.value == value then found = true end
          end
        end
        assert.is_true(found)
      end
    end)

    it("stops after max", function()
      assert.equal(3, #c.roles:search({ max = 3 }):collect())
    end)
  end)

  describe("assigned_identities", function()
    local role_id
    setup(function()
      for role in c.roles:list() do
        if role.membership ~= isc.null and role.membership.type == "IDENTITY_LIST" and #role.membership.identities >= 3 then
          role_id = role.id
          break
        end
      end
      assert.is_string(role_id, "the seeded tenant should have a role with three listed members")
    end)

    it("walks a role's identities in pages of 250 by default", function()
      local tc, urls = traced_client(sim)
      local got = tc.roles:assigned_identities(role_id):collect()
      assert.is_true(#got >= 3)
      for _, idn in ipairs(got) do assert.is_string(idn.id) end
      assert.matches("/v2024/roles/" .. role_id .. "/assigned%-identities%?", urls[1])
      assert.matches("limit=250", urls[1])
    end)

    it("filters, sorts and pages them", function()
      local all = c.roles:assigned_identities(role_id, { sorters = "name" }):collect()
      local paged = c.roles:assigned_identities(role_id, { sorters = "name", limit = 1 }):collect()
      assert.same(H.ids_of(all), H.ids_of(paged))
      local first = all[1]
      local one = c.roles:assigned_identities(role_id, { filters = string.format('id eq "%s"', first.id) }):collect()
      assert.same({ first.id }, H.ids_of(one))
    end)

    it("raises a 404 for an unknown role", function()
      local err = H.catch(function() c.roles:assigned_identities("0000000000000000000000000000dead"):collect() end)
      assert.equal(404, err.status)
    end)
  end)

  describe("entitlements", function()
    it("walks a role's entitlements in pages of 50, sending the experimental header", function()
      -- As in the seed docs, the tenant refuses the call without the header.
      sim:configure { experimental_entitlements = true }
      finally(function() sim:configure { experimental_entitlements = false } end)
      local role
      for r in c.roles:list() do
        if #r.entitlements > 0 then role = r break end
      end
      local bare = H.catch(c.request, c, "GET", "/v2024/roles/" .. role.id .. "/entitlements")
      assert.equal(400, bare.status)
      local tc, urls = traced_client(sim)
      local got = tc.roles:entitlements(role.id):collect()
      assert.is_true(#got >= #role.entitlements)
      for _, ent in ipairs(got) do assert.is_string(ent.attribute) end
      assert.matches("limit=50", urls[1])
    end)

    it("filters them", function()
      local role
      for r in c.roles:list() do
        if #r.entitlements > 0 then role = r break end
      end
      local want = role.entitlements[1].id
      local got = c.roles:entitlements(role.id, { filters = string.format('id eq "%s"', want) }):collect()
      assert.same({ want }, H.ids_of(got))
    end)
  end)

  describe("get", function()
    it("fetches one role as ISC's JSON, nulls and empty arrays kept", function()
      local listed = c.roles:list({ max = 1 }):collect()[1]
      local role = c.roles:get(listed.id)
      assert.equal(listed.id, role.id)
      assert.equal(listed.name, role.name)
      assert.equal(H.canon(listed), H.canon(role))
    end)

    it("raises an api error with status 404 for an unknown id", function()
      local err = H.catch(c.roles.get, c.roles, "0000000000000000000000000000dead")
      assert.is_true(isc.is_error(err, "api"))
      assert.equal(404, err.status)
      assert.equal("GET", err.method)
      assert.equal("/v2024/roles/0000000000000000000000000000dead", err.path)
    end)

    it("escapes the id into the path", function()
      local err = H.catch(c.roles.get, c.roles, "a/b c")
      assert.equal("/v2024/roles/a%2Fb%20c", err.path)
    end)
  end)

  describe("under the per-api layout", function()
    it("lists, searches and gets under /roles/v1", function()
      local pc = H.sim_client(sim, { layout = "per-api" })
      local before_list, before_search = H.hits(sim, "GET /roles/v1"), H.hits(sim, "POST /roles/v1/filter")
      local first = pc.roles:list({ max = 2 }):collect()
      assert.equal(2, #first)
      assert.equal(first[1].id, pc.roles:get(first[1].id).id)
      assert.equal(2, #pc.roles:search({ max = 2 }):collect())
      assert.equal(1, H.hits(sim, "GET /roles/v1") - before_list)
      assert.equal(1, H.hits(sim, "POST /roles/v1/filter") - before_search)
    end)
  end)
end)

describe("c.roles argument checks", function()
  local sim, c
  H.shared_sim({ roles = 5, identities = 5, seed = 3 }, function(s) sim, c = s, H.sim_client(s) end)

  local function refused(...) return H.refused(sim, ...) end

  it("refuses a limit above each endpoint's maximum, naming the option", function()
    refused("roles:list: option 'limit' must be between 1 and 50", c.roles.list, c.roles, { limit = 51 })
    refused("roles:search: option 'limit' must be between 1 and 250", c.roles.search, c.roles, { limit = 251 })
    refused("roles:entitlements: option 'limit' must be between 1 and 50", c.roles.entitlements, c.roles, "x", { limit = 51 })
    refused("roles:assigned_identities: option 'limit' must be between 1 and 250",
      c.roles.assigned_identities, c.roles, "x", { limit = 251 })
    refused("option 'limit'", c.roles.list, c.roles, { limit = 0 })
  end)

  it("refuses unknown options, listing the known ones", function()
    refused("roles:list: unknown option 'filter' %(options are: .*filters", c.roles.list, c.roles, { filter = "x" })
    refused("roles:assigned_identities: unknown option 'for_subadmin'",
      c.roles.assigned_identities, c.roles, "x", { for_subadmin = "me" })
    refused("roles:search: unknown option 'ammKeyValues'", c.roles.search, c.roles, { ammKeyValues = {} })
  end)

  it("refuses options of the wrong type", function()
    refused("option 'filters' must be string, got table", c.roles.list, c.roles, { filters = { "a" } })
    refused("option 'limit' must be integer, got string", c.roles.list, c.roles, { limit = "10" })
    refused("option 'limit' must be integer", c.roles.list, c.roles, { limit = 10.5 })
    refused("option 'include_unsegmented' must be boolean", c.roles.list, c.roles, { include_unsegmented = "false" })
    refused("options must be a table", c.roles.list, c.roles, "name sw \"A\"")
    refused("option 'sorters' item #2 must be a non%-empty string", c.roles.list, c.roles, { sorters = { "name", 3 } })
    refused("option 'offset' must be >= 0", c.roles.list, c.roles, { offset = -1 })
    refused("option 'max' must be >= 0", c.roles.search, c.roles, { max = -1 })
  end)

  it("refuses include_unsegmented = false without for_segment_ids, as ISC would", function()
    refused("option 'include_unsegmented' = false needs 'for_segment_ids'", c.roles.list, c.roles,
      { include_unsegmented = false })
    refused("roles:search: option 'include_unsegmented' = false needs", c.roles.search, c.roles,
      { include_unsegmented = false })
    refused("option 'for_segment_ids' must not be an empty list", c.roles.list, c.roles, { for_segment_ids = {} })
  end)

  it("checks amm_key_values' shape", function()
    refused("option 'amm_key_values' must be a list of {attribute=, values={...}}; wrap a single one",
      c.roles.search, c.roles, { amm_key_values = { attribute = "iscPrivacy" } })
    refused("option 'amm_key_values' item #1 has unknown field 'value'",
      c.roles.search, c.roles, { amm_key_values = { { attribute = "iscPrivacy", value = "public" } } })
    refused("option 'amm_key_values' item #1 values item #1 must be a string",
      c.roles.search, c.roles, { amm_key_values = { { attribute = "iscPrivacy", values = { 1 } } } })
  end)

  it("needs a role id where the endpoint is about one role", function()
    refused("roles:get: argument #1 must be string, got nil", c.roles.get, c.roles)
    refused("roles:get: argument #1 %(role id%) must not be empty", c.roles.get, c.roles, "")
    refused("roles:entitlements: argument #1 must be string", c.roles.entitlements, c.roles, { limit = 5 })
  end)
end)

describe("the roles module", function()
  it("describes every public function in one line for help()", function()
    local roles = require "isc.roles"
    local service = roles.new(isc.client { base_url = "http://127.0.0.1:9", client_id = "x", client_secret = "y" })
    local names = {}
    for name in pairs(roles.help) do names[#names + 1] = name end
    table.sort(names)
    assert.same({ "add_metadata", "assigned_identities", "bulk_delete", "bulk_update_metadata", "bulk_update_status",
      "bulk_update_statuses", "create", "delete", "entitlements", "get", "list", "patch", "remove_metadata", "search" }, names)
    for name, line in pairs(roles.help) do
      assert.is_function(service[name], name)
      assert.is_nil(line:find("\n"), name)
    end
  end)
end)
