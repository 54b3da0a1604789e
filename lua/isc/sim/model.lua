-- The Role document as ISC accepts it: checks a create body or a patched
-- role against the schema's rules (required fields, enums, lengths, known
-- references) and returns it in canonical form, every field present, the
-- names of referenced objects filled in.
local core = require "isc.core"
local data = require "isc.sim.data"
local http = require "isc.sim.http"
local membership = require "isc.sim.membership"

local A = core.json_array
local null = core.null

local M = {}

M.MAX_NAME = 128
M.MAX_DESCRIPTION = 2000
M.MAX_METADATA_VALUES = 25
M.MAX_MEMBERSHIP_CHANGES = 500

local APPROVER_TYPES = { OWNER = false, MANAGER = false, ALL_OWNERS = false, ADDITIONAL_OWNER = false,
  GOVERNANCE_GROUP = true, WORKFLOW = true, ADDITIONAL_GOVERNANCE_GROUP = true }
local TIME_UNITS = { HOURS = true, DAYS = true, WEEKS = true, MONTHS = true }

local function absent(v) return v == nil or v == null end

-- Raises a 400 carried up to M.check's pcall.
local function bad(fmt, ...)
  error({ response = http.bad_request(string.format(fmt, ...)) }, 0)
end

local function missing_ref(fmt, ...)
  error({ response = http.reference_not_found(string.format(fmt, ...)) }, 0)
end

local function want_object(v, path)
  if type(v) ~= "table" or http.is_array(v) then bad("%s must be an object", path) end
  return v
end

local function want_array(v, path)
  if type(v) ~= "table" or (next(v) ~= nil and not http.is_array(v)) then bad("%s must be an array", path) end
  return v
end

local function bool(v, path, default)
  if absent(v) then return default end
  if type(v) ~= "boolean" then bad("%s must be true or false", path) end
  return v
end

local function opt_string(v, path)
  if absent(v) then return null end
  if type(v) ~= "string" then bad("%s must be a string or null", path) end
  return v
end

local function check_type(v, expected, path)
  if not absent(v) and v ~= expected then bad("%s must be %s (or null)", path, expected) end
end

local function check_name_matches(ref, actual, path)
  if not absent(ref.name) and ref.name ~= actual then
    bad("%s.name %q does not match the current display name %q", path, tostring(ref.name), actual)
  end
end

-- The identity a reference names (400 if none, 400.1.404 if unknown).
local function identity_ref(world, ref, path)
  want_object(ref, path)
  if type(ref.id) ~= "string" then bad("%s.id is required", path) end
  local identity = world.identity_by_id[ref.id]
  if not identity then missing_ref("Referenced identity %q (%s) was not found.", ref.id, path) end
  return identity
end

local function owner(world, v)
  if absent(v) then bad("owner is required") end
  want_object(v, "owner")
  check_type(v.type, "IDENTITY", "owner.type")
  local identity = identity_ref(world, v, "owner")
  check_name_matches(v, identity.name, "owner")
  return data.owner_ref(identity)
end

local function additional_owners(world, v)
  local out = A({})
  if absent(v) then return out end
  for i, ref in ipairs(want_array(v, "additionalOwners")) do
    local path = string.format("additionalOwners[%d]", i - 1)
    want_object(ref, path)
    local kind = absent(ref.type) and "IDENTITY" or ref.type
    if kind == "IDENTITY" then
      local identity = identity_ref(world, ref, path)
      check_name_matches(ref, identity.name, path)
      out[i] = { type = "IDENTITY", id = identity.id, name = identity.name }
    elseif kind == "GOVERNANCE_GROUP" then
      local gg = world.governance_groups_by_id[ref.id or ""]
      if not gg then missing_ref("Referenced governance group %q (%s) was not found.", tostring(ref.id), path) end
      check_name_matches(ref, gg.name, path)
      out[i] = { type = "GOVERNANCE_GROUP", id = gg.id, name = gg.name }
    else
      bad("%s.type must be IDENTITY or GOVERNANCE_GROUP", path)
    end
  end
  return out
end

-- A list of references to known objects of one kind, names filled in.
local function refs(v, field, kind, lookup, make, noun)
  local out = A({})
  if absent(v) then return out end
  for i, ref in ipairs(want_array(v, field)) do
    local path = string.format("%s[%d]", field, i - 1)
    want_object(ref, path)
    check_type(ref.type, kind, path .. ".type")
    if type(ref.id) ~= "string" then bad("%s.id is required", path) end
    local obj = lookup[ref.id]
    if not obj then missing_ref("Referenced %s %q was not found.", noun, ref.id) end
    out[i] = make(obj)
  end
  return out
end

-- The dimensions a dimensional role refers to, each a known one.
local function dimension_refs(world, v, dimensional)
  if absent(v) then return null end
  local list = want_array(v, "dimensionRefs")
  if #list > 0 and not dimensional then
    bad("dimensionRefs are only for dimensional roles: set dimensional to true, or leave dimensionRefs out")
  end
  return refs(list, "dimensionRefs", "DIMENSION", world.dimension_by_id,
    function(d) return { type = "DIMENSION", id = d.id, name = d.name } end, "dimension")
end

local function member_list(world, v)
  local out = A({})
  for i, ref in ipairs(want_array(v, "membership.identities")) do
    local path = string.format("membership.identities[%d]", i - 1)
    check_type(want_object(ref, path).type, "IDENTITY", path .. ".type")
    out[i] = data.member_ref(identity_ref(world, ref, path))
  end
  return out
end

-- A RoleMembershipSelector in canonical form.
local function role_membership(world, v)
  if absent(v) then return null end
  want_object(v, "membership")
  if v.type == "STANDARD" then
    if absent(v.criteria) then bad("membership.criteria is required for STANDARD membership") end
    if not absent(v.identities) and (type(v.identities) ~= "table" or #v.identities > 0) then bad("membership.identities must be null for STANDARD membership") end
    local criteria, err = membership.check_criteria(v.criteria, function(id) return world.source_by_id[id] ~= nil end)
    if not criteria then bad("%s", err) end
    return { type = "STANDARD", criteria = criteria, identities = null }
  elseif v.type == "IDENTITY_LIST" then
    if not absent(v.criteria) then bad("membership.criteria must be null for IDENTITY_LIST membership") end
    return { type = "IDENTITY_LIST", criteria = null, identities = member_list(world, absent(v.identities) and {} or v.identities) }
  end
  bad("membership.type must be STANDARD or IDENTITY_LIST")
end

local function approval_schemes(v, path)
  local out = A({})
  if absent(v) then return out end
  for i, s in ipairs(want_array(v, path)) do
    local p = string.format("%s[%d]", path, i - 1)
    want_object(s, p)
    local needs_id = APPROVER_TYPES[s.approverType]
    if needs_id == nil then bad("%s.approverType is not a known approver type", p) end
    if needs_id and type(s.approverId) ~= "string" then bad("%s.approverId is required for %s", p, s.approverType) end
    out[i] = { approverType = s.approverType, approverId = opt_string(s.approverId, p .. ".approverId") }
  end
  return out
end

-- An optional boolean, false when absent.
local function flag(v, path) return bool(v, path, false) end

-- A request config (access or revocation) at path: out holds its defaults;
-- when v is given, each of fields ({name, check}, checked in this order) is
-- taken from it.
local function request_config(v, path, out, fields)
  if absent(v) then return out end
  want_object(v, path)
  for _, f in ipairs(fields) do
    out[f[1]] = f[2](v[f[1]], path .. "." .. f[1])
  end
  return out
end

local function access_request_config(v)
  local out = request_config(v, "accessRequestConfig", data.default_access_request_config(), {
    { "commentsRequired", flag }, { "denialCommentsRequired", flag }, { "reauthorizationRequired", flag },
    { "requireEndDate", flag }, { "approvalSchemes", approval_schemes }, { "formDefinitionId", opt_string },
  })
  if absent(v) then return out end
  local p = "accessRequestConfig."
  local d = v.maxPermittedAccessDuration
  if not absent(d) then
    want_object(d, p .. "maxPermittedAccessDuration")
    if math.type(d.value) ~= "integer" or d.value < 1 then bad("%smaxPermittedAccessDuration.value must be a positive integer", p) end
    if not TIME_UNITS[d.timeUnit] then bad("%smaxPermittedAccessDuration.timeUnit must be HOURS, DAYS, WEEKS or MONTHS", p) end
    out.maxPermittedAccessDuration = { value = d.value, timeUnit = d.timeUnit }
  end
  if not absent(v.dimensionSchema) then out.dimensionSchema = want_object(v.dimensionSchema, p .. "dimensionSchema") end
  return out
end

local function revocation_config(v)
  return request_config(v, "revocationRequestConfig", data.default_revocation_config(), {
    { "commentsRequired", flag }, { "denialCommentsRequired", flag }, { "approvalSchemes", approval_schemes },
  })
end

local function segments(world, v)
  local out = A({})
  if absent(v) then return out end
  for i, id in ipairs(want_array(v, "segments")) do
    if type(id) ~= "string" then bad("segments[%d] must be a string", i - 1) end
    if not world.segments_by_id[id] then missing_ref("Referenced segment %q was not found.", id) end
    out[i] = id
  end
  return out
end

---Checks metadata attributes ({key, values:[{value}]}) against the
---catalogue and returns full AttributeDTOs.
---@param world table
---@param v any accessModelMetadata
---@return table AttributeDTOList
function M.metadata(world, v)
  local out = A({})
  if absent(v) then return { attributes = out } end
  local list = want_object(v, "accessModelMetadata").attributes
  if absent(list) then return { attributes = out } end
  local total = 0
  for i, item in ipairs(want_array(list, "accessModelMetadata.attributes")) do
    local path = string.format("accessModelMetadata.attributes[%d]", i - 1)
    want_object(item, path)
    local attr = world.metadata_by_key[item.key or ""]
    if not attr then missing_ref("Referenced attribute key %q was not found.", tostring(item.key)) end
    local values = {}
    for j, val in ipairs(want_array(absent(item.values) and {} or item.values, path .. ".values")) do
      local name = type(val) == "table" and val.value or val
      if not attr.value_by_name[name or ""] then
        missing_ref("Referenced attribute value %q of %q was not found.", tostring(name), attr.key)
      end
      values[j] = name
    end
    if #values > 1 and not attr.multiselect then bad("%s: attribute %s takes a single value", path, attr.key) end
    total = total + #values
    out[i] = data.attribute_dto(attr, values)
  end
  if total > M.MAX_METADATA_VALUES then bad("A role can have at most %d metadata values", M.MAX_METADATA_VALUES) end
  return { attributes = out }
end

-- The ids of an IDENTITY_LIST membership as a set.
local function identity_set(m)
  local set = {}
  if type(m) == "table" and m.type == "IDENTITY_LIST" and type(m.identities) == "table" then
    for _, ref in ipairs(m.identities) do set[ref.id] = true end
  end
  return set
end

-- How many ids are in exactly one of two sets.
local function count_changes(a, b)
  local n = 0
  for id in pairs(a) do if not b[id] then n = n + 1 end end
  for id in pairs(b) do if not a[id] then n = n + 1 end end
  return n
end

-- The body of M.check; raises {response} on the first problem.
local function check(t, v, current)
  local world = t.world
  want_object(v, "The request body")
  if type(v.name) ~= "string" or v.name:match("^%s*$") then bad("name is required") end
  if #v.name > M.MAX_NAME then bad("name must be at most %d characters", M.MAX_NAME) end
  local same = t.store:named(v.name)
  if same and (not current or same.id ~= current.id) then bad("A role named %q already exists", v.name) end
  local description = opt_string(v.description, "description")
  if description ~= null and #description > M.MAX_DESCRIPTION then
    bad("description must be at most %d characters", M.MAX_DESCRIPTION)
  end
  local role = {
    id = current and current.id or null, name = v.name,
    created = current and current.created or null, modified = current and current.modified or null,
    description = description,
    owner = owner(world, v.owner),
    additionalOwners = additional_owners(world, v.additionalOwners),
    accessProfiles = refs(v.accessProfiles, "accessProfiles", "ACCESS_PROFILE", world.access_profile_by_id,
      data.access_profile_ref, "access profile"),
    entitlements = refs(v.entitlements, "entitlements", "ENTITLEMENT", world.entitlement_by_id,
      data.entitlement_ref, "entitlement"),
    membership = role_membership(world, v.membership),
    legacyMembershipInfo = current and current.legacyMembershipInfo or null,
    enabled = bool(v.enabled, "enabled", false),
    requestable = bool(v.requestable, "requestable", false),
    accessRequestConfig = access_request_config(v.accessRequestConfig),
    revocationRequestConfig = revocation_config(v.revocationRequestConfig),
    segments = segments(world, v.segments),
    dimensional = bool(v.dimensional, "dimensional", false),
    dimensionRefs = dimension_refs(world, v.dimensionRefs, v.dimensional == true),
    privilegeLevel = opt_string(v.privilegeLevel, "privilegeLevel"),
  }
  if current then
    role.accessModelMetadata = M.metadata(world, v.accessModelMetadata)
    local changes = count_changes(identity_set(current.membership), identity_set(role.membership))
    if changes > M.MAX_MEMBERSHIP_CHANGES then
      bad("At most %d membership identities can be changed in one request (this one changes %d)",
        M.MAX_MEMBERSHIP_CHANGES, changes)
    end
  else
    if not absent(v.id) then bad("id must be null when creating a role") end
    local amm = v.accessModelMetadata
    local list = type(amm) == "table" and (http.is_array(amm) and amm or amm.attributes)
    if not absent(amm) and not (type(list) == "table" and #list == 0) and not absent(list) then
      bad("accessModelMetadata must be empty when creating a role; add values with POST roles/{id}/access-model-metadata/{key}/values/{value}")
    end
    role.accessModelMetadata = { attributes = A({}) }
  end
  return role
end

---Checks a role document: a create body (current nil) or the result of a
---patch (current = the role before it).
---@param t table tenant
---@param v any decoded body
---@param current? table Role
---@return table|nil role, table|nil 400 response
function M.check(t, v, current)
  local ok, res = pcall(check, t, v, current)
  if ok then return res end
  if type(res) == "table" and res.response then return nil, res.response end
  error(res, 0)
end

return M
