-- Task status (GET task-status/{id}): the background tasks the tenant runs
-- for a request that answers with a TaskResultDto (a roles bulk delete),
-- and how far each is on the sim clock: launched, then completed with
-- SUCCESS once its work is due.
local core = require "isc.core"
local clock = require "isc.sim.clock"
local http = require "isc.sim.http"

local A = core.json_array
local null = core.null

local M = {}

---Records a task started now whose work is done at due.
---@param t table tenant
---@param task {id: string, name: string, description: string, launcher: string, due: number, attributes: table}
function M.start(t, task)
  task.launched = t.clock:now()
  t.tasks[task.id] = task
end

local function iso(s) return clock.iso(s, true) end

-- TaskStatus of a task at sim time now.
local function status_dto(task, now)
  local done = now >= task.due
  return {
    id = task.id, type = "QUARTZ", uniqueName = task.name, description = task.description, parentName = null,
    launcher = task.launcher, target = null, created = iso(task.launched),
    modified = iso(done and task.due or task.launched), launched = iso(task.launched),
    completed = done and iso(task.due) or null, completionStatus = done and "SUCCESS" or null,
    messages = A({}), returns = A({}), attributes = task.attributes,
    progress = done and "Completed" or "Running", percentComplete = done and 100 or 0,
  }
end

-- GET task-status/{id}
local function get_status(t, req, ctx)
  local task = t.tasks[ctx.params.id]
  if not task then return http.not_found(string.format("Task %q", ctx.params.id)) end
  return http.json(200, status_dto(task, t.clock:now()))
end

---Routes relative to a year-versioned base (/v2024, /v2025, /v2026).
M.routes = {
  { "GET", "/task-status/{id}", get_status },
}

return M
