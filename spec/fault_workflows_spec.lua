-- Whole workflows against a tenant that fails the way real ones do: the
-- README's fault mix at twice its rates, and faults that strike after the
-- tenant made the change (the answer is lost or replaced by a gateway's 504).
-- Each workflow compares the tenant's end state with what isclua reported:
-- nothing done twice, nothing reported done that was not, nothing reported
-- undone that was, no item listed twice or missed.
local isc = require "isc"
local H = require "helpers"

local README_MIX_TWICE = "http500=0.06,http503=0.06,reset=0.04,http429=0.04,slow=0.02,truncate=0.02"
local AFTER_APPLY = "reset_after=0.1,truncate_after=0.05,http504_after=0.1"
local MIXES = {
  { name = "the README's mix at twice its rates", faults = README_MIX_TWICE },
  { name = "faults after the change is made", faults = AFTER_APPLY },
  { name = "both at once", faults = README_MIX_TWICE .. "," .. AFTER_APPLY:gsub("0%.1", "0.05") },
}
local SEEDS = { 1, 2, 3 }

-- Runs fn(i) for each i, sorting the outcomes: done (fn's result), or the
-- error's outcome ("failed", "not_sent", "unknown").
local function outcomes(n, fn)
  local done, other = {}, {}
  for i = 1, n do
    local ok, res = pcall(fn, i)
    if ok then
      done[i] = res
    else
      assert(isc.is_error(res), tostring(res))
      assert.is_string(res.outcome, "every failed mutation says what became of it: " .. tostring(res))
      other[i] = res
    end
  end
  return done, other
end

-- A resolved loss is worth a warning in a real run; here it is the point.
local log = require "isc.log"
setup(function() log.configure { level = "error" } end)
teardown(function() log.configure() end)

for _, mix in ipairs(MIXES) do
  describe("under " .. mix.name, function()
    local big, sim
    -- No rate limit: these count what reached the tenant, on a clock that
    -- also runs with real time, and 429s are not the faults under test.
    H.shared_sim({ roles = 5000, identities = 50, seed = 5, slow_seconds = 0.001, rate_limit = false },
      function(s) big = s end, { lazy = true })
    H.shared_sim({ roles = 400, identities = 100, seed = 5, slow_seconds = 0.001, rate_limit = false },
      function(s) sim = s end, { reset = true, lazy = true })

    -- A client whose sleeps move the tenant's clock, and a function that
    -- turns the faults off and gives a client for checking.
    local function clients(seed, tenant, opts)
      tenant = tenant or sim
      local c = H.sim_client(tenant, opts or { retries = 6 })
      tenant:configure { faults = mix.faults, fault_seed = seed }
      return c, function()
        tenant:configure { faults = false }
        return H.sim_client(tenant)
      end
    end

    it("lists 5,000 roles, each once", function()
      local c = clients(SEEDS[1], big)
      local seen, n = {}, 0
      for role in c.roles:list { sorters = "created" } do
        assert.is_nil(seen[role.id], "listed twice: " .. role.id)
        seen[role.id], n = true, n + 1
      end
      assert.equal(5000, n)
      assert.is_true(next(big:stats().faults) ~= nil, "faults struck")
    end)

    it("lists 5,000 roles, each once, resuming the listing each time a page runs out of retries", function()
      local c = clients(SEEDS[2], big, { retries = 1 })
      -- one page at a time, so that the faults fall on the same requests each run
      local listing, seen, n, resumed = c.roles:list { sorters = "created", concurrency = 1 }, {}, 0, 0
      while true do
        local ok, err = pcall(function()
          for role in listing do
            assert.is_nil(seen[role.id], "listed twice: " .. role.id)
            seen[role.id], n = true, n + 1
          end
        end)
        if ok then break end
        assert.is_true(isc.is_error(err), tostring(err))
        assert.equal(n, err.read)
        resumed = resumed + 1
      end
      assert.equal(5000, n)
      assert.is_true(resumed > 0, "a page ran out of retries")
    end)

    for _, seed in ipairs(SEEDS) do

      it("creates 100 roles, none twice, each reported as the tenant has it (fault seed " .. seed .. ")", function()
        local owner = H.sim_client(sim).roles:list({ max = 1 }):collect()[1].owner
        local c, quiet = clients(seed)
        local name = function(i) return string.format("Fault %d role %03d", seed, i) end
        local before = sim:stats().mutating
        local done, other = outcomes(100, function(i)
          return c.roles:create { name = name(i), owner = { type = "IDENTITY", id = owner.id } }
        end)
        local checker = quiet()
        local made = 0
        for i = 1, 100 do
          local found = checker.roles:list({ filters = string.format('name eq "%s"', name(i)) }):collect()
          assert.is_true(#found <= 1)
          made = made + #found
          if done[i] then
            assert.equal(1, #found, name(i) .. " was reported created")
            assert.equal(done[i].id, found[1].id)
          elseif other[i].outcome ~= "unknown" then
            assert.equal(0, #found, name(i) .. " was reported " .. other[i].outcome .. ": " .. tostring(other[i]))
          end
        end
        assert.equal(made, sim:stats().mutating - before, "the tenant made each role once")
      end)

      it("bulk-deletes 200 roles and says which are gone (fault seed " .. seed .. ")", function()
        local ids = H.ids_of(H.sim_client(sim).roles:list({ max = 200, offset = 100 }):collect())
        local c, quiet = clients(seed)
        local ok, err = pcall(c.roles.bulk_delete, c.roles, ids)
        sim:advance(60) -- the tenant deletes in the background
        local left = quiet().roles:_by_ids(ids)
        if ok then
          assert.is_nil(next(left), "every role reported deleted is gone")
          return
        end
        assert.is_true(isc.is_error(err), tostring(err))
        assert.equal(#ids, #err.done + #err.not_sent + #err.failed + #err.unknown)
        for _, id in ipairs(err.done) do assert.is_nil(left[id], "reported deleted: " .. id) end
        for _, id in ipairs(err.not_sent) do assert.is_not_nil(left[id], "reported not sent: " .. id) end
        for _, id in ipairs(err.failed) do assert.is_not_nil(left[id], "reported failed: " .. id) end
      end)

      it("bulk-tags 200 roles and reports what the tenant did (fault seed " .. seed .. ")", function()
        local ids = H.ids_of(H.sim_client(sim).roles:list({ max = 200, offset = 100 }):collect())
        local c, quiet = clients(seed)
        local values = { { attribute = "iscFederalClassifications", values = { "secret" } } }
        local ok, job = pcall(c.roles.bulk_update_metadata, c.roles, { ids = ids, operation = "ADD", values = values })
        sim:advance(60) -- the job runs in the background
        local roles = quiet().roles:_by_ids(ids)
        local tagged = 0
        for _, id in ipairs(ids) do
          local amm = roles[id].accessModelMetadata
          for _, attr in ipairs(amm ~= isc.null and amm.attributes or {}) do
            for _, v in ipairs(attr.key == "iscFederalClassifications" and attr.values or {}) do
              if v.value == "secret" then tagged = tagged + 1 end
            end
          end
        end
        if ok then
          assert.equal(200, #ids)
          assert.equal(#ids, tagged, "reported started: every role is tagged")
          assert.is_true(job.id ~= nil or job.verified == true)
        else
          assert.is_string(job.outcome, tostring(job))
          if job.outcome ~= "unknown" then assert.equal(0, tagged, "reported " .. job.outcome) end
        end
      end)

      it("propagates and waits, starting one propagation at most (fault seed " .. seed .. ")", function()
        local c, quiet = clients(seed)
        local prefix = "POST /v2026/role-propagation"
        local before = sim:stats().mutating
        local ok, status = pcall(c.propagation.run, c.propagation, { interval = 2, timeout = 3600 })
        local checker = quiet()
        local started = sim:stats().mutating - before
        assert.is_true(H.hits(sim, prefix) <= 1, "the start was sent once")
        if ok then
          assert.equal(1, started)
          assert.equal("SUCCEEDED", status.executionStage)
          assert.equal(status.executionStage, checker.propagation:status(status.id).executionStage)
        else
          assert.is_true(isc.is_error(status), tostring(status))
          if status.outcome == "failed" then assert.equal(0, started, "reported not started: " .. tostring(status)) end
        end
      end)
    end
  end)
end
