-- The read endpoints over what roles refer to, so that a script can look up
-- an owner, an access profile or a metadata value before it builds a role:
-- identities, access profiles, entitlements, segments, governance groups
-- (workgroups) and the access-model metadata attributes with their values.
-- Each is a listing (paging, filters and sorters as the endpoint's spec
-- lists them) and a get by id; they read the same seeded data as the roles.
local core = require "isc.core"
local clock = require "isc.sim.clock"
local collection = require "isc.sim.collection"
local data = require "isc.sim.data"
local http = require "isc.sim.http"

local A = core.json_array
local null = core.null

local M = {}

-- Objects a state file made up from a role's references carry no dates.
local function iso(t) return clock.iso(t or 0, true) end
local function ms(t) return t and math.floor(t * 1000 + 0.5) end

-- A filterable field: operators, getter and type (string unless given).
local function field(ops, get, ftype)
  return { type = ftype or "string", ops = ops, get = get }
end

local function key(name) return function(x) return x[name] end end

-- created and modified, filtered with the four order operators.
local function dated(fields)
  fields.created = field("gt,lt,ge,le", function(x) return ms(x.created) end, "datetime")
  fields.modified = field("gt,lt,ge,le", function(x) return ms(x.modified) end, "datetime")
  return fields
end

-- The sorters named in names: a filterable field's getter, else the item's own key.
local function sorters(fields, names)
  local out = {}
  for name in names:gmatch("[^,%s]+") do out[name] = fields[name] and fields[name].get or key(name) end
  return out
end

-- The identity an object names as its owner, or nil.
local function owner_of(world, x)
  return world.identity_by_id[x.owner_id or ""]
end

-- GET of a collection: rows(t, ctx) (or nil and an error response), then
-- filtered, sorted and paged as spec says, each item encoded.
local function listing(spec, rows, encode)
  local id = spec.id or key("id")
  return function(t, req, ctx)
    local p, err = collection.params(ctx.query, spec)
    if not p then return err end
    local list, lerr = rows(t, ctx)
    if not list then return lerr end
    return collection.page(collection.select(list, p, id), p, function(x) return core.json_encode(encode(t.world, x)) end)
  end
end

-- GET of one item: find(t, ctx) returns it, or nil and a 404 response.
local function getter(find, encode)
  return function(t, req, ctx)
    local x, err = find(t, ctx)
    if not x then return err end
    return http.json(200, encode(t.world, x))
  end
end

-- A find for getter: the item of world[index] the path's {id} names.
local function by_id(index, noun)
  return function(t, ctx)
    local x = t.world[index][ctx.params.id]
    if not x then return nil, http.not_found(string.format("%s %q", noun, ctx.params.id)) end
    return x
  end
end

local function world_list(name) return function(t) return t.world[name] end end

-- Identities (list-identities: limit up to 250) ------------------------------

local function identity_status(i)
  return (i.attributes.cloudLifecycleState or "active") == "active" and "ACTIVE" or "DEACTIVATED"
end

local IDENTITY_FIELDS = {
  id = field("eq,in", key("id")),
  name = field("eq,sw", key("name")),
  alias = field("eq,sw", key("alias")),
  firstname = field("eq,sw", function(i) return i.attributes.firstname end),
  lastname = field("eq,sw", function(i) return i.attributes.lastname end),
  email = field("eq,sw", key("email")),
  cloudStatus = field("eq", identity_status),
  processingState = field("eq", function() return nil end),
  correlated = field("eq", function() return true end, "boolean"),
  protected = field("eq", function() return false end, "boolean"),
}
local IDENTITIES = { default = 250, max = 250, fields = IDENTITY_FIELDS,
  sorters = sorters(IDENTITY_FIELDS, "name, alias, cloudStatus") }

-- Identity
local function identity_dto(world, i)
  local manager = world.identity_by_id[i.manager_id or ""]
  return {
    id = i.id, name = i.name, created = iso(i.created), modified = iso(i.modified), alias = i.alias,
    emailAddress = i.email or null, processingState = null, identityStatus = identity_status(i),
    managerRef = manager and { type = "IDENTITY", id = manager.id, name = manager.name } or null,
    isManager = i.is_manager == true, lastRefresh = iso(i.modified), attributes = i.attributes,
    lifecycleState = { stateName = i.attributes.cloudLifecycleState or "active", manuallyUpdated = false },
  }
end

-- Every identity generated is correlated, so both defaultFilter values list them all.
local DEFAULT_FILTERS = { CORRELATED_ONLY = true, NONE = true }

local function identities(t, ctx)
  local d = ctx.query.defaultFilter
  if d and d ~= "" and not DEFAULT_FILTERS[d] then
    return nil, http.bad_request(string.format("defaultFilter %q is invalid: expected CORRELATED_ONLY or NONE", d))
  end
  return t.world.identities
end

-- Access profiles (list-access-profiles: limit up to 50) ---------------------

local AP_FIELDS = dated {
  id = field("eq,in", key("id")),
  name = field("eq,sw", key("name")),
  ["owner.id"] = field("eq,in", key("owner_id")),
  requestable = field("eq", function(ap) return ap.requestable == true end, "boolean"),
  ["source.id"] = field("eq,in", key("source_id")),
}
local ACCESS_PROFILES = { default = 50, max = 50, fields = AP_FIELDS, sorters = sorters(AP_FIELDS, "name, created, modified") }

-- AccessProfile
local function access_profile_dto(world, ap)
  local owner = owner_of(world, ap) or world.identities[1]
  local src = world.source_by_id[ap.source_id or ""]
  local ents = A({})
  for _, id in ipairs(ap.entitlements or {}) do
    local ent = world.entitlement_by_id[id]
    if ent then ents[#ents + 1] = data.entitlement_ref(ent) end
  end
  return {
    id = ap.id, name = ap.name, description = ap.description or null, created = iso(ap.created),
    modified = iso(ap.modified), enabled = true, owner = data.owner_ref(owner),
    source = src and { id = src.id, type = "SOURCE", name = src.name } or { type = "SOURCE" },
    entitlements = ents, requestable = ap.requestable == true,
    accessRequestConfig = { commentsRequired = false, denialCommentsRequired = false, approvalSchemes = A({}) },
    revocationRequestConfig = { approvalSchemes = A({}) }, segments = A({}), provisioningCriteria = null,
  }
end

-- Entitlements (list-entitlements: limit up to 250) --------------------------

local ENT_FIELDS = dated {
  id = field("eq,in", key("id")),
  name = field("eq,in,sw", key("name")),
  type = field("eq,in", key("object")),
  attribute = field("eq,in", key("attribute")),
  value = field("eq,in,sw", key("value")),
  ["source.id"] = field("eq,in", key("source_id")),
  requestable = field("eq", key("requestable"), "boolean"),
  ["owner.id"] = field("eq,in", key("owner_id")),
}
local ENTITLEMENTS = { default = 250, max = 250, fields = ENT_FIELDS,
  sorters = sorters(ENT_FIELDS, "id, name, created, modified, type, attribute, value, source.id, requestable") }

-- Segments (list-segments: paging only) --------------------------------------

local SEGMENTS = { default = 250, max = 250, fields = {}, sorters = {} }

-- Segment
local function segment_dto(world, seg)
  local owner = owner_of(world, seg)
  return {
    id = seg.id, name = seg.name, created = iso(seg.created), modified = iso(seg.modified),
    description = seg.description or "", owner = owner and data.owner_ref(owner) or null,
    visibilityCriteria = { expression = { operator = "EQUALS", attribute = "segment",
      value = { type = "STRING", value = seg.name }, children = A({}) } },
    active = true,
  }
end

-- Governance groups (list-workgroups: limit up to 50) ------------------------

local GG_FIELDS = {
  id = field("eq,in,sw", key("id")),
  name = field("eq,sw,in", key("name")),
  ["memberships.identityId"] = { type = "string", ops = "eq,in", get = key("member_ids"), many = true },
}
local WORKGROUPS = { default = 50, max = 50, fields = GG_FIELDS,
  sorters = sorters(GG_FIELDS, "name, created, modified, id, description") }

-- WorkgroupDto
local function workgroup_dto(world, gg)
  local owner = owner_of(world, gg)
  return {
    owner = owner and { type = "IDENTITY", id = owner.id, name = owner.name, displayName = owner.name,
      emailAddress = owner.email } or nil,
    id = gg.id, name = gg.name, description = gg.description or "", memberCount = #(gg.member_ids or {}),
    created = iso(gg.created), modified = iso(gg.modified),
  }
end

-- Access-model metadata attributes and values (limit up to 250) -------------

local ATTR_FIELDS = {
  key = field("eq", key("key")),
  name = field("eq", key("name")),
  type = field("eq", key("type")),
  status = field("eq", key("status")),
  objectTypes = { type = "string", ops = "eq", get = key("objectTypes"), many = true },
}
local ATTRIBUTES = { default = 250, max = 250, fields = ATTR_FIELDS, sorters = sorters(ATTR_FIELDS, "name, key"),
  id = key("key") }
local VALUES = { default = 250, max = 250, fields = {}, sorters = {}, id = key("value") }

-- AttributeDTO with every value of the catalogue.
local function attribute_dto(world, attr)
  local names = {}
  for i, v in ipairs(attr.values) do names[i] = v.value end
  return data.attribute_dto(attr, names)
end

-- AttributeValueDTO
local function value_dto(world, v)
  return { value = v.value, name = v.name, status = v.status }
end

-- The attribute the path's {key} names, or nil and a 404.
local function attribute(t, ctx)
  local attr = t.world.metadata_by_key[ctx.params.key]
  if not attr then return nil, http.not_found(string.format("Attribute %q", ctx.params.key)) end
  return attr
end

local function attribute_values(t, ctx)
  local attr, err = attribute(t, ctx)
  return attr and attr.values, err
end

local function attribute_value(t, ctx)
  local attr, err = attribute(t, ctx)
  if not attr then return nil, err end
  local v = attr.value_by_name[ctx.params.value]
  if not v then
    return nil, http.not_found(string.format("Value %q of attribute %q", ctx.params.value, attr.key))
  end
  return v
end

---Routes relative to a year-versioned base (/v2024, /v2025, /v2026).
M.routes = {
  { "GET", "/identities", listing(IDENTITIES, identities, identity_dto) },
  { "GET", "/identities/{id}", getter(by_id("identity_by_id", "Identity"), identity_dto) },
  { "GET", "/access-profiles", listing(ACCESS_PROFILES, world_list("access_profiles"), access_profile_dto) },
  { "GET", "/access-profiles/{id}", getter(by_id("access_profile_by_id", "Access profile"), access_profile_dto) },
  { "GET", "/entitlements", listing(ENTITLEMENTS, world_list("entitlements"), data.entitlement_dto) },
  { "GET", "/entitlements/{id}", getter(by_id("entitlement_by_id", "Entitlement"), data.entitlement_dto) },
  { "GET", "/segments", listing(SEGMENTS, world_list("segments"), segment_dto) },
  { "GET", "/segments/{id}", getter(by_id("segments_by_id", "Segment"), segment_dto) },
  { "GET", "/workgroups", listing(WORKGROUPS, world_list("governance_groups"), workgroup_dto) },
  { "GET", "/workgroups/{id}", getter(by_id("governance_groups_by_id", "Governance group"), workgroup_dto) },
  { "GET", "/access-model-metadata/attributes", listing(ATTRIBUTES, world_list("metadata"), attribute_dto) },
  { "GET", "/access-model-metadata/attributes/{key}", getter(attribute, attribute_dto) },
  { "GET", "/access-model-metadata/attributes/{key}/values", listing(VALUES, attribute_values, value_dto) },
  { "GET", "/access-model-metadata/attributes/{key}/values/{value}", getter(attribute_value, value_dto) },
}

return M
