-- The Roles API (v2024 and /roles/v1): create, get, list, patch, delete,
-- bulk delete, search by filter, assigned identities and entitlements. The
-- metadata operations are in metadata.lua.
local core = require "isc.core"
local clock = require "isc.sim.clock"
local collection = require "isc.sim.collection"
local data = require "isc.sim.data"
local http = require "isc.sim.http"
local membership = require "isc.sim.membership"
local model = require "isc.sim.model"
local patch = require "isc.patch"
local tasks = require "isc.sim.tasks"

local null = core.null

local M = {}

M.BULK_DELETE_MAX = 50

local function ms(iso)
  local t = clock.parse_iso(iso)
  return t and math.floor(t * 1000 + 0.5)
end

-- Filter getters work on store entries whose role is already generated.
local function modified_ms(e)
  local m = e.modified_ms
  if not m then
    m = ms(e.role.modified)
    e.modified_ms = m
  end
  return m
end

local function owner_id(e)
  local o = e.role.owner
  return o ~= null and o.id or nil
end

local function nullable(v)
  if v == null then return nil end
  return v
end

-- Fields of search-roles-by-filter and bulk update by filter.
M.ROLE_FIELDS = {
  id = { type = "string", ops = "eq,in", get = function(e) return e.id end },
  name = { type = "string", ops = "eq,sw", get = function(e) return e.role.name end },
  created = { type = "datetime", ops = "gt,lt,ge,le", get = function(e) return e.created end },
  modified = { type = "datetime", ops = "gt,lt,ge,le", get = modified_ms },
  ["owner.id"] = { type = "string", ops = "eq,in", get = owner_id },
  requestable = { type = "boolean", ops = "eq", get = function(e) return e.role.requestable end },
  dimensional = { type = "boolean", ops = "eq", get = function(e) return nullable(e.role.dimensional) end },
}
local ROLE_SORTERS = { name = M.ROLE_FIELDS.name.get, created = M.ROLE_FIELDS.created.get, modified = modified_ms }

-- list-roles takes the same fields, with fewer operators on the dates: the
-- spec lists created gt,ge,le and modified lt,ge,le.
local LIST_FIELDS = {}
for k, v in pairs(M.ROLE_FIELDS) do LIST_FIELDS[k] = v end
local ALL_ORDERS = "POST /roles/filter takes gt, lt, ge and le on created and modified"
LIST_FIELDS.created = { type = "datetime", ops = "gt,ge,le", get = M.ROLE_FIELDS.created.get, hint = ALL_ORDERS }
LIST_FIELDS.modified = { type = "datetime", ops = "lt,ge,le", get = modified_ms, hint = ALL_ORDERS }

local LIST_SPEC = { default = 50, max = 50, fields = LIST_FIELDS, sorters = ROLE_SORTERS }
local SEARCH_SPEC = { default = 50, max = 250, fields = M.ROLE_FIELDS, sorters = ROLE_SORTERS }

local function entitlement_ms(field)
  return function(ent) return math.floor(ent[field] * 1000 + 0.5) end
end

local ENTITLEMENT_SPEC = {
  default = 50, max = 50,
  fields = {
    id = { type = "string", ops = "eq,in", get = function(x) return x.id end },
    name = { type = "string", ops = "eq,sw", get = function(x) return x.name end },
    attribute = { type = "string", ops = "eq,sw", get = function(x) return x.attribute end },
    value = { type = "string", ops = "eq,sw", get = function(x) return x.value end },
    created = { type = "datetime", ops = "gt,lt,ge,le", get = entitlement_ms("created") },
    modified = { type = "datetime", ops = "gt,lt,ge,le", get = entitlement_ms("modified") },
    ["owner.id"] = { type = "string", ops = "eq,in", get = function(x) return x.owner_id end },
    ["source.id"] = { type = "string", ops = "eq,in", get = function(x) return x.source_id end },
  },
}
ENTITLEMENT_SPEC.sorters = {
  name = ENTITLEMENT_SPEC.fields.name.get, attribute = ENTITLEMENT_SPEC.fields.attribute.get,
  value = ENTITLEMENT_SPEC.fields.value.get, created = ENTITLEMENT_SPEC.fields.created.get,
  modified = ENTITLEMENT_SPEC.fields.modified.get,
}

local IDENTITY_SPEC = {
  default = 250, max = 250,
  fields = {
    id = { type = "string", ops = "eq,in", get = function(x) return x.id end },
    aliasName = { type = "string", ops = "eq,sw", get = function(x) return x.aliasName end },
    email = { type = "string", ops = "eq,sw", get = function(x) return x.email end },
    name = { type = "string", ops = "eq,sw,co", get = function(x) return x.name end },
  },
}
IDENTITY_SPEC.sorters = {}
for k, f in pairs(IDENTITY_SPEC.fields) do IDENTITY_SPEC.sorters[k] = f.get end

local function entry_id(e) return e.id end

-- Whether a ROLE_SUBADMIN identity may see and manage a role: every access
-- profile of it comes from one of the sources the identity administers.
local function subadmin_may(t, identity, role)
  local allowed = identity and identity.subadmin_sources
  if not allowed then return false end
  for _, ref in ipairs(role.accessProfiles) do
    local ap = t.world.access_profile_by_id[ref.id]
    if not ap or not allowed[ap.source_id] then return false end
  end
  return true
end

---The 403 for a sub-admin client's token acting on a role outside its
---sources, or nil (any other token may).
---@param t table tenant
---@param token table|nil
---@param role table Role
---@return table|nil response
function M.out_of_reach(t, token, role)
  local id = token and token.identity
  if not id or subadmin_may(t, t.world.identity_by_id[id], role) then return nil end
  return http.error(403, nil, { causes = { string.format(
    "The role %q has access profiles from sources the ROLE_SUBADMIN %s does not administer.", role.name, id) } })
end

---The entry of the role named by the path, or a 404 response (a 403 when
---the token is a sub-admin's and the role outside its sources).
---@param t table tenant
---@param id string
---@param token? table the caller's
---@return table|nil entry, table|nil response
function M.find(t, id, token)
  local e = t.store:get(id)
  if not e then return nil, http.not_found(string.format("Role %q", id)) end
  t.store:role(e)
  local denied = M.out_of_reach(t, token, e.role)
  if denied then return nil, denied end
  return e
end

---@param t table
---@param e table entry
---@param status? integer
---@return table response with the role's JSON
function M.respond(t, e, status)
  return http.response(status or 200, t.store:json(e))
end

-- for-subadmin, for-segment-ids and include-unsegmented as one predicate
-- (or nil); a sub-admin client sees only its own roles.
local function scope(t, q, token)
  local checks = {}
  local subadmins = { token.identity }
  local sub = q["for-subadmin"]
  if sub and sub ~= "" then
    if sub == "me" and not token.identity then
      return nil, http.bad_request(string.format(
        "for-subadmin=me needs a user token; the API client %s has no identity", token.client_id))
    end
    sub = sub == "me" and token.identity or sub
    local identity = t.world.identity_by_id[sub]
    if not identity or not identity.subadmin_sources then
      return nil, http.bad_request(string.format("Identity %q is not a ROLE_SUBADMIN", sub))
    end
    subadmins[#subadmins + 1] = sub
  end
  for _, id in pairs(subadmins) do
    local identity = t.world.identity_by_id[id]
    checks[#checks + 1] = function(e) return subadmin_may(t, identity, e.role) end
  end
  local seg_param, unseg = q["for-segment-ids"], q["include-unsegmented"]
  local include_unsegmented = true
  if unseg and unseg ~= "" then
    if unseg:lower() ~= "true" and unseg:lower() ~= "false" then
      return nil, http.bad_request("include-unsegmented must be true or false")
    end
    include_unsegmented = unseg:lower() == "true"
  end
  if seg_param and seg_param ~= "" then
    local wanted = {}
    for id in seg_param:gmatch("[^,%s]+") do wanted[id] = true end
    checks[#checks + 1] = function(e)
      local segs = e.role.segments
      if segs == null or #segs == 0 then return include_unsegmented end
      for _, id in ipairs(segs) do if wanted[id] then return true end end
      return false
    end
  elseif not include_unsegmented then
    return nil, http.bad_request("include-unsegmented=false needs for-segment-ids")
  end
  if #checks == 0 then return nil end
  return function(e)
    for _, c in ipairs(checks) do if not c(e) then return false end end
    return true
  end
end

---The roles matching every given predicate, in the default order.
---@param t table
---@param ... function|nil predicates on entries
---@return table entries
function M.matching(t, ...)
  local preds = {}
  for i = 1, select("#", ...) do
    local p = select(i, ...)
    if p then preds[#preds + 1] = p end
  end
  local st, out = t.store, {}
  for _, e in ipairs(st.list) do
    st:role(e)
    local ok = true
    for _, p in ipairs(preds) do
      if not p(e) then ok = false break end
    end
    if ok then out[#out + 1] = e end
  end
  return out
end

-- A page of roles: a slice of the default order when nothing filters or sorts.
local function role_page(t, p, extra)
  local encode = t.encode_role
  if not p.predicate and not p.sort and not extra then
    return collection.page(t.store.list, p, encode)
  end
  local rows = M.matching(t, p.predicate, extra)
  if p.sort then rows = collection.select(rows, { sort = p.sort }, entry_id) end
  return collection.page(rows, p, encode)
end

---Whether a role carries metadata matching every {attribute, values} pair
---(empty values: the key alone).
---@param role table
---@param pairs_list table
---@return boolean
local function has_metadata(role, pairs_list)
  for _, want in ipairs(pairs_list) do
    local found = false
    for _, attr in ipairs(role.accessModelMetadata.attributes or {}) do
      if attr.key == want.attribute then
        if #want.values == 0 then found = true end
        for _, v in ipairs(attr.values ~= null and attr.values or {}) do
          for _, w in ipairs(want.values) do
            if v.value == w then found = true end
          end
        end
      end
    end
    if not found then return false end
  end
  return true
end

-- GET /roles (list-roles)
local function list_roles(t, req, ctx)
  local p, err = collection.params(ctx.query, LIST_SPEC)
  if not p then return err end
  local extra, serr = scope(t, ctx.query, ctx.token)
  if serr then return serr end
  return role_page(t, p, extra)
end

-- POST /roles/filter (search-roles-by-filter): RoleListFilterDTO body.
local function search_roles(t, req, ctx)
  local body, err = http.json_body(req, false)
  if err then return err end
  body = body or {}
  if type(body) ~= "table" or http.is_array(body) then return http.bad_request("The request body must be a RoleListFilterDTO object") end
  if ctx.query.filters then
    return http.bad_request('POST /roles/filter takes its filters in the body ({"filters": "..."}), not in the query string')
  end
  local filters = body.filters
  if filters ~= nil and filters ~= null and type(filters) ~= "string" then
    return http.bad_request("filters must be a string")
  end
  local p, perr = collection.params(ctx.query, SEARCH_SPEC, filters ~= null and filters or "")
  if not p then return perr end
  local extra, serr = scope(t, ctx.query, ctx.token)
  if serr then return serr end
  local amm = body.ammKeyValues
  if amm ~= nil and amm ~= null then
    if not http.is_array(amm) then return http.bad_request("ammKeyValues must be an array") end
    local wanted = {}
    for i, item in ipairs(amm) do
      if type(item) ~= "table" or type(item.attribute) ~= "string" then
        return http.bad_request(string.format("ammKeyValues[%d].attribute must be a string", i - 1))
      end
      local values = item.values ~= null and item.values or {}
      wanted[i] = { attribute = item.attribute, values = values }
    end
    local scope_pred = extra
    extra = function(e)
      return (not scope_pred or scope_pred(e)) and has_metadata(e.role, wanted)
    end
  end
  return role_page(t, p, extra)
end

-- GET /roles/{id}
local function get_role(t, req, ctx)
  local e, err = M.find(t, ctx.params.id, ctx.token)
  if not e then return err end
  return M.respond(t, e)
end

-- POST /roles: 201 with the full role.
local function create_role(t, req, ctx)
  local body, err = http.json_body(req, true)
  if err then return err end
  local role, rerr = model.check(t, body)
  if not role then return rerr end
  local denied = M.out_of_reach(t, ctx.token, role)
  if denied then return denied end
  local now = clock.iso(t.clock:now(), true)
  role.id = t.rng:isc_id()
  role.created, role.modified = now, now
  return M.respond(t, t.store:insert(role), 201)
end

-- Top-level fields PATCH may touch (revokeRequestConfig is the spec's name
-- for revocationRequestConfig, see the reference §9.6).
local PATCHABLE = {
  name = true, description = true, enabled = true, owner = true, additionalOwners = true, accessProfiles = true,
  entitlements = true, membership = true, requestable = true, accessRequestConfig = true,
  revocationRequestConfig = true, segments = true, accessModelMetadata = true,
}

-- A patch path with the spec's revokeRequestConfig renamed.
local function patch_path(p)
  if type(p) ~= "string" then return p end
  return (p:gsub("^/revokeRequestConfig", "/revocationRequestConfig"))
end

-- PATCH /roles/{id}: JSON Patch on the patchable fields.
local function patch_role(t, req, ctx)
  local ctype = (req.headers["content-type"] or ""):lower()
  if not ctype:find("application/json-patch+json", 1, true) then
    return http.error(415, "PATCH takes a JSON Patch document with Content-Type application/json-patch+json")
  end
  local e, nerr = M.find(t, ctx.params.id, ctx.token)
  if not e then return nerr end
  local ops, err = http.json_body(req, true)
  if err then return err end
  if not http.is_array(ops) then return http.bad_request("A JSON Patch document must be an array of operations") end
  for i, op in ipairs(ops) do
    if type(op) ~= "table" then return http.bad_request(string.format("operation %d must be an object", i - 1)) end
    op.path, op.from = patch_path(op.path), patch_path(op.from)
    for _, p in ipairs({ op.path, op.from }) do
      local field = type(p) == "string" and p:match("^/([^/]*)")
      if not field or not PATCHABLE[field] then
        return http.bad_request(string.format("operation %d: %s is not a patchable field of a role", i - 1, tostring(p)))
      end
    end
  end
  local patched, perr = patch.apply(e.role, ops)
  if not patched then return http.bad_request(perr) end
  local role, rerr = model.check(t, patched, e.role)
  if not role then return rerr end
  local denied = M.out_of_reach(t, ctx.token, role)
  if denied then return denied end
  local old_name = e.role.name
  role.modified = clock.iso(t.clock:now(), true)
  e.role, e.modified_ms = role, nil
  t.store:changed(e)
  if role.name ~= old_name then t.store:renamed(e, old_name) end
  return M.respond(t, e)
end

-- DELETE /roles/{id}: 204.
local function delete_role(t, req, ctx)
  local e, err = M.find(t, ctx.params.id, ctx.token)
  if not e then return err end
  t.store:remove(e)
  return http.response(204)
end

-- POST /roles/bulk-delete: 202 TaskResultDto, whose task-status says when the
-- roles are gone (after bulk_delete_seconds).
local function bulk_delete(t, req, ctx)
  local body, err = http.json_body(req, true)
  if err then return err end
  if type(body) ~= "table" or not http.is_array(body.roleIds) then
    return http.bad_request("roleIds is required: a list of role ids")
  end
  local ids = body.roleIds
  if #ids == 0 then return http.bad_request("roleIds must name at least one role") end
  if #ids > M.BULK_DELETE_MAX then
    return http.bad_request(string.format("roleIds count exceeded max limit of %d for bulk-delete.", M.BULK_DELETE_MAX))
  end
  local unknown = {}
  for _, id in ipairs(ids) do
    if type(id) ~= "string" then return http.bad_request("roleIds must be strings") end
    if not t.store:get(id) then unknown[#unknown + 1] = string.format("%q", id) end
  end
  if #unknown > 0 then
    return http.reference_not_found(string.format("Referenced roleIds [%s] was not found.", table.concat(unknown, ",")))
  end
  for _, id in ipairs(ids) do
    local denied = M.out_of_reach(t, ctx.token, t.store:role(t.store:get(id)))
    if denied then return denied end
  end
  local task, due = t.rng:hex(32), t.clock:now() + t.config.bulk_delete_seconds
  t:schedule(due, function()
    for _, id in ipairs(ids) do
      local e = t.store:get(id)
      if e then t.store:remove(e) end
    end
  end)
  tasks.start(t, { id = task, name = "Bulk Role Delete", description = string.format("Deletes %d roles", #ids),
    launcher = ctx.token.client_id, due = due, attributes = { roleIds = ids } })
  return http.json(202, { type = "TASK_RESULT", id = task, name = null })
end

-- A page of something listed under the role a path names: rows_of(e)
-- filtered and sorted by the query (against spec), each item encoded.
local function role_sublist(t, ctx, spec, rows_of, encode)
  local e, err = M.find(t, ctx.params.id, ctx.token)
  if not e then return err end
  local p, perr = collection.params(ctx.query, spec)
  if not p then return perr end
  return collection.page(collection.select(rows_of(e), p, function(x) return x.id end), p, encode)
end

-- GET /roles/{id}/assigned-identities
local function assigned_identities(t, req, ctx)
  return role_sublist(t, ctx, IDENTITY_SPEC, function(e)
    return membership.assigned(t.world, e.role, t.store:requested(e))
  end, core.json_encode)
end

---The entitlements a role grants: its own, then those of its access
---profiles, each once.
---@param t table
---@param role table
---@return table[] internal entitlements
function M.entitlements_of(t, role)
  local out, seen, world = {}, {}, t.world
  local function add(id)
    local ent = world.entitlement_by_id[id]
    if ent and not seen[id] then
      seen[id] = true
      out[#out + 1] = ent
    end
  end
  for _, ref in ipairs(role.entitlements) do add(ref.id) end
  for _, ref in ipairs(role.accessProfiles ~= null and role.accessProfiles or {}) do
    local ap = world.access_profile_by_id[ref.id]
    for _, id in ipairs(ap and ap.entitlements or {}) do add(id) end
  end
  return out
end

-- GET /roles/{id}/entitlements
local function role_entitlements(t, req, ctx)
  return role_sublist(t, ctx, ENTITLEMENT_SPEC, function(e) return M.entitlements_of(t, e.role) end,
    function(ent) return core.json_encode(data.entitlement_dto(t.world, ent)) end)
end

---Routes relative to a roles base (/v2024/roles, /roles/v1, ...).
M.routes = {
  { "GET", "", list_roles },
  { "POST", "", create_role, mutates = true },
  { "POST", "/bulk-delete", bulk_delete, mutates = true },
  { "POST", "/filter", search_roles },
  { "GET", "/{id}", get_role },
  { "PATCH", "/{id}", patch_role, mutates = true },
  { "DELETE", "/{id}", delete_role, mutates = true },
  { "GET", "/{id}/assigned-identities", assigned_identities },
  { "GET", "/{id}/entitlements", role_entitlements, experimental = "experimental_entitlements" },
}

return M
