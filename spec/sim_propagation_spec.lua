-- The simulated tenant's Role Propagation API over plain HTTP, under
-- /v2025, /v2026 and the per-resource /role-propagation/v1: the stage
-- machine on the simulator's clock (moved, never waited for) through
-- SUCCEEDED, FAILED and TERMINATED, the experimental header, and the
-- tenant switch (role-propagation-config). Bodies are checked against
-- spec/fixtures/openapi/role-propagation.yaml.
local H = require "helpers"
local openapi = require "openapi_check"
local sim_api = require "sim_api"

local msg = sim_api.message
local function assert_error(...) sim_api.assert_error("propagation", ...) end
local S = 30 -- propagation_stage_seconds
local EPOCH = 1800000000 -- 2027-01-15T08:00:00Z, so that times print exactly

local LAYOUTS = {
  { run = "/v2025/role-propagation", config = "/v2025/role-propagation-config" },
  { run = "/v2026/role-propagation", config = "/v2026/role-propagation-config" },
  { run = "/role-propagation/v1", config = "/role-propagation-config/v1" },
}

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

for _, layout in ipairs(LAYOUTS) do
  describe("the simulated Role Propagation API at " .. layout.run, function()
    local sim, api
    H.shared_sim({ roles = 5, identities = 5, seed = 4, propagation_stage_seconds = S },
      function(s) sim, api = s, sim_api.new(s) end, { reset = true, freeze = true, clock = EPOCH })

    local function call(method, path, opts)
      opts = opts or {}
      if opts.experimental == nil then opts.experimental = true end
      return api:call(method, layout.run .. path, opts)
    end

    local function start(query)
      local status, body = call("POST", "", { query = query })
      assert.equal(202, status, msg(body))
      assert.same({}, openapi.errors("propagation", "role-propagation-response", body))
      return body.rolePropagationId
    end

    local function status_of(id)
      local status, body = call("GET", "/" .. id .. "/status")
      assert.equal(200, status, msg(body))
      assert.same({}, openapi.errors("propagation", "role-propagation-status-response", body))
      return body
    end


    it("starts with 202 and moves PENDING -> DATA_AGGREGATION_RUNNING -> LAUNCH_PROVISIONING -> SUCCEEDED", function()
      local id = start()
      assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", id)
      local st = status_of(id)
      assert.same({
        id = id, status = "RUNNING", executionStage = "PENDING", launched = iso(EPOCH), skipRoleRefresh = false,
        launchedBy = { type = "IDENTITY", id = "isclua-sim", name = "isclua sim" },
      }, st)
      sim:advance(S - 1)
      assert.equal("PENDING", status_of(id).executionStage)
      sim:advance(1)
      assert.equal("DATA_AGGREGATION_RUNNING", status_of(id).executionStage)
      sim:advance(S)
      assert.equal("LAUNCH_PROVISIONING", status_of(id).executionStage)
      assert.equal("RUNNING", status_of(id).status)
      sim:advance(S + 100)
      st = status_of(id)
      assert.equal("SUCCEEDED", st.executionStage)
      assert.equal("COMPLETED", st.status)
      assert.equal(iso(EPOCH + 3 * S), st.completed)
      assert.is_nil(st.failureReason)
      assert.is_nil(st.terminatedBy)
    end)

    it("accepts a bodiless POST with a form Content-Type, as generated SDKs send it", function()
      local status, body = call("POST", "", { query = { skipRoleRefresh = "false" },
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }, body = "" })
      assert.equal(202, status, msg(body))
      assert.is_string(body.rolePropagationId)
    end)

    it("skips DATA_AGGREGATION_RUNNING with skipRoleRefresh=true and echoes it", function()
      local id = start({ skipRoleRefresh = "true" })
      assert.is_true(status_of(id).skipRoleRefresh)
      sim:advance(S)
      assert.equal("LAUNCH_PROVISIONING", status_of(id).executionStage)
      sim:advance(S)
      local st = status_of(id)
      assert.equal("SUCCEEDED", st.executionStage)
      assert.equal(iso(EPOCH + 2 * S), st.completed)
    end)

    it("says whether one is running, with its details, and {isRunning: false} when idle", function()
      local status, idle = call("GET", "/is-running")
      assert.equal(200, status)
      assert.same({ isRunning = false }, idle)
      local id = start()
      sim:advance(S)
      local _, running = call("GET", "/is-running")
      assert.same({}, openapi.errors("propagation", "role-propagation-ongoing-response", running))
      assert.is_true(running.isRunning)
      assert.equal(id, running.rolePropagationDetails.id)
      assert.equal("DATA_AGGREGATION_RUNNING", running.rolePropagationDetails.executionStage)
      sim:advance(2 * S)
      assert.same({ isRunning = false }, select(2, call("GET", "/is-running")))
    end)

    it("refuses a second start while one runs (409 naming it), and accepts one after", function()
      local id = start()
      local status, body = call("POST", "")
      assert_error(status, 409, body, "409 Conflict",
        string.format("A role propagation is already running for this tenant: %s.", id))
      sim:advance(3 * S)
      local second = start()
      assert.is_not.equal(id, second)
      assert.equal("SUCCEEDED", status_of(id).executionStage)
    end)

    it("FAILS the next propagation when told to, at the end of LAUNCH_PROVISIONING by default, once", function()
      sim:configure { fail_next_propagation = "Network error" }
      local id = start()
      sim:advance(3 * S - 1)
      assert.equal("LAUNCH_PROVISIONING", status_of(id).executionStage)
      sim:advance(1)
      local st = status_of(id)
      assert.equal("FAILED", st.executionStage)
      assert.equal("COMPLETED", st.status)
      assert.equal("Network error", st.failureReason)
      assert.equal(iso(EPOCH + 3 * S), st.completed)
      local next_id = start()
      sim:advance(3 * S)
      assert.equal("SUCCEEDED", status_of(next_id).executionStage)
    end)

    it("FAILS at the end of the stage named by fail_at_stage", function()
      sim:configure { fail_next_propagation = "Identity refresh failed", fail_at_stage = "DATA_AGGREGATION_RUNNING" }
      local id = start()
      sim:advance(2 * S)
      local st = status_of(id)
      assert.equal("FAILED", st.executionStage)
      assert.equal("Identity refresh failed", st.failureReason)
      assert.equal(iso(EPOCH + 2 * S), st.completed)
    end)

    it("TERMINATES the running propagation: 204, then TERMINATED with who and when", function()
      local id = start()
      sim:advance(S + 5)
      local status, body = call("POST", "/terminate")
      assert.equal(204, status)
      assert.equal("", body)
      local st = status_of(id)
      assert.equal("TERMINATED", st.executionStage)
      assert.equal("COMPLETED", st.status)
      assert.equal(iso(EPOCH + S + 5), st.completed)
      assert.same({ type = "IDENTITY", id = "isclua-sim", name = "isclua sim" }, st.terminatedBy)
      sim:advance(10 * S)
      assert.equal("TERMINATED", status_of(id).executionStage)
      assert.same({ isRunning = false }, select(2, call("GET", "/is-running")))
      status, body = call("POST", "/terminate")
      assert_error(status, 400, body, "400.1 Bad Request Content", "No role propagation is running for this tenant.")
    end)

    it("answers 404 for an unknown propagation id", function()
      local status, body = call("GET", "/0210f50c-bc23-4f9d-9921-056f1a170471/status")
      assert_error(status, 404, body, "404 Not found")
    end)

    it("refuses a bad skipRoleRefresh, and a start without skipRoleRefresh while a role refresh runs", function()
      local status, body = call("POST", "", { query = { skipRoleRefresh = "sometimes" } })
      assert_error(status, 400, body, "400.1 Bad Request Content",
        'skipRoleRefresh "sometimes" is invalid: expected true or false')
      sim:configure { role_refresh_running = true }
      status, body = call("POST", "")
      assert_error(status, 400, body, "400.1 Bad Request Content",
        "A role refresh is running for this tenant; retry later or start with skipRoleRefresh=true.")
      start({ skipRoleRefresh = "TRUE" })
    end)

    it("requires X-SailPoint-Experimental: true on every operation (any case)", function()
      local routes = { { "POST", layout.run }, { "GET", layout.run .. "/is-running" },
        { "POST", layout.run .. "/terminate" }, { "GET", layout.run .. "/x/status" },
        { "GET", layout.config }, { "PUT", layout.config } }
      for _, r in ipairs(routes) do
        for _, value in ipairs({ false, "false", "yes" }) do
          local headers = value and { ["X-SailPoint-Experimental"] = value } or nil
          local status, body = api:call(r[1], r[2], { headers = headers, json = r[1] == "PUT" and { enabled = true } or nil })
          assert.equal(400, status, r[1] .. " " .. r[2])
          assert.same({ error = "Experimental Header is missing or invalid." }, body)
        end
      end
      local status = api:call("GET", layout.run .. "/is-running", { headers = { ["X-SailPoint-Experimental"] = "TRUE" } })
      assert.equal(200, status)
    end)

    it("shares its propagations with the other versions of the API", function()
      local id = start()
      for _, other in ipairs(LAYOUTS) do
        local status, body = api:call("GET", other.run .. "/" .. id .. "/status", { experimental = true })
        assert.equal(200, status)
        assert.equal(id, body.id)
      end
    end)

    describe("config", function()
      local function config_call(method, opts)
        opts = opts or {}
        opts.experimental = true
        return api:call(method, layout.config, opts)
      end

      it("is enabled on a fresh tenant", function()
        local status, body = config_call("GET")
        assert.equal(200, status)
        assert.same({}, openapi.errors("propagation", "role-propagation-config-response", body))
        assert.same({ enabled = true, enabledDate = "2025-02-18T20:20:36Z", createdDate = "2025-02-18T20:20:36Z",
          modifiedDate = "2025-02-18T20:20:36Z" }, body)
      end)

      it("disabling it makes start fail with 400; enabling it stamps enabledDate", function()
        local status, body = config_call("PUT", { json = { enabled = false } })
        assert.equal(200, status)
        assert.is_false(body.enabled)
        assert.equal(iso(EPOCH), body.modifiedDate)
        local s2, b2 = call("POST", "")
        assert_error(s2, 400, b2, "400.1 Bad Request Content",
          "Role propagation is disabled for this tenant (see role-propagation-config).")
        sim:advance(60)
        status, body = config_call("PUT", { json = { enabled = true } })
        assert.equal(200, status)
        assert.same({ enabled = true, enabledDate = iso(EPOCH + 60), createdDate = "2025-02-18T20:20:36Z",
          modifiedDate = iso(EPOCH + 60) }, body)
        start()
      end)

      it("starts disabled with propagation_enabled = false", function()
        sim:configure { propagation_enabled = false }
        local _, body = config_call("GET")
        assert.is_false(body.enabled)
      end)

      it("refuses a body that is not a RolePropagationConfigInput, or not JSON", function()
        local status, body = config_call("PUT", { json = { enabled = "yes" } })
        assert_error(status, 400, body, "400.1 Bad Request Content")
        status, body = config_call("PUT", { body = "{", headers = { ["Content-Type"] = "application/json" } })
        assert_error(status, 400, body, "400.1 Bad Request Content")
        status, body = config_call("PUT", { body = "" })
        assert_error(status, 400, body, "400.1 Bad Request Content", "The request body is required.")
      end)
    end)
  end)
end

describe("the simulated Role Propagation API", function()
  it("is not served under /v2024", function()
    local sim <close> = require("isc.sim").start { roles = 1, identities = 1 }
    local status = sim_api.new(sim):call("POST", "/v2024/role-propagation", { experimental = true })
    assert.equal(404, status)
  end)

  it("takes stage durations per stage", function()
    local sim <close> = require("isc.sim").start { roles = 1, identities = 1,
      propagation_stage_seconds = { PENDING = 1, DATA_AGGREGATION_RUNNING = 100, LAUNCH_PROVISIONING = 10 } }
    sim:freeze(true)
    local api = sim_api.new(sim)
    local _, started = api:call("POST", "/v2025/role-propagation", { experimental = true })
    local function stage()
      return select(2, api:call("GET", "/v2025/role-propagation/" .. started.rolePropagationId .. "/status",
        { experimental = true })).executionStage
    end
    sim:advance(1)
    assert.equal("DATA_AGGREGATION_RUNNING", stage())
    sim:advance(99)
    assert.equal("DATA_AGGREGATION_RUNNING", stage())
    sim:advance(1)
    assert.equal("LAUNCH_PROVISIONING", stage())
    sim:advance(10)
    assert.equal("SUCCEEDED", stage())
  end)
end)
