-- Limits and faults of the simulated tenant, over plain HTTP: the gateway's
-- rate limit (fixed windows per client and API version on the simulator's
-- clock, 429 with Retry-After) and each injected fault kind, reproducible
-- for a given fault seed.
local H = require "helpers"
local openapi = require "openapi_check"
local sim_api = require "sim_api"

local EPOCH = 1800000000 -- a multiple of 10: rate windows start exactly here

describe("the simulated tenant's limits and faults", function()
  local sim, api
  H.shared_sim({ roles = 20, identities = 10, seed = 3 }, function(s) sim, api = s, sim_api.new(s) end,
    { reset = true, freeze = true, clock = EPOCH })
  -- Each spec starts as a new client would, without a token.
  before_each(function() api.cached_token = nil end)

  local function get(path) return api:call("GET", path or "/v2024/roles", { query = { limit = 1 } }) end

  describe("rate limit", function()
    it("answers 429 with Retry-After (seconds to the window's end) past the limit", function()
      sim:configure { rate_limit = "3/10s" }
      for _ = 1, 3 do assert.equal(200, (get())) end
      local status, body, headers = get()
      assert.equal(429, status)
      assert.same({ message = " Rate Limit Exceeded " }, body)
      assert.same({}, openapi.errors("roles", "listRolesV1_429_response", body))
      assert.equal("10", headers["retry-after"])
      sim:advance(4)
      assert.equal("6", select(3, get())["retry-after"])
    end)

    it("lets requests through again once the window has passed", function()
      sim:configure { rate_limit = "2/10s" }
      get()
      get()
      assert.equal(429, (get()))
      sim:advance(10)
      assert.equal(200, (get()))
      assert.equal(200, (get()))
      assert.equal(429, (get()))
      assert.equal(2, sim:stats().rate_limited)
    end)

    it("counts each API version separately, and never the token endpoint", function()
      sim:configure { rate_limit = "2/10s" }
      api:new_token()
      get("/v2024/roles")
      get("/v2024/roles")
      assert.equal(429, (get("/v2024/roles")))
      assert.equal(200, (get("/roles/v1")))
      assert.equal(200, (get("/v2025/roles")))
      local status = api:call("GET", "/v2025/role-propagation/is-running", { experimental = true })
      assert.equal(200, status)
      for _ = 1, 5 do api:new_token() end
    end)

    it("takes windows in minutes too", function()
      sim:configure { rate_limit = "1/1m" }
      get()
      assert.equal("60", select(3, get())["retry-after"])
    end)
  end)

  describe("faults", function()
    it("http500 answers 500 with an ErrorResponseDto", function()
      sim:configure { faults = "http500=1" }
      local status, body = get()
      assert.equal(500, status)
      assert.same({}, openapi.errors("roles", "errorresponsedto", body))
      assert.equal("500.0 Internal Fault", body.detailCode)
      assert.equal("An internal fault occurred.", sim_api.message(body))
      assert.equal(1, sim:stats().faults.http500)
    end)

    it("http503 answers 503", function()
      sim:configure { faults = "http503=1" }
      local status, body = get()
      assert.equal(503, status)
      assert.equal("503 Service Unavailable", body.detailCode)
    end)

    it("http429 answers 429 with Retry-After: 1", function()
      sim:configure { faults = "http429=1" }
      local status, body, headers = get()
      assert.equal(429, status)
      assert.same({ message = " Rate Limit Exceeded " }, body)
      assert.equal("1", headers["retry-after"])
    end)

    it("reset drops the connection without an answer", function()
      sim:configure { faults = "reset=1" }
      local ok, err = pcall(get)
      assert.is_false(ok)
      assert.equal("network", err.kind)
      assert.equal("reset", err.cause)
      -- libcurl retries once on a fresh connection when a reused one dies
      assert.is_true(sim:stats().faults.reset >= 1)
    end)

    it("truncate cuts the body short after doing the work", function()
      local owner = select(2, get())[1].owner.id
      sim:configure { faults = "truncate=1" }
      local ok, err = pcall(api.call, api, "POST", "/v2024/roles", { json = { name = "Half Sent", owner = { id = owner } } })
      assert.is_false(ok)
      assert.equal("truncated", err.cause)
      sim:configure { faults = false }
      local _, page = api:call("GET", "/v2024/roles", { query = { filters = 'name eq "Half Sent"' } })
      assert.equal(1, #page, "the role was created")
    end)

    -- Creates a role under a fault; returns whether the call failed, its
    -- error, and how many roles of that name the tenant holds afterwards.
    local function create_under(fault, name)
      local owner = select(2, get())[1].owner.id
      sim:configure { faults = fault .. "=1" }
      local ok, err = pcall(api.call, api, "POST", "/v2024/roles", { json = { name = name, owner = { id = owner } } })
      sim:configure { faults = false }
      local _, page = api:call("GET", "/v2024/roles", { query = { filters = string.format("name eq %q", name) } })
      return ok, err, #page
    end

    it("reset_after makes the change, then drops the connection", function()
      local ok, err, n = create_under("reset_after", "Applied Then Reset")
      assert.is_false(ok)
      assert.equal("reset", err.cause)
      assert.equal(1, n, "the role was created once")
    end)

    it("truncate_after makes the change, then cuts the body short", function()
      local ok, err, n = create_under("truncate_after", "Applied Then Truncated")
      assert.is_false(ok)
      assert.equal("truncated", err.cause)
      assert.equal(1, n)
    end)

    it("http504_after makes the change, then answers a gateway's 504", function()
      local ok, status, n = create_under("http504_after", "Applied Then 504")
      assert.is_true(ok)
      assert.equal(504, status)
      assert.equal(1, n)
      assert.equal(1, sim:stats().faults.http504_after)
    end)

    it("reset and http503 strike before the change: nothing is made", function()
      for _, fault in ipairs { "reset", "http503" } do
        local _, _, n = create_under(fault, "Never Made " .. fault)
        assert.equal(0, n, fault)
      end
    end)

    it("latency_ms and jitter_ms answer every API request that much later, and are counted from the fault seed", function()
      local core = require "isc.core"
      api:token()
      sim:configure { latency_ms = 150, jitter_ms = 50 }
      local t0 = core.monotonic()
      for _ = 1, 3 do assert.equal(200, (get())) end
      assert.is_true(core.monotonic() - t0 >= 0.45, "three answers, each at least 150 ms late")
      assert.equal(150, sim:config().latency_ms)
      sim:configure { latency_ms = 0, jitter_ms = 0 }
      local faults = require("isc.sim.faults")
      local function draws(seed)
        local f = faults.new { fault_seed = seed, latency_ms = 100, jitter_ms = 200 }
        local out = {}
        for i = 1, 5 do
          out[i] = f:delay()
          assert.is_true(out[i] >= 0.1 and out[i] <= 0.3)
        end
        return table.concat(out, " ")
      end
      assert.equal(draws(4), draws(4))
      assert.is_not.equal(draws(4), draws(5))
    end)

    it("slow answers normally, after slow_seconds", function()
      sim:configure { faults = "slow=1", slow_seconds = 0.05 }
      assert.equal(200, (get()))
      assert.equal(1, sim:stats().faults.slow)
    end)

    it("never touches the token endpoint or the control API", function()
      sim:configure { faults = "http500=1" }
      api:new_token()
      assert.is_number(sim:now())
    end)

    it("follows the same sequence for the same fault seed, and another for another seed", function()
      local function run(seed)
        sim:configure { faults = "http500=0.2,http503=0.2,http429=0.1", fault_seed = seed }
        local out = {}
        for i = 1, 40 do out[i] = (get()) end
        return table.concat(out, " ")
      end
      api:token()
      local a = run(7)
      local b = run(7)
      assert.equal(a, b)
      assert.is_not.equal(a, run(8))
      assert.matches("500", a)
      assert.matches("503", a)
      assert.matches("200", a)
    end)

    it("are off after a reset", function()
      sim:configure { faults = "http500=1" }
      sim:reset()
      assert.equal(200, (get()))
    end)
  end)
end)
