--- The Roles API (v2024, or /roles/v1 under the per-api layout) as Lua: the
--- `c.roles` service of a client. Options are snake_case; what goes on the
--- wire keeps ISC's names. Role tables are ISC's JSON as decoded, so a role
--- fetched, changed and sent back keeps its []; its null members read as
--- absent (isc.client{keep_nulls = true} keeps them as isc.null).
local core = require "isc.core"
local args = require "isc.args"
local errors = require "isc.errors"
local journal = require "isc.journal"
local json_patch = require "isc.patch"
local escape = require("isc.client").escape

local M = {}

--- One line per public function, for the REPL's help().
M.help = {
  list = 'roles:list{filters=, sorters=, limit<=50, offset=, max=, for_subadmin=, for_segment_ids=, include_unsegmented=, on_page=, concurrency=} -> listing of roles (help(listing); fields to filter on: help "filters")',
  get = "roles:get(id) -> role (an api error with status 404 when there is none)",
  create = "roles:create(role) -> the created role (name and owner required)",
  patch = "roles:patch(id, {{op=, path=, value=}, ...}) -> the updated role (JSON Patch)",
  delete = "roles:delete(id): deletes one role",
  bulk_delete = "roles:bulk_delete(ids, {settle=30}) -> task, tasks: deletes roles, 50 ids per request (an error says which were done, not sent, unknown)",
  assigned_identities = "roles:assigned_identities(id, {filters=, sorters=, limit<=250, offset=, max=, on_page=, concurrency=}) -> listing of identities",
  entitlements = "roles:entitlements(id, {filters=, sorters=, limit<=50, offset=, max=, on_page=, concurrency=}) -> listing of entitlements",
  search = "roles:search{filters=, amm_key_values=, sorters=, limit<=250, ...} -> listing of roles (POST /roles/filter)",
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
  on_page = "function", concurrency = "integer",
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
    offset = opts.offset, max = opts.max, on_page = opts.on_page, concurrency = opts.concurrency,
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

-- The names an item of metadata values may use for its key and its values:
-- the spec's examples and its required fields say attribute/values, its
-- schemas and the SDK models attributeKey (by filter) and attributeKey/
-- attributeValue (by query). All are taken; attribute/values is sent.
local KEY_FIELDS = { "attribute", "attributeKey" }
local VALUE_FIELDS = { "values", "attributeValue" }

-- The one field of item that names the key (or the values), or nil.
local function field_of(fname, item, v, names)
  local found
  for _, name in ipairs(names) do
    if v[name] ~= nil then
      if found then args.fail(fname, "%s gives both '%s' and '%s'; give one", item, found, name) end
      found = name
    end
  end
  return found
end

-- A list of {attribute=, values={...}} (search's amm_key_values, the values
-- of a bulk metadata update; also in the SDKs' {attributeKey=, values=} and
-- {attributeKey=, attributeValue=} forms) checked and copied as ISC's JSON.
local function attribute_values(fname, option, list)
  if list.attribute ~= nil or list.attributeKey ~= nil then
    args.fail(fname, "option '%s' must be a list of {attribute=, values={...}}; wrap a single one in {}", option)
  end
  local out = core.json_array({})
  for i, v in ipairs(list) do
    local item = string.format("option '%s' item #%d", option, i)
    if type(v) ~= "table" then args.fail(fname, "%s must be {attribute=string, values={...}}", item) end
    local key_field, values_field = field_of(fname, item, v, KEY_FIELDS), field_of(fname, item, v, VALUE_FIELDS)
    local key = key_field and v[key_field]
    if type(key) ~= "string" or key == "" then
      args.fail(fname, "%s must be {attribute=string, values={...}}", item)
    end
    for k in pairs(v) do
      if k ~= key_field and k ~= values_field then
        args.fail(fname, "%s has unknown field '%s' (fields are: attribute, values; or attributeKey, "
          .. "attributeValue)", item, tostring(k))
      end
    end
    local values = values_field and v[values_field]
    if type(values) == "string" then values = { values } end
    out[i] = { attribute = key, values = string_list(fname, item .. " values", values) }
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

-- A string as a filter literal: double-quoted, with \ and " escaped.
local function quoted(v)
  return '"' .. v:gsub('[\\"]', "\\%0") .. '"'
end

-- Calls fn(...); when it raises unknown_outcome, asks check(err) what the
-- tenant holds now: check returns the result to give when the change is
-- there, or nil and a sentence on what it found. A check that fails itself
-- leaves the outcome unknown. What was found goes to the client's journal.
local function resolving(check, fn, ...)
  local ok, res = pcall(fn, ...)
  if ok then return res end
  if not errors.is(res, "unknown_outcome") then error(res, 0) end
  local asked, found, finding = pcall(check, res)
  if not asked and errors.is(found, "interrupted") then error(found, 0) end
  if asked and found ~= nil then
    require("isc.log").warn("the answer was lost, and the tenant shows the change was made",
      { method = res.method, path = res.path })
    journal.resolved(res, "done", { response = found })
    return found
  end
  res.checked = asked and finding or ("the check failed too: " .. tostring(found))
  res.message = res.message .. "; " .. res.checked
  journal.resolved(res, "unknown", { checked = res.checked })
  error(res, 0)
end

-- The role named name (names are unique), or nil.
function Roles:_named(name)
  local page = self.client:request("GET", self:_path(), { query = { filters = "name eq " .. quoted(name) } })
  return type(page) == "table" and page[1] or nil
end

--- Creates a role. ISC requires `name` and `owner` ({type="IDENTITY", id=}),
--- and refuses an `id` or any accessModelMetadata. Role names are unique, so
--- when the answer is lost the role is looked up by name: found, it is
--- returned; otherwise the unknown_outcome error says it was not found.
---@param role table the role as ISC's JSON (field names unchanged)
---@return table role the created role, with its id
function Roles:create(role)
  local fname = "roles:create"
  args.need(fname, 1, role, "table")
  if type(role.name) ~= "string" or role.name == "" then
    args.fail(fname, "role.name must be a non-empty string, got %s", type(role.name))
  end
  return resolving(function()
    local found = self:_named(role.name)
    if found then return found end
    return nil, "no role named " .. quoted(role.name) .. " exists now, so it was most likely not created"
  end, self.client.request, self.client, "POST", self:_path(), { body = role })
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
local ARRAY_MT = getmetatable(core.json_array({}))

-- The value at a JSON Pointer in a document, and whether the pointer
-- names an object member all the way (array positions shift, so a change
-- there cannot be read back).
local function member_at(doc, pointer)
  local v = doc
  for token in pointer:sub(2):gmatch("[^/]*") do
    token = token:gsub("~1", "/"):gsub("~0", "~")
    if type(v) ~= "table" or getmetatable(v) == ARRAY_MT or token:match("^%d+$") or token == "-" then return nil, false end
    v = v[token]
  end
  return v, true
end

-- Whether every operation's effect shows in the role; nil when one cannot
-- be read back (an array position, move, copy).
local function patch_applied(role, ops)
  for _, op in ipairs(ops) do
    local v, readable = member_at(role, op.path)
    if not readable or op.op == "move" or op.op == "copy" then return nil end
    if op.op == "remove" and v ~= nil and v ~= core.null then return false end
    if (op.op == "add" or op.op == "replace")
        and core.json_encode(v, { sort_keys = true }) ~= core.json_encode(op.value, { sort_keys = true }) then
      return false
    end
  end
  return true
end

-- Under --dry-run, the role as it is now (reading is not a change), so that
-- a rehearsed answer has its shape; nil for a role the rehearsal only
-- pretended to create.
function Roles:_role_now(id)
  local read, role = pcall(self.get, self, id)
  if read then return role end
  if errors.is(role, "interrupted") then error(role, 0) end
end

---@param id string
---@param ops table[] list of {op=, path=, value=, from=}
---@return table role the updated role
function Roles:patch(id, ops)
  local fname = "roles:patch"
  need_text(fname, 1, id, "role id")
  local body = patch_body(fname, ops)
  return resolving(function()
    local role = self:get(id)
    local applied = patch_applied(role, body)
    if applied then return role end
    return nil, applied == false and "the role does not show the change, so it was most likely not made"
      or "the change cannot be read back from the role (array positions, move or copy): GET it to see"
  end, self.client.request, self.client, "PATCH", self:_path(id),
    { body = body, content_type = "application/json-patch+json", rehearse = function(generic)
      local role = self:_role_now(id)
      return role and json_patch.apply(role, body) or generic
    end })
end

--- Deletes one role (ISC answers 204). A 404 after an attempt whose answer
--- was lost means that attempt deleted it.
---@param id string
function Roles:delete(id)
  need_text("roles:delete", 1, id, "role id")
  local ok, err = pcall(self.client.request, self.client, "DELETE", self:_path(id))
  if not ok and not (errors.is(err, "api") and err.status == 404 and err.resent) then error(err, 0) end
  if not ok then journal.resolved(err, "done") end
end

-- The roles of the given ids that the tenant lists (id -> role), asked 50
-- at a time with the list-roles `id in` filter.
function Roles:_by_ids(ids)
  local found = {}
  for first = 1, #ids, BULK_DELETE_MAX do
    local quoted_ids = {}
    for i = first, math.min(first + BULK_DELETE_MAX - 1, #ids) do quoted_ids[#quoted_ids + 1] = quoted(ids[i]) end
    local page = self.client:request("GET", self:_path(), {
      query = { filters = "id in (" .. table.concat(quoted_ids, ",") .. ")", limit = BULK_DELETE_MAX } })
    for _, role in ipairs(page) do found[role.id] = role end
  end
  return found
end

-- After a batch whose answer was lost: the ids the tenant no longer lists
-- are done. A bulk delete runs in the background, so the roles are looked at
-- again, every few seconds, for up to `settle` seconds. Returns the ids done
-- and the ids still there (or all of them, if the check itself failed).
function Roles:_settle(batch, settle)
  local c, waited, pause = self.client, 0, 2
  local left = batch
  while true do
    local ok, present = pcall(self._by_ids, self, left)
    if not ok then
      if errors.is(present, "interrupted") then error(present, 0) end
      break
    end
    local still = {}
    for _, id in ipairs(left) do
      if present[id] then still[#still + 1] = id end
    end
    left = still
    if #left == 0 or waited >= settle then break end
    c._sleep(pause)
    waited = waited + pause
  end
  local gone, there = {}, {}
  for _, id in ipairs(left) do there[id] = true end
  for _, id in ipairs(batch) do
    if not there[id] then gone[#gone + 1] = id end
  end
  return gone, left
end

local bulk_delete_options = { settle = "number" }

-- Under --dry-run, the TaskResultDto a bulk delete batch would have got.
local function rehearsed_task()
  return { type = "TASK_RESULT", id = "dry-run", name = core.null }
end

--- Deletes roles in the background (POST /roles/bulk-delete). ISC takes at
--- most 50 ids per request, so a longer list is sent in batches of 50, in
--- order; repeated ids are sent once. Returns the TaskResultDto of the first
--- batch and the list of all of them. A batch is never sent twice. When one
--- is not done, the others are still sent (unless the tenant cannot be
--- reached: then the rest is not sent), and at the end an error is raised
--- that sorts every id: `done`, `not_sent`, `failed` (the tenant refused its
--- batch) and `unknown`; `tasks` holds the accepted batches' tasks. A batch
--- whose answer was lost is checked: the ids the tenant no longer lists
--- within `settle` seconds (default 30) count as done (such a batch has no
--- task in `tasks`). The error's kind is "unknown_outcome" when any id is
--- unknown, else that of the first failure.
---@param ids string[] role ids
---@param opts table|nil {settle = 30}
---@return table task the first batch's {type="TASK_RESULT", id=, name=}
---@return table tasks one TaskResultDto per batch
function Roles:bulk_delete(ids, opts)
  local fname = "roles:bulk_delete"
  args.need(fname, 1, ids, "table")
  opts = args.check(fname, opts, bulk_delete_options)
  local settle = opts.settle or 30
  if not (settle >= 0 and settle < math.huge) then args.fail(fname, "option 'settle' must be a number of seconds >= 0") end
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
  local sorted = { done = {}, not_sent = {}, failed = {}, unknown = {} }
  local function file(where, list)
    for _, id in ipairs(list) do table.insert(sorted[where], id) end
  end
  local first_error, unreachable
  local batches = (#unique - 1) // BULK_DELETE_MAX + 1
  for first = 1, #unique, BULK_DELETE_MAX do
    local batch = table.move(unique, first, math.min(first + BULK_DELETE_MAX - 1, #unique), 1, {})
    if unreachable then
      file("not_sent", batch)
    else
      local ok, result = pcall(self.client.request, self.client, "POST", path,
        { body = { roleIds = core.json_array(batch) }, rehearse = rehearsed_task })
      if ok then
        tasks[#tasks + 1] = result
        file("done", batch)
      elseif not errors.is(result) or result.kind == "interrupted" or not result.outcome then
        error(result, 0)
      else
        first_error = first_error or result
        result.batch = (first - 1) // BULK_DELETE_MAX + 1
        if result.outcome == "unknown" then
          local gone, left = self:_settle(batch, settle)
          file("done", gone)
          file("unknown", left)
          journal.resolved(result, #left == 0 and "done" or "unknown", { done = gone, unknown = left })
        else
          file(result.outcome, batch)
          unreachable = result.outcome == "not_sent"
        end
      end
    end
  end
  if #sorted.done == #unique then return tasks[1], tasks end
  local e = errors.new(#sorted.unknown > 0 and "unknown_outcome" or first_error.kind, string.format(
    "bulk delete of %d roles in %d batches: %d done, %d not sent, %d failed, %d unknown (first failure, batch %d: %s)",
    #unique, batches, #sorted.done, #sorted.not_sent, #sorted.failed, #sorted.unknown, first_error.batch,
    tostring(first_error)), {
    done = sorted.done, not_sent = sorted.not_sent, failed = sorted.failed, unknown = sorted.unknown,
    tasks = tasks, cause = first_error, method = "POST", path = path, what = "not every batch was confirmed",
    status = first_error.status,
  })
  error(e, 0)
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
  -- Adding a value the role has already leaves it as it is: safe to repeat.
  return (self.client:request("POST", self:_metadata_path("roles:add_metadata", id, key, value), { idempotent = true,
    rehearse = function(generic) return self:_role_now(id) or generic end }))
end

--- Removes one access-model metadata value from a role (a value the role
--- lacks is no error: ISC answers 202 either way).
---@param id string the role id
---@param key string
---@param value string
function Roles:remove_metadata(id, key, value)
  self.client:request("DELETE", self:_metadata_path("roles:remove_metadata", id, key, value))
end

-- A role's metadata values: key -> {value -> true}, and the number of keys.
local function metadata_of(role)
  local by_key, keys = {}, 0
  local amm = type(role.accessModelMetadata) == "table" and role.accessModelMetadata.attributes
  for _, attr in ipairs(type(amm) == "table" and amm or {}) do
    local set = {}
    for _, v in ipairs(type(attr.values) == "table" and attr.values or {}) do set[v.value] = true end
    by_key[attr.key], keys = set, keys + 1
  end
  return by_key, keys
end

--- Whether a role shows the change a bulk metadata update asks for (body:
--- {operation=, replaceScope=, values={{attribute=, values={...}}}}).
---@param role table
---@param body table
---@return boolean
local function metadata_shows(role, body)
  local by_key, keys = metadata_of(role)
  for _, item in ipairs(body.values) do
    local have = by_key[item.attribute] or {}
    local n = 0
    for _ in pairs(have) do n = n + 1 end
    for _, v in ipairs(item.values) do
      if (body.operation == "REMOVE") == (have[v] == true) then return false end
    end
    if body.operation == "REPLACE" and n ~= #item.values then return false end
  end
  return not (body.operation == "REPLACE" and body.replaceScope ~= "ATTRIBUTE" and keys ~= #body.values)
end
M.metadata_shows = metadata_shows

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
  -- The jobs before, so that a job whose start was answered by a lost
  -- response can be told from the others afterwards.
  local listed, before = pcall(self.bulk_update_statuses, self)
  if not listed and errors.is(before, "interrupted") then error(before, 0) end
  return resolving(function()
    if listed then
      local known = {}
      for _, job in ipairs(before) do known[job.id] = true end
      for _, job in ipairs(self:bulk_update_statuses()) do
        if not known[job.id] then return job end
      end
    end
    if chosen == "ids" and self:_metadata_applied(body) then
      return { type = "ROLE", status = "COMPLETED", verified = true }
    end
    return nil, "no new bulk update job is listed" .. (chosen == "ids" and " and the roles do not all show the change" or "")
  end, self.client.request, self.client, "POST",
    self:_path("access-model-metadata", "bulk-update", bulk_endpoints[chosen]), { body = body, rehearse = function()
      return { id = "dry-run", type = "ROLE", status = "CREATED",
        created = require("isc.time").iso(self.client._clock()) }
    end })
end

-- Whether every role of a bulk metadata update by ids shows its change.
function Roles:_metadata_applied(body)
  local found = self:_by_ids(body.roles)
  for _, id in ipairs(body.roles) do
    if not (found[id] and metadata_shows(found[id], body)) then return false end
  end
  return true
end

--- Lists the tenant's unfinished access-model metadata bulk updates.
---@return table[] jobs {id=, type=, status=, created=}
function Roles:bulk_update_statuses()
  return (self.client:request("GET", self:_path("access-model-metadata", "bulk-update")))
end

--- The state of one metadata bulk update. GET .../bulk-update/{id} is what
--- the spec means; its path is the literal ".../bulk-update/id", which is
--- what the SDKs send. On a 404 the literal path is asked too, and its job is
--- returned when it is the one asked for.
---@param id string the job id that bulk_update_metadata returned
---@return table job {id=, type=, status=, created=}
function Roles:bulk_update_status(id)
  need_text("roles:bulk_update_status", 1, id, "bulk update id")
  local ok, job = pcall(self.client.request, self.client, "GET", self:_path("access-model-metadata", "bulk-update", id))
  if ok then return job end
  if not (errors.is(job, "api") and job.status == 404) or id == "id" then error(job, 0) end
  local asked, literal = pcall(self.client.request, self.client, "GET",
    self:_path("access-model-metadata", "bulk-update", "id"))
  if asked and type(literal) == "table" and literal.id == id then return literal end
  error(job, 0)
end

args.service(Roles, "c.roles")

return M
