--- Cron mode: the run lock (--lock FILE, --lock-wait SECONDS) and the run
--- deadline (--timeout SECONDS), as the command line applies them around a
--- run. The mechanism (flock, the SIGALRM timer) is in src/core/cron.c.
local core = require "isc.core"
local errors = require "isc.errors"
local log = require "isc.log"

local M = {}

--- The signal by which the deadline interrupts a run (SIGALRM).
M.deadline_signal = 14
--- The --timeout of the run in progress, in seconds (nil: none).
M.timeout = nil

local Run = {}
Run.__index = Run

--- Takes the run lock, waiting up to `wait` seconds for a run that holds it.
--- Returns the lock, or nil and an "already_running" error naming the holder
--- (or the "config" error of a lock file that cannot be opened).
---@param path string
---@param wait number|nil seconds; 0 or nil: do not wait
---@return userdata|nil lock, table|nil error
function M.lock(path, wait)
  local opened, lock = pcall(core.lock_open, path)
  if not opened then
    local dir = path:match("^(.*)/[^/]*$")
    if dir and dir ~= "" and errors.is(lock) and lock.message:find("No such file or directory", 1, true) then
      lock.message = string.format("%s: the directory %s does not exist; create it (mkdir -p %s) or give --lock "
        .. "a file in a directory that exists", lock.message, dir, dir)
    end
    return nil, lock
  end
  local ok, holder = lock:acquire(0)
  if not ok and wait and wait > 0 then
    log.info("another run holds the lock; waiting for it", { lock = path, holder_pid = holder, wait = wait })
    ok, holder = lock:acquire(wait)
  end
  if ok then return lock end
  lock:close()
  local msg = string.format("already running: %s holds the lock %s",
    holder and ("pid " .. holder) or "another run", path)
  if wait and wait > 0 then msg = msg .. string.format(" (waited %g s)", wait) end
  return nil, errors.new("already_running", msg, { lock = path, holder_pid = holder })
end

--- The error to report for one that ended a run: an interrupt caused by the
--- deadline becomes a "timeout" error (its field deadline = the seconds allowed).
---@param err any
function M.explain(err)
  if errors.is(err, "interrupted") and err.signal == M.deadline_signal then
    local msg = M.timeout and string.format("the run reached its --timeout of %g s and was stopped", M.timeout)
      or "the run reached its deadline and was stopped"
    return errors.new("timeout", msg, { deadline = M.timeout or true, signal = err.signal })
  end
  return err
end

--- Starts cron mode for a run: arms the deadline first (waiting for the
--- lock counts against it), then takes the lock. Returns the run, or nil and
--- the error of M.lock. May raise "interrupted" while waiting.
---@param opts table {lock=path, lock_wait=seconds, timeout=seconds}
function M.begin(opts)
  local run = setmetatable({ timeout = opts.timeout }, Run)
  M.timeout = opts.timeout
  if opts.timeout then core.deadline(opts.timeout) end
  if opts.lock then
    local lock, err = M.lock(opts.lock, opts.lock_wait)
    if not lock then
      core.deadline(0)
      return nil, err
    end
    run.lock = lock
  end
  return run
end

--- Ends the run: disarms the deadline, releases the lock, and returns the
--- exit code, which becomes timeout_code if the deadline passed during a run
--- that otherwise succeeded (at the prompt, where it stops only the
--- statement running). Safe to call again.
---@param code integer the run's exit code
---@param timeout_code integer the exit code of a run that timed out
function Run:finish(code, timeout_code)
  core.deadline(0)
  if self.lock then self.lock:close() end
  if code == 0 and self.timeout and core.deadline_passed() then
    log.error("the run went past its --timeout and is reported as timed out", { timeout = self.timeout })
    return timeout_code
  end
  return code
end

return M
