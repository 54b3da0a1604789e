-- Role Propagation (v2025, v2026, /role-propagation/v1) and its tenant
-- switch (role-propagation-config). A run's stage is computed from the sim
-- clock: PENDING -> DATA_AGGREGATION_RUNNING (unless skipRoleRefresh) ->
-- LAUNCH_PROVISIONING -> SUCCEEDED, each stage lasting the configured
-- seconds; a run can be made to FAIL at the end of a stage and is
-- TERMINATED by terminate.
local clock = require "isc.sim.clock"
local http = require "isc.sim.http"

local M = {}

-- Fixed so that a fresh tenant always answers the same config dates.
local CONFIG_CREATED = clock.parse_iso("2025-02-18T20:20:36Z")

---The propagation state of a fresh tenant.
---@param cfg table tenant config
---@return table
function M.new_state(cfg)
  return {
    enabled = cfg.propagation_enabled, created = CONFIG_CREATED, modified = CONFIG_CREATED,
    enabled_date = cfg.propagation_enabled and CONFIG_CREATED or nil,
    runs = {}, last = nil,
  }
end

local function iso(t) return clock.iso(t, false) end

-- Stage of a run at sim time now, and when it ended if it did.
local function stage_at(run, now)
  if run.terminated then return "TERMINATED", run.terminated.at end
  local t = run.launched
  for _, step in ipairs(run.steps) do
    local ends = t + step.seconds
    if now < ends then return step.stage, nil end
    t = ends
    if step.fails then return "FAILED", t end
  end
  return "SUCCEEDED", t
end

-- RolePropagationStatusResponse of a run at sim time now.
local function status_dto(run, now)
  local stage, completed = stage_at(run, now)
  local dto = {
    id = run.id, status = completed and "COMPLETED" or "RUNNING", executionStage = stage,
    launched = iso(run.launched), launchedBy = run.launched_by, skipRoleRefresh = run.skip,
  }
  if completed then dto.completed = iso(completed) end
  if stage == "FAILED" then dto.failureReason = run.fail_reason end
  if stage == "TERMINATED" then dto.terminatedBy = run.terminated.by end
  return dto
end

-- The tenant's propagation still running at now, if any.
local function running(t, now)
  local run = t.propagation.last
  if run and not select(2, stage_at(run, now)) then return run end
end

-- The caller as the schema's {type: IDENTITY, id, name}: an API client has
-- no identity, so its client id and name stand in (reference §10).
local function caller(t, token)
  return { type = "IDENTITY", id = token.client_id, name = t.config.client_name }
end

-- The stages of a new run with their durations, the failing one marked.
local function plan(cfg, skip, fail_stage)
  local per = cfg.propagation_stage_seconds
  local steps = {}
  for _, stage in ipairs({ "PENDING", "DATA_AGGREGATION_RUNNING", "LAUNCH_PROVISIONING" }) do
    if not (skip and stage == "DATA_AGGREGATION_RUNNING") then
      local seconds = type(per) == "table" and (per[stage] or 1) or per
      steps[#steps + 1] = { stage = stage, seconds = seconds }
    end
  end
  if fail_stage then
    local failing = steps[#steps]
    for _, step in ipairs(steps) do
      if step.stage == fail_stage then failing = step break end
    end
    failing.fails = true
  end
  return steps
end

-- POST role-propagation?skipRoleRefresh=: 202, or 400/409 when it cannot start.
local function start(t, req, ctx)
  local raw = ctx.query.skipRoleRefresh
  local skip = false
  if raw and raw ~= "" then
    if raw:lower() ~= "true" and raw:lower() ~= "false" then
      return http.bad_request(string.format("skipRoleRefresh %q is invalid: expected true or false", raw))
    end
    skip = raw:lower() == "true"
  end
  local state, now, cfg = t.propagation, t.clock:now(), t.config
  if not state.enabled then
    return http.bad_request("Role propagation is disabled for this tenant (see role-propagation-config).")
  end
  local current = running(t, now)
  if current then
    return http.error(409, string.format("A role propagation is already running for this tenant: %s.", current.id))
  end
  if cfg.role_refresh_running and not skip then
    return http.bad_request("A role refresh is running for this tenant; retry later or start with skipRoleRefresh=true.")
  end
  local reason = cfg.fail_next_propagation
  local run = {
    id = t.rng:uuid(), launched = now, skip = skip, launched_by = caller(t, ctx.token),
    steps = plan(cfg, skip, reason and (cfg.fail_at_stage or "LAUNCH_PROVISIONING")), fail_reason = reason,
  }
  cfg.fail_next_propagation, cfg.fail_at_stage = nil, nil
  state.runs[run.id] = run
  state.last = run
  return http.json(202, { rolePropagationId = run.id })
end

-- GET role-propagation/{id}/status
local function status(t, req, ctx)
  local run = t.propagation.runs[ctx.params.rolePropagationId]
  if not run then return http.not_found(string.format("Role propagation %q", ctx.params.rolePropagationId)) end
  return http.json(200, status_dto(run, t.clock:now()))
end

-- GET role-propagation/is-running
local function is_running(t)
  local now = t.clock:now()
  local run = running(t, now)
  if not run then return http.json(200, { isRunning = false }) end
  return http.json(200, { isRunning = true, rolePropagationDetails = status_dto(run, now) })
end

-- POST role-propagation/terminate: 204, or 400 when nothing runs.
local function terminate(t, req, ctx)
  local now = t.clock:now()
  local run = running(t, now)
  if not run then return http.bad_request("No role propagation is running for this tenant.") end
  run.terminated = { at = now, by = caller(t, ctx.token) }
  return http.response(204)
end

-- RolePropagationConfigResponse
local function config_dto(state)
  return {
    enabled = state.enabled, enabledDate = state.enabled_date and iso(state.enabled_date) or nil,
    createdDate = iso(state.created), modifiedDate = iso(state.modified),
  }
end

---Turns the tenant's propagation switch on or off at sim time now.
---@param state table
---@param enabled boolean
---@param now number
function M.set_enabled(state, enabled, now)
  if enabled and not state.enabled then state.enabled_date = now end
  state.enabled, state.modified = enabled, now
end

-- GET role-propagation-config
local function get_config(t)
  return http.json(200, config_dto(t.propagation))
end

-- PUT role-propagation-config {"enabled": bool}
local function put_config(t, req)
  local body, err = http.json_body(req, true)
  if err then return err end
  if type(body) ~= "table" or type(body.enabled) ~= "boolean" then
    return http.bad_request("The body must be a RolePropagationConfigInput: {\"enabled\": true|false}")
  end
  M.set_enabled(t.propagation, body.enabled, t.clock:now())
  return get_config(t)
end

---Routes relative to a propagation base (/v2025/role-propagation, /role-propagation/v1).
M.routes = {
  { "POST", "", start, mutates = true, experimental = true },
  { "GET", "/is-running", is_running, experimental = true },
  { "POST", "/terminate", terminate, mutates = true, experimental = true },
  { "GET", "/{rolePropagationId}/status", status, experimental = true },
}

---Routes relative to a config base (/v2025/role-propagation-config, /role-propagation-config/v1).
M.config_routes = {
  { "GET", "", get_config, experimental = true },
  { "PUT", "", put_config, mutates = true, experimental = true },
}

return M
