--- Role propagation (v2025 or v2026, or /role-propagation/v1 under the
--- per-api layout) as Lua: the `c.propagation` service of a client. After a
--- role's access changes, a propagation applies the change to every member
--- identity; `wait` blocks, natively and cheaply, until it has ended.
local core = require "isc.core"
local args = require "isc.args"
local errors = require "isc.errors"
local journal = require "isc.journal"
local escape = require("isc.client").escape

local M = {}

--- One line per public function, for the REPL's help().
M.help = {
  start = "propagation:start{skip_role_refresh=false} -> {rolePropagationId=} (an already_running error carries running_id)",
  status = "propagation:status(id) -> {id=, status=, executionStage=, launched=, completed=, failureReason=, ...}",
  ongoing = "propagation:ongoing() -> {isRunning=, rolePropagationDetails=} (the is-running answer)",
  cancel = "propagation:cancel(): terminates the running propagation",
  config = "propagation:config() -> {enabled=, enabledDate=, createdDate=, modifiedDate=} (the tenant's switch)",
  set_config = "propagation:set_config{enabled=true|false} -> the config as it is now",
  wait = "propagation:wait([id], {timeout=, interval=5, max_interval=60, backoff=1.5, on_progress=, heartbeat=600, raise_on_failure=}) -> final status",
  run = "propagation:run{skip_role_refresh=, timeout=, interval=, ..., raise_on_failure=} -> final status (start, then wait)",
}

--- The stages in which a propagation has ended.
M.final_stages = { SUCCEEDED = true, FAILED = true, TERMINATED = true }

local Propagation = {}
Propagation.__index = Propagation

--- The propagation service of a client (what `c.propagation` is).
---@param client table an isc client
---@return table service
function M.new(client)
  return setmetatable({ client = client }, Propagation)
end

function Propagation:__tostring()
  return "isc.propagation(" .. self.client:api_path("role-propagation") .. ")"
end

-- Every propagation operation is experimental in ISC and needs the header.
-- rehearse shapes the answer under --dry-run.
function Propagation:_call(method, suffix, query, rehearse)
  return (self.client:request(method, self.client:api_path("role-propagation") .. suffix,
    { query = query, experimental = true, rehearse = rehearse }))
end

--- The current state of a propagation.
---@param id string the rolePropagationId that start returned
---@return table status RolePropagationStatusResponse
function Propagation:status(id)
  args.need("propagation:status", 1, id, "string")
  if id == "" then args.fail("propagation:status", "argument #1 (the propagation id) must not be empty") end
  return self:_call("GET", "/" .. escape(id) .. "/status")
end

--- The is-running answer: {isRunning = true|false, rolePropagationDetails = status}.
---@return table
function Propagation:ongoing()
  return self:_call("GET", "/is-running")
end

--- Terminates the tenant's running propagation (which then ends TERMINATED).
--- When the answer is lost, is-running tells whether it was done.
function Propagation:cancel()
  local ok, err = pcall(self._call, self, "POST", "/terminate")
  if ok or not errors.is(err, "unknown_outcome") then
    if not ok then error(err, 0) end
    return
  end
  local asked, running = pcall(self._running, self)
  if not asked and errors.is(running, "interrupted") then error(running, 0) end
  if asked and not running then return journal.resolved(err, "done") end
  err.checked = asked and "is-running says the propagation still runs" or "is-running could not be asked"
  err.message = err.message .. "; " .. err.checked
  error(err, 0)
end

--- The tenant's role propagation switch (GET role-propagation-config):
--- {enabled=, enabledDate=, createdDate=, modifiedDate=}. A start is refused
--- while it is off.
---@return table config
function Propagation:config()
  return (self.client:request("GET", self.client:api_path("role-propagation-config"), { experimental = true }))
end

local config_options = { enabled = "boolean" }

--- Turns role propagation on or off for the tenant (PUT role-propagation-config).
---@param opts table {enabled = true|false}
---@return table config the config as it is now
function Propagation:set_config(opts)
  local fname = "propagation:set_config"
  args.need(fname, 1, opts, "table")
  opts = args.check(fname, opts, config_options)
  if opts.enabled == nil then args.fail(fname, "option 'enabled' is required: true or false") end
  return (self.client:request("PUT", self.client:api_path("role-propagation-config"),
    { body = { enabled = opts.enabled }, experimental = true, rehearse = function(generic)
      local ok, now = pcall(self.config, self)
      now = ok and type(now) == "table" and now or generic
      now.enabled = opts.enabled
      return now
    end }))
end

-- Whether a propagation is running, and its id (nil if the tenant gives none).
function Propagation:_running()
  local answer = self:ongoing()
  if type(answer) ~= "table" or answer.isRunning ~= true then return false end
  local details = answer.rolePropagationDetails
  return true, type(details) == "table" and details.id or nil
end

local start_options = { skip_role_refresh = "boolean" }

-- The already_running error for a start the tenant did not make.
local function already_running(id, cause)
  errors.raise("already_running", string.format(
    "a role propagation is already running (id %s); wait for it with c.propagation:wait(%q)", id, id),
    { running_id = id, status = cause.status, cause = cause })
end

--- Starts a propagation. When the tenant refuses because one is already
--- running, the error is of kind "already_running" with field running_id (so
--- a script can wait on that one instead) and the tenant's answer as `cause`.
--- The start is sent once. is-running is asked first, so that when its
--- answer is lost (a reset, a gateway's 502-504) is-running afterwards tells
--- what happened: a new propagation running is returned as started; none
--- running raises the original error with outcome "failed".
---@param opts table|nil {skip_role_refresh = false}
---@return table {rolePropagationId = "..."}
function Propagation:start(opts)
  opts = args.check("propagation:start", opts, start_options)
  -- What ran before: if the answer to the start is lost, a propagation
  -- running afterwards that was not running before is this one.
  local looked, was_running, was_id = pcall(self._running, self)
  if not looked and errors.is(was_running, "interrupted") then error(was_running, 0) end
  local before = looked and was_running and was_id or nil
  local ok, res = pcall(self._call, self, "POST", "",
    { skipRoleRefresh = opts.skip_role_refresh == true }, function() return { rolePropagationId = "dry-run" } end)
  if ok then return res end
  -- ISC only promises "a 4xx" when it does not start one; is-running tells why.
  if errors.is(res, "api") and res.status >= 400 and res.status < 500 then
    local asked, running, id = pcall(self._running, self)
    if asked and running and id then already_running(id, res) end
    local read, cfg = pcall(self.config, self)
    if read and type(cfg) == "table" and cfg.enabled == false then
      res.message = res.message .. " (role propagation is turned off for this tenant: "
        .. "c.propagation:set_config{enabled = true} turns it on)"
    end
  elseif errors.is(res, "unknown_outcome") then
    local asked, running, id = pcall(self._running, self)
    if not asked and errors.is(running, "interrupted") then error(running, 0) end
    if asked and looked and running and id and id ~= before then
      require("isc.log").warn("the answer to the propagation start was lost; is-running shows it started",
        { role_propagation_id = id })
      journal.resolved(res, "done", { response = { rolePropagationId = id } })
      return { rolePropagationId = id }
    elseif asked and running and id and id == before then
      already_running(id, res)
    elseif asked and looked and not running then
      -- Nothing runs now, so none was started: ISC runs one at a time, and
      -- a propagation lasts far longer than this check.
      local cause = res.cause
      journal.resolved(res, "failed")
      cause.outcome = "failed"
      cause.message = cause.message .. " (is-running shows no propagation running: none was started)"
      error(cause, 0)
    end
    res.checked = asked and "is-running could not tell which propagation runs" or "is-running could not be asked"
    res.message = res.message .. "; " .. res.checked
  end
  error(res, 0)
end

-- After a failed poll, the pause before the next one: network trouble and
-- "try later" answers are retried within the wait's timeout (the client has
-- already retried them a few times and re-authenticated on a 401); anything
-- else ends the wait.
local function retry_delay(err, interval)
  if errors.is(err, "network") then
    if err.cause == "url" or err.cause == "tls" then return nil end
    return interval
  end
  if errors.is(err, "api") and (err.status == 429 or err.status >= 500) then
    return math.max(interval, err.retry_after or 0)
  end
  return nil
end

-- Raises the error a FAILED or TERMINATED outcome becomes under raise_on_failure.
local function raise_failure(id, status)
  local stage = status.executionStage
  local message
  if stage == "TERMINATED" then
    local by = type(status.terminatedBy) == "table" and (status.terminatedBy.name or status.terminatedBy.id)
    message = string.format("role propagation %s was terminated%s", id, by and (" by " .. by) or "")
  else
    message = string.format("role propagation %s failed: %s", id, status.failureReason or "no reason given")
  end
  errors.raise("propagation_failed", message, {
    propagation_id = id, stage = stage, failure_reason = status.failureReason, last_status = status,
  })
end

local wait_options = {
  timeout = "number", interval = "number", max_interval = "number", backoff = "number",
  on_progress = "function", raise_on_failure = "boolean", heartbeat = "number",
}

-- Checks the wait options shared by wait and run.
local function check_wait_options(fname, opts)
  for _, k in ipairs { "timeout", "interval", "max_interval", "heartbeat" } do
    local v = opts[k]
    if v ~= nil and not (v > 0 and v < math.huge) then
      args.fail(fname, "option '%s' must be a number of seconds > 0, got %s", k, tostring(v))
    end
  end
  if opts.backoff ~= nil and not (opts.backoff >= 1 and opts.backoff < math.huge) then
    args.fail(fname, "option 'backoff' must be a factor >= 1, got %s", tostring(opts.backoff))
  end
end

-- Whether progress lines are drawn: as isc.progress decides for listings
-- (its `enabled` switch; by default, when stderr is a terminal).
local function progress_lines()
  local enabled = require("isc.progress").enabled
  if enabled == nil then return core.isatty(2) end
  return enabled
end

-- Without a terminal to draw on (cron, a pipe), a wait says in the log what
-- it is doing: each stage as it is reached, and every `heartbeat` seconds
-- that it is still waiting, so that a four-hour wait is not silent. Returns
-- the on_progress of core.wait and a function each poll calls.
local function logged_progress(c, id, heartbeat)
  local log = require "isc.log"
  local started = c._clock()
  local last = started
  local function said(message, status)
    last = c._clock()
    log.info(message, { propagation_id = id, stage = status.executionStage or status.status,
      elapsed = math.floor(last - started) })
  end
  return function(status) said("role propagation stage", status) end,
    function(status)
      if c._clock() - last >= heartbeat then said("role propagation still running", status) end
    end
end

-- The wait itself, on the native loop of core.wait.
function Propagation:_wait(id, opts)
  local c = self.client
  local on_progress, polled = opts.on_progress, nil
  if on_progress == nil and require("isc.progress").enabled == nil and not core.isatty(2) then
    on_progress, polled = logged_progress(c, id, opts.heartbeat or 600)
  end
  local function poll()
    local status = self:status(id)
    if polled and type(status) == "table" then polled(status) end
    local stage = type(status) == "table" and (status.executionStage or status.status)
    if type(stage) ~= "string" then
      errors.raise("bad_response", "the status of role propagation " .. id .. " has no executionStage",
        { method = "GET", path = c:api_path("role-propagation") .. "/" .. id .. "/status" })
    end
    return status, stage, M.final_stages[stage] == true or status.status == "COMPLETED"
  end
  local status = core.wait {
    poll = poll, sleep = c._sleep, clock = c._clock, retry = retry_delay,
    interval = opts.interval, max_interval = opts.max_interval, backoff = opts.backoff,
    timeout = opts.timeout, on_progress = on_progress,
    -- Short enough that the progress line fits an 80-column terminal.
    label = "role propagation " .. (#id > 12 and id:sub(1, 8) or id),
    line = on_progress == nil and progress_lines(),
  }
  if opts.raise_on_failure and status.executionStage ~= "SUCCEEDED" then raise_failure(id, status) end
  return status
end

--- Blocks until the propagation has ended (SUCCEEDED, FAILED or TERMINATED)
--- and returns its final status. FAILED and TERMINATED are returned, not
--- raised, unless raise_on_failure is true (a "propagation_failed" error);
--- the reason is on the status either way (failureReason, terminatedBy).
--- Polls start `interval` seconds apart and back off by `backoff` up to
--- `max_interval`; a failed poll (429, 5xx, network) is retried. After
--- `timeout` seconds (default: none) it raises a "timeout" error carrying
--- last_status. on_progress(status) is called once per stage; without it, on
--- a terminal, a line on stderr shows the stage and the time elapsed, and
--- elsewhere (cron) each stage and, every `heartbeat` seconds (600), that it
--- still runs are logged at info.
--- With no id it waits for the running propagation; if none is running it
--- returns nil, "no role propagation is running". A wait that ends early
--- (timeout, Ctrl-C) leaves the propagation running on the tenant.
---@param id string|nil the rolePropagationId (or the options, as wait{...})
---@param opts table|nil {timeout=, interval=5, max_interval=60, backoff=1.5, on_progress=, heartbeat=600, raise_on_failure=false}
---@return table|nil status, string|nil why_not
function Propagation:wait(id, opts)
  if type(id) == "table" and opts == nil then id, opts = nil, id end
  if id ~= nil then args.need("propagation:wait", 1, id, "string") end
  opts = args.check("propagation:wait", opts, wait_options)
  check_wait_options("propagation:wait", opts)
  if id == nil then
    local running
    running, id = self:_running()
    if not running then return nil, "no role propagation is running" end
    if not id then
      errors.raise("bad_response", "the tenant says a role propagation is running but gives no id",
        { method = "GET", path = self.client:api_path("role-propagation") .. "/is-running" })
    end
  end
  return self:_wait(id, opts)
end

local run_options = { skip_role_refresh = "boolean" }
for k, v in pairs(wait_options) do run_options[k] = v end

--- Starts a propagation and waits for it: start's and wait's options
--- together. If one is already running, raises the "already_running" error
--- of start (field running_id). Under --dry-run nothing is started, and the
--- status returned is that of a propagation that succeeded at once (with
--- dry_run = true), so a script runs on as it would.
---@param opts table|nil {skip_role_refresh=, timeout=, interval=, max_interval=, backoff=, on_progress=, raise_on_failure=}
---@return table status
function Propagation:run(opts)
  opts = args.check("propagation:run", opts, run_options)
  check_wait_options("propagation:run", opts)
  local started = self:start { skip_role_refresh = opts.skip_role_refresh }
  if type(started) == "table" and started.dry_run then
    local now = require("isc.time").iso(self.client._clock())
    return { id = started.rolePropagationId, status = "COMPLETED", executionStage = "SUCCEEDED", launched = now,
      completed = now, skipRoleRefresh = opts.skip_role_refresh == true, dry_run = true }
  end
  local id = type(started) == "table" and started.rolePropagationId
  if type(id) ~= "string" then
    errors.raise("bad_response", "the start of a role propagation gave no rolePropagationId",
      { method = "POST", path = self.client:api_path("role-propagation") })
  end
  return self:_wait(id, opts)
end

args.service(Propagation, "c.propagation")

return M
