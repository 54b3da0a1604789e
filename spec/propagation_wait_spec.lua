-- The native wait loop (core.wait) on its own: a scripted poll, a fake clock
-- that only moves when the loop sleeps, and a record of every pause.
local core = require "isc.core"
local H = require "helpers"

local function api_error(status, fields)
  local e = fields or {}
  e.kind, e.status, e.message = "api", status, "HTTP " .. status
  return setmetatable(e, core.error_mt)
end

-- A wait over a scripted series of poll answers: each entry is a stage name
-- (a status table is made of it) or an error value to raise. The last entry
-- repeats. Returns the options for core.wait and the record.
local function scripted(answers, extra)
  local rec = { slept = {}, polls = 0, now = 1000, stages_seen = {} }
  local opts = {
    clock = function() return rec.now end,
    sleep = function(s)
      rec.slept[#rec.slept + 1] = s
      rec.now = rec.now + s
    end,
    poll = function()
      rec.polls = rec.polls + 1
      local a = answers[math.min(rec.polls, #answers)]
      if type(a) ~= "string" then error(a, 0) end
      local final = a == "SUCCEEDED" or a == "FAILED" or a == "TERMINATED"
      return { executionStage = a, poll = rec.polls, at = rec.now }, a, final
    end,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts, rec
end

local function rep(stage, n)
  local t = {}
  for i = 1, n do t[i] = stage end
  return t
end

describe("core.wait", function()
  it("polls until a final stage and returns that status and the number of polls", function()
    local opts, rec = scripted { "PENDING", "DATA_AGGREGATION_RUNNING", "LAUNCH_PROVISIONING", "SUCCEEDED" }
    local status, polls = core.wait(opts)
    assert.equal("SUCCEEDED", status.executionStage)
    assert.equal(4, polls)
    assert.equal(4, rec.polls)
  end)

  it("returns at once, without sleeping, when the first poll is final", function()
    local opts, rec = scripted { "FAILED" }
    assert.equal("FAILED", core.wait(opts).executionStage)
    assert.same({}, rec.slept)
  end)

  it("starts at interval and grows the pause by the backoff factor up to the cap", function()
    local answers = rep("LAUNCH_PROVISIONING", 8)
    answers[9] = "SUCCEEDED"
    local opts, rec = scripted(answers, { interval = 2, backoff = 2, max_interval = 20 })
    core.wait(opts)
    assert.same({ 2, 4, 8, 16, 20, 20, 20, 20 }, rec.slept)
  end)

  it("defaults to 5 s growing by 1.5 up to a minute", function()
    local answers = rep("PENDING", 10)
    answers[11] = "SUCCEEDED"
    local opts, rec = scripted(answers)
    core.wait(opts)
    assert.same({ 5, 7.5, 11.25, 16.875, 25.3125, 37.96875, 56.953125, 60, 60, 60 }, rec.slept)
  end)

  it("calls on_progress once per stage, with the status, not once per poll", function()
    local seen = {}
    local opts = scripted({ "PENDING", "PENDING", "DATA_AGGREGATION_RUNNING", "DATA_AGGREGATION_RUNNING",
      "DATA_AGGREGATION_RUNNING", "LAUNCH_PROVISIONING", "SUCCEEDED" },
      { on_progress = function(st) seen[#seen + 1] = st.executionStage .. "@" .. st.poll end })
    core.wait(opts)
    assert.same({ "PENDING@1", "DATA_AGGREGATION_RUNNING@3", "LAUNCH_PROVISIONING@6", "SUCCEEDED@7" }, seen)
  end)

  it("raises a timeout error carrying the last status, after a last poll at the deadline", function()
    local opts, rec = scripted({ "PENDING", "DATA_AGGREGATION_RUNNING" }, { interval = 10, backoff = 1, timeout = 25 })
    local ok, err = pcall(core.wait, opts)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.equal("DATA_AGGREGATION_RUNNING", err.last_status.executionStage)
    assert.equal(4, err.last_status.poll)
    assert.equal(25, err.timeout)
    assert.equal(25, err.elapsed)
    assert.equal(4, err.polls)
    assert.same({ 10, 10, 5 }, rec.slept, "the last pause is cut short at the deadline")
    assert.equal("wait did not finish within 25 s (last stage seen: DATA_AGGREGATION_RUNNING)", err.message)
  end)

  it("names the label in the timeout message", function()
    local opts = scripted({ "PENDING" }, { timeout = 1, label = "role propagation 1234" })
    local _, err = pcall(core.wait, opts)
    assert.matches("^role propagation 1234 did not finish within 1 s", err.message)
  end)

  it("retries a failed poll after the pause retry() asks for", function()
    local retried = {}
    local e503 = api_error(503)
    local opts, rec = scripted({ "PENDING", e503, e503, "SUCCEEDED" }, {
      interval = 3, backoff = 2, max_interval = 100,
      retry = function(err, interval)
        retried[#retried + 1] = { err.status, interval }
        return interval + 1
      end,
    })
    assert.equal("SUCCEEDED", core.wait(opts).executionStage)
    assert.same({ { 503, 6 }, { 503, 12 } }, retried)
    assert.same({ 3, 7, 13 }, rec.slept)
  end)

  it("re-raises a poll error untouched when retry() declines it", function()
    local e404 = api_error(404)
    local opts, rec = scripted({ "PENDING", e404 }, { retry = function() return nil end })
    local ok, err = pcall(core.wait, opts)
    assert.is_false(ok)
    assert.equal(e404, err)
    assert.equal(2, rec.polls)
  end)

  it("re-raises a poll error untouched when there is no retry()", function()
    local opts = scripted { "PENDING" }
    opts.poll = function() error("plain failure", 0) end
    local ok, err = pcall(core.wait, opts)
    assert.is_false(ok)
    assert.equal("plain failure", err)
  end)

  it("never retries an interrupt, even when retry() would", function()
    local intr = setmetatable({ kind = "interrupted", signal = 2, message = "interrupted by SIGINT" }, core.error_mt)
    local asked = false
    local opts = scripted({ "PENDING", intr }, { retry = function() asked = true return 1 end })
    local ok, err = pcall(core.wait, opts)
    assert.is_false(ok)
    assert.equal(intr, err)
    assert.is_false(asked)
  end)

  it("lets an error raised by sleep (an interrupt) through untouched", function()
    local intr = setmetatable({ kind = "interrupted", signal = 15 }, core.error_mt)
    local opts, rec = scripted { "PENDING" }
    opts.sleep = function() error(intr, 0) end
    local ok, err = pcall(core.wait, opts)
    assert.is_false(ok)
    assert.equal(intr, err)
    assert.equal(1, rec.polls)
  end)

  it("keeps retrying failed polls only until the timeout, then reports the last error too", function()
    local e429 = api_error(429)
    local opts, rec = scripted({ "PENDING", e429 }, { interval = 4, backoff = 1, timeout = 30,
      retry = function(_, interval) return interval end })
    local ok, err = pcall(core.wait, opts)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.equal("PENDING", err.last_status.executionStage)
    assert.equal(e429, err.last_error)
    assert.equal(30, rec.now - 1000)
  end)

  it("says so when no poll ever succeeded before the timeout", function()
    local opts = scripted({ api_error(503) }, { timeout = 10, retry = function() return 4 end })
    local _, err = pcall(core.wait, opts)
    assert.equal("timeout", err.kind)
    assert.is_nil(err.last_status)
    assert.matches("no poll succeeded", err.message)
  end)

  it("checks its options", function()
    local opts = scripted { "PENDING" }
    opts.poll = nil
    assert.error_matches(function() core.wait(opts) end, "poll must be a function")
    opts = scripted({ "PENDING" }, { interval = 0 })
    assert.error_matches(function() core.wait(opts) end, "interval must be a finite number > 0")
    opts = scripted({ "PENDING" }, { backoff = 0.5 })
    assert.error_matches(function() core.wait(opts) end, "backoff must be >= 1")
    opts = scripted { "PENDING" }
    opts.poll = function() return { }, nil, false end
    assert.error_matches(function() core.wait(opts) end, "poll must return a status table and a stage string")
  end)

  describe("its progress line", function()
    -- Runs a wait with line=true in a child lua5.4 whose stderr is a file.
    local function child_stderr(body)
      local script = H.write(os.tmpname(), [[
        local core = require "isc.core"
        local now, n = 0, 0
        local stages = { "PENDING", "PENDING", "LAUNCH_PROVISIONING", "SUCCEEDED" }
        local opts = {
          clock = function() return now end,
          sleep = function(s) now = now + s end,
          poll = function() n = n + 1 return {}, stages[n], stages[n] == "SUCCEEDED" end,
          interval = 30, backoff = 1, line = true, label = "job",
        }
        ]] .. body)
      -- A stock lua5.4 loading a sanitized core.so needs the runtimes preloaded.
      local code, out, err = H.sh(H.stock_lua() .. " " .. H.shell_quote(script))
      os.remove(script)
      return code, out, err
    end

    it("rewrites one line in place with the stage and the elapsed time, and ends it", function()
      local code, _, err = child_stderr("core.wait(opts)")
      assert.equal(0, code)
      assert.equal("\r", err:sub(1, 1))
      assert.equal("\n", err:sub(-1))
      assert.is_nil(err:sub(1, -2):find("\n"), "one line only")
      assert.truthy(err:find("\rjob: PENDING (0m00s)\27[K", 1, true))
      -- between polls it ticks every second while it sleeps
      assert.truthy(err:find("\rjob: PENDING (0m01s)\27[K", 1, true))
      assert.truthy(err:find("\rjob: LAUNCH_PROVISIONING (1m00s)\27[K", 1, true))
      local last = "\rjob: SUCCEEDED (1m30s)\27[K\n"
      assert.equal(last, err:sub(-#last), "the final stage stays on the finished line")
    end)

    it("ends the line when the wait is interrupted", function()
      local code, _, err = child_stderr([[
        opts.sleep = function() error(setmetatable({ kind = "interrupted" }, core.error_mt), 0) end
        local ok, e = pcall(core.wait, opts)
        io.stderr:write("after: ", e.kind, "\n")
      ]])
      assert.equal(0, code)
      assert.equal("\rjob: PENDING (0m00s)\27[K\nafter: interrupted\n", err)
    end)

    it("is not drawn unless asked for", function()
      local _, _, err = child_stderr("opts.line = nil core.wait(opts)")
      assert.equal("", err)
    end)
  end)
end)
