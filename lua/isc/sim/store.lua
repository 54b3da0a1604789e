-- The tenant's roles: kept in the default order (created, then id) so that
-- an unsorted page is a slice, each with its encoded JSON cached until it
-- changes, and generated lazily (see data.lua).
local core = require "isc.core"
local clock = require "isc.sim.clock"
local data = require "isc.sim.data"

local M = {}

local Store = {}
Store.__index = Store

---@param world table from data.generate (roles made lazily) or a loaded state
---@return table store
function M.new(world)
  local st = setmetatable({ world = world, list = {}, by_id = {}, names = nil }, Store)
  local ids, created = data.role_keys(world)
  for i, id in ipairs(ids) do
    local e = { id = id, created = created[i], i = i }
    st.list[i] = e
    st.by_id[id] = e
  end
  return st
end

local function before(a, b)
  if a.created ~= b.created then return a.created < b.created end
  return a.id < b.id
end

-- An entry for a complete role document.
local function entry(role, requested)
  local created = clock.parse_iso(role.created) or 0
  return { id = role.id, created = math.floor(created * 1000 + 0.5), role = role, requested = requested or {} }
end

---Adds complete roles in bulk (sorted once, not inserted one by one).
---@param items table[] {role = Role (id and created set), requested = identity ids}
function Store:load(items)
  for _, item in ipairs(items) do
    local e = entry(item.role, item.requested)
    self.list[#self.list + 1] = e
    self.by_id[e.id] = e
  end
  table.sort(self.list, before)
  self.names = nil
end

---@return integer number of roles
function Store:count()
  return #self.list
end

---@param id string
---@return table|nil entry
function Store:get(id)
  return self.by_id[id]
end

---The role document of an entry, generated on first use.
---@param e table entry
---@return table Role
function Store:role(e)
  if not e.role then
    e.role, e.requested = data.role(self.world, e.i, e.id, e.created)
  end
  return e.role
end

---@param e table entry
---@return string[] identity ids assigned by access request
function Store:requested(e)
  self:role(e)
  return e.requested
end

---The role's JSON, encoded once per change.
---@param e table entry
---@return string
function Store:json(e)
  local j = e.json
  if not j then
    j = core.json_encode(self:role(e))
    e.json = j
  end
  return j
end

---Forgets the cached JSON after the role document was changed in place.
---@param e table entry
function Store:changed(e)
  e.json = nil
end

-- Index at which e is (or would be inserted) in the default order.
local function position(list, e)
  local lo, hi = 1, #list + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if before(list[mid], e) then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- Lower-cased name -> entry, built on first use (names of generated roles
-- are cheap to compute without generating the rest).
function Store:name_index()
  if not self.names then
    self.names = {}
    for _, e in ipairs(self.list) do
      local name = e.role and e.role.name or data.role_name(e.i)
      self.names[name:lower()] = e
    end
  end
  return self.names
end

---@param name string
---@return table|nil the entry of the role with that name (any case)
function Store:named(name)
  return self:name_index()[name:lower()]
end

---Records a rename so that name lookups stay right.
---@param e table
---@param old string
function Store:renamed(e, old)
  local names = self:name_index()
  if names[old:lower()] == e then names[old:lower()] = nil end
  names[e.role.name:lower()] = e
end

---Adds a complete role document (id and created set).
---@param role table
---@param requested? string[]
---@return table entry
function Store:insert(role, requested)
  local e = entry(role, requested)
  table.insert(self.list, position(self.list, e), e)
  self.by_id[e.id] = e
  if self.names then self.names[role.name:lower()] = e end
  return e
end

---@param e table entry to delete
function Store:remove(e)
  local i = position(self.list, e)
  assert(self.list[i] == e, "store: entry out of order")
  table.remove(self.list, i)
  self.by_id[e.id] = nil
  if self.names then
    local name = (e.role and e.role.name or data.role_name(e.i)):lower()
    if self.names[name] == e then self.names[name] = nil end
  end
end

return M
