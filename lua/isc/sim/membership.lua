-- Role membership: checking STANDARD criteria trees against the schema's
-- rules (RoleCriteriaLevel1/2/3), evaluating them on identities, and listing
-- who a role is assigned to.
local core = require "isc.core"

local A = core.json_array
local null = core.null

local M = {}

local LEAF_OPS = {
  EQUALS = true, NOT_EQUALS = true, CONTAINS = true, DOES_NOT_CONTAIN = true, STARTS_WITH = true,
  ENDS_WITH = true, GREATER_THAN = true, LESS_THAN = true, GREATER_THAN_EQUALS = true, LESS_THAN_EQUALS = true,
}
local KEY_TYPES = { IDENTITY = true, ACCOUNT = true, ENTITLEMENT = true }

local function absent(v)
  return v == nil or v == null
end

local function fail(path, msg)
  error({ criteria_error = path .. ": " .. msg }, 0)
end

-- Checks a RoleCriteriaKey and returns it with an explicit sourceId.
local function check_key(key, path, has_source)
  if type(key) ~= "table" then fail(path, "a leaf criterion needs a key {type, property}") end
  if not KEY_TYPES[key.type] then fail(path .. ".type", "expected IDENTITY, ACCOUNT or ENTITLEMENT") end
  if type(key.property) ~= "string" or key.property == "" then fail(path .. ".property", "expected a non-empty string") end
  local source = key.sourceId
  if key.type ~= "IDENTITY" then
    if type(source) ~= "string" then fail(path .. ".sourceId", "required when the key type is " .. key.type) end
    if not has_source(source) then fail(path .. ".sourceId", "source " .. source .. " was not found") end
  elseif not absent(source) and type(source) ~= "string" then
    fail(path .. ".sourceId", "expected a string or null")
  end
  return { type = key.type, property = key.property, sourceId = absent(source) and null or source }
end

-- Checks one criteria node at a level (1..3) under its parent's operation.
local function check_node(n, level, parent_op, path, has_source)
  if type(n) ~= "table" then fail(path, "expected an object") end
  local op = n.operation
  if op == "AND" or op == "OR" then
    if level == 3 then fail(path, "criteria are at most three levels deep, leaves included") end
    if op == parent_op then fail(path, op .. " nodes cannot be children of " .. op .. " nodes") end
    if type(n.children) ~= "table" or #n.children == 0 then fail(path .. ".children", op .. " needs children") end
    if not absent(n.key) then fail(path .. ".key", "must be null for " .. op) end
    if not absent(n.stringValue) then fail(path .. ".stringValue", "must be null for " .. op) end
    local children = A({})
    for i, child in ipairs(n.children) do
      children[i] = check_node(child, level + 1, op, string.format("%s.children[%d]", path, i - 1), has_source)
    end
    return { operation = op, key = null, stringValue = null, children = children }
  end
  if not LEAF_OPS[op] then fail(path .. ".operation", "unknown operation " .. tostring(op)) end
  if type(n.stringValue) ~= "string" then fail(path .. ".stringValue", "required for " .. op) end
  if not absent(n.children) and (type(n.children) ~= "table" or #n.children > 0) then
    fail(path .. ".children", "must be null for " .. op)
  end
  local out = { operation = op, key = check_key(n.key, path .. ".key", has_source), stringValue = n.stringValue }
  if level < 3 then out.children = null end
  return out
end

---Checks a criteria tree and returns it in canonical form (explicit nulls).
---@param criteria table RoleCriteriaLevel1
---@param has_source fun(id: string): boolean
---@param path? string prefix for messages
---@return table|nil criteria, string|nil message
function M.check_criteria(criteria, has_source, path)
  local ok, res = pcall(check_node, criteria, 1, nil, path or "membership.criteria", has_source)
  if ok then return res end
  if type(res) == "table" and res.criteria_error then return nil, res.criteria_error end
  error(res, 0)
end

-- The identity's values for a criteria key (several for entitlements). An
-- identity's accounts carry its identity attributes, so an ACCOUNT key reads
-- those when the identity has an account on the key's source.
local function values_of(world, identity, key)
  local prop = key.property:gsub("^attribute%.", "")
  if key.type == "IDENTITY" then
    return { identity.attributes[prop] }
  elseif key.type == "ACCOUNT" then
    if not identity.accounts[key.sourceId] then return {} end
    return { identity.attributes[prop] }
  end
  local out = {}
  for ent_id in pairs(identity.entitlements) do
    local e = world.entitlement_by_id[ent_id]
    if e and e.source_id == key.sourceId and e.attribute == prop then
      out[#out + 1] = e.value
      out[#out + 1] = e.name
    end
  end
  return out
end

-- Orders two attribute values: numerically when both are numbers, else without case.
local function compare(a, b)
  local x, y = tonumber(a), tonumber(b)
  if x and y then return x < y and -1 or (x > y and 1 or 0) end
  a, b = a:lower(), b:lower()
  return a < b and -1 or (a > b and 1 or 0)
end

local TESTS = {
  EQUALS = function(v, s) return v:lower() == s end,
  CONTAINS = function(v, s) return v:lower():find(s, 1, true) ~= nil end,
  STARTS_WITH = function(v, s) return v:lower():sub(1, #s) == s end,
  ENDS_WITH = function(v, s) return #s <= #v and v:lower():sub(-#s) == s end,
  GREATER_THAN = function(v, s) return compare(v, s) > 0 end,
  LESS_THAN = function(v, s) return compare(v, s) < 0 end,
  GREATER_THAN_EQUALS = function(v, s) return compare(v, s) >= 0 end,
  LESS_THAN_EQUALS = function(v, s) return compare(v, s) <= 0 end,
}
local NEGATED = { NOT_EQUALS = "EQUALS", DOES_NOT_CONTAIN = "CONTAINS" }

---Whether an identity satisfies a (canonical) criteria tree.
---@param world table
---@param criteria table
---@param identity table
---@return boolean
function M.matches(world, criteria, identity)
  local op = criteria.operation
  if op == "AND" or op == "OR" then
    for _, child in ipairs(criteria.children) do
      local m = M.matches(world, child, identity)
      if op == "AND" and not m then return false end
      if op == "OR" and m then return true end
    end
    return op == "AND"
  end
  local test = TESTS[NEGATED[op] or op]
  local s = criteria.stringValue:lower()
  local found = false
  for _, v in ipairs(values_of(world, identity, criteria.key)) do
    if test(tostring(v), s) then found = true break end
  end
  if NEGATED[op] then return not found end
  return found
end

---The identities a role is assigned to, as RoleIdentity rows:
---ROLE_MEMBERSHIP for criteria or list members, ACCESS_REQUEST for the
---requested assignments that membership does not already cover.
---@param world table
---@param role table
---@param requested string[] identity ids
---@return table[] RoleIdentity
function M.assigned(world, role, requested)
  local rows, seen = {}, {}
  local function add(identity, source)
    if identity and not seen[identity.id] then
      seen[identity.id] = true
      rows[#rows + 1] = { id = identity.id, aliasName = identity.alias, name = identity.name,
        email = identity.email, roleAssignmentSource = source }
    end
  end
  local m = role.membership
  if m ~= null and m ~= nil then
    if m.type == "IDENTITY_LIST" and m.identities ~= null then
      for _, ref in ipairs(m.identities) do add(world.identity_by_id[ref.id], "ROLE_MEMBERSHIP") end
    elseif m.type == "STANDARD" and m.criteria ~= null then
      for _, identity in ipairs(world.identities) do
        if M.matches(world, m.criteria, identity) then add(identity, "ROLE_MEMBERSHIP") end
      end
    end
  end
  for _, id in ipairs(requested or {}) do add(world.identity_by_id[id], "ACCESS_REQUEST") end
  return rows
end

return M
