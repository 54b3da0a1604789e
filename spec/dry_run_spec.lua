-- --dry-run: changes are logged, not sent, and what a script gets back has
-- the shape of the tenant's answer, so the script runs on as it would.
local isc = require "isc"
local config = require "isc.config"
local H = require "helpers"

describe("a rehearsal (--dry-run)", function()
  local sim, c
  H.shared_sim({ roles = 80, seed = 4 }, function(s) sim = s end, { reset = true })
  setup(function() require("isc.log").configure { level = "error" } end)
  before_each(function()
    c = H.sim_client(sim)
    config.process.dry_run = true
  end)
  after_each(function() config.process.dry_run = false end)
  teardown(function() require("isc.log").configure() end)

  it("can be asked about, as isc.dry_run and c.dry_run", function()
    assert.is_true(isc.dry_run)
    assert.is_true(c.dry_run)
    config.process.dry_run = false
    assert.is_false(isc.dry_run)
    assert.is_false(c.dry_run)
  end)

  it("gives a propagation run the final status of one that succeeded, and starts none", function()
    local status = c.propagation:run { timeout = 60 }
    assert.equal("SUCCEEDED", status.executionStage)
    assert.equal("COMPLETED", status.status)
    assert.is_true(status.dry_run)
    assert.equal("dry-run", c.propagation:start().rolePropagationId)
    assert.equal(0, sim:stats().mutating)
  end)

  it("gives a patch the role as the patch would leave it, and changes nothing", function()
    local role = c.roles:list({ max = 1 }):collect()[1]
    local patched = c.roles:patch(role.id, { { op = "replace", path = "/description", value = "rehearsed" } })
    assert.equal("rehearsed", patched.description)
    assert.equal(role.name, patched.name)
    assert.is_true(patched.dry_run)
    assert.equal(role.description, c.roles:get(role.id).description)
  end)

  it("gives bulk deletes and bulk updates the tasks and jobs ISC answers with", function()
    local ids = H.ids_of(c.roles:list({ max = 60 }):collect())
    local task, tasks = c.roles:bulk_delete(ids)
    assert.same({ "TASK_RESULT", "dry-run", isc.null, true }, { task.type, task.id, task.name, task.dry_run })
    assert.equal(2, #tasks)
    local job = c.roles:bulk_update_metadata { ids = ids, operation = "ADD",
      values = { { attribute = "iscPrivacy", values = { "public" } } } }
    assert.same({ "ROLE", "CREATED", true }, { job.type, job.status, job.dry_run })
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", job.created)
    assert.is_false(c.propagation:set_config({ enabled = false }).enabled)
    assert.is_true(c.propagation:config().enabled, "the tenant's switch did not move")
    assert.equal(0, sim:stats().mutating)
  end)

  it("runs the README's propagation snippet to its end", function()
    config.process.dry_run = false
    local code, stdout = H.isclua({ "--sim", "--dry-run", "-e", [[
local c = require("isc").client()
local status = c.propagation:run{ timeout = 4 * 3600 }   -- start, then wait
if status.executionStage ~= "SUCCEEDED" then
  print("propagation ended " .. status.executionStage .. ": " .. tostring(status.failureReason))
end
print("done", status.executionStage)]] })
    assert.equal(0, code)
    assert.equal("done\tSUCCEEDED\n", stdout)
  end)
end)
