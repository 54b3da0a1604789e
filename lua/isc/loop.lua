--- Tasks on the event loop. A task is a coroutine whose requests travel on
--- libcurl's multi interface (core.loop_step) while other tasks' do; a
--- request made outside a task (every plain script) runs the loop until its
--- own answer is in, resuming meanwhile the tasks whose turn came. Waits are
--- transfers, timers and other tasks. A stop (Ctrl-C, SIGTERM, --timeout)
--- cancels every task, so nothing goes on changing the tenant after it.
---
---   local a = isc.spawn(function() return c.roles:get(id1) end)
---   local b = isc.spawn(function() return c.roles:get(id2) end)
---   local r1, r2 = a:join(), b:join()
local args = require "isc.args"
local core = require "isc.core"
local errors = require "isc.errors"

local M = {}

local Task = {}
Task.__index = Task
M.Task = Task

local by_co = setmetatable({}, { __mode = "k" }) -- coroutine -> its task
local live = {}   -- unfinished tasks
local ready = {}  -- tasks whose wait is over, in the order it ended
local waits = {}  -- {task=, transfer=} | {task=, at=} | {task=, join=}

-- The task running here, if the code may yield to the loop: a coroutine of
-- the script's own, or a call through C (a pager's fetch, a sort), blocks.
local function current()
  local co, main = coroutine.running()
  if main or not coroutine.isyieldable() then return nil end
  return by_co[co]
end

local function interrupted(err)
  return type(err) == "table" and err.kind == "interrupted"
end

-- Puts a parked task on the ready list and drops the rest of its waits.
local function wake(task)
  if not task.waiting then return end
  task.waiting = false
  for i = #waits, 1, -1 do
    if waits[i].task == task then table.remove(waits, i) end
  end
  ready[#ready + 1] = task
end

-- Records how a task's coroutine ended and wakes the tasks joining it.
local function settle(task, ok, ...)
  live[task] = nil
  task.done = true
  if ok then task.results = table.pack(...) else task.err = ... end
  local joiners = {}
  for _, w in ipairs(waits) do
    if w.join == task then joiners[#joiners + 1] = w.task end
  end
  for _, t in ipairs(joiners) do wake(t) end
end

-- What a task's resume came to: it ended, or parked on a wait (or yielded
-- on its own, which nothing would ever resume).
local function after_resume(task, ok, ...)
  if coroutine.status(task.co) == "dead" then
    settle(task, ok, ...)
  elseif not task.waiting then
    M.cancel(task, errors.new("argument", "a task yielded without waiting on isclua (coroutine.yield "
      .. "inside isc.spawn): use a coroutine of your own for that"))
  end
end

-- Resumes a task; a stop raised inside it stops everything.
local function run(task)
  if task.done or coroutine.status(task.co) ~= "suspended" then return end
  after_resume(task, coroutine.resume(task.co))
  if interrupted(task.err) then
    M.cancel_all()
    error(task.err, 0)
  end
end

-- Wakes the tasks whose wait is over; returns the earliest timer still
-- ahead (math.huge when none).
local function collect(now)
  if not waits[1] then return math.huge end
  local over, wake_at = {}, math.huge
  for _, w in ipairs(waits) do
    if (w.transfer and w.transfer:done()) or (w.at and w.at <= now) then
      over[#over + 1] = w
    elseif w.at and w.at < wake_at then
      wake_at = w.at
    end
  end
  -- timers that are all overdue (a busy loop) still wake in their order
  table.sort(over, function(a, b) return (a.at or -math.huge) < (b.at or -math.huge) end)
  for _, w in ipairs(over) do wake(w.task) end
  return wake_at
end

-- Runs the loop, resuming tasks, until finished() holds or the monotonic
-- time `deadline` (optional) passes.
local function drive_until(finished, deadline)
  while true do
    while ready[1] do run(table.remove(ready, 1)) end
    if finished() then return end
    local now = core.monotonic()
    if deadline and now >= deadline then return end
    local wake = math.min(collect(now), deadline or math.huge)
    if not ready[1] then
      if wake == math.huge and #waits == 0 and core.loop_running() == 0 then
        errors.raise("argument", "isc: waiting on a task that can never finish (it waits on nothing)")
      end
      core.loop_step(math.max(0, math.min(wake - now, 3600)))
      collect(core.monotonic())
    end
  end
end

-- drive_until, and a stop that comes meanwhile (from the loop's wait, a
-- task, or the host's hook between two instructions) cancels every task.
local function drive(finished, deadline)
  local ok, err = pcall(drive_until, finished, deadline)
  if not ok then
    if interrupted(err) then M.cancel_all() end
    error(err, 0)
  end
end

-- Parks the running task on one or more waits until the first is over.
local function park(task, ...)
  for _, wait in ipairs { ... } do
    wait.task = task
    waits[#waits + 1] = wait
  end
  task.waiting = true
  coroutine.yield()
end

--- Waits for a transfer (conn:start) to finish: the task yields, or
--- outside a task the loop runs until then. Cancelling the task cancels the
--- transfer.
function M.await(transfer)
  if transfer:done() then return end
  local task = current()
  if task then
    task.transfer = transfer
    park(task, { transfer = transfer })
    task.transfer = nil
  else
    local ok, err = pcall(drive, function() return transfer:done() end)
    if not ok then
      transfer:cancel()
      error(err, 0)
    end
  end
end

--- conn:perform on the loop: sends the request and waits for its answer.
function M.perform(conn, req)
  local transfer = conn:start(req)
  M.await(transfer)
  return transfer:result()
end

--- Sleeps `seconds` on the loop's timer: other tasks and transfers go on.
function M.sleep(seconds)
  args.need("isc.sleep", 1, seconds, "number")
  if seconds ~= seconds or seconds < 0 or seconds == math.huge then
    args.fail("isc.sleep", "seconds must be a finite number >= 0, got %s", tostring(seconds))
  end
  local at = core.monotonic() + seconds
  local task = current()
  if task then
    park(task, { at = at })
  else
    drive(function() return core.monotonic() >= at end, at)
  end
end

--- Starts fn(...) as a task and runs it up to its first wait; returns the
--- task (task:join() gives what fn returned, or raises its error).
function M.spawn(fn, ...)
  args.need("isc.spawn", 1, fn, "function")
  local params = table.pack(...)
  local task = setmetatable({ done = false }, Task)
  task.co = coroutine.create(function() return fn(table.unpack(params, 1, params.n)) end)
  by_co[task.co] = task
  live[task] = true
  run(task)
  return task
end

--- Waits for the task to end; returns its results or raises its error.
function Task:join()
  if not self.done then
    local task = current()
    if task then
      park(task, { join = self })
    else
      drive(function() return self.done end)
    end
  end
  if self.err ~= nil then error(self.err, 0) end
  return table.unpack(self.results, 1, self.results.n)
end

--- Ends the task where it waits (its request, if any, is dropped: an answer
--- that comes is ignored); join() then raises err (kind "cancelled").
function Task:cancel(err)
  M.cancel(self, err)
end

function Task:__tostring()
  return "isc.task (" .. (self.done and (self.err ~= nil and "failed" or "done") or "running") .. ")"
end

function M.cancel(task, err)
  if task.done then return end
  if task.transfer then task.transfer:cancel() end
  wake(task)
  for i = #ready, 1, -1 do
    if ready[i] == task then table.remove(ready, i) end
  end
  -- closes the task's to-be-closed variables (a listing cancels its prefetch)
  if coroutine.status(task.co) == "suspended" then coroutine.close(task.co) end
  settle(task, false, err or errors.new("cancelled", "the task was cancelled"))
end

--- Cancels every task (what a stop does).
function M.cancel_all(err)
  local all = {}
  for task in pairs(live) do all[#all + 1] = task end
  for _, task in ipairs(all) do M.cancel(task, err) end
end

-- Waits until one of the tasks (a set) has ended.
local function wait_any(set)
  local function any()
    for t in pairs(set) do
      if t.done then return true end
    end
    return false
  end
  if any() then return end
  local task = current()
  if task then
    local joins = {}
    for t in pairs(set) do joins[#joins + 1] = { join = t } end
    park(task, table.unpack(joins))
  else
    drive(any)
  end
end

-- The next item of `items`: a list, a listing (or any callable iterator).
local function items_reader(fname, items)
  local mt = getmetatable(items)
  if type(items) == "function" then
    return items
  elseif type(mt) == "table" and mt.__call then
    return function() return items() end
  elseif type(items) == "table" then
    local i = 0
    return function()
      i = i + 1
      return items[i]
    end
  end
  args.fail(fname, "items must be a list, a listing or an iterator function, got %s", type(items))
end

--- Calls fn(item, i) for every item, up to `concurrency` (default 8) at once,
--- each as a task: requests overlap within the client's rate limit.
--- items is a list, a listing (c.roles:list{...}) or an iterator function.
--- Returns results (results[i] what fn returned for item i; results.n the
--- items seen) and failures, a list of {index=, item=, error=}: one item's
--- error does not stop the others. A stop (Ctrl-C) cancels all of them.
---@param items table|function
---@param fn fun(item: any, i: integer): any
---@param opts table|nil {concurrency=}
---@param fname string|nil the name errors give (c:each passes its own)
function M.each(items, fn, opts, fname)
  fname = fname or "isc.each"
  args.need(fname, 2, fn, "function")
  opts = args.check(fname, opts, { concurrency = "integer" })
  local concurrency = opts.concurrency or 8
  if concurrency < 1 then args.fail(fname, "concurrency must be >= 1, got %d", concurrency) end
  local read = items_reader(fname, items)
  local results, failures = { n = 0 }, {}
  local active, count, exhausted, starting = {}, 0, false, nil
  local function harvest()
    for task, at in pairs(active) do
      if task.done then
        active[task], count = nil, count - 1
        if task.err ~= nil then
          failures[#failures + 1] = { index = at.index, item = at.item, error = task.err }
        else
          results[at.index] = task.results[1]
        end
      end
    end
  end
  local ok, err = pcall(function()
    while true do
      while not exhausted and count < concurrency do
        local item = read()
        if item == nil then
          exhausted = true
        else
          results.n = results.n + 1
          starting = { index = results.n, item = item }
          local task = M.spawn(fn, item, results.n)
          active[task], count, starting = starting, count + 1, nil
          harvest()
        end
      end
      if count == 0 then break end
      wait_any(active)
      harvest()
    end
  end)
  if not ok then
    if interrupted(err) then M.cancel_all() end
    -- what was under way when the stop came may or may not have been done
    local unfinished = { starting }
    for task, at in pairs(active) do
      M.cancel(task)
      local e = task.err
      if type(e) == "table" and (e.kind == "cancelled" or e.kind == "interrupted") then
        unfinished[#unfinished + 1] = at
      end
    end
    table.sort(unfinished, function(a, b) return a.index < b.index end)
    if type(err) == "table" then err.unfinished = unfinished end
    error(err, 0)
  end
  table.sort(failures, function(a, b) return a.index < b.index end)
  return results, failures
end

--- Tasks not finished yet.
function M.live()
  local n = 0
  for _ in pairs(live) do n = n + 1 end
  return n
end

return M
