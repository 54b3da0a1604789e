-- The simulated tenant's OAuth: /oauth/token accepts client credentials the
-- way official clients send them (urlencoded, multipart/form-data, query
-- parameters, HTTP Basic; `+` for spaces; a bodiless POST with a form
-- Content-Type), issues JWT-shaped tokens that expire on the simulator's
-- clock, and answers 401s in the gateway's shapes. Driven with libcurl and,
-- for multipart and Basic, with the curl command itself.
local core = require "isc.core"
local H = require "helpers"
local openapi = require "openapi_check"
local sim_api = require "sim_api"

-- Decodes base64url (JWT segments).
local function unb64url(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local bits, n, out = 0, 0, {}
  for c in s:gmatch(".") do
    bits, n = (bits << 6) | (alphabet:find(c, 1, true) - 1), n + 6
    if n >= 8 then
      n = n - 8
      out[#out + 1] = string.char((bits >> n) & 255)
    end
  end
  return table.concat(out)
end

describe("the simulated tenant's /oauth/token", function()
  local sim, api
  H.shared_sim({ roles = 3, identities = 3, seed = 1 }, function(s) sim, api = s, sim_api.new(s) end,
    { reset = true, freeze = true })

  local function token_request(req)
    local status, _, body = sim:request {
      method = "POST", path = "/oauth/token" .. (req.query and ("?" .. req.query) or ""),
      headers = req.headers, body = req.body,
    }
    return status, core.json_decode(body) or body
  end

  -- Runs the curl command; returns status and decoded body.
  local function curl(args)
    local _, out = H.sh("curl -s -w '\\n%{http_code}' " .. args)
    local body, status = out:match("^(.*)\n(%d+)$")
    return tonumber(status), core.json_decode(body)
  end

  local FORM = { ["Content-Type"] = "application/x-www-form-urlencoded" }

  it("issues a bearer token for urlencoded client credentials, with ISC's response fields", function()
    local status, t = token_request { headers = FORM,
      body = "grant_type=client_credentials&client_id=isclua-sim&client_secret=sim-secret" }
    assert.equal(200, status)
    assert.equal("bearer", t.token_type)
    assert.equal(749, t.expires_in)
    assert.equal("OFFLINE", t.accessType)
    assert.is_false(t.internal)
    assert.is_true(t.enabled)
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", t.tenant_id)
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", t.jti)
    assert.is_nil(t.identity_id, "an API client has no user context")
    local header, payload, sig = t.access_token:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
    assert.is_string(sig)
    assert.equal("JWT", core.json_decode(unb64url(header)).typ)
    local claims = core.json_decode(unb64url(payload))
    assert.equal("isclua-sim", claims.client_id)
    assert.equal(t.jti, claims.jti)
    assert.equal(math.floor(sim:now() + 749), claims.exp)
    assert.same({ "sp:scopes:all" }, claims.scope)
    assert.equal(1, sim:stats().tokens_issued)
  end)

  it("accepts multipart/form-data, as the TypeScript and PowerShell SDKs send it", function()
    local status, t = curl(string.format("-X POST -F grant_type=client_credentials -F client_id=isclua-sim "
      .. "-F client_secret=sim-secret %s/oauth/token", sim.url))
    assert.equal(200, status)
    assert.is_string(t.access_token)
  end)

  it("accepts the credentials as query parameters, with or without a form Content-Type and no body", function()
    local q = "grant_type=client_credentials&client_id=isclua-sim&client_secret=sim-secret"
    local status, t = token_request { query = q }
    assert.equal(200, status)
    assert.is_string(t.access_token)
    status = token_request { query = q, headers = FORM, body = "" }
    assert.equal(200, status)
  end)

  it("accepts HTTP Basic client authentication", function()
    local status, t = curl(string.format("-X POST -u isclua-sim:sim-secret -d grant_type=client_credentials %s/oauth/token",
      sim.url))
    assert.equal(200, status)
    assert.is_string(t.access_token)
  end)

  it("decodes + as a space and percent escapes, in the body and the query", function()
    sim:configure { client_secret = "sim secret & more" }
    local status = token_request { headers = FORM,
      body = "grant_type=client_credentials&client_id=isclua-sim&client_secret=sim+secret+%26+more" }
    assert.equal(200, status)
    status = token_request { query = "grant_type=client_credentials&client_id=isclua-sim&client_secret=sim%20secret+%26%20more" }
    assert.equal(200, status)
  end)

  it("ignores extra headers and parameters it does not know", function()
    local status = token_request { headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8",
      ["X-Custom-Thing"] = "1", ["User-Agent"] = "OpenAPI-Generator/1.0/python", Accept = "application/json" },
      body = "grant_type=client_credentials&client_id=isclua-sim&client_secret=sim-secret&scope=sp%3Ascopes%3Aall&extra=1" }
    assert.equal(200, status)
  end)

  it("answers 401 invalid_client for a wrong secret or client id", function()
    local status, body = token_request { headers = FORM,
      body = "grant_type=client_credentials&client_id=isclua-sim&client_secret=wrong" }
    assert.equal(401, status)
    assert.same({ error = "invalid_client", error_description = "Bad credentials" }, body)
    status = token_request { headers = FORM, body = "grant_type=client_credentials&client_id=other&client_secret=sim-secret" }
    assert.equal(401, status)
    assert.equal(0, sim:stats().tokens_issued)
  end)

  it("answers 400 for a missing or unsupported grant type", function()
    local status, body = token_request { headers = FORM, body = "client_id=isclua-sim&client_secret=sim-secret" }
    assert.equal(400, status)
    assert.same({ error = "invalid_request", error_description = "Missing grant type" }, body)
    status, body = token_request { headers = FORM,
      body = "grant_type=password&client_id=isclua-sim&client_secret=sim-secret" }
    assert.equal(400, status)
    assert.same({ error = "unsupported_grant_type", error_description = "Unsupported grant type: password" }, body)
  end)

  it("answers 405 for a GET", function()
    assert.equal(405, (sim:request { method = "GET", path = "/oauth/token" }))
  end)

  describe("the token on API calls", function()
    it("is required: 401 with the gateway's {error} body without one", function()
      local status, body = api:call("GET", "/v2024/roles", { token = false })
      assert.equal(401, status)
      assert.same({ error = "Full authentication is required to access this resource" }, body)
      assert.same({}, openapi.errors("roles", "listRolesV1_401_response", body))
      status, body = api:call("GET", "/v2025/role-propagation/is-running", { token = false, experimental = true })
      assert.equal(401, status)
      assert.same({}, openapi.errors("propagation", "startRolePropagationV1_401_response", body))
    end)

    it("must be one the tenant issued", function()
      local status, body = api:call("GET", "/v2024/roles", { token = "eyJhbGciOi.forged.token" })
      assert.equal(401, status)
      assert.same({ error = "JWT validation failed: JWT is invalid" }, body)
      status = api:call("GET", "/v2024/roles", { headers = { Authorization = "Basic abc" }, token = false })
      assert.equal(401, status)
    end)

    it("expires after expires_in seconds of the simulator's clock", function()
      local token = api:new_token()
      sim:advance(748)
      assert.equal(200, (api:call("GET", "/v2024/roles", { token = token, query = { limit = 1 } })))
      sim:advance(1)
      local status, body = api:call("GET", "/v2024/roles", { token = token })
      assert.equal(401, status)
      assert.same({ error = "JWT validation failed: JWT is expired" }, body)
    end)

    it("lives token_ttl seconds when configured so", function()
      sim:configure { token_ttl = 60 }
      local status, t = token_request { headers = FORM,
        body = "grant_type=client_credentials&client_id=isclua-sim&client_secret=sim-secret" }
      assert.equal(200, status)
      assert.equal(60, t.expires_in)
      sim:advance(60)
      assert.equal(401, (api:call("GET", "/v2024/roles", { token = t.access_token })))
    end)

    it("is accepted with any case of the Bearer scheme", function()
      local status = api:call("GET", "/v2024/roles", { token = false, query = { limit = 1 },
        headers = { Authorization = "bearer " .. api:new_token() } })
      assert.equal(200, status)
    end)
  end)
end)

describe("the simulated tenant's API clients, and what each may do", function()
  -- The tenant's first ROLE_SUBADMIN, from the same seeded data the simulator makes.
  local SEED, IDENTITIES = 1, 80
  local subadmin
  for _, idn in ipairs(require("isc.sim.data").generate { seed = SEED, identities = IDENTITIES, roles = 0 }.identities) do
    subadmin = subadmin or (idn.subadmin_sources and idn)
  end

  local sim, admin, auditor, sub
  H.shared_sim({ roles = 60, identities = IDENTITIES, seed = SEED,
    clients = { "auditor:ro-secret:read-only", "sub:sub-secret:subadmin:" .. subadmin.id } }, function(s)
    sim = s
    admin = sim_api.new(s)
    auditor = sim_api.new(s, { id = "auditor", secret = "ro-secret" })
    sub = sim_api.new(s, { id = "sub", secret = "sub-secret" })
  end, { reset = true, freeze = true })
  before_each(function() admin.cached_token, auditor.cached_token, sub.cached_token = nil, nil, nil end)

  -- Asserts a 403 in ISC's ErrorResponseDto, with its cause.
  local function forbidden(status, body, cause)
    sim_api.assert_error("roles", status, 403, body, "403 Forbidden",
      "The server understood the request but refuses to authorize it.")
    assert.equal(cause, body.causes[1].text)
  end

  it("gives a read-only client tokens with read scopes", function()
    local status, _, raw = sim:request { method = "POST", path = "/oauth/token",
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
      body = "grant_type=client_credentials&client_id=auditor&client_secret=ro-secret" }
    assert.equal(200, status)
    assert.equal("idn:role-unchecked:read idn:role-checked:read", core.json_decode(raw).scope)
  end)

  it("lets a read-only client read, reads sent as POST included, and answers each change 403", function()
    local role = admin:all("/v2024/roles")[1]
    assert.equal(200, (auditor:call("GET", "/v2024/roles/" .. role.id)))
    assert.equal(200, (auditor:call("POST", "/v2024/roles/filter", { json = { filters = "requestable eq true" } })))
    local changes = {
      { "POST", "/v2024/roles", { json = { name = "Not Allowed", owner = { id = role.owner.id } } } },
      { "PATCH", "/v2024/roles/" .. role.id, { json = { { op = "replace", path = "/enabled", value = false } },
        headers = { ["Content-Type"] = "application/json-patch+json" } } },
      { "DELETE", "/v2024/roles/" .. role.id },
      { "POST", "/v2024/roles/bulk-delete", { json = { roleIds = { role.id } } } },
      { "POST", "/v2025/role-propagation", { experimental = true } },
    }
    for _, c in ipairs(changes) do
      local status, body = auditor:call(c[1], c[2], c[3])
      forbidden(status, body, string.format("The API client auditor is read-only: it may not %s %s.", c[1], c[2]))
    end
    assert.equal(0, sim:stats().mutating)
    assert.same(role, select(2, admin:call("GET", "/v2024/roles/" .. role.id)), "nothing changed")
  end)

  it("shows a sub-admin client only the roles of its sources, as for-subadmin does, and refuses the others 403", function()
    local _, mine = admin:call("GET", "/v2024/roles", { query = { ["for-subadmin"] = subadmin.id, count = "true" } })
    local status, seen, headers = sub:call("GET", "/v2024/roles", { query = { count = "true" } })
    assert.equal(200, status)
    assert.same(H.ids_of(mine), H.ids_of(seen))
    assert.is_true(tonumber(headers["x-total-count"]) < 60)
    assert.same(H.ids_of(mine), H.ids_of(select(2, sub:call("GET", "/v2024/roles", { query = { ["for-subadmin"] = "me" } }))))
    assert.same(H.ids_of(mine), H.ids_of(select(2, sub:call("POST", "/v2024/roles/filter", { json = {} }))))

    local in_reach = {}
    for _, r in ipairs(mine) do in_reach[r.id] = true end
    local other
    for _, r in ipairs(admin:all("/v2024/roles")) do other = other or (not in_reach[r.id] and r) end
    assert.equal(200, (sub:call("GET", "/v2024/roles/" .. mine[1].id)))
    local cause = string.format("The role %q has access profiles from sources the ROLE_SUBADMIN %s does not administer.",
      other.name, subadmin.id)
    for _, method in ipairs({ "GET", "DELETE" }) do
      local s, body = sub:call(method, "/v2024/roles/" .. other.id)
      forbidden(s, body, cause)
    end
    local s, body = sub:call("POST", "/v2024/roles", { json = { name = "Outside", owner = { id = subadmin.id },
      accessProfiles = other.accessProfiles } })
    forbidden(s, body, string.format(
      "The role \"Outside\" has access profiles from sources the ROLE_SUBADMIN %s does not administer.", subadmin.id))
    assert.equal(200, (admin:call("GET", "/v2024/roles/" .. other.id)), "the admin sees every role")
  end)
end)
