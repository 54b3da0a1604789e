-- c.propagation against the simulated tenant: start, status, is-running,
-- terminate, and the blocking wait. The clients' sleeps jump the simulator's
-- clock, so a propagation of many simulated minutes takes milliseconds.
local isc = require "isc"
local H = require "helpers"

-- Each running stage (PENDING, DATA_AGGREGATION_RUNNING, LAUNCH_PROVISIONING)
-- lasts this long on the simulator's clock: a propagation takes 30 s.
local STAGE = 10

-- Status polls the simulator has answered, whatever the version prefix.
local function status_polls(sim)
  local n = 0
  for route, count in pairs(sim:stats().by_route) do
    if route:match("^GET /.*role%-propagation.*/status$") then n = n + count end
  end
  return n
end

describe("c.propagation", function()
  local sim
  -- No rate limit: these count the polls a wait makes.
  H.shared_sim({ roles = 10, identities = 10, seed = 5, propagation_stage_seconds = STAGE, rate_limit = false },
    function(s) sim = s end, { reset = true })

  it("starts a propagation, reads its status and sees it in is-running", function()
    local c = H.sim_client(sim)
    local started = c.propagation:start()
    assert.is_string(started.rolePropagationId)
    local st = c.propagation:status(started.rolePropagationId)
    assert.equal(started.rolePropagationId, st.id)
    assert.equal("RUNNING", st.status)
    assert.equal("PENDING", st.executionStage)
    assert.is_false(st.skipRoleRefresh)
    local ongoing = c.propagation:ongoing()
    assert.is_true(ongoing.isRunning)
    assert.equal(started.rolePropagationId, ongoing.rolePropagationDetails.id)
  end)

  it("passes skip_role_refresh as skipRoleRefresh", function()
    local c = H.sim_client(sim)
    local id = c.propagation:start { skip_role_refresh = true }.rolePropagationId
    assert.is_true(c.propagation:status(id).skipRoleRefresh)
  end)

  it("runs a propagation to SUCCEEDED: start, then wait", function()
    local c = H.sim_client(sim)
    local st = c.propagation:run()
    assert.equal("SUCCEEDED", st.executionStage)
    assert.equal("COMPLETED", st.status)
    assert.is_string(st.completed)
    assert.is_nil(st.failureReason)
    assert.is_false(c.propagation:ongoing().isRunning)
    assert.equal(1, sim:stats().by_route["POST /v2026/role-propagation"])
  end)

  it("returns a FAILED outcome with its reason instead of raising it", function()
    sim:configure { fail_next_propagation = "Network error" }
    local c = H.sim_client(sim)
    local st = c.propagation:run()
    assert.equal("FAILED", st.executionStage)
    assert.equal("COMPLETED", st.status)
    assert.equal("Network error", st.failureReason)
  end)

  it("raises a FAILED outcome when asked to, with the reason and the status", function()
    sim:configure { fail_next_propagation = "Network error" }
    local c = H.sim_client(sim)
    local err = H.catch(c.propagation.run, c.propagation, { raise_on_failure = true })
    assert.is_true(isc.is_error(err, "propagation_failed"))
    assert.equal("Network error", err.failure_reason)
    assert.equal("FAILED", err.stage)
    assert.equal("FAILED", err.last_status.executionStage)
    assert.equal(err.last_status.id, err.propagation_id)
    assert.equal("role propagation " .. err.propagation_id .. " failed: Network error", tostring(err))
  end)

  it("ends TERMINATED when a second client cancels it, and says who did", function()
    local admin = H.sim_client(sim)
    local c = H.sim_client(sim)
    local seen = {}
    local st = c.propagation:run {
      interval = 1, backoff = 1,
      on_progress = function(status)
        seen[#seen + 1] = status.executionStage
        if status.executionStage == "DATA_AGGREGATION_RUNNING" then admin.propagation:cancel() end
      end,
    }
    assert.equal("TERMINATED", st.executionStage)
    assert.equal("COMPLETED", st.status)
    assert.equal("IDENTITY", st.terminatedBy.type)
    assert.same({ "PENDING", "DATA_AGGREGATION_RUNNING", "TERMINATED" }, seen)
    local err = H.catch(c.propagation.wait, c.propagation, st.id, { raise_on_failure = true })
    assert.is_true(isc.is_error(err, "propagation_failed"))
    assert.equal("TERMINATED", err.stage)
    assert.equal("role propagation " .. st.id .. " was terminated by " .. st.terminatedBy.name, err.message)
  end)

  it("raises a timeout error carrying the last status, and leaves the propagation running", function()
    local c = H.sim_client(sim)
    local id = c.propagation:start().rolePropagationId
    local err = H.catch(c.propagation.wait, c.propagation, id, { timeout = 15, interval = 5, backoff = 1 })
    assert.is_true(isc.is_error(err, "timeout"))
    assert.equal(id, err.last_status.id)
    assert.equal("DATA_AGGREGATION_RUNNING", err.last_status.executionStage)
    assert.matches("did not finish within 15 s %(last stage seen: DATA_AGGREGATION_RUNNING%)", err.message)
    assert.is_true(c.propagation:ongoing().isRunning)
  end)

  it("refuses to start while one runs, naming the running one so a script can wait on it", function()
    local c = H.sim_client(sim)
    local first = c.propagation:start().rolePropagationId
    local err = H.catch(c.propagation.run, c.propagation, { interval = 1 })
    assert.is_true(isc.is_error(err, "already_running"))
    assert.equal(first, err.running_id)
    assert.matches("already running", err.message)
    assert.truthy(err.message:find(first, 1, true))
    assert.is_true(isc.is_error(err.cause, "api"))
    assert.equal(err.cause.status, err.status)
    assert.equal("SUCCEEDED", c.propagation:wait(err.running_id).executionStage)
  end)

  it("re-raises a refused start when nothing is running, saying how to turn propagation on if it is off", function()
    local c = H.sim_client(sim)
    sim:configure { propagation_enabled = false }
    local err = H.catch(c.propagation.start, c.propagation)
    assert.is_true(isc.is_error(err, "api"))
    assert.equal(400, err.status)
    assert.matches("turned off for this tenant: c.propagation:set_config{enabled = true} turns it on", err.message, 1, true)
  end)

  it("logs each stage and, every heartbeat, that it still runs, when stderr is no terminal (cron)", function()
    local log = require "isc.log"
    local path = os.tmpname()
    log.configure { file = path, timestamps = false }
    sim:configure { propagation_stage_seconds = 1800 }
    local c = H.sim_client(sim)
    local ok, status = pcall(c.propagation.run, c.propagation, { heartbeat = 600 })
    log.configure()
    assert.is_true(ok, tostring(status))
    assert.equal("SUCCEEDED", status.executionStage)
    local text = H.slurp(path)
    local stages, beats = {}, 0
    for stage in text:gmatch("info: role propagation stage [^\n]*stage=(%u[%u_]*)") do stages[#stages + 1] = stage end
    for _ in text:gmatch("info: role propagation still running") do beats = beats + 1 end
    assert.same({ "PENDING", "DATA_AGGREGATION_RUNNING", "LAUNCH_PROVISIONING", "SUCCEEDED" }, stages)
    assert.is_true(beats >= 6, "a line at least every 10 minutes of a 90-minute run: " .. beats)
    assert.matches("still running elapsed=%d+ propagation_id=%S+ stage=DATA_AGGREGATION_RUNNING", text)
  end)

  it("reads and sets the tenant's propagation switch (role-propagation-config)", function()
    local c = H.sim_client(sim)
    assert.is_true(c.propagation:config().enabled)
    local off = c.propagation:set_config { enabled = false }
    assert.is_false(off.enabled)
    assert.is_false(c.propagation:config().enabled)
    assert.equal(400, H.catch(c.propagation.start, c.propagation).status)
    assert.is_true(c.propagation:set_config({ enabled = true }).enabled)
    assert.is_string(c.propagation:start().rolePropagationId)
    assert.equal(2, H.hits(sim, "PUT /v2026/role-propagation-config"))
    assert.matches("option 'enabled' is required", H.catch(c.propagation.set_config, c.propagation, {}).message)
  end)

  it("waits for whatever propagation is running when given no id", function()
    local c = H.sim_client(sim)
    local id = H.sim_client(sim).propagation:start().rolePropagationId
    local st = c.propagation:wait { interval = 2 }
    assert.equal(id, st.id)
    assert.equal("SUCCEEDED", st.executionStage)
  end)

  it("returns nil and says so when asked to wait with none running", function()
    local c = H.sim_client(sim)
    local st, why = c.propagation:wait()
    assert.is_nil(st)
    assert.equal("no role propagation is running", why)
  end)

  it("spaces its polls from interval, backing off up to max_interval", function()
    local c, slept = H.sim_client(sim)
    local st = c.propagation:run { interval = 2, backoff = 2, max_interval = 9 }
    assert.equal("SUCCEEDED", st.executionStage)
    -- polls at 0, 2, 6, 14, 23 and 32 s; the stages end at 10, 20 and 30 s
    assert.same({ 2, 4, 8, 9, 9 }, slept)
    assert.equal(6, status_polls(sim))
  end)

  it("costs few requests for a long propagation with the default spacing", function()
    sim:configure { propagation_stage_seconds = 600 } -- 30 minutes in all
    local c, slept = H.sim_client(sim)
    c.propagation:run()
    assert.equal(5, slept[1])
    assert.equal(60, slept[#slept])
    assert.is_true(status_polls(sim) <= 40, "polled " .. status_polls(sim) .. " times")
  end)

  it("calls on_progress once per stage, however often it polls", function()
    local c = H.sim_client(sim)
    local seen = {}
    c.propagation:run { interval = 1, backoff = 1, on_progress = function(st) seen[#seen + 1] = st.executionStage end }
    assert.same({ "PENDING", "DATA_AGGREGATION_RUNNING", "LAUNCH_PROVISIONING", "SUCCEEDED" }, seen)
    assert.is_true(status_polls(sim) >= 30)
  end)

  it("keeps waiting through 429s, 503s and dropped connections", function()
    local id = H.sim_client(sim).propagation:start().rolePropagationId
    sim:configure { faults = "http503=0.25,http429=0.15,reset=0.15", fault_seed = 3 }
    -- No retries in the client itself, so every fault reaches the wait.
    local c = H.sim_client(sim, { retries = 0 })
    local st = c.propagation:wait(id, { interval = 1, backoff = 1 })
    assert.equal("SUCCEEDED", st.executionStage)
    local faults = sim:stats().faults
    assert.is_true(faults.http503 > 0 and faults.http429 > 0 and faults.reset > 0, "each kind of fault hit a poll")
  end)

  it("re-authenticates when the token expires mid-wait", function()
    sim:configure { token_ttl = 20 } -- the propagation takes 30 s
    -- A client clock that stands still never renews the token early: the
    -- tenant answers 401 and the client fetches a new token.
    local frozen = sim:now()
    local c = H.sim_client(sim, { clock = function() return frozen end })
    local st = c.propagation:run { interval = 5, backoff = 1 }
    assert.equal("SUCCEEDED", st.executionStage)
    assert.is_true(sim:stats().tokens_issued >= 2)
  end)

  it("ends a wait on an error that retrying cannot fix", function()
    local c = H.sim_client(sim)
    local err = H.catch(c.propagation.wait, c.propagation, "0000000000000000000000000000dead")
    assert.is_true(isc.is_error(err, "api"))
    assert.equal(404, err.status)
  end)

  it("checks its arguments before sending anything", function()
    local c = H.sim_client(sim)
    local p = c.propagation
    assert.matches("propagation:wait: option 'timeout' must be a number of seconds > 0",
      H.catch(p.wait, p, "x", { timeout = -1 }).message)
    assert.matches("propagation:run: unknown option 'intervall'", H.catch(p.run, p, { intervall = 1 }).message)
    assert.matches("propagation:run: option 'backoff' must be a factor >= 1", H.catch(p.run, p, { backoff = 0.5 }).message)
    assert.matches("propagation:status: argument #1 must be string", H.catch(p.status, p, 42).message)
    assert.equal(0, sim:stats().requests)
  end)

  for _, case in ipairs {
    { opts = { propagation_version = "v2025" }, prefix = "/v2025/role-propagation" },
    { opts = { propagation_version = "v2026" }, prefix = "/v2026/role-propagation" },
    { opts = { layout = "per-api" }, prefix = "/role-propagation/v1" },
  } do
    it("speaks " .. case.prefix .. " when the client is set up so", function()
      local c = H.sim_client(sim, case.opts)
      assert.equal("SUCCEEDED", c.propagation:run { interval = 2 }.executionStage)
      assert.is_false(c.propagation:ongoing().isRunning)
      local routes = sim:stats().by_route
      assert.equal(1, routes["POST " .. case.prefix])
      assert.equal(2, routes["GET " .. case.prefix .. "/is-running"], "once before the start, once by ongoing()")
      for route in pairs(routes) do
        if route:find("role-propagation", 1, true) then
          assert.truthy(route:find(case.prefix, 1, true), route .. " is not under " .. case.prefix)
        end
      end
    end)
  end

  it("keeps the version per client", function()
    local old = H.sim_client(sim, { propagation_version = "v2025" })
    local new = H.sim_client(sim)
    local id = old.propagation:start().rolePropagationId
    assert.equal(id, new.propagation:ongoing().rolePropagationDetails.id)
    assert.equal(1, sim:stats().by_route["POST /v2025/role-propagation"])
    assert.equal(1, sim:stats().by_route["GET /v2026/role-propagation/is-running"])
  end)
end)
