-- The simulated ISC tenant: one object holding the data, the clock, tokens,
-- limits and faults, and the request pipeline every API call goes through
-- (route -> token -> rate limit -> the client's rights -> injected fault ->
-- experimental header -> endpoint). `M.handler(config, port)` is what the C
-- server's thread calls.
local admin = require "isc.sim.admin"
local auth = require "isc.sim.auth"
local catalogue = require "isc.sim.catalogue"
local clock = require "isc.sim.clock"
local config = require "isc.sim.config"
local core = require "isc.core"
local faults = require "isc.sim.faults"
local http = require "isc.sim.http"
local metadata = require "isc.sim.metadata"
local propagation = require "isc.sim.propagation"
local rng = require "isc.sim.rng"
local roles = require "isc.sim.roles"
local router = require "isc.sim.router"
local state = require "isc.sim.state"
local tasks = require "isc.sim.tasks"

local M = {}

---The default settings (their meanings are in isc.sim.config.settings).
M.defaults = config.defaults

-- Each API family and the bases it is served under, year-versioned and
-- per-resource (reference §1). The version key scopes the rate limit.
local FAMILIES = {
  { bases = { "/v2024/roles", "/v2025/roles", "/v2026/roles", "/roles/v1" }, routes = { roles.routes, metadata.routes } },
  { bases = { "/v2025/role-propagation", "/v2026/role-propagation", "/role-propagation/v1" },
    routes = { propagation.routes } },
  { bases = { "/v2025/role-propagation-config", "/v2026/role-propagation-config", "/role-propagation-config/v1" },
    routes = { propagation.config_routes } },
  { bases = { "/v2024", "/v2025", "/v2026" }, routes = { catalogue.routes, tasks.routes } },
}

local ROUTER = router.new()
ROUTER:add("POST", "/oauth/token", { handler = auth.token, public = true })
for _, family in ipairs(FAMILIES) do
  for _, base in ipairs(family.bases) do
    local version = base:match("^/(v%d+)/") or base:sub(2)
    for _, list in ipairs(family.routes) do
      for _, r in ipairs(list) do
        ROUTER:add(r[1], base .. r[2], { handler = r[3], mutates = r.mutates, experimental = r.experimental,
          version = version })
      end
    end
  end
end

local Tenant = {}
Tenant.__index = Tenant

local function new_stats()
  return { requests = 0, by_route = {}, by_status = {}, tokens_issued = 0, mutating = 0, rate_limited = 0, faults = {},
    in_flight_max = 0 }
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

---Makes a tenant. Settings not given take M.defaults; a bad one raises.
---@param cfg? table settings (see isc.sim.config)
---@param port? integer the port it is served on (default: the port setting), which control requests must name
---@return table tenant with :handle(req)
function M.new(cfg, port)
  local c, err = config.start(cfg or {})
  if not c then error("isc.sim: " .. err, 2) end
  c.port = port or c.port
  local t = setmetatable({ initial = c, clock = clock.new(), auth = auth.new(c.seed) }, Tenant)
  if c.state then t.snapshot = state.read(c.state) end
  t:reset()
  local bad = auth.check_clients(t)
  if bad then error("isc.sim: " .. bad, 2) end
  return t
end

---Records the port the tenant is served on, once the server listens (for
---`isclua sim --port 0`): control requests must name it in Host.
---@param port integer
function Tenant:listening(port)
  self.initial.port, self.config.port = port, port
end

---@param cfg? table
---@param port? integer
---@return fun(req: table): table the request handler over a new tenant
function M.handler(cfg, port)
  -- A server's state makes many short-lived tables per request: the
  -- generational collector spends far less on them.
  collectgarbage("generational")
  local t = M.new(cfg, port)
  return function(req) return t:handle(req) end
end

-- (Re)builds the tenant's data from the settings (or the loaded snapshot).
function Tenant:build()
  local c = self.config
  self.world, self.store = state.load(self.snapshot, c)
  self.rng = rng.new(c.seed, "runtime")
  self.propagation = propagation.new_state(c)
  self.bulk_jobs, self.bulk_job_by_id = {}, {}
  self.tasks = {}
  self.pending = {}
  local st = self.store
  self.encode_role = function(e) return st:json(e) end
end

---Back to the start: initial settings and data, clock offset 0, counters
---cleared. Issued tokens stay valid (they are credentials, not data).
function Tenant:reset()
  self.clock:reset()
  self.config = copy(self.initial)
  self.faults = faults.new(self.config)
  self.stats = new_stats()
  self:build()
end

---Changes settings at run time. Changing roles, identities or seed
---regenerates the data; faults, fault_seed and rate_limit restart their
---sequences; propagation_enabled flips the tenant switch now.
---@param changes table
---@return table|nil config, string|nil message
function Tenant:configure(changes)
  local c, err = config.change(changes, self.config)
  if not c then return nil, err end
  self.config = c
  if changes.faults ~= nil or changes.fault_seed ~= nil or changes.rate_limit ~= nil or changes.latency_ms ~= nil
      or changes.jitter_ms ~= nil then
    self.faults:configure(c)
  end
  if changes.propagation_enabled ~= nil then
    propagation.set_enabled(self.propagation, c.propagation_enabled, self.clock:now())
  end
  if changes.roles ~= nil or changes.identities ~= nil or changes.seed ~= nil then
    self.snapshot = nil
    self:build()
  end
  return c
end

---Runs fn once the sim clock reaches due (checked at each request).
---@param due number sim time
---@param fn function
function Tenant:schedule(due, fn)
  local p = self.pending
  local i = #p + 1
  while i > 1 and p[i - 1].due > due do i = i - 1 end
  table.insert(p, i, { due = due, run = fn })
end

-- Runs the scheduled work that is due.
function Tenant:run_due(now)
  local p = self.pending
  while p[1] and p[1].due <= now do
    table.remove(p, 1).run()
  end
end

-- Increments a counter in a stats map.
local function bump(map, key)
  map[key] = (map[key] or 0) + 1
end

local EXPERIMENTAL_MISSING = { error = "Experimental Header is missing or invalid." }

-- Answers an injected fault, or marks the real response to be spoiled.
local function injected(t, kind)
  bump(t.stats.faults, kind)
  if kind == "http500" then return http.error(500) end
  if kind == "http503" then return http.error(503) end
  if kind == "http429" then return http.too_many_requests(1) end
  if kind == "reset" then return { status = 500, headers = {}, fault = "reset" } end
end

-- The faults that strike after the endpoint has run: the tenant did the
-- work, and the client cannot tell from what reaches it. These are the
-- failures that make a blind resend of a mutation unsafe.
local function spoiled(t, fault, resp)
  if fault == "truncate" or fault == "truncate_after" then resp.fault = "truncate" end
  if fault == "reset_after" then resp.fault = "reset" end
  if fault == "slow" then resp.delay = t.config.slow_seconds end
  if fault == "http504_after" then return http.error(504) end
  return resp
end

-- The request pipeline: control API, or route -> token -> rate limit ->
-- the client's rights -> injected fault -> experimental header -> endpoint.
function Tenant:dispatch(req)
  if req.path:sub(1, 6) == "/__sim" then return admin.handle(self, req) end
  local stats, now = self.stats, self.clock:now()
  self:run_due(now)
  stats.requests = stats.requests + 1
  local not_text = http.not_utf8(req)
  if not_text then return not_text end
  local route, params, exists = ROUTER:match(req.method, req.path)
  if not route then
    bump(stats.by_route, req.method .. " (unmatched)")
    if exists then return http.error(405) end
    return http.error(404, nil, { causes = { "No API at " .. req.path } })
  end
  bump(stats.by_route, req.method .. " " .. route.template)
  local ctx = { params = params, query = http.parse_pairs(req.query) }
  if route.public then return route.handler(self, req, ctx) end

  local token, unauthorized = auth.check(self, req)
  if not token then return unauthorized end
  ctx.token = token
  local wait = self.faults:over_limit(token.client_id .. " " .. route.version, now)
  if wait then
    stats.rate_limited = stats.rate_limited + 1
    return http.too_many_requests(wait)
  end
  local forbidden = auth.forbidden(token, route, req)
  if forbidden then return forbidden end
  local fault = self.faults:draw()
  local match = self.config.fault_match
  if fault and match then
    local line = req.method .. " " .. req.path
    if not (line:find(match) or (req.query ~= "" and (line .. "?" .. req.query):find(match))) then fault = nil end
  end
  local early = fault and injected(self, fault)
  if early then return early end
  local exp = route.experimental
  if exp == true or (exp and self.config[exp]) then
    local h = req.headers["x-sailpoint-experimental"]
    if not h or h:lower() ~= "true" then return http.json(400, EXPERIMENTAL_MISSING) end
  end
  local resp = route.handler(self, req, ctx)
  if route.mutates and resp.status >= 200 and resp.status < 300 then stats.mutating = stats.mutating + 1 end
  return spoiled(self, fault, resp)
end

---Answers one HTTP request (the C server's request table).
---@param req table {method, target, path, query, headers, body}
---@return table response {status, headers, body, fault, delay}
function Tenant:handle(req)
  req.query, req.headers = req.query or "", req.headers or {}
  local ok, resp = xpcall(self.dispatch, debug.traceback, self, req)
  if not ok then
    io.stderr:write("isclua sim: internal error on ", req.method, " ", req.path, ": ", tostring(resp), "\n")
    resp = http.error(500)
  end
  resp.headers = resp.headers or {}
  resp.headers["Slpt-Request-Id"] = http.new_id()
  if req.path:sub(1, 6) ~= "/__sim" then
    bump(self.stats.by_status, tostring(resp.status))
    -- the server answers after the delay without holding other connections
    local delay = self.faults:delay()
    if delay > 0 then resp.delay = (resp.delay or 0) + delay end
    self:count_in_flight(resp.delay or 0)
  end
  return resp
end

---Counts the requests in flight together (received, their answer not yet
---due) into stats.in_flight_max: how far a client overlaps its requests,
---which shows once answers take time (--latency-ms).
---@param delay number seconds until this request's answer leaves
function Tenant:count_in_flight(delay)
  local now, due = core.monotonic(), {}
  for _, at in ipairs(self.answers_due or {}) do
    if at > now then due[#due + 1] = at end
  end
  -- the server's timers run on the loop's own reading of the time, taken
  -- a little earlier: an answer sent on time must not count as still due
  due[#due + 1] = now + delay - 0.005
  self.answers_due = due
  if #due > self.stats.in_flight_max then self.stats.in_flight_max = #due end
end

return M
