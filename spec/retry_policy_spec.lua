-- The retry policy and what a client reports of a mutation: a request is
-- sent again only when that is safe, and an answer that was lost is said to
-- be lost, never taken for a failure or a success.
local isc = require "isc"
local core = require "isc.core"
local H = require "helpers"

describe("the retry policy", function()
  local sim, owner
  H.shared_sim({ roles = 60, identities = 20, seed = 11 }, function(s) sim = s end, { reset = true })

  before_each(function()
    owner = owner or H.sim_client(sim):request("GET", "/v2024/roles", { query = { limit = 1 } })[1].owner
  end)

  -- Roles of that name on the tenant, read with faults off.
  local function named(name)
    local faults = sim:config().faults
    sim:configure { faults = false }
    local page = H.sim_client(sim):request("GET", "/v2024/roles", { query = { filters = string.format("name eq %q", name) } })
    sim:configure { faults = faults or false }
    return #page
  end

  local function create(c, name)
    return c:request("POST", "/v2024/roles", { body = { name = name, owner = owner } })
  end

  it("retries a GET after 500, 503, 504 and a reset until it is answered", function()
    sim:configure { faults = "http500=0.2,http503=0.2,http504_after=0.2,reset=0.1", fault_seed = 4 }
    local c, slept = H.sim_client(sim, { retries = 8 })
    for _ = 1, 10 do
      assert.equal(5, #c:request("GET", "/v2024/roles", { query = { limit = 5 } }))
    end
    local faults = sim:stats().faults
    assert.is_true(faults.http500 > 0 and faults.http503 > 0 and faults.http504_after > 0 and faults.reset > 0)
    assert.is_true(#slept >= faults.http500 + faults.http503 + faults.http504_after,
      "a backoff before each retry (libcurl resends a GET on a dead reused connection by itself)")
  end)

  it("retries any request on 429, since ISC did nothing", function()
    sim:configure { faults = "http429=0.5", fault_seed = 2 }
    local c = H.sim_client(sim, { retries = 8 })
    for i = 1, 8 do create(c, "After Some 429s " .. i) end
    assert.is_true((sim:stats().faults.http429 or 0) > 0)
    for i = 1, 8 do assert.equal(1, named("After Some 429s " .. i)) end
  end)

  it("never sends a creating POST twice: a 504 after the change is an unknown outcome", function()
    sim:configure { faults = "http504_after=1" }
    local c = H.sim_client(sim)
    local err = H.catch(create, c, "Created Behind A 504")
    assert.is_true(isc.is_error(err, "unknown_outcome"))
    assert.equal(504, err.status)
    assert.equal("unknown", err.outcome)
    assert.same({ method = "POST", path = "/v2024/roles", body = { name = "Created Behind A 504", owner = owner } },
      err.request)
    assert.matches("^outcome unknown: POST /v2024/roles was sent and the gateway answered 504", tostring(err))
    assert.equal(1, H.hits(sim, "POST /v2024/roles"))
    assert.equal(1, named("Created Behind A 504"))
  end)

  it("reports a creating POST whose connection was reset after sending as an unknown outcome", function()
    local c = H.sim_client(sim)
    c:request("GET", "/v2024/roles", { query = { limit = 1 } }) -- a live connection to reuse
    sim:configure { faults = "reset_after=1" }
    local err = H.catch(create, c, "Created Then Reset")
    assert.is_true(isc.is_error(err, "unknown_outcome"))
    assert.equal("reset", err.cause.cause)
    assert.equal(1, H.hits(sim, "POST /v2024/roles"), "sent once, not resent by libcurl")
    assert.equal(1, named("Created Then Reset"))
  end)

  it("reports a cut-off answer to a PATCH as an unknown outcome, and does not resend it", function()
    local c = H.sim_client(sim)
    local role = c:request("GET", "/v2024/roles", { query = { limit = 1 } })[1]
    sim:configure { faults = "truncate_after=1" }
    local err = H.catch(c.request, c, "PATCH", "/v2024/roles/" .. role.id, {
      body = isc.array { { op = "replace", path = "/description", value = "patched once" } },
      content_type = "application/json-patch+json" })
    assert.is_true(isc.is_error(err, "unknown_outcome"))
    assert.equal(1, H.hits(sim, "PATCH /v2024/roles/{id}"))
  end)

  it("says a mutation that could not reach the tenant was not sent", function()
    local c = isc.client { base_url = "http://127.0.0.1:1", token = "t", retries = 0 }
    local err = H.catch(c.request, c, "POST", "/v2024/roles", { body = { name = "x" } })
    assert.is_true(isc.is_error(err, "network"))
    assert.is_false(err.sent)
    assert.equal("not_sent", err.outcome)
  end)

  it("says a mutation the tenant refused failed", function()
    local c = H.sim_client(sim)
    local err = H.catch(c.request, c, "POST", "/v2024/roles", { body = { name = "No Owner" } })
    assert.equal(400, err.status)
    assert.equal("failed", err.outcome)
  end)

  it("does not resend a creating POST after a 503, but does resend a read sent as POST", function()
    sim:configure { faults = "http503=1" }
    local c = H.sim_client(sim, { retries = 2 })
    local err = H.catch(create, c, "Never Made")
    assert.is_true(isc.is_error(err, "unknown_outcome"))
    assert.equal(1, H.hits(sim, "POST /v2024/roles"))
    H.catch(c.request, c, "POST", "/v2024/roles/filter", { body = {}, read_only = true })
    assert.equal(3, H.hits(sim, "POST /v2024/roles/filter"))
  end)

  it("sends a request that is not safe to repeat on a connection that never carried one", function()
    -- libcurl resends, silently, a request whose reused connection dies
    -- before an answer: with reset_after, the tenant would see it twice.
    local conn = core.http_new()
    local auth = { Authorization = "Bearer " .. require("sim_api").new(sim):token(),
      ["Content-Type"] = "application/json" }
    local function post(fresh)
      local before = H.hits(sim, "POST /v2024/roles/filter")
      assert.equal(200, (conn:perform { url = sim.url .. "/v2024/roles?limit=1", headers = auth }))
      sim:configure { faults = "reset_after=1" }
      local status, err = conn:perform { method = "POST", url = sim.url .. "/v2024/roles/filter", body = "{}",
        headers = auth, fresh = fresh }
      sim:configure { faults = false }
      assert.is_nil(status)
      assert.is_true(err.sent)
      return H.hits(sim, "POST /v2024/roles/filter") - before
    end
    -- (once per kept-alive connection it holds to the host, so at least twice)
    assert.is_true(post(false) >= 2, "libcurl's own resend on a reused connection")
    assert.equal(1, post(true))
    conn:close()
  end)
end)

describe("the helpers, when the answer to a change is lost", function()
  local sim, c, owner
  -- Each resolved loss logs a warning; here it is the point, not news.
  setup(function() require("isc.log").configure { level = "error" } end)
  teardown(function() require("isc.log").configure() end)
  H.shared_sim({ roles = 120, identities = 20, seed = 13, propagation_stage_seconds = 5 }, function(s) sim = s end,
    { reset = true })

  -- Faults of one kind on the requests matching pattern; the client's first
  -- backoff turns them off, so what it then asks to look is answered.
  local function fail(fault, pattern)
    sim:configure { faults = fault .. "=1", fault_match = pattern }
  end
  before_each(function()
    c = H.sim_client(sim, { sleep = function(s)
      sim:configure { faults = false }
      sim:advance(s)
    end })
    owner = owner or c.roles:list({ max = 1 }):collect()[1].owner
  end)

  it("roles:create finds the role it made by its name and returns it", function()
    fail("reset_after", "^POST ")
    local role = c.roles:create { name = "Made In The Dark", owner = owner }
    assert.is_string(role.id)
    assert.equal("Made In The Dark", role.name)
    assert.equal(1, H.hits(sim, "POST /v2024/roles"))
  end)

  it("roles:create says it most likely made nothing when no role has the name", function()
    fail("http503", "^POST ")
    local err = H.catch(c.roles.create, c.roles, { name = "Not Made", owner = owner })
    assert.is_true(isc.is_error(err, "unknown_outcome"))
    assert.equal('no role named "Not Made" exists now, so it was most likely not created', err.checked)
    assert.equal(0, #c.roles:list({ filters = 'name eq "Not Made"' }):collect())
  end)

  it("roles:patch reads the role back and returns it when the change shows", function()
    local id = c.roles:list({ max = 1 }):collect()[1].id
    fail("truncate_after", "^PATCH ")
    local role = c.roles:patch(id, { { op = "replace", path = "/description", value = "seen after the loss" } })
    assert.equal("seen after the loss", role.description)
    assert.equal(1, H.hits(sim, "PATCH /v2024/roles/{id}"))
  end)

  it("roles:patch leaves an array change it cannot read back unknown", function()
    local id = c.roles:list({ max = 1 }):collect()[1].id
    fail("http504_after", "^PATCH ")
    local err = H.catch(c.roles.patch, c.roles, id, { { op = "remove", path = "/segments/0" } })
    assert.is_true(isc.is_error(err, "unknown_outcome"))
    assert.matches("cannot be read back", err.checked)
  end)

  it("roles:delete takes a 404 after an attempt whose answer was lost as done", function()
    local id = c.roles:list({ max = 1 }):collect()[1].id
    fail("reset_after", "^DELETE ")
    c.roles:delete(id)
    assert.is_true(H.hits(sim, "DELETE /v2024/roles/{id}") >= 2, "a DELETE is safe to send again")
    assert.equal(404, H.catch(c.roles.get, c.roles, id).status)
    assert.equal(404, H.catch(c.roles.delete, c.roles, id).status, "a plain 404 is still an error")
  end)

  it("roles:bulk_delete sees the roles of a batch go and counts them done", function()
    local ids = H.ids_of(c.roles:list({ max = 70 }):collect())
    fail("http504_after", "bulk%-delete")
    local task, tasks = c.roles:bulk_delete(ids)
    assert.equal("TASK_RESULT", task.type, "the second batch was answered")
    assert.equal(1, #tasks, "the first batch's task was lost with its answer")
    assert.equal(2, H.hits(sim, "POST /v2024/roles/bulk-delete"), "each batch sent once")
    sim:advance(5) -- the answered batch is deleted in the background
    assert.same({}, c.roles:_by_ids(ids))
  end)

  it("roles:bulk_delete reports ids it could not see go as unknown after `settle` seconds", function()
    local ids = H.ids_of(c.roles:list({ max = 10 }):collect())
    sim:configure { bulk_delete_seconds = 3600 }
    fail("reset_after", "bulk%-delete")
    local err = H.catch(c.roles.bulk_delete, c.roles, ids, { settle = 6 })
    assert.is_true(isc.is_error(err, "unknown_outcome"))
    assert.same(ids, err.unknown)
    assert.same({}, err.done)
    assert.matches("10 roles in 1 batches: 0 done, 0 not sent, 0 failed, 10 unknown", err.message, 1, true)
  end)

  it("roles:bulk_update_metadata finds the job it started among the unfinished ones", function()
    local ids = H.ids_of(c.roles:list({ max = 5 }):collect())
    fail("reset_after", "bulk%-update/ids")
    local job = c.roles:bulk_update_metadata { ids = ids, operation = "ADD",
      values = { { attribute = "iscPrivacy", values = { "public" } } } }
    assert.is_string(job.id)
    assert.equal(job.id, c.roles:bulk_update_status(job.id).id)
  end)

  it("propagation:start sees the propagation it started in is-running, and run waits for it", function()
    fail("http504_after", "^POST /v2026/role%-propagation$")
    local final = c.propagation:run { interval = 2 }
    assert.equal("SUCCEEDED", final.executionStage)
    assert.equal(1, H.hits(sim, "POST /v2026/role-propagation"))
  end)

  it("propagation:start says none was started when none runs after a lost answer", function()
    fail("http503", "^POST /v2026/role%-propagation$")
    local err = H.catch(c.propagation.start, c.propagation)
    assert.is_true(isc.is_error(err, "api"))
    assert.equal("failed", err.outcome)
    assert.matches("none was started", err.message)
  end)

  it("propagation:start says another is running when one ran before it", function()
    local first = c.propagation:start().rolePropagationId
    fail("http504_after", "^POST /v2026/role%-propagation$")
    local err = H.catch(c.propagation.start, c.propagation)
    assert.is_true(isc.is_error(err, "already_running"))
    assert.equal(first, err.running_id)
  end)
end)

describe("a client's transport", function()
  it("refuses http:// to another host, which would send the secret in clear", function()
    local err = H.catch(isc.client, { base_url = "http://isc.example.com", client_id = "a", client_secret = "s3cr3t" })
    assert.is_true(isc.is_error(err, "config"))
    assert.matches("would send the client secret and the token in clear; use https://", err.message, 1, true)
    assert.is_nil(tostring(err):find("s3cr3t", 1, true))
    local c = isc.client { base_url = "http://isc.example.com", client_id = "a", client_secret = "b",
      allow_insecure_http = true }
    assert.equal("http://isc.example.com", c.base_url)
    for _, url in ipairs { "http://localhost:8765", "http://127.0.0.2:80", "http://[::1]:8765" } do
      assert.equal(url, isc.client { base_url = url, token = "t" }.base_url)
    end
  end)
end)
