-- Access-model metadata on roles: adding and removing one value, and the
-- asynchronous bulk updates (by ids, by filter, by search query) whose jobs
-- move CREATED -> PRE_PROCESS -> CHUNK_PROCESSING -> COMPLETED on the sim
-- clock and apply their change when they complete.
local core = require "isc.core"
local clock = require "isc.sim.clock"
local data = require "isc.sim.data"
local filter = require "isc.sim.filter"
local http = require "isc.sim.http"
local model = require "isc.sim.model"
local roles = require "isc.sim.roles"

local A = core.json_array
local null = core.null

local M = {}

M.BULK_IDS_MAX = 3000
M.STAGES = { "CREATED", "PRE_PROCESS", "CHUNK_PROCESSING", "COMPLETED" }

local OPERATIONS = { ADD = true, REMOVE = true, REPLACE = true }
local SCOPES = { ALL = true, ATTRIBUTE = true }

-- The role's metadata as {key -> list of value names}, in attribute order.
local function values_of(role)
  local keys, by_key = {}, {}
  for _, attr in ipairs(role.accessModelMetadata.attributes or {}) do
    keys[#keys + 1] = attr.key
    local list = {}
    for _, v in ipairs(attr.values ~= null and attr.values or {}) do list[#list + 1] = v.value end
    by_key[attr.key] = list
  end
  return keys, by_key
end

-- Rebuilds AttributeDTOs from {key -> values}; attributes left empty go away.
local function attributes_from(world, keys, by_key)
  local out = A({})
  for _, key in ipairs(keys) do
    local vals = by_key[key]
    if vals and #vals > 0 then out[#out + 1] = data.attribute_dto(world.metadata_by_key[key], vals) end
  end
  return out
end

local function total(by_key)
  local n = 0
  for _, vals in pairs(by_key) do n = n + #vals end
  return n
end

local function index_of(list, v)
  for i, x in ipairs(list) do if x == v then return i end end
end

-- Stores changed metadata on a role and bumps its modified time.
local function store_metadata(t, e, keys, by_key)
  e.role.accessModelMetadata = { attributes = attributes_from(t.world, keys, by_key) }
  e.role.modified = clock.iso(t.clock:now(), true)
  e.modified_ms = nil
  t.store:changed(e)
end

-- Looks up a catalogue key and value named in a path or body.
local function catalogue_value(world, key, value)
  local attr = world.metadata_by_key[key]
  if not attr then return nil, http.reference_not_found(string.format("Referenced attribute key %q was not found.", key)) end
  if value and not attr.value_by_name[value] then
    return nil, http.reference_not_found(string.format("Referenced attribute value %q of %q was not found.", value, key))
  end
  return attr
end

-- Adds a value (replacing the value of a single-select attribute); false if over the limit.
local function add_value(attr, keys, by_key, value)
  local list = by_key[attr.key]
  if not list then
    list = {}
    by_key[attr.key] = list
    keys[#keys + 1] = attr.key
  end
  if index_of(list, value) then return true end
  if not attr.multiselect and #list > 0 then
    list[1] = value
    return true
  end
  if total(by_key) >= model.MAX_METADATA_VALUES then return false end
  list[#list + 1] = value
  return true
end

-- The role and the catalogue attribute a one-value path names
-- (roles/{id}/access-model-metadata/{key}/values/{value}); nil, nil and the
-- error response when either is unknown.
local function one_value_target(t, ctx)
  local e, err = roles.find(t, ctx.params.id, ctx.token)
  if not e then return nil, nil, err end
  local attr, aerr = catalogue_value(t.world, ctx.params.attributeKey, ctx.params.attributeValue)
  if not attr then return nil, nil, aerr end
  return e, attr
end

-- POST roles/{id}/access-model-metadata/{key}/values/{value}
local function add_one(t, req, ctx)
  local e, attr, err = one_value_target(t, ctx)
  if not e then return err end
  local keys, by_key = values_of(e.role)
  if index_of(by_key[attr.key] or {}, ctx.params.attributeValue) then return roles.respond(t, e) end
  if not add_value(attr, keys, by_key, ctx.params.attributeValue) then
    return http.bad_request(string.format("A role can have at most %d metadata values", model.MAX_METADATA_VALUES))
  end
  store_metadata(t, e, keys, by_key)
  return roles.respond(t, e)
end

-- DELETE roles/{id}/access-model-metadata/{key}/values/{value}: 202 also when absent.
local function remove_one(t, req, ctx)
  local e, attr, err = one_value_target(t, ctx)
  if not e then return err end
  local keys, by_key = values_of(e.role)
  local list = by_key[attr.key] or {}
  local i = index_of(list, ctx.params.attributeValue)
  if i then
    table.remove(list, i)
    store_metadata(t, e, keys, by_key)
  end
  return http.response(202)
end

-- Applies one bulk operation to a role; returns false when it would pass the value limit.
local function apply_change(t, e, change)
  local keys, by_key = values_of(e.role)
  if change.operation == "REPLACE" and change.scope == "ALL" then
    keys, by_key = {}, {}
  end
  for _, item in ipairs(change.values) do
    local attr = t.world.metadata_by_key[item.key]
    -- Empty the attribute in place; add_value creates it when the role lacks it.
    if change.operation == "REPLACE" and change.scope == "ATTRIBUTE" and by_key[item.key] then
      by_key[item.key] = {}
    end
    if change.operation == "REMOVE" then
      local list = by_key[item.key] or {}
      if #item.values == 0 then by_key[item.key] = {} end
      for _, v in ipairs(item.values) do
        local i = index_of(list, v)
        if i then table.remove(list, i) end
      end
    else
      for _, v in ipairs(item.values) do
        if not add_value(attr, keys, by_key, v) then return false end
      end
    end
  end
  store_metadata(t, e, keys, by_key)
  return true
end

-- The common part of the three bulk bodies: operation, replaceScope, values.
local function read_change(t, body)
  if type(body) ~= "table" or http.is_array(body) then return nil, http.bad_request("The request body must be an object") end
  if not OPERATIONS[body.operation] then return nil, http.bad_request("operation is required: ADD, REMOVE or REPLACE") end
  local scope = body.replaceScope
  if scope == nil or scope == null then scope = "ALL" end
  if not SCOPES[scope] then return nil, http.bad_request("replaceScope must be ALL or ATTRIBUTE") end
  if not http.is_array(body.values) then return nil, http.bad_request("values is required: a list of {attribute, values}") end
  local change = { operation = body.operation, scope = scope, values = {} }
  for i, item in ipairs(body.values) do
    if type(item) ~= "table" then return nil, http.bad_request(string.format("values[%d] must be an object", i - 1)) end
    -- Spec schemas and examples disagree on the item's names (reference §9.2): accept all of them.
    local key = item.attribute or item.attributeKey
    local vals = item.values
    if vals == nil or vals == null then vals = item.attributeValue end
    if vals == nil or vals == null then vals = {} end
    if type(key) ~= "string" then return nil, http.bad_request(string.format("values[%d].attribute is required", i - 1)) end
    if type(vals) == "string" then vals = { vals } end
    if type(vals) ~= "table" then return nil, http.bad_request(string.format("values[%d].values must be a list", i - 1)) end
    for _, v in ipairs(vals) do
      local _, err = catalogue_value(t.world, key, v)
      if err then return nil, err end
    end
    local _, err = catalogue_value(t.world, key)
    if err then return nil, err end
    change.values[i] = { key = key, values = vals }
  end
  return change
end

-- A bulk request's JSON body and the change it asks for; nil, nil and the
-- error response when either is wrong.
local function bulk_request(t, req)
  local body, err = http.json_body(req, true)
  if err then return nil, nil, err end
  local change, cerr = read_change(t, body)
  if not change then return nil, nil, cerr end
  return change, body
end

---The status of a job at sim time now.
---@param t table
---@param job table
---@param now number
---@return string
local function job_status(t, job, now)
  local step = t.config.bulk_update_stage_seconds
  local k = step > 0 and math.floor((now - job.started) / step) + 1 or #M.STAGES
  return M.STAGES[math.min(math.max(k, 1), #M.STAGES)]
end

-- RoleBulkUpdateResponse of a job at sim time now.
local function job_dto(t, job, now)
  return { id = job.id, type = "ROLE", status = job_status(t, job, now), created = clock.iso(job.started, true) }
end

-- Starts a bulk job over the given entries; applies the change when it completes.
local function start_job(t, entries, change)
  local now = t.clock:now()
  local job = { id = t.rng:uuid(), started = now }
  local ids = {}
  for i, e in ipairs(entries) do ids[i] = e.id end
  t.bulk_jobs[#t.bulk_jobs + 1] = job
  t.bulk_job_by_id[job.id] = job
  t:schedule(now + t.config.bulk_update_stage_seconds * (#M.STAGES - 1), function()
    for _, id in ipairs(ids) do
      local e = t.store:get(id)
      if e then
        t.store:role(e)
        apply_change(t, e, change)
      end
    end
  end)
  return http.json(202, job_dto(t, job, now))
end

-- POST bulk-update/ids (at most 3000 roles, all of them known).
local function by_ids(t, req)
  local change, body, err = bulk_request(t, req)
  if not change then return err end
  if not http.is_array(body.roles) or #body.roles == 0 then return http.bad_request("roles is required: a list of role ids") end
  if #body.roles > M.BULK_IDS_MAX then
    return http.bad_request(string.format("roles count exceeded max limit of %d for bulk-update.", M.BULK_IDS_MAX))
  end
  local entries, unknown = {}, {}
  for _, id in ipairs(body.roles) do
    local e = type(id) == "string" and t.store:get(id)
    if e then entries[#entries + 1] = e else unknown[#unknown + 1] = string.format("%q", tostring(id)) end
  end
  if #unknown > 0 then
    return http.reference_not_found(string.format("Referenced roles [%s] was not found.", table.concat(unknown, ",")))
  end
  return start_job(t, entries, change)
end

-- POST bulk-update/filter (the roles the filter selects now).
local function by_filter(t, req)
  local change, body, err = bulk_request(t, req)
  if not change then return err end
  if type(body.filters) ~= "string" or body.filters:match("^%s*$") then return http.bad_request("filters is required") end
  local pred, ferr = filter.predicate(body.filters, roles.ROLE_FIELDS)
  if not pred then return http.bad_request(ferr) end
  return start_job(t, roles.matching(t, pred), change)
end

-- Values of a role for a search field (TEXT query fields and field:value terms).
local function search_values(role, field)
  if field == "owner.name" or field == "owner.id" then
    local o = role.owner
    return o ~= null and { o[field:sub(7)] } or {}
  end
  local v = role[field]
  if type(v) == "string" then return { v } end
  if type(v) == "boolean" then return { tostring(v) } end
  return {}
end

-- Whether any value equals the term (or contains it, or has its prefix when it ends with *).
local function term_match(values, term, contains)
  term = term:lower()
  for _, v in ipairs(values) do
    v = v:lower()
    if v == term or (contains and v:find(term, 1, true)) then return true end
    if term:sub(-1) == "*" and v:sub(1, #term - 1) == term:sub(1, -2) then return true end
  end
  return false
end

-- A predicate for the subset of ISC's Search that addresses roles: TEXT
-- queries (terms, fields, matchAny, contains) and query strings made of
-- `*`, `field:value` terms and free words (searched in name and description).
local function search_predicate(q)
  if type(q) ~= "table" or http.is_array(q) then return nil, "query is required: a Search object" end
  -- The spec's example nests the Search under a stray key `query"` (reference §9.3).
  if type(q['query"']) == "table" then q = q['query"'] end
  local indices = q.indices
  if indices ~= nil and indices ~= null then
    local ok = false
    for _, i in ipairs(indices) do if i == "roles" then ok = true end end
    if not ok then return nil, "query.indices must include roles" end
  end
  local tq = q.textQuery
  if q.queryType == "TEXT" or (tq ~= nil and tq ~= null) then
    if type(tq) ~= "table" or not http.is_array(tq.terms) then return nil, "query.textQuery.terms is required" end
    local fields = http.is_array(tq.fields) and tq.fields or { "name" }
    local any, contains = tq.matchAny == true, tq.contains == true
    return function(role)
      for _, term in ipairs(tq.terms) do
        local hit = false
        for _, f in ipairs(fields) do
          if term_match(search_values(role, f), tostring(term), contains) then hit = true break end
        end
        if any and hit then return true end
        if not any and not hit then return false end
      end
      return not any
    end
  end
  local text = type(q.query) == "table" and q.query.query
  if type(text) ~= "string" then return nil, "query.query.query (a query string) or query.textQuery is required" end
  local terms = {}
  for token in text:gsub('"([^"]*)"', function(s) return (s:gsub("%s", "\0")) end):gmatch("%S+") do
    token = token:gsub("%z", " ")
    local field, value = token:match("^([%w_.]+):(.*)$")
    if not field then field, value = "", token end
    if value ~= "" and value:upper() ~= "AND" then terms[#terms + 1] = { field = field, value = value } end
  end
  return function(role)
    for _, term in ipairs(terms) do
      if term.value ~= "*" then
        local values = term.field ~= "" and search_values(role, term.field)
          or { role.name, role.description ~= null and role.description or nil }
        if not term_match(values, term.value, term.field == "") then return false end
      end
    end
    return true
  end
end

-- POST bulk-update/query (the roles the search selects now).
local function by_query(t, req)
  local change, body, err = bulk_request(t, req)
  if not change then return err end
  local pred, qerr = search_predicate(body.query)
  if not pred then return http.bad_request(qerr) end
  return start_job(t, roles.matching(t, function(e) return pred(e.role) end), change)
end

-- GET bulk-update: the jobs not COMPLETED yet.
local function unfinished(t)
  local now, out = t.clock:now(), A({})
  for _, job in ipairs(t.bulk_jobs) do
    local dto = job_dto(t, job, now)
    if dto.status ~= "COMPLETED" then out[#out + 1] = dto end
  end
  return http.json(200, out)
end

-- GET bulk-update/{id}, and the literal bulk-update/id the SDKs send (the
-- most recent job, reference §9.1); 202 as the spec says.
local function job_status_by_id(t, req, ctx)
  local id = ctx.params.jobId
  local job = t.bulk_job_by_id[id]
  if not job and id == "id" then job = t.bulk_jobs[#t.bulk_jobs] end
  if not job then return http.not_found(string.format("Bulk update %q", id)) end
  return http.json(202, job_dto(t, job, t.clock:now()))
end

M.routes = {
  { "POST", "/{id}/access-model-metadata/{attributeKey}/values/{attributeValue}", add_one, mutates = true },
  { "DELETE", "/{id}/access-model-metadata/{attributeKey}/values/{attributeValue}", remove_one, mutates = true },
  { "GET", "/access-model-metadata/bulk-update", unfinished },
  { "GET", "/access-model-metadata/bulk-update/{jobId}", job_status_by_id },
  { "POST", "/access-model-metadata/bulk-update/ids", by_ids, mutates = true },
  { "POST", "/access-model-metadata/bulk-update/filter", by_filter, mutates = true },
  { "POST", "/access-model-metadata/bulk-update/query", by_query, mutates = true },
}

return M
