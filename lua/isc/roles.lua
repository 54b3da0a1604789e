--- The Roles API (v2024, or /roles/v1 under the per-api layout) as Lua: the
--- `c.roles` service of a client. Options are snake_case; what goes on the
--- wire keeps ISC's names. Role tables are ISC's JSON as decoded, so a role
--- fetched, changed and sent back keeps its [] and nulls.
local core = require "isc.core"
local args = require "isc.args"
local errors = require "isc.errors"
local escape = require("isc.client").escape

local M = {}

--- One line per public function, for the REPL's help().
M.help = {
  list = "roles:list{filters=, sorters=, limit<=50, offset=, max=, for_subadmin=, for_segment_ids=, include_unsegmented=} -> iterator over roles",
  get = "roles:get(id) -> role (an api error with status 404 when there is none)",
  create = "roles:create(role) -> the created role (name and owner required)",
  patch = "roles:patch(id, {{op=, path=, value=}, ...}) -> the updated role (JSON Patch)",
  delete = "roles:delete(id): deletes one role",
  bulk_delete = "roles:bulk_delete(ids) -> task, tasks: deletes roles, 50 ids per request",
  assigned_identities = "roles:assigned_identities(id, {filters=, sorters=, limit<=250, offset=, max=}) -> iterator over identities",
  entitlements = "roles:entitlements(id, {filters=, sorters=, limit<=50, offset=, max=}) -> iterator over entitlements",
  search = "roles:search{filters=, amm_key_values=, sorters=, limit<=250, ...} -> iterator over roles (POST /roles/filter)",
  add_metadata = "roles:add_metadata(id, key, value) -> the role with the metadata value added",
  remove_metadata = "roles:remove_metadata(id, key, value): removes a metadata value from a role",
  bulk_update_metadata = "roles:bulk_update_metadata{ids=|filters=|query=, values=, operation=, replace_scope=} -> bulk job",
  bulk_update_statuses = "roles:bulk_update_statuses() -> list of unfinished metadata bulk jobs",
  bulk_update_status = "roles:bulk_update_status(id) -> the metadata bulk job with that id",
}

-- ISC's limits (isc-api-reference §3, §4).
local BULK_DELETE_MAX = 50
local BULK_METADATA_IDS_MAX = 3000

local Roles = {}
Roles.__index = Roles

--- The roles service of a client (what `c.roles` is).
---@param client table an isc client
---@return table service
function M.new(client)
  return setmetatable({ client = client }, Roles)
end

function Roles:__tostring()
  return "isc.roles(" .. self.client:api_path("roles") .. ")"
end

-- The path of a role, or of something under it: path(id, "assigned-identities").
function Roles:_path(...)
  local parts = { self.client:api_path("roles") }
  for i = 1, select("#", ...) do parts[#parts + 1] = escape((select(i, ...))) end
  return table.concat(parts, "/")
end

-- Checks a positional argument that must be a non-empty string (an id, a key).
local function need_text(fname, n, value, what)
  args.need(fname, n, value, "string")
  if value == "" then args.fail(fname, "argument #%d (%s) must not be empty", n, what) end
  return value
end

-- A Lua list (or one string) of strings as ISC's comma-separated form.
local function comma_list(fname, name, v)
  if type(v) == "string" then
    if v == "" then args.fail(fname, "option '%s' must not be empty", name) end
    return v
  end
  if #v == 0 then args.fail(fname, "option '%s' must not be an empty list", name) end
  for i, x in ipairs(v) do
    if type(x) ~= "string" or x == "" then
      args.fail(fname, "option '%s' item #%d must be a non-empty string, got %s", name, i, type(x))
    end
  end
  return table.concat(v, ",")
end

local paging_options = {
  filters = "string", sorters = "string|table", limit = "integer", offset = "integer", max = "integer",
  on_page = "function",
}

-- A new options spec: base's entries plus extra's.
local function with(base, extra)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

local segment_options = { for_subadmin = "string", for_segment_ids = "string|table", include_unsegmented = "boolean" }
local list_options = with(paging_options, segment_options)
local search_options = with(list_options, { amm_key_values = "table" })

-- Checks the paging options against an endpoint's limits and returns the
-- options c:paginate takes (without query, method and body).
local function paging(fname, opts, default_limit, max_limit)
  local limit = opts.limit or default_limit
  if limit < 1 or limit > max_limit then
    args.fail(fname, "option 'limit' must be between 1 and %d (this endpoint's maximum page size), got %d",
      max_limit, limit)
  end
  if opts.offset and opts.offset < 0 then args.fail(fname, "option 'offset' must be >= 0, got %d", opts.offset) end
  if opts.max and opts.max < 0 then args.fail(fname, "option 'max' must be >= 0, got %d", opts.max) end
  local sorters = opts.sorters
  if sorters ~= nil then sorters = comma_list(fname, "sorters", sorters) end
  return {
    filters = opts.filters, sorters = sorters, limit = limit, max_limit = max_limit,
    offset = opts.offset, max = opts.max, on_page = opts.on_page,
  }
end

-- The pager options of the role listings (list and search): opts checked
-- against their spec, paging up to max_limit, and the wire query of the
-- sub-admin and segment options. Returns them and the checked opts.
local function role_paging(fname, opts, spec, max_limit)
  opts = args.check(fname, opts, spec)
  local p = paging(fname, opts, 50, max_limit)
  local q = {}
  q["for-subadmin"] = opts.for_subadmin
  if opts.for_segment_ids ~= nil then
    q["for-segment-ids"] = comma_list(fname, "for_segment_ids", opts.for_segment_ids)
  end
  if opts.include_unsegmented ~= nil then
    if opts.include_unsegmented == false and opts.for_segment_ids == nil then
      args.fail(fname, "option 'include_unsegmented' = false needs 'for_segment_ids' (ISC refuses it alone)")
    end
    q["include-unsegmented"] = opts.include_unsegmented
  end
  p.query = q
  return p, opts
end

--- Iterates over every role (GET /roles), one page in memory at a time:
---   for role in c.roles:list{filters = 'requestable eq true', sorters = "name"} do ... end
--- The iterator is a pager: also p:collect(), p:count(), p:pages(), p:total().
---@param opts table|nil {filters=string, sorters=string|string[], limit=integer (page size, default and max 50), offset=integer, max=integer (stop after this many), for_subadmin=string (identity id or "me"), for_segment_ids=string|string[], include_unsegmented=boolean, on_page=function(info)}
---@return userdata pager, nil, nil, userdata pager
function Roles:list(opts)
  return self.client:paginate(self:_path(), (role_paging("roles:list", opts, list_options, 50)))
end

-- A list of strings (nil for none) as a JSON array, so an empty one goes out as [].
local function string_list(fname, what, v)
  if v ~= nil and type(v) ~= "table" then args.fail(fname, "%s must be a list of strings, got %s", what, type(v)) end
  local out = core.json_array({})
  for i, x in ipairs(v or {}) do
    if type(x) ~= "string" then args.fail(fname, "%s item #%d must be a string, got %s", what, i, type(x)) end
    out[i] = x
  end
  return out
end

-- A list of {attribute=, values={...}} (search's amm_key_values, the values
-- of a bulk metadata update) checked and copied as ISC's JSON.
local function attribute_values(fname, option, list)
  if list.attribute ~= nil then
    args.fail(fname, "option '%s' must be a list of {attribute=, values={...}}; wrap a single one in {}", option)
  end
  local out = core.json_array({})
  for i, v in ipairs(list) do
    local item = string.format("option '%s' item #%d", option, i)
    if type(v) ~= "table" or type(v.attribute) ~= "string" or v.attribute == "" then
      args.fail(fname, "%s must be {attribute=string, values={...}}", item)
    end
    for k in pairs(v) do
      if k ~= "attribute" and k ~= "values" then
        args.fail(fname, "%s has unknown field '%s' (fields are: attribute, values)", item, tostring(k))
      end
    end
    out[i] = { attribute = v.attribute, values = string_list(fname, item .. " values", v.values) }
  end
  return out
end

--- Iterates over the roles matching a filter and access-model metadata
--- (POST /roles/filter). `amm_key_values` is a list of {attribute=, values={...}};
--- empty values match on the attribute alone. Page size: default 50 (the
--- endpoint's default), up to 250.
---@param opts table|nil {filters=string, amm_key_values=table[], sorters=, limit=, offset=, max=, for_subadmin=, for_segment_ids=, include_unsegmented=, on_page=}
---@return userdata pager, nil, nil, userdata pager
function Roles:search(opts)
  local fname = "roles:search"
  local p
  p, opts = role_paging(fname, opts, search_options, 250)
  -- RoleListFilterDTO: the filters go in the body, not the query.
  p.method, p.body, p.filters = "POST", { filters = opts.filters }, nil
  if opts.amm_key_values ~= nil then
    p.body.ammKeyValues = attribute_values(fname, "amm_key_values", opts.amm_key_values)
  end
  return self.client:paginate(self:_path("filter"), p)
end

--- Iterates over the identities a role is assigned to (default and max page size 250).
---@param id string the role id
---@param opts table|nil {filters=, sorters=, limit=, offset=, max=, on_page=}
---@return userdata pager, nil, nil, userdata pager
function Roles:assigned_identities(id, opts)
  local fname = "roles:assigned_identities"
  need_text(fname, 1, id, "role id")
  opts = args.check(fname, opts, paging_options)
  return self.client:paginate(self:_path(id, "assigned-identities"), paging(fname, opts, 250, 250))
end

--- Iterates over a role's entitlements (default and max page size 50). Sends
--- X-SailPoint-Experimental: true, which the seed docs require and the newest
--- spec no longer asks for (harmless there).
---@param id string the role id
---@param opts table|nil {filters=, sorters=, limit=, offset=, max=, on_page=}
---@return userdata pager, nil, nil, userdata pager
function Roles:entitlements(id, opts)
  local fname = "roles:entitlements"
  need_text(fname, 1, id, "role id")
  opts = args.check(fname, opts, paging_options)
  local p = paging(fname, opts, 50, 50)
  p.experimental = true
  return self.client:paginate(self:_path(id, "entitlements"), p)
end

--- Fetches one role; a missing one raises an api error with status 404.
---@param id string
---@return table role
function Roles:get(id)
  need_text("roles:get", 1, id, "role id")
  return (self.client:request("GET", self:_path(id)))
end

--- Creates a role. ISC requires `name` and `owner` ({type="IDENTITY", id=}),
--- and refuses an `id` or any accessModelMetadata.
---@param role table the role as ISC's JSON (field names unchanged)
---@return table role the created role, with its id
function Roles:create(role)
  local fname = "roles:create"
  args.need(fname, 1, role, "table")
  if type(role.name) ~= "string" or role.name == "" then
    args.fail(fname, "role.name must be a non-empty string, got %s", type(role.name))
  end
  return (self.client:request("POST", self:_path(), { body = role }))
end

local patch_ops = { add = true, remove = true, replace = true, move = true, copy = true, test = true }
local needs_value = { add = true, replace = true, test = true }
local needs_from = { move = true, copy = true }
local op_fields = { op = true, path = true, value = true, from = true }

-- Checks JSON Patch operations and returns them as a JSON array.
local function patch_body(fname, ops)
  args.need(fname, 2, ops, "table")
  if ops.op ~= nil then args.fail(fname, "ops must be a list of operations; wrap a single one: {{op=, path=}}") end
  if #ops == 0 then args.fail(fname, "ops must not be empty") end
  local body = core.json_array({})
  for i, op in ipairs(ops) do
    if type(op) ~= "table" then args.fail(fname, "op #%d must be a table, got %s", i, type(op)) end
    for k in pairs(op) do
      if not op_fields[k] then args.fail(fname, "op #%d has unknown field '%s' (fields are: op, path, value, from)", i, tostring(k)) end
    end
    if not patch_ops[op.op] then
      args.fail(fname, "op #%d: 'op' must be one of add, remove, replace, move, copy, test, got %s", i, tostring(op.op))
    end
    if type(op.path) ~= "string" or op.path:sub(1, 1) ~= "/" then
      args.fail(fname, "op #%d: 'path' must be a JSON Pointer string starting with '/', got %s", i,
        type(op.path) == "string" and string.format("%q", op.path) or type(op.path))
    end
    if needs_value[op.op] and op.value == nil then
      args.fail(fname, "op #%d: '%s' needs a 'value' (use isc.null for JSON null)", i, op.op)
    end
    if needs_from[op.op] and (type(op.from) ~= "string" or op.from:sub(1, 1) ~= "/") then
      args.fail(fname, "op #%d: '%s' needs 'from', a JSON Pointer string starting with '/'", i, op.op)
    end
    body[i] = { op = op.op, path = op.path, value = op.value, from = op.from }
  end
  return body
end

--- Changes a role with JSON Patch operations (sent as application/json-patch+json):
---   c.roles:patch(id, {{op = "replace", path = "/requestable", value = true}})
--- An empty Lua table as a value goes out as {}; use isc.array{} for [] (values
--- taken from a fetched role keep their kind).
---@param id string
---@param ops table[] list of {op=, path=, value=, from=}
---@return table role the updated role
function Roles:patch(id, ops)
  local fname = "roles:patch"
  need_text(fname, 1, id, "role id")
  local body = patch_body(fname, ops)
  return (self.client:request("PATCH", self:_path(id),
    { body = body, content_type = "application/json-patch+json" }))
end

--- Deletes one role (ISC answers 204).
---@param id string
function Roles:delete(id)
  need_text("roles:delete", 1, id, "role id")
  self.client:request("DELETE", self:_path(id))
end

--- Deletes roles in the background (POST /roles/bulk-delete). ISC takes at
--- most 50 ids per request, so a longer list is sent in batches of 50, in
--- order; repeated ids are sent once. Returns the TaskResultDto of the first
--- batch and the list of all of them. When a batch fails, the error raised
--- carries `accepted` (the tasks of the batches sent before it) and `unsent`
--- (the ids of that batch and the ones after it).
---@param ids string[] role ids
---@return table task the first batch's {type="TASK_RESULT", id=, name=}
---@return table tasks one TaskResultDto per batch
function Roles:bulk_delete(ids)
  local fname = "roles:bulk_delete"
  args.need(fname, 1, ids, "table")
  local unique, seen = {}, {}
  for i, id in ipairs(ids) do
    if type(id) ~= "string" or id == "" then
      args.fail(fname, "id #%d must be a non-empty string, got %s", i, type(id))
    end
    if not seen[id] then
      seen[id] = true
      unique[#unique + 1] = id
    end
  end
  if #unique == 0 then args.fail(fname, "ids must not be empty") end
  local path = self:_path("bulk-delete")
  local tasks = core.json_array({})
  for first = 1, #unique, BULK_DELETE_MAX do
    local batch = core.json_array(table.move(unique, first, math.min(first + BULK_DELETE_MAX - 1, #unique), 1, {}))
    local ok, result = pcall(self.client.request, self.client, "POST", path, { body = { roleIds = batch } })
    if not ok then
      if errors.is(result) and #tasks > 0 then
        result.accepted = tasks
        result.unsent = table.move(unique, first, #unique, 1, {})
        result.message = string.format("%s (batch %d of %d failed; %d earlier batches were accepted)",
          result.message, (first - 1) // BULK_DELETE_MAX + 1, (#unique - 1) // BULK_DELETE_MAX + 1, #tasks)
      end
      error(result, 0)
    end
    tasks[#tasks + 1] = result
  end
  return tasks[1], tasks
end

-- The path of one metadata value of a role.
function Roles:_metadata_path(fname, id, key, value)
  need_text(fname, 1, id, "role id")
  need_text(fname, 2, key, "attribute key")
  need_text(fname, 3, value, "attribute value")
  return self:_path(id, "access-model-metadata", key, "values", value)
end

--- Adds one access-model metadata value to a role (e.g. "iscPrivacy", "public").
---@param id string the role id
---@param key string the attribute's technical name
---@param value string the value's technical name
---@return table role the updated role
function Roles:add_metadata(id, key, value)
  return (self.client:request("POST", self:_metadata_path("roles:add_metadata", id, key, value)))
end

--- Removes one access-model metadata value from a role (a value the role
--- lacks is no error: ISC answers 202 either way).
---@param id string the role id
---@param key string
---@param value string
function Roles:remove_metadata(id, key, value)
  self.client:request("DELETE", self:_metadata_path("roles:remove_metadata", id, key, value))
end

local bulk_metadata_options = {
  ids = "table", filters = "string", query = "table", values = "table", operation = "string",
  replace_scope = "string",
}
local operations = { ADD = true, REMOVE = true, REPLACE = true }
local replace_scopes = { ALL = true, ATTRIBUTE = true }
-- The option that picks the roles -> the endpoint it calls.
local bulk_endpoints = { ids = "ids", filters = "filter", query = "query" }

--- Starts an asynchronous access-model metadata update of many roles. Exactly
--- one of `ids` (at most 3000 role ids), `filters` (a role filter, as search)
--- or `query` (an ISC Search object) picks the roles and the endpoint
--- (bulk-update/ids, /filter or /query). `operation` is ADD, REMOVE or REPLACE;
--- `replace_scope` ALL or ATTRIBUTE; `values` a list of {attribute=, values={...}}.
--- Follow the job with bulk_update_status(job.id).
---@param opts table {ids=|filters=|query=, values=, operation=, replace_scope=}
---@return table job {id=, type=, status=, created=}
function Roles:bulk_update_metadata(opts)
  local fname = "roles:bulk_update_metadata"
  args.need(fname, 1, opts, "table")
  args.check(fname, opts, bulk_metadata_options)
  local given = {}
  for _, k in ipairs({ "ids", "filters", "query" }) do
    if opts[k] ~= nil then given[#given + 1] = k end
  end
  if #given ~= 1 then
    args.fail(fname, "give exactly one of 'ids', 'filters' or 'query' to choose the roles (got %s)",
      #given == 0 and "none" or table.concat(given, " and "))
  end
  if opts.operation == nil then args.fail(fname, "option 'operation' is required: ADD, REMOVE or REPLACE") end
  local operation = opts.operation:upper()
  if not operations[operation] then
    args.fail(fname, "option 'operation' must be ADD, REMOVE or REPLACE, got '%s'", opts.operation)
  end
  local scope = opts.replace_scope and opts.replace_scope:upper()
  if scope and not replace_scopes[scope] then
    args.fail(fname, "option 'replace_scope' must be ALL or ATTRIBUTE, got '%s'", opts.replace_scope)
  end
  if opts.values == nil then args.fail(fname, "option 'values' is required: {{attribute=, values={...}}, ...}") end
  if #opts.values == 0 then args.fail(fname, "option 'values' must not be empty") end
  local body = { operation = operation, replaceScope = scope, values = attribute_values(fname, "values", opts.values) }
  local chosen = given[1]
  if chosen == "ids" then
    body.roles = string_list(fname, "option 'ids'", opts.ids)
    if #body.roles == 0 then args.fail(fname, "option 'ids' must not be empty") end
    if #body.roles > BULK_METADATA_IDS_MAX then
      args.fail(fname, "option 'ids' holds %d ids; ISC takes at most %d per bulk update", #body.roles, BULK_METADATA_IDS_MAX)
    end
  elseif chosen == "filters" then
    body.filters = opts.filters
  else
    body.query = opts.query
  end
  return (self.client:request("POST", self:_path("access-model-metadata", "bulk-update", bulk_endpoints[chosen]),
    { body = body }))
end

--- Lists the tenant's unfinished access-model metadata bulk updates.
---@return table[] jobs {id=, type=, status=, created=}
function Roles:bulk_update_statuses()
  return (self.client:request("GET", self:_path("access-model-metadata", "bulk-update")))
end

--- The state of one metadata bulk update (GET .../bulk-update/{id}; the spec's
--- path is a literal "/bulk-update/id", which cannot name a job).
---@param id string the job id that bulk_update_metadata returned
---@return table job {id=, type=, status=, created=}
function Roles:bulk_update_status(id)
  need_text("roles:bulk_update_status", 1, id, "bulk update id")
  return (self.client:request("GET", self:_path("access-model-metadata", "bulk-update", id)))
end

return M
