-- `isclua undo FILE` (README: The journal): puts the roles a journaled run
-- changed back as they were, newest change first; refuses a role changed
-- since unless --force; survives a run killed with SIGKILL; leaves dry runs
-- alone; journals itself, so an undo can be undone.
local core = require "isc.core"
local journal = require "isc.journal"
local H = require "helpers"
local run = require "cron_run"

-- A nightly job gone wrong: it creates, patches, tags and deletes roles.
-- The roles are those of the seeded tenant below, sorted by creation.
local NIGHTLY = [[
local c = require("isc").client()
local r = c.roles:list({ sorters = "created" }):collect()
local owner = { type = "IDENTITY", id = r[1].owner.id }
local made = c.roles:create { name = "Nightly New Role", owner = owner, description = "made tonight" }
c.roles:patch(made.id, { { op = "replace", path = "/requestable", value = true } })
c.roles:add_metadata(made.id, "iscPrivacy", "public")
c.roles:patch(r[2].id, { { op = "replace", path = "/description", value = "rewritten" },
  { op = "replace", path = "/enabled", value = false } })
c.roles:patch(r[2].id, { { op = "replace", path = "/description", value = "rewritten twice" } })
c.roles:add_metadata(r[3].id, "iscFederalClassifications", "secret")
c.roles:add_metadata(r[21].id, "iscPrivacy", "private") -- replaces its single value "internal"
c.roles:remove_metadata(r[10].id, "iscCsp", "production")
c.roles:bulk_update_metadata { ids = { r[11].id, r[23].id }, operation = "REPLACE",
  values = { { attribute = "costCenter", values = { "cc3000" } } } }
c.roles:patch(r[7].id, { { op = "replace", path = "/description", value = "about to go" } })
c.roles:delete(r[7].id)
c.roles:delete(r[9].id)
c.roles:bulk_delete { r[14].id, r[15].id }
]]

-- Writes a script to a fresh file; returns its path.
local function script(text)
  return H.write(run.temp_path("job.lua"), text)
end

-- The tenant's roles by id, without their dates.
local function roles_now(sim)
  local out = {}
  for _, role in ipairs(H.sim_client(sim).roles:list({ sorters = "created" }):collect()) do
    role.created, role.modified = nil, nil
    out[role.id] = role
  end
  return out
end

-- The roles an undo report says it created again: old id -> new id.
local function recreated(report)
  local map = {}
  for old, new in report:gmatch('created again: %b"" was (%x+) and is now (%x+)') do map[old] = new end
  return map
end

-- Asserts that the tenant holds the roles it held before, with the same
-- ids but for those created again under new ones (renamed: old -> new).
local function assert_same_roles(before, now, renamed)
  local left = {}
  for id, role in pairs(now) do left[id] = role end
  for id, role in pairs(before) do
    local found = left[renamed[id] or id]
    assert.is_table(found, "the role " .. role.name .. " is missing")
    found.id = id
    assert.equal(H.canon(role), H.canon(found))
    left[renamed[id] or id] = nil
  end
  assert.is_nil(next(left), "no role the tenant did not have before")
end

describe("isclua undo", function()
  local sim, env
  H.shared_sim({ roles = 30, identities = 20, seed = 8, bulk_delete_seconds = 0, bulk_update_stage_seconds = 0 },
    function(s)
      sim = s
      env = run.tenant_env(s)
    end, { reset = true })

  -- Runs the nightly job with a journal; returns the journal's path.
  local function nightly(...)
    local path = run.temp_path("nightly.jsonl")
    local argv = { "--journal", path, ... }
    argv[#argv + 1] = script(NIGHTLY)
    local r = run.run(argv, env)
    assert.equal(0, r.code, r.stderr)
    return path
  end

  local function undo(...)
    return run.run({ "undo", ... }, env)
  end

  it("puts the tenant's roles back as they were after a job that created, patched, tagged and deleted them", function()
    local before = roles_now(sim)
    local path = nightly()
    assert.equal(13, #journal.read(path).entries)
    local r = undo(path)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("15 reverted, 0 skipped, 0 refused, 0 failed\n", r.stdout)
    local renamed = recreated(r.stdout)
    local n = 0
    for _ in pairs(renamed) do n = n + 1 end
    assert.equal(4, n, "the four deleted roles are created again, and the report names each")
    assert.matches("not restored for roles created again: its id, its created date", r.stdout)
    assert_same_roles(before, roles_now(sim), renamed)
  end)

  it("creates a deleted role again from its before-image, then adds its metadata value by value", function()
    local tagged = H.sim_client(sim).roles:list({ sorters = "created" }):collect()[9]
    local path = nightly()
    local mutating = sim:stats().mutating
    local r = undo(path, "--only", tagged.id)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local own = journal.read(path .. ".undo").entries
    assert.same({ "create", "add_metadata" }, { own[1].action, own[2].action })
    assert.is_nil(own[1].body.id, "ISC refuses an id on create")
    assert.is_nil(own[1].body.accessModelMetadata, "and any metadata")
    assert.same({ "iscFederalClassifications", "topSecret" }, { own[2].key, own[2].value })
    assert.equal(2, sim:stats().mutating - mutating)
  end)

  it("refuses a role changed since the journal, unless --force", function()
    local original = roles_now(sim)
    local path = nightly()
    local r2 = H.sim_client(sim).roles:list({ sorters = "created", max = 2 }):collect()[2]
    H.sim_client(sim).roles:patch(r2.id, { { op = "replace", path = "/description", value = "someone else's" } })
    local r = undo(path)
    assert.equal(1, r.code)
    assert.matches('refused +role ' .. r2.id .. ' "Customer Support Auditor" %(patch [^)]+%): changed since the '
      .. 'journal %(description is not what the patch left%); %-%-force reverts it anyway', r.stdout)
    assert.matches('skipped +role ' .. r2.id .. ' "Customer Support Auditor" %(patch [^)]+%): a newer change to '
      .. 'this role was not reverted', r.stdout)
    assert.equal("someone else's", roles_now(sim)[r2.id].description)
    r = undo(path, "--force")
    assert.equal(0, r.code, r.stdout)
    assert.equal(H.canon(original[r2.id]), H.canon(roles_now(sim)[r2.id]))
  end)

  it("reverts only the fields a patch touched: a change elsewhere in the role stays", function()
    local path = nightly()
    local r2 = H.sim_client(sim).roles:list({ sorters = "created", max = 2 }):collect()[2]
    H.sim_client(sim).roles:patch(r2.id, { { op = "replace", path = "/requestable", value = not r2.requestable } })
    local r = undo(path, "--only", r2.id)
    assert.equal(0, r.code, r.stdout)
    local now = roles_now(sim)[r2.id]
    assert.equal(not r2.requestable, now.requestable)
    assert.is_true(now.enabled)
  end)

  it("puts a field that was null back to null", function()
    local keep = H.sim_client(sim, { keep_nulls = true })
    local role = keep.roles:list({ sorters = "created", max = 1 }):collect()[1]
    keep.roles:patch(role.id, { { op = "replace", path = "/description", value = core.null } })
    local path = run.temp_path("null.jsonl")
    local r = run.run({ "--journal", path, script(string.format(
      "require('isc').client().roles:patch(%q, {{op = 'replace', path = '/description', value = 'set tonight'}})",
      role.id)) }, env)
    assert.equal(0, r.code, r.stderr)
    r = undo(path)
    assert.equal(0, r.code, r.stdout)
    assert.equal(core.null, keep.roles:get(role.id).description)
    -- with a replace by null, as ISC takes it, not a remove of a field ISC always sends
    local sent = journal.read(path .. ".undo").entries[1]
    assert.equal("PATCH", sent.method)
    assert.equal('[{"op":"replace","path":"/description","value":null}]', core.json_encode(sent.body, { sort_keys = true }))
  end)

  it("works from the journal of a run killed with SIGKILL mid-way", function()
    local before = roles_now(sim)
    local path, marker = run.temp_path("killed.jsonl"), run.temp_path("three-changes-made")
    local job = script([[
      local isc = require "isc"
      local c = isc.client()
      local r = c.roles:list({ sorters = "created", max = 4 }):collect()
      c.roles:patch(r[2].id, { { op = "replace", path = "/description", value = "half done" } })
      c.roles:add_metadata(r[3].id, "iscPrivacy", "public")
      c.roles:delete(r[4].id)
      assert(io.open(arg[1], "w")):close()
      isc.sleep(600)
      c.roles:delete(r[1].id)
    ]])
    local q = H.shell_quote
    local code, out = H.sh(string.format("%s --journal %s %s %s & pid=$!; n=0; "
      .. "while [ ! -e %s ] && [ $n -lt 3000 ]; do sleep 0.01; n=$((n+1)); done; "
      .. "kill -KILL $pid; wait $pid; echo \"status $?\"",
      q(H.bin), q(path), q(job), q(marker), q(marker)), { env = env })
    assert.equal(0, code)
    assert.equal("status 137\n", out, "killed by SIGKILL after its third change")
    local f = assert(io.open(path, "ab"))
    f:write('{"action":"delete","method":"DELETE","path":"/v2024/roles/2c91') -- as a kill mid-write leaves it
    f:close()
    local text, complete = H.slurp(path), 0
    for line in text:gmatch("([^\n]*)\n") do
      assert.is_table(core.json_decode(line), "every complete line is JSON: " .. line)
      complete = complete + 1
    end
    assert.equal(3, complete)
    local r = undo(path)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("3 reverted, 0 skipped, 0 refused, 0 failed; left aside: 1 damaged lines\n", r.stdout)
    assert_same_roles(before, roles_now(sim), recreated(r.stdout))
  end)

  it("does nothing with the journal of a --dry-run, which is marked as such", function()
    local before, mutating = roles_now(sim), sim:stats().mutating
    local path = nightly("--dry-run")
    for _, e in ipairs(journal.read(path).entries) do
      assert.is_true(e.dry_run, e.action)
      assert.equal("not_sent", e.outcome)
    end
    local r = undo(path)
    assert.equal(0, r.code, r.stdout)
    assert.matches("  nothing to undo\n0 reverted, 0 skipped, 0 refused, 0 failed; left aside: 13 from dry runs "
      .. "%(nothing was sent%)", r.stdout)
    assert.equal(mutating, sim:stats().mutating)
    assert_same_roles(before, roles_now(sim), {})
  end)

  it("with --dry-run says what it would revert, and changes nothing", function()
    local path = nightly()
    local after, mutating = roles_now(sim), sim:stats().mutating
    local rehearsal = undo(path, "--dry-run", "--journal", path .. ".rehearsal")
    assert.equal(0, rehearsal.code, rehearsal.stdout .. rehearsal.stderr)
    assert.matches("newest change first %(dry run: nothing is changed%):", rehearsal.stdout)
    assert.matches("15 would revert, 0 skipped, 0 refused, 0 failed\n", rehearsal.stdout)
    assert.equal(mutating, sim:stats().mutating)
    assert_same_roles(after, roles_now(sim), {})
    for _, e in ipairs(journal.read(path .. ".rehearsal").entries) do assert.is_true(e.dry_run) end
    assert.matches("15 reverted, 0 skipped", undo(path).stdout, "the undo does what its rehearsal said")
  end)

  it("journals itself, so that an undo can be undone", function()
    local path = nightly()
    local after = roles_now(sim)
    local first = undo(path)
    assert.equal(0, first.code, first.stdout)
    assert.matches("this undo's own changes are in " .. (path .. ".undo"):gsub("%p", "%%%0"), first.stdout)
    for _, e in ipairs(journal.read(path .. ".undo").entries) do assert.equal(path, e.undo_of) end
    local second = undo(path .. ".undo")
    assert.equal(0, second.code, second.stdout)
    local renamed = recreated(second.stdout)
    local made
    for id, role in pairs(after) do
      if role.name == "Nightly New Role" then made = id end
    end
    assert.is_string(renamed[made], "the role the job made is made again")
    assert_same_roles(after, roles_now(sim), renamed)
    assert.matches("already gone", undo(path).stdout, "a role the journal made and is gone needs nothing")
  end)

  it("reverts only the changes made since a time, or to given roles", function()
    local c = H.sim_client(sim, { journal = run.temp_path("two.jsonl") })
    local path = c.journal.path
    local r = c.roles:list({ sorters = "created", max = 2 }):collect()
    c.roles:patch(r[1].id, { { op = "replace", path = "/description", value = "early" } })
    sim:advance(3600)
    local since = require("isc.sim.clock").iso(sim:now() - 60)
    c.roles:patch(r[2].id, { { op = "replace", path = "/description", value = "late" } })
    local out = undo(path, "--since", since)
    assert.matches("1 reverted, 0 skipped, 0 refused, 0 failed; left aside: 1 older than %-%-since", out.stdout)
    assert.equal("early", roles_now(sim)[r[1].id].description)
    assert.equal(r[2].description, roles_now(sim)[r[2].id].description)
    out = undo(path, "--only", r[1].id)
    assert.matches("1 reverted", out.stdout)
    assert.equal(r[1].description, roles_now(sim)[r[1].id].description)
  end)

  it("says how it is used, and refuses a wrong command line with code 2", function()
    local help = undo("--help")
    assert.equal(0, help.code)
    assert.matches("usage: isclua undo FILE %[options%]", help.stdout)
    assert.equal(2, undo().code)
    assert.equal(2, undo("j.jsonl", "--since", "yesterday").code)
    assert.equal(2, undo("j.jsonl", "--only").code)
    assert.equal(2, undo("j.jsonl", "--bogus").code)
    assert.equal(1, undo((run.temp_path("missing.jsonl"))).code, "a journal that cannot be read")
  end)
end)
