-- Requests in flight together: tasks on the event loop, listings that read
-- ahead, c:each, and the client's pacing under the tenant's rate limit.
-- The simulator's latency makes overlap visible in its stats
-- (in_flight_max); the limiter's windows run on its clock.
local H = require "helpers"
local isc = require "isc"
local core = require "isc.core"
local loop = require "isc.loop"

local ids = H.ids_of

describe("tasks on the event loop", function()
  local sim
  H.shared_sim({ roles = 60, seed = 3, rate_limit = false, latency_ms = 80 }, function(s) sim = s end, { reset = true })

  it("keep their requests in flight together, and join returns what each returned", function()
    local c = H.sim_client(sim, { rate_limit = false })
    local first = c.roles:list { limit = 3, max = 3 }:collect()
    local before = sim:stats().requests
    local tasks = {}
    for i = 1, 3 do tasks[i] = isc.spawn(function() return c.roles:get(first[i].id).name end) end
    for i = 1, 3 do assert.equal(first[i].name, tasks[i]:join()) end
    assert.equal(3, sim:stats().requests - before)
    assert.equal(3, sim:stats().in_flight_max)
  end)

  it("wake in the order their timers end, while the caller sleeps on the loop", function()
    local order = {}
    local a = isc.spawn(function() isc.sleep(0.03); order[#order + 1] = "a" end)
    local b = isc.spawn(function() isc.sleep(0.01); order[#order + 1] = "b" end)
    a:join(); b:join()
    assert.same({ "b", "a" }, order)
  end)

  it("raise a task's error at join, and a cancelled task's as kind cancelled", function()
    local c = H.sim_client(sim, { rate_limit = false })
    local bad = isc.spawn(function() return c.roles:get("2c9180835d2e5168015d32f890ca1581") end)
    local err = H.catch(bad.join, bad)
    assert.equal(404, err.status)
    local slow = isc.spawn(function() return c.roles:get("any") end)
    slow:cancel()
    assert.equal("cancelled", H.catch(slow.join, slow).kind)
    assert.equal(0, core.loop_running())
  end)

  it("share one token request among tasks that start together", function()
    local c = H.sim_client(sim, { rate_limit = false })
    local before = sim:stats().tokens_issued
    local results = c:each({ 1, 2, 3, 4 }, function() return c:request("GET", "/v2024/roles", { query = { limit = 1 } })[1].id end)
    assert.equal(4, results.n)
    assert.equal(1, sim:stats().tokens_issued - before)
  end)

  it("are stopped all at once by an interrupt in one of them", function()
    local c = H.sim_client(sim, { rate_limit = false })
    c:request("GET", "/v2024/roles", { query = { limit = 1 } }) -- the token, first
    local before = sim:stats().requests
    local stop = setmetatable({ kind = "interrupted", message = "interrupted by SIGINT" }, core.error_mt)
    local err = H.catch(c.each, c, { 1, 2, 3, 4, 5, 6 }, function(i)
      if i == 3 then error(stop, 0) end
      return c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    end, { concurrency = 3 })
    assert.equal("interrupted", err.kind)
    -- item 3 stopped, items 1 and 2 were in flight: maybe done, maybe not
    local unfinished = {}
    for i, u in ipairs(err.unfinished) do unfinished[i] = u.index end
    assert.same({ 1, 2, 3 }, unfinished)
    assert.equal(0, loop.live())
    assert.equal(0, core.loop_running())
    -- items 1 and 2 were on their way; nothing was sent after the stop
    assert.is_true(sim:stats().requests - before <= 2)
  end)
end)

describe("c:each", function()
  local sim
  H.shared_sim({ roles = 40, seed = 4, rate_limit = false, latency_ms = 60 }, function(s) sim = s end, { reset = true })

  it("runs fn for every item, `concurrency` at a time, results by item position", function()
    local c = H.sim_client(sim, { rate_limit = false })
    local roles = c.roles:list { limit = 12 , max = 12 }:collect()
    local before = sim:stats().requests
    local names = c:each(roles, function(role, i) return i .. ":" .. c.roles:get(role.id).name end,
      { concurrency = 4 })
    assert.equal(12, names.n)
    for i, role in ipairs(roles) do assert.equal(i .. ":" .. role.name, names[i]) end
    assert.equal(12, sim:stats().requests - before)
    assert.equal(4, sim:stats().in_flight_max)
  end)

  it("collects each item's error without stopping the others", function()
    local c = H.sim_client(sim, { rate_limit = false })
    local good = c.roles:list { limit = 2 }:collect()
    local list = { good[1].id, "2c9180835d2e5168015d32f890ca1581", good[2].id }
    local results, failures = c:each(list, function(id) return c.roles:get(id).id end)
    assert.equal(good[1].id, results[1])
    assert.equal(good[2].id, results[3])
    assert.equal(1, #failures)
    assert.equal(2, failures[1].index)
    assert.equal(list[2], failures[1].item)
    assert.equal(404, failures[1].error.status)
  end)

  it("takes its items from a listing, reading it as it goes", function()
    local c = H.sim_client(sim, { rate_limit = false })
    local seen = c:each(c.roles:list { limit = 10 }, function(role) return role.id end, { concurrency = 3 })
    assert.equal(40, seen.n)
    assert.same(ids(c.roles:list {}:collect()), { table.unpack(seen, 1, seen.n) })
  end)

  it("refuses a concurrency below 1 and items it cannot read", function()
    local c = H.sim_client(sim)
    assert.equal("argument", H.catch(c.each, c, {}, print, { concurrency = 0 }).kind)
    assert.equal("argument", H.catch(c.each, c, 42, print).kind)
  end)
end)

describe("a listing reading ahead", function()
  local sim
  H.shared_sim({ roles = 1000, seed = 6, rate_limit = false, latency_ms = 40 }, function(s) sim = s end,
    { reset = true })

  it("keeps `concurrency` pages in flight once the total is known, and hands every item once, in order", function()
    local c = H.sim_client(sim, { rate_limit = false })
    local sequential = ids(c.roles:list { concurrency = 1 }:collect())
    assert.equal(1, sim:stats().in_flight_max)
    sim:reset()
    local before = sim:stats().requests
    local ahead = ids(c.roles:list { concurrency = 4 }:collect())
    assert.same(sequential, ahead)
    assert.equal(1000, #ahead)
    assert.equal(4, sim:stats().in_flight_max)
    assert.equal(20, sim:stats().requests - before) -- no page asked twice, none past the end
  end)

  it("asks the first page for the total only when something uses it", function()
    local urls = {}
    local c = H.sim_client(sim, { rate_limit = false, trace = function(line) urls[#urls + 1] = line end })
    local function first_page(opts)
      urls = {}
      opts.max = 5
      c.roles:list(opts):collect()
      for _, line in ipairs(urls) do
        if line:find("/v2024/roles?", 1, true) then return line end
      end
    end
    assert.matches("count=true", first_page {})                 -- reading pages ahead needs it
    assert.matches("count=true", first_page { concurrency = 1, on_page = function() end })
    assert.not_matches("count=true", first_page { concurrency = 1 })
  end)

  it("reads no further than max, and drops what it read ahead when closed", function()
    local c = H.sim_client(sim, { rate_limit = false })
    c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    local before = sim:stats().requests
    assert.equal(250, #c.roles:list { limit = 50, max = 250 }:collect())
    assert.equal(5, sim:stats().requests - before)
    local listing = c.roles:list { limit = 50 }
    listing()
    listing:close()
    assert.equal(0, core.loop_running())
  end)

  it("resumes after a page that failed, with nothing lost or repeated", function()
    local c = H.sim_client(sim, { rate_limit = false, retries = 0 })
    local want = ids(c.roles:list {}:collect())
    -- the page at offset 300 fails while the pages after it are read ahead
    sim:configure { faults = "http503=1", fault_match = "offset=300&" }
    local listing, got = c.roles:list { sorters = "name", concurrency = 4 }, {}
    local ok, err = pcall(function()
      for role in listing do got[#got + 1] = role.id end
    end)
    assert.is_false(ok)
    assert.equal(503, err.status)
    assert.equal(300, err.read)
    sim:configure { faults = false }
    for role in listing do got[#got + 1] = role.id end
    table.sort(want)
    table.sort(got)
    assert.same(want, got)
  end)
end)

describe("the client's rate limiter", function()
  local sim
  H.shared_sim({ roles = 20, seed = 8, rate_limit = "10/10s" }, function(s) sim = s end,
    { reset = true, freeze = true })

  it("paces requests so that a run alone meets no 429", function()
    local c, slept = H.sim_client(sim, { rate_limit = { requests = 10, per = 10 } })
    for _ = 1, 35 do c:request("GET", "/v2024/roles", { query = { limit = 1 } }) end
    assert.equal(0, sim:stats().rate_limited)
    assert.equal(3, #slept) -- one wait per window after the first
    for _, s in ipairs(slept) do assert.is_true(s > 9 and s <= 10.5) end
  end)

  it("is what keeps those 429s away", function()
    local c = H.sim_client(sim, { rate_limit = false })
    for _ = 1, 35 do c:request("GET", "/v2024/roles", { query = { limit = 1 } }) end
    assert.is_true(sim:stats().rate_limited > 0)
  end)

  it("backs off when 429s come anyway (another process on the same client id), then recovers", function()
    local other = H.sim_client(sim, { rate_limit = false })
    for _ = 1, 10 do other:request("GET", "/v2024/roles", { query = { limit = 1 } }) end
    local c, slept = H.sim_client(sim, { rate_limit = { requests = 10, per = 10 } })
    c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    assert.equal(1, sim:stats().rate_limited) -- the Retry-After was waited, then it went through
    assert.equal(5, c.limiter.keys.v2024.allowed)
    for _ = 1, 20 do c:request("GET", "/v2024/roles", { query = { limit = 1 } }) end
    assert.equal(1, sim:stats().rate_limited)
    assert.is_true(c.limiter.keys.v2024.allowed > 5)
    assert.is_true(#slept >= 4)
  end)

  it("checks its settings", function()
    assert.matches("rate_limit must be", H.catch(isc.client, { base_url = sim.url, client_id = "x",
      client_secret = "y", rate_limit = { requests = 0, per = 10 } }).message)
  end)
end)
