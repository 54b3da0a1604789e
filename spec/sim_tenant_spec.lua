-- The tenant object in-process (isc.sim.tenant, as the server thread runs
-- it): cases that need its insides (a ROLE_SUBADMIN identity, 600
-- identities, a failing endpoint) and a wide sample of generated roles
-- checked against the OpenAPI schema.
local core = require "isc.core"
local openapi = require "openapi_check"
local tenant = require "isc.sim.tenant"

local function request(t, method, path, opts)
  opts = opts or {}
  local headers = { authorization = "Bearer " .. t.spec_token }
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local resp = t:handle { method = method, path = path, target = path, query = opts.query or "", headers = headers,
    body = opts.json and core.json_encode(opts.json) or opts.body or "" }
  return resp.status, resp.body and resp.body ~= "" and core.json_decode(resp.body) or resp.body, resp
end

local function new_tenant(cfg)
  local t = tenant.new(cfg)
  local resp = t:handle { method = "POST", path = "/oauth/token", target = "/oauth/token",
    query = "grant_type=client_credentials&client_id=isclua-sim&client_secret=sim-secret", headers = {}, body = "" }
  t.spec_token = core.json_decode(resp.body).access_token
  return t
end

describe("the tenant object", function()
  it("has its defaults in one documented table", function()
    assert.same(require("isc.sim.config").defaults, tenant.defaults)
    assert.equal(749, tenant.defaults.token_ttl)
    assert.equal("127.0.0.1", tenant.defaults.host)
    for _, s in ipairs(require("isc.sim.config").settings) do
      assert.is_string(s[4], s[1] .. " is documented")
    end
  end)

  it("raises on a bad setting", function()
    assert.has_error(function() tenant.new { seed = "x" } end, "isc.sim: seed: expected an integer")
  end)

  it("generates 10,000 roles lazily: only what is read is built", function()
    local t = new_tenant { roles = 10000, identities = 50 }
    local built = 0
    for _, e in ipairs(t.store.list) do if e.role then built = built + 1 end end
    assert.equal(0, built)
    local status, page = request(t, "GET", "/v2024/roles", { query = "offset=9990" })
    assert.equal(200, status)
    assert.equal(10, #page)
    built = 0
    for _, e in ipairs(t.store.list) do if e.role then built = built + 1 end end
    assert.equal(10, built)
  end)

  it("keeps new roles in created order even when the clock was set back", function()
    local t = new_tenant { roles = 5, identities = 5 }
    t.clock:freeze(true)
    t.clock:set(1500000000) -- 2017, before every generated role
    local _, page = request(t, "GET", "/v2024/roles")
    local status, role = request(t, "POST", "/v2024/roles", { json = { name = "Old Role", owner = { id = page[1].owner.id } } })
    assert.equal(201, status)
    local _, after = request(t, "GET", "/v2024/roles")
    assert.equal(role.id, after[1].id)
    assert.equal("2017-07-14T02:40:00.000Z", after[1].created)
  end)

  it("lists a ROLE_SUBADMIN's roles: those whose access profiles all come from the subadmin's sources", function()
    local t = new_tenant { roles = 200, identities = 300, seed = 12 }
    local sub
    for _, idn in ipairs(t.world.identities) do
      if idn.subadmin_sources then sub = idn break end
    end
    assert.is_table(sub)
    local status, page = request(t, "GET", "/v2024/roles", { query = "for-subadmin=" .. sub.id .. "&limit=50" })
    assert.equal(200, status)
    for _, role in ipairs(page) do
      for _, ref in ipairs(role.accessProfiles) do
        assert.is_true(sub.subadmin_sources[t.world.access_profile_by_id[ref.id].source_id])
      end
    end
  end)

  it("refuses a PATCH changing more than 500 membership identities", function()
    local t = new_tenant { roles = 1, identities = 600 }
    local _, page = request(t, "GET", "/v2024/roles")
    local members = {}
    for i = 1, 501 do members[i] = { id = t.world.identities[i].id } end
    local status, body = request(t, "PATCH", "/v2024/roles/" .. page[1].id, {
      headers = { ["content-type"] = "application/json-patch+json" },
      json = { { op = "replace", path = "/membership", value = { type = "IDENTITY_LIST", identities = members } } } })
    assert.equal(400, status)
    assert.matches("^At most 500 membership identities can be changed in one request", body.messages[1].text)
    table.remove(members)
    status = request(t, "PATCH", "/v2024/roles/" .. page[1].id, {
      headers = { ["content-type"] = "application/json-patch+json" },
      json = { { op = "replace", path = "/membership", value = { type = "IDENTITY_LIST", identities = members } } } })
    assert.equal(200, status)
  end)

  it("answers 500 with an ErrorResponseDto when an endpoint fails, and reports it on stderr", function()
    local t = new_tenant { roles = 2, identities = 2 }
    local real = t.store.json
    t.store.json = function() error("boom") end
    local stderr = io.stderr
    local written = {}
    io.stderr = { write = function(_, ...) for _, s in ipairs({ ... }) do written[#written + 1] = s end end }
    local status, body = request(t, "GET", "/v2024/roles")
    io.stderr = stderr
    t.store.json = real
    assert.equal(500, status)
    assert.equal("500.0 Internal Fault", body.detailCode)
    assert.matches("internal error on GET /v2024/roles: .*boom", table.concat(written))
  end)

  it("adds a Slpt-Request-Id to every response", function()
    local t = new_tenant { roles = 1, identities = 1 }
    local _, _, resp = request(t, "GET", "/v2024/roles")
    assert.matches("^%x+$", resp.headers["Slpt-Request-Id"])
    assert.equal(32, #resp.headers["Slpt-Request-Id"])
  end)

  it("is checked by a schema checker that does catch wrong names, types, enums and missing fields", function()
    local t = new_tenant { roles = 1, identities = 1 }
    local role = core.json_decode(t.store:json(t.store.list[1]))
    role.colour = "red"
    role.enabled = "yes"
    role.owner.type = "ROBOT"
    role.name = nil
    role.created = "yesterday"
    assert.same({
      "role.created: \"yesterday\" is not a UTC date-time",
      "role.enabled: expected a boolean, got string",
      "role.owner.type: ROBOT is not in the enum",
      "role: has property \"colour\" that the schema does not declare",
      "role: lacks required property \"name\"",
    }, (function()
      local errs = openapi.errors("roles", "role", role)
      table.sort(errs)
      return errs
    end)())
  end)

  it("generates roles that all conform to the Role schema, across every shape it makes", function()
    local t = new_tenant { roles = 600, identities = 200, seed = 99 }
    local problems = {}
    for _, e in ipairs(t.store.list) do
      local role = core.json_decode(t.store:json(e))
      for _, p in ipairs(openapi.errors("roles", "role", role)) do problems[#problems + 1] = p end
    end
    assert.same({}, problems)
  end)
end)
