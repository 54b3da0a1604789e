-- Cron mode: stable exit codes, one run at a time under --lock, a deadline
-- with --timeout, and rehearsals with --dry-run. Each run is a real isclua
-- process; the ones that must be held open or signalled run on a terminal.
local core = require "isc.core"
local cli = require "isc.cli"
local H = require "helpers"
local run = require "cron_run"
local pty = require "repl_pty"

-- A run that holds the lock until it is told to finish (a line typed at it).
local function holder(lock_file)
  local p = pty.isclua { "--lock", lock_file, "-e", 'print("holding the lock") io.read()' }
  assert(p:expect("holding the lock"), "the first run should have started")
  return p
end

local function finish(p)
  p:send("\n")
  return (p:wait())
end

describe("exit codes", function()
  local sim
  H.shared_sim({ roles = 5, seed = 3 }, function(s) sim = s end, { lazy = true })

  it("are documented in --help and fixed in isc.cli", function()
    assert.same({
      ok = 0, script_error = 1, usage = 2, api = 3, network = 4, timeout = 5, already_running = 6,
      unknown_outcome = 7, interrupted = 130, terminated = 143,
    }, cli.exit_codes)
    local help = run.run({ "--help" }).stdout
    assert.matches("0 ok, 1 script error, 2 usage, 3 ISC API error, 4 network error,%s+5 timeout, "
      .. "6 already running, 7 a change's outcome is unknown %(look before%s+running again%), "
      .. "130 interrupted %(SIGINT%), 143 terminated %(SIGTERM%)", help)
  end)

  it("7: a change was sent and what the tenant did with it is unknown", function()
    local r = run.run({ "--sim=--faults http504_after=1 --fault-match ^POST", "-e",
      "local c = require('isc').client(); c.roles:create{name = 'Lost', owner = {id = 'x'}}" })
    assert.equal(7, r.code)
    assert.matches("outcome unknown: POST /v2024/roles was sent and the gateway answered 504", r.stderr)
  end)

  it("0: the run succeeded", function()
    local r = run.run { "-e", "print('done')" }
    assert.equal(0, r.code)
    assert.equal("done\n", r.stdout)
  end)

  it("1: the script raised an error", function()
    local r = run.run { "-e", "error('the script broke')" }
    assert.equal(1, r.code)
    assert.matches("the script broke", r.stderr)
  end)

  it("2: the command line is wrong", function()
    assert.equal(2, run.run({ "--no-such-option" }).code)
    assert.equal(2, run.run({ "--timeout", "soon" }).code)
    assert.equal(2, run.run({ "--log-format", "xml" }).code)
    assert.equal(2, run.run({ "--lock-wait", "5", "-e", "x = 1" }).code)
  end)

  it("3: ISC answered with an error", function()
    local r = run.run({ "-e", "require('isc').client().roles:get('2c9180no0such0role0000000000000')" },
      run.tenant_env(sim))
    assert.equal(3, r.code)
    assert.matches("HTTP 404", r.stderr)
  end)

  it("4: the tenant could not be reached", function()
    local r = run.run { "-e", [[
      local c = require("isc").client { base_url = "http://127.0.0.1:1", client_id = "a", client_secret = "b", retries = 0 }
      c:request("GET", "/v2024/roles")]] }
    assert.equal(4, r.code)
    assert.matches("network error", r.stderr)
  end)

  it("5: the run reached its --timeout", function()
    local r = run.run { "--timeout", "0.2", "-e", "require('isc').sleep(60)" }
    assert.equal(5, r.code)
  end)

  it("6: another run holds the lock", function()
    local lock_file = run.temp_path("nightly.lock")
    local first = holder(lock_file)
    assert.equal(6, run.run({ "--lock", lock_file, "-e", "x = 1" }).code)
    assert.equal(0, finish(first))
  end)

  it("130 and 143: the run was stopped by SIGINT or SIGTERM", function()
    for signal, code in pairs { [2] = 130, [15] = 143 } do
      local p = pty.isclua { "-e", "print('sleeping') require('isc').sleep(60)" }
      assert(p:expect("sleeping"))
      p:signal(signal)
      assert.equal(code, (p:wait()))
    end
  end)
end)

describe("--lock FILE", function()
  local lock_file

  before_each(function()
    lock_file = run.temp_path("nightly.lock")
  end)

  it("lets one run in; a concurrent one exits at once with code 6 and one line naming the holder", function()
    local first = holder(lock_file)
    local second = run.run { "--lock", lock_file, "-e", "print('second run')" }
    assert.equal(6, second.code)
    assert.equal("", second.stdout)
    assert.equal(1, #second.lines)
    assert.equal(string.format("isclua: already running: pid %d holds the lock %s", first:pid(), lock_file),
      second.lines[1])
    assert.equal(0, finish(first))
    -- The lock is free again once the first run has ended.
    assert.equal(0, run.run({ "--lock", lock_file, "-e", "x = 1" }).code)
  end)

  it("is never left behind by a run that crashed", function()
    local crashed = holder(lock_file)
    local pid = crashed:pid()
    crashed:signal(9)
    assert.equal(128 + 9, (crashed:wait()))
    -- The file is still there, naming the dead run, and blocks nobody.
    local f = assert(io.open(lock_file))
    assert.equal(tostring(pid), f:read("l"))
    f:close()
    local next_run = run.run { "--lock", lock_file, "-e", "print('next run')" }
    assert.equal(0, next_run.code)
    assert.equal("next run\n", next_run.stdout)
  end)

  it("in a directory that does not exist, says how to make it", function()
    local r = run.run { "--lock", "/nonexistent-isclua/locks/job.lock", "-e", "print('ran')" }
    assert.equal(1, r.code)
    assert.equal("", r.stdout)
    assert.matches("the directory /nonexistent-isclua/locks does not exist; create it (mkdir -p /nonexistent-isclua/locks)",
      r.stderr, 1, true)
  end)

  it("with --lock-wait, waits for the run holding it to finish", function()
    local first = holder(lock_file)
    local second = pty.isclua { "--lock", lock_file, "--lock-wait", "60", "-e", "print('second run')" }
    assert(second:expect("waiting for it"), "the second run should say it waits")
    assert.equal(0, finish(first))
    assert(second:expect("second run"))
    assert.equal(0, (second:wait()))
  end)

  it("with --lock-wait, gives up with code 6 when the wait ends first", function()
    local first = holder(lock_file)
    local second = run.run { "--lock", lock_file, "--lock-wait", "0.2", "-e", "x = 1" }
    assert.equal(6, second.code)
    assert.matches("already running: pid %d+ holds the lock .* %(waited 0.2 s%)", second.stderr)
    assert.equal(0, finish(first))
  end)

  it("counts waiting for the lock against --timeout", function()
    local first = holder(lock_file)
    local second = run.run { "--lock", lock_file, "--lock-wait", "60", "--timeout", "0.3", "-e", "x = 1" }
    assert.equal(5, second.code)
    assert.equal(0, finish(first))
  end)

  it("is an flock: a second holder in the same process is refused until the first releases", function()
    local a, b = core.lock_open(lock_file), core.lock_open(lock_file)
    assert.is_true(a:acquire())
    local got, pid = b:acquire(0)
    assert.is_false(got)
    assert.equal(core.getpid(), pid)
    assert.equal("isc.lock(" .. lock_file .. ", held)", tostring(a))
    a:release()
    assert.is_true(b:acquire(0))
    a:close()
    b:close()
    assert.equal("isc.lock(" .. lock_file .. ", closed)", tostring(b))
  end)
end)

describe("--timeout SECONDS", function()
  it("stops a run blocked in a sleep, with its own code and message", function()
    local r = run.run { "--timeout", "0.2", "-e", "require('isc').sleep(60)" }
    assert.equal(5, r.code)
    assert.equal("isclua: the run reached its --timeout of 0.2 s and was stopped\n", r.stderr)
  end)

  it("stops Lua code that never calls isc", function()
    assert.equal(5, run.run({ "--timeout", "0.2", "-e", "while true do end" }).code)
  end)

  it("stops a script that catches the interrupt: it cannot carry on", function()
    local r = run.run { "--timeout", "0.2", "-e", "pcall(require('isc').sleep, 60) print('carried on')" }
    assert.equal(5, r.code)
    assert.equal("", r.stdout)
    assert.equal("isclua: the run reached its --timeout of 0.2 s and was stopped\n", r.stderr)
  end)

  it("does nothing to a run that ends in time", function()
    assert.equal(0, run.run({ "--timeout", "60", "-e", "x = 1" }).code)
  end)
end)

describe("--dry-run", function()
  local sim
  H.shared_sim({ roles = 12, seed = 5 }, function(s) sim = s end, { lazy = true })

  it("logs every mutating call instead of sending it, while reads still reach the tenant", function()
    local script = [[
      local c = require("isc").client()
      local n = 0
      for _ in c.roles:list() do n = n + 1 end
      local first = c.roles:list():next()
      local created = c.roles:create { name = "Rehearsed", owner = first.owner }
      c.roles:patch(first.id, { { op = "replace", path = "/description", value = "rehearsed" } })
      c.roles:delete(first.id)
      print(n, first.id, created.dry_run, created.name)
    ]]
    local before = sim:stats()
    local r = run.run({ "--dry-run", "--log-format", "json", "-e", script }, run.tenant_env(sim))
    local after = sim:stats()
    assert.equal(0, r.code)
    local n, id, marked, name = r.stdout:match("^(%d+)\t(%w+)\t(%a+)\t(.-)\n$")
    assert.equal("12", n)
    assert.equal("true", marked)
    assert.equal("Rehearsed", name)
    -- Nothing changed at the tenant; the listings did reach it.
    assert.equal(before.mutating, after.mutating)
    assert.equal(0, after.mutating)
    assert.is_true(after.requests > before.requests)

    local rehearsed, bodies = {}, {}
    for _, line in ipairs(r.lines) do
      local entry = assert(core.json_decode(line))
      if entry.message == "dry run: not sent" then
        rehearsed[#rehearsed + 1] = entry.fields.method .. " " .. entry.fields.path
        bodies[#bodies + 1] = entry.fields.body
      end
    end
    assert.same({ "POST /v2024/roles", "PATCH /v2024/roles/" .. id, "DELETE /v2024/roles/" .. id }, rehearsed)
    assert.equal("Rehearsed", bodies[1].name)
    assert.equal("/description", bodies[2][1].path)
  end)
end)

describe("examples/cron/nightly-roles.lua", function()
  local sim, c, empty
  H.shared_sim({ roles = 6, seed = 9 }, function(s)
    sim = s
    c = require("isc").client { base_url = sim.url, client_id = sim.client_id, client_secret = sim.client_secret }
    local owner = c.roles:list():next().owner
    empty = c.roles:create { name = "Grants Nothing", owner = owner, enabled = true }
  end, { lazy = true })

  it("rehearsed with --dry-run, reports the role it would disable and changes nothing", function()
    local before = sim:stats().mutating
    local r = run.run({ "--dry-run", "--lock", run.temp_path("nightly.lock"), "--timeout", "600",
      "examples/cron/nightly-roles.lua" }, run.tenant_env(sim))
    assert.equal(0, r.code)
    assert.equal("id,name\n" .. empty.id .. ',"Grants Nothing"\n', r.stdout)
    assert.equal(before, sim:stats().mutating)
    assert.is_true(c.roles:get(empty.id).enabled)
  end)
end)
