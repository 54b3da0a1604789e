-- Maps a request path to its route: a tree of path segments built from
-- route templates, literal segments before parameters, so that
-- /roles/filter (POST) and /roles/{id} (GET) coexist.
local http = require "isc.sim.http"

local M = {}

local Router = {}
Router.__index = Router

local function node()
  return { lit = {}, param = nil, param_name = nil, methods = {} }
end

---@return table an empty router
function M.new()
  return setmetatable({ root = node() }, Router)
end

-- Splits a raw path into decoded segments (a trailing slash is ignored).
local function segments(path)
  local out = {}
  for seg in path:gmatch("[^/]+") do out[#out + 1] = http.url_decode(seg) end
  return out
end

---Adds a route; `template` is like /v2024/roles/{id}.
---@param method string
---@param template string
---@param route table returned by match (gets .template)
function Router:add(method, template, route)
  local n = self.root
  for seg in template:gmatch("[^/]+") do
    local name = seg:match("^{(.+)}$")
    if name then
      assert(not n.param_name or n.param_name == name, "router: conflicting parameter names at " .. template)
      n.param = n.param or node()
      n.param_name = name
      n = n.param
    else
      n.lit[seg] = n.lit[seg] or node()
      n = n.lit[seg]
    end
  end
  assert(not n.methods[method], "router: duplicate route " .. method .. " " .. template)
  route.template = template
  n.methods[method] = route
end

-- Matches segs[i..] below node n; also says whether the path exists for another method.
local function walk(n, segs, i, method, params)
  if i > #segs then
    if next(n.methods) == nil then return nil, false end
    return n.methods[method], true
  end
  local seg, exists = segs[i], false
  local lit = n.lit[seg]
  if lit then
    local r, e = walk(lit, segs, i + 1, method, params)
    if r then return r, true end
    exists = e
  end
  if n.param then
    local r, e = walk(n.param, segs, i + 1, method, params)
    if r then
      params[n.param_name] = seg
      return r, true
    end
    exists = exists or e
  end
  return nil, exists
end

---Finds the route for a method and path.
---@param method string
---@param path string raw path
---@return table|nil route, table params, boolean path_exists (for 405)
function Router:match(method, path)
  local params = {}
  local route, exists = walk(self.root, segments(path), 1, method, params)
  return route, params, exists
end

return M
