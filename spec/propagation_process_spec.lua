-- The wait as an isclua user meets it: Ctrl-C and SIGTERM in the middle of a
-- wait, and the progress line on a terminal (and its absence elsewhere), each
-- in a child isclua with an embedded simulator. (The examples that propagate
-- are checked in examples_spec.lua.)
local H = require "helpers"

-- A script that starts a propagation whose stages last an hour, says so once
-- the wait has begun, and waits.
local LONG_WAIT = [[
local c = require("isc").client()
c.propagation:run { interval = 60, on_progress = function(st)
  print("waiting: " .. st.executionStage)
  io.stdout:flush()
end }
print("the wait ended")
]]

-- Runs a script in isclua --sim, signals it once its wait has begun, and
-- returns the exit code, the rest of stdout and stderr.
local function interrupt(signal)
  local script = H.write(os.tmpname(), LONG_WAIT)
  local errfile = os.tmpname()
  -- The shell prints its pid, then becomes isclua: that pid is isclua's.
  local p = assert(io.popen(string.format("echo $$; exec %s %s %s 2>%s", H.shell_quote(H.bin),
    H.shell_quote("--sim=--propagation-stage-seconds 3600"), H.shell_quote(script), H.shell_quote(errfile))))
  local pid = assert(tonumber(p:read("l")))
  assert.equal("waiting: PENDING", p:read("l"))
  assert(os.execute(string.format("kill -%s %d", signal, pid)))
  local rest = p:read("a")
  local _, how, code = p:close()
  local err = H.slurp(errfile)
  os.remove(script)
  os.remove(errfile)
  assert.equal("exit", how)
  return code, rest, err
end

describe("a wait in isclua", function()
  it("stops at once on Ctrl-C (SIGINT) with exit code 130 and a one-line message", function()
    local code, rest, err = interrupt("INT")
    assert.equal(130, code)
    assert.equal("", rest, "the script does not go on after the wait")
    assert.equal("isclua: interrupted by SIGINT\n", err)
  end)

  it("stops at once on SIGTERM with exit code 143", function()
    local code, rest, err = interrupt("TERM")
    assert.equal(143, code)
    assert.equal("", rest)
    assert.equal("isclua: interrupted by SIGTERM\n", err)
  end)

  describe("without on_progress", function()
    -- Waits on the embedded simulator, jumping its clock instead of sleeping.
    local QUICK_WAIT = [[
local sim = require("isc.sim").embedded
local c = require("isc").client { sleep = function(s) sim:advance(s) end, clock = function() return sim:now() end }
local st = c.propagation:run { interval = 2 }
print("result: " .. st.executionStage)
]]

    -- Runs a script in isclua --sim on a pseudo-terminal (script(1));
    -- returns the exit code and all the terminal showed.
    local function on_terminal(text)
      local script = H.write(os.tmpname(), text)
      local inner = string.format("%s %s %s", H.shell_quote(H.bin),
        H.shell_quote("--sim=--propagation-stage-seconds 10"), H.shell_quote(script))
      local code, out = H.sh("script -qec " .. H.shell_quote(inner) .. " /dev/null")
      os.remove(script)
      return code, out
    end

    it("shows the stage and the elapsed time on one line on a terminal, then ends that line", function()
      local code, out = on_terminal(QUICK_WAIT)
      assert.equal(0, code)
      local id = out:match("\rrole propagation (%x+): PENDING %(0m00s%)\27%[K")
      assert.truthy(id, "the first stage is drawn: " .. out)
      assert.truthy(out:find("\rrole propagation " .. id .. ": DATA_AGGREGATION_RUNNING (", 1, true))
      assert.truthy(out:find("\rrole propagation " .. id .. ": SUCCEEDED (0m", 1, true))
      -- the line is ended before the script prints again (the terminal adds \r)
      assert.truthy(out:find("\27[K\r\nresult: SUCCEEDED", 1, true), out)
    end)

    it("draws nothing on a terminal when progress lines are switched off", function()
      local code, out = on_terminal('require("isc.progress").enabled = false\n' .. QUICK_WAIT)
      assert.equal(0, code)
      assert.equal("result: SUCCEEDED\r\n", out)
    end)

    it("draws nothing when stderr is not a terminal (cron, pipes), and logs each stage instead", function()
      local script = H.write(os.tmpname(), QUICK_WAIT)
      local code, out, err = H.isclua { "--sim=--propagation-stage-seconds 10", script }
      os.remove(script)
      assert.equal(0, code)
      assert.equal("result: SUCCEEDED\n", out)
      assert.is_nil(err:find("\r", 1, true))
      local stages = {}
      for stage in err:gmatch("info: role propagation stage [^\n]*stage=(%u[%u_]*)") do stages[#stages + 1] = stage end
      assert.same({ "PENDING", "DATA_AGGREGATION_RUNNING", "LAUNCH_PROVISIONING", "SUCCEEDED" }, stages)
    end)
  end)
end)
