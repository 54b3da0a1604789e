-- Stops that hold: after SIGINT, SIGTERM or --timeout a script run ends with
-- its exit code, however the script catches errors; at the prompt Ctrl-C
-- still stops only the call it lands in. Each run is a real isclua on a
-- terminal of its own, signalled only once it has printed that it reached
-- the code under test.
local H = require "helpers"
local pty = require "repl_pty"
local run = require "cron_run"

-- A script file holding src.
local function script(src)
  return H.write(run.temp_path("script.lua"), src)
end

-- Starts isclua with args, waits for the script to print "looping", sends
-- it signal sig (none: let the run end by itself) and returns its exit
-- code and everything it showed after "looping".
local function stop(args, sig, env)
  local p = pty.isclua(args, env)
  assert(p:expect("looping"), "the script should have reached its loop")
  if sig then p:signal(sig) end
  local code, shown = p:wait()
  p:close()
  return code, shown
end

-- Calls to the tenant, each in a pcall that swallows whatever it raises.
local catching_loop = [[
  local c = require("isc").client()
  local id = c.roles:list():next().id
  local calls = 0
  while true do
    pcall(c.roles.get, c.roles, id)
    calls = calls + 1
    if calls == 1 then print("looping") end
  end
]]

-- The message printed when the watchdog, not the script, ended the run.
local watchdog_note = "the script did not stop within"

describe("a stopped script run", function()
  local sim
  -- No rate limit: the scripts call the tenant in a tight loop, in real time.
  H.shared_sim({ roles = 5, seed = 11, rate_limit = false }, function(s) sim = s end, { lazy = true })

  it("ends on SIGINT (130) or SIGTERM (143) although it catches every error of its isc calls", function()
    local path = script(catching_loop)
    for sig, expected in pairs { [2] = { 130, "SIGINT" }, [15] = { 143, "SIGTERM" } } do
      local code, shown = stop({ path }, sig, run.tenant_env(sim))
      assert.equal(expected[1], code)
      assert.matches("isclua: interrupted by " .. expected[2] .. "\r\n", shown)
      assert.is_nil(shown:find(watchdog_note, 1, true), "the script should have unwound by itself")
    end
  end)

  it("ends at its --timeout with code 5 although it catches every error", function()
    local code, shown = stop({ "--timeout", "1", script(catching_loop) }, nil, run.tenant_env(sim))
    assert.equal(5, code)
    assert.matches("isclua: the run reached its %-%-timeout of 1 s and was stopped\r\n", shown)
    assert.is_nil(shown:find(watchdog_note, 1, true))
  end)

  it("ends plain Lua code that catches the interrupt and starts again", function()
    local code, shown = stop({ "-e", [[
      local first = true
      while true do
        pcall(function()
          if first then print("looping") first = false end
          while true do end -- where the signal lands
        end)
      end]] }, 15)
    assert.equal(143, code)
    assert.matches("isclua: interrupted by SIGTERM\r\n", shown)
    assert.is_nil(shown:find(watchdog_note, 1, true))
  end)

  it("runs the script's <close> handlers, isc's closers inside its pcall, and releases its --lock", function()
    local lock_file, dir = run.temp_path("nightly.lock")
    local inner_lock, closed = dir .. "/inner.lock", dir .. "/closed"
    local path = script(string.format([[
      local core, isc = require "isc.core", require "isc"
      local marker <close> = setmetatable({}, { __close = function()
        local f = assert(io.open(%q, "w")) f:write("closed") f:close()
      end })
      local first = true
      while true do
        pcall(function()
          local lock <close> = core.lock_open(%q)
          lock:acquire()
          if first then print("looping") first = false end
          isc.sleep(600) -- where the signal lands, the lock held
        end)
      end]], closed, inner_lock))
    local code = stop({ "--lock", lock_file, path }, 15)
    assert.equal(143, code)
    assert.equal("closed", H.slurp(closed))
    -- A lock released empties its file; a run that was killed leaves its pid.
    assert.equal("", H.slurp(inner_lock))
    assert.equal("", H.slurp(lock_file))
  end)

  it("cannot start another isc call: each raises at once, even where the hook does not reach", function()
    -- Lua code in a coroutine started before the stop runs on, but every isc
    -- call it makes fails at once instead of sleeping.
    local code, shown = stop({ "-e", [[
      coroutine.wrap(function()
        print("looping")
        for _ = 1, 3 do
          local ok, err = pcall(require("isc").sleep, 600)
          print("caught: " .. err.kind)
        end
      end)()]] }, 15)
    assert.equal(143, code)
    local _, caught = shown:gsub("caught: interrupted\r\n", "")
    assert.equal(3, caught)
    assert.matches("isclua: interrupted by SIGTERM\r\n", shown)
  end)

  it("is ended a second after the signal, with the same code, when the script does not unwind", function()
    local code, shown = stop({ "-e", [[
      coroutine.wrap(function()
        print("looping")
        while true do end
      end)()]] }, 15)
    assert.equal(143, code)
    assert.matches("isclua: interrupted by SIGTERM; the script did not stop within 1 s\r\n", shown)
  end)
end)

describe("a stopped c:each", function()
  local sim
  -- Answers that take 300 ms, so that the stop lands while changes are in flight.
  H.shared_sim({ roles = 40, seed = 12, rate_limit = false, latency_ms = 300 }, function(s) sim = s end,
    { lazy = true })

  it("cancels every task: nothing is sent after Ctrl-C, and the run ends with 130", function()
    local path = script([[
      local c = require("isc").client()
      local ids = {}
      for role in c.roles:list { sorters = "name" } do ids[#ids + 1] = role.id end
      c:each(ids, function(id, i)
        if i == 8 then print("looping") end -- four done, four more on their way
        c.roles:patch(id, { { op = "replace", path = "/description", value = "stopped" } })
      end, { concurrency = 4 })
      print("finished")
    ]])
    local code, shown = stop({ path }, 2, run.tenant_env(sim))
    assert.equal(130, code)
    assert.matches("isclua: interrupted by SIGINT", shown)
    assert.is_nil(shown:find("finished", 1, true))
    local patched = H.hits(sim, "PATCH /v2024/roles/{id}")
    assert.is_true(patched >= 4 and patched <= 8, "patches sent: " .. patched)
  end)

  it("at the prompt, leaves no task behind to go on with the next command", function()
    local before = H.hits(sim, "PATCH /v2024/roles/{id}")
    local p = pty.isclua({ "-i" }, run.tenant_env(sim))
    assert(p:expect("\n> "), "no prompt")
    p:send("c = isc.client() ids = {} for r in c.roles:list() do ids[#ids + 1] = r.id end "
      .. "c:each(ids, function(id, i) if i == 8 then print('loop' .. 'ing') end "
      .. "c.roles:patch(id, { { op = 'add', path = '/description', value = 'prompt' } }) end, { concurrency = 4 })\r")
    assert(p:expect("looping"))
    p:send("\3")
    assert(p:expect("\n> "))
    -- what was on its way when the stop came may still reach the tenant;
    -- after that, a second of the loop running sends nothing more
    p:send("isc.sleep(0.5) print('tasks', require('isc.loop').live())\r")
    assert.matches("tasks\t0\r\n", assert(p:expect("\n> ")))
    local after_stop = H.hits(sim, "PATCH /v2024/roles/{id}")
    p:send("isc.sleep(1) print('slept')\r")
    assert(p:expect("slept"))
    assert.equal(after_stop, H.hits(sim, "PATCH /v2024/roles/{id}"))
    assert.is_true(after_stop - before <= 8, "patches sent: " .. after_stop - before)
    p:close()
  end)
end)

describe("Ctrl-C at the prompt", function()
  it("stops only the call it lands in, after a script run held stops; the next calls work", function()
    -- -i: the -e chunk is a script run, the prompt follows it.
    local p = pty.isclua { "-i", "-e", "ran = true" }
    assert(p:expect("\n> "), "no prompt")
    p:send("ok, err = pcall(function() print('sleeping') isc.sleep(600) end) "
      .. "print(err.kind) isc.sleep(0) print('next call works')\r")
    assert(p:expect("sleeping\r\n"))
    p:send("\3")
    assert.matches("interrupted\r\nnext call works\r\n", assert(p:expect("\n> ")))
    p:send("print(ran, 1 + 2)\r")
    assert.matches("true\t3\r\n", assert(p:expect("\n> ")))
    p:close()
  end)
end)
