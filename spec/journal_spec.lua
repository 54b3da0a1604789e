-- The journal (README: The journal): a client with one appends a JSON line
-- for every change it sends, with the roles as they were just before, the
-- outcome as the retry policy tells it, and no secret; `isclua journal FILE`
-- sums it up.
local isc = require "isc"
local core = require "isc.core"
local config = require "isc.config"
local journal = require "isc.journal"
local H = require "helpers"
local run = require "cron_run"

-- The lines of a journal file, each decoded; fails on a line that is not JSON.
local function lines(path)
  local out = {}
  for text in H.slurp(path):gmatch("[^\n]+") do
    local line = core.json_decode(text)
    assert.is_table(line, "not a JSON line: " .. text)
    out[#out + 1] = line
  end
  return out
end

-- The field of each line, in order.
local function column(list, field)
  local out = {}
  for i, line in ipairs(list) do out[i] = line[field] end
  return out
end

-- A resolved loss is worth a warning in a real run; here it is the point.
local log = require "isc.log"
setup(function() log.configure { level = "error" } end)
teardown(function() log.configure() end)

describe("a client's journal", function()
  local sim
  H.shared_sim({ roles = 30, identities = 20, seed = 8, bulk_delete_seconds = 0, bulk_update_stage_seconds = 0 },
    function(s) sim = s end, { reset = true, freeze = true, clock = 1786000000 })

  -- A client of the simulator writing the journal at a fresh path.
  local function journaled(opts)
    local path = run.temp_path("changes.jsonl")
    local o = { journal = path }
    for k, v in pairs(opts or {}) do o[k] = v end
    return H.sim_client(sim, o), path
  end

  local function some_roles(n)
    return H.sim_client(sim).roles:list({ sorters = "created", max = n }):collect()
  end

  it("appends one JSON line per change sent: when, what, the outcome and the answer", function()
    local c, path = journaled()
    local r = some_roles(6)
    local owner = { type = "IDENTITY", id = r[1].owner.id }
    local made = c.roles:create { name = "Journaled Role", owner = owner }
    c.roles:patch(made.id, { { op = "replace", path = "/description", value = "journaled" } })
    c.roles:add_metadata(r[2].id, "iscPrivacy", "public")
    c.roles:remove_metadata(r[2].id, "iscPrivacy", "public")
    c.roles:delete(r[3].id)
    c.roles:bulk_delete { r[4].id, r[5].id }
    c.roles:bulk_update_metadata { ids = { r[6].id }, operation = "ADD",
      values = { { attribute = "iscCsp", values = { "staging" } } } }
    local got = lines(path)
    assert.same({ "create", "patch", "add_metadata", "remove_metadata", "delete", "bulk_delete", "bulk_metadata" },
      column(got, "action"))
    assert.same({ 1, 2, 3, 4, 5, 6, 7 }, column(got, "seq"))
    assert.same({ "POST", "PATCH", "POST", "DELETE", "DELETE", "POST", "POST" }, column(got, "method"))
    assert.same({ "done", "done", "done", "done", "done", "done", "done" }, column(got, "outcome"))
    assert.same({ 201, 200, 200, 202, 204, 202, 202 }, column(got, "status"))
    assert.same({ made.id, made.id, r[2].id, r[2].id, r[3].id }, { table.unpack(column(got, "role"), 1, 5) })
    assert.equal("2026-08-06T07:06:40.000Z", got[1].time, "the client's clock, as ISO 8601 UTC")
    assert.equal(got[1].run, got[7].run)
    assert.equal("/v2024/roles/" .. r[2].id .. "/access-model-metadata/iscPrivacy/values/public", got[3].path)
    assert.same({ "iscPrivacy", "public" }, { got[3].key, got[3].value })
    assert.same({ name = "Journaled Role", owner = owner }, got[1].body)
    assert.equal(H.canon(made), H.canon(got[1].response))
    assert.same({ { op = "replace", path = "/description", value = "journaled" } }, got[2].body)
  end)

  it("keeps each role as it was just before a change, read with GETs that change nothing", function()
    local c, path = journaled()
    local r = some_roles(5)
    local before = sim:stats()
    c.roles:patch(r[1].id, { { op = "replace", path = "/requestable", value = not r[1].requestable } })
    c.roles:add_metadata(r[2].id, "costCenter", "cc2000")
    c.roles:delete(r[3].id)
    c.roles:bulk_delete { r[4].id, r[5].id }
    local got = lines(path)
    assert.equal(H.canon(r[1]), H.canon(got[1].before))
    assert.equal(H.canon(r[2]), H.canon(got[2].before))
    assert.equal(H.canon(r[3]), H.canon(got[3].before))
    assert.equal(H.canon({ r[4], r[5] }), H.canon(got[4].before), "a bulk change keeps every role it names")
    local after = sim:stats()
    assert.equal(4, after.mutating - before.mutating, "the before-images are no changes")
    assert.equal(3, H.hits(sim, "GET /v2024/roles/{id}"), "one GET before each change to one role")
    assert.equal(1, (after.by_route["GET /v2024/roles"] or 0) - (before.by_route["GET /v2024/roles"] or 0),
      "one listing by ids (50 to a page) before the bulk delete")
  end)

  it("reads the before-images as any GET: retried after a 503", function()
    local c, path = journaled { retries = 8 }
    local r = some_roles(5)
    sim:configure { faults = "http503=0.5", fault_seed = 3, fault_match = "^GET /v2024/roles/" }
    for _, role in ipairs(r) do
      c.roles:patch(role.id, { { op = "replace", path = "/description", value = "after some 503s" } })
    end
    assert.is_true((sim:stats().faults.http503 or 0) > 0, "a 503 struck a before-image GET")
    for i, line in ipairs(lines(path)) do assert.equal(H.canon(r[i]), H.canon(line.before)) end
  end)

  it("says what became of changes that were refused, not sent or lost", function()
    local c, path = journaled { retries = 0 }
    local r = some_roles(2)
    local owner = { type = "IDENTITY", id = r[1].owner.id }
    H.catch(c.roles.create, c.roles, { name = r[1].name, owner = owner })
    sim:configure { faults = "http429=1" }
    H.catch(c.roles.patch, c.roles, r[2].id, { { op = "replace", path = "/description", value = "x" } })
    sim:configure { faults = "http504_after=1", fault_match = "^PATCH " }
    local patched = c.roles:patch(r[2].id, { { op = "replace", path = "/description", value = "lost answer" } })
    local got = lines(path)
    assert.same({ "failed", "not_sent", "unknown", "done" }, column(got, "outcome"))
    assert.same({ "api", 400 }, { got[1].error.kind, got[1].error.status })
    assert.equal(429, got[2].error.status)
    assert.equal("unknown_outcome", got[3].error.kind)
    assert.equal(504, got[3].error.cause.status)
    assert.same({ resolves = got[3].seq, outcome = "done" }, { resolves = got[4].resolves, outcome = got[4].outcome },
      "the patch helper read the role back and the journal says what it found")
    assert.equal(H.canon(patched), H.canon(got[4].response))
    local read = journal.read(path)
    assert.equal(3, #read.entries, "a resolution is no call of its own")
    assert.equal("done", read.entries[3].outcome)
    assert.equal("lost answer", read.entries[3].response.description)
  end)

  it("records what a bulk delete found of a batch whose answer was lost", function()
    local c, path = journaled()
    local ids = H.ids_of(some_roles(3))
    sim:configure { faults = "http504_after=1", fault_match = "bulk%-delete" }
    c.roles:bulk_delete(ids, { settle = 0 })
    local got = lines(path)
    assert.equal("unknown", got[1].outcome)
    assert.same({ resolves = 1, outcome = "done", done = ids, unknown = {} },
      { resolves = got[2].resolves, outcome = got[2].outcome, done = got[2].done, unknown = got[2].unknown })
  end)

  it("is created readable by its owner alone, whatever the umask", function()
    local path = run.temp_path("umask.jsonl")
    local code = H.sh("umask 000 && " .. H.shell_quote(H.bin) .. " --journal " .. H.shell_quote(path)
      .. " -e " .. H.shell_quote("require('isc').client{base_url = 'http://127.0.0.1:1', token = 't'}"))
    assert.equal(0, code)
    assert.equal(tonumber("600", 8), (core.file_mode(path)))
  end)

  it("appends to a journal, and closes a line a killed run cut short so that the next one stands apart", function()
    local c, path = journaled()
    local r = some_roles(2)
    c.roles:patch(r[1].id, { { op = "replace", path = "/description", value = "first run" } })
    local f = assert(io.open(path, "ab"))
    f:write('{"action":"patch","method":"PATCH","path":"/v2024/ro')
    f:close()
    local again = H.sim_client(sim, { journal = path })
    again.roles:patch(r[2].id, { { op = "replace", path = "/description", value = "second run" } })
    local read = journal.read(path)
    assert.same({ 2 }, read.damaged)
    assert.same({ r[1].id, r[2].id }, column(read.entries, "role"))
    assert.are_not.equal(read.entries[1].run, read.entries[2].run)
  end)

  it("holds no secret: not the client secret, the token, nor the Authorization header", function()
    local status, _, text = core.http_new({}):perform { method = "POST", url = sim.url .. "/oauth/token",
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
      body = "grant_type=client_credentials&client_id=" .. sim.client_id .. "&client_secret=" .. sim.client_secret }
    assert.equal(200, status)
    local token = core.json_decode(text).access_token
    local path = run.temp_path("secrets.jsonl")
    local by_token = isc.client { base_url = sim.url, token = token, journal = path }
    local by_secret = H.sim_client(sim, { journal = path })
    local r = some_roles(2)
    by_token.roles:patch(r[1].id, { { op = "replace", path = "/description", value = "by token" } })
    by_secret.roles:patch(r[2].id, { { op = "replace", path = "/description", value = "by secret" } })
    H.catch(by_secret.request, by_secret, "POST", "/v2024/no-such-thing",
      { body = { client_secret = sim.client_secret, note = "kept" } })
    local text_of_journal = H.slurp(path)
    assert.equal(3, #lines(path))
    assert.is_nil(text_of_journal:find(sim.client_secret, 1, true))
    assert.is_nil(text_of_journal:find(token, 1, true))
    assert.is_nil(text_of_journal:lower():find("bearer", 1, true))
    assert.is_nil(text_of_journal:lower():find("authorization\"", 1, true))
    assert.same({ client_secret = "***", note = "kept" }, lines(path)[3].body, "other calls' secrets are masked")
  end)

  it("under --dry-run, writes what would have been sent, marked as such, and sends nothing", function()
    local c, path = journaled()
    local r = some_roles(2)
    local before = sim:stats().mutating
    config.process.dry_run = true
    local ok, err = pcall(function()
      c.roles:patch(r[1].id, { { op = "replace", path = "/description", value = "rehearsed" } })
      c.roles:delete(r[2].id)
    end)
    config.process.dry_run = false
    assert(ok, err)
    local got = lines(path)
    assert.same({ true, true }, column(got, "dry_run"))
    assert.same({ "not_sent", "not_sent" }, column(got, "outcome"))
    assert.equal(H.canon(r[1]), H.canon(got[1].before), "reads still go to the tenant")
    assert.equal(before, sim:stats().mutating)
  end)

  it("is summed up per role by `isclua journal FILE`", function()
    local c, path = journaled { retries = 0 }
    local r = some_roles(4)
    local made = c.roles:create { name = "Summed Up", owner = { type = "IDENTITY", id = r[1].owner.id } }
    c.roles:patch(made.id, { { op = "replace", path = "/description", value = "x" },
      { op = "replace", path = "/revokeRequestConfig", value = r[1].revocationRequestConfig } })
    c.roles:add_metadata(made.id, "iscPrivacy", "internal")
    c.roles:bulk_delete { r[2].id, r[3].id }
    H.catch(c.roles.create, c.roles, { name = r[4].name, owner = { type = "IDENTITY", id = r[1].owner.id } })
    local code, out = H.isclua { "journal", path }
    assert.equal(0, code)
    assert.matches(path:gsub("%p", "%%%0") .. ": 5 calls from 2026%-08%-06T07:06:40%.000Z to [%d:.TZ-]+; 4 done, 1 failed, "
      .. "0 not sent, 0 unknown, 0 dry run\n", out)
    assert.matches('role ' .. made.id .. ' "Summed Up"\n  [^\n]+  created\n  [^\n]+  patched description, '
      .. 'revocationRequestConfig\n  [^\n]+  metadata added: iscPrivacy=internal\n', out)
    assert.matches('role ' .. r[2].id .. ' "' .. r[2].name:gsub("%p", "%%%0") .. '"\n  [^\n]+  deleted %(bulk delete of 2%)', out)
    assert.matches("created %[FAILED: A role named", out)
  end)
end)
