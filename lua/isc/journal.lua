--- The journal of a client's changes (README: The journal). Every mutating
--- call a client with a journal sends appends one JSON line: what was asked,
--- what became of it and, for a change to existing roles, the roles as they
--- were just before, so that `isclua undo` can put them back. Also reads a
--- journal back, and prints the summary of `isclua journal FILE`.
local core = require "isc.core"
local errors = require "isc.errors"
local log = require "isc.log"
local time = require "isc.time"

local M = {}

local Journal = {}
Journal.__index = Journal

function Journal:__tostring()
  return "isc.journal(" .. self.path .. ")"
end

-- Errors of calls whose line says "unknown", with that line's journal and
-- number, so that a helper that finds out what happened can say so.
local pending = setmetatable({}, { __mode = "k" })

local opened = 0

-- Whether a file ends inside a line (a run was killed while writing it).
local function ends_mid_line(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local size = f:seek("end")
  local last = size > 0 and f:seek("set", size - 1) and f:read(1)
  f:close()
  return size > 0 and last ~= "\n"
end

--- Opens the journal at path for appending; the file is created readable
--- by its owner alone (0600). nil for no path.
---@param path string|nil
---@return table|nil journal
function M.open(path)
  if path == nil then return nil end
  local torn = ends_mid_line(path)
  local file, err = core.open_append(path)
  if not file then errors.raise("journal", "cannot open the journal: " .. err, { path = path }) end
  opened = opened + 1
  local self = setmetatable({
    path = path, file = file, seq = 0,
    run = string.format("%s-%d-%d", os.date("!%Y%m%dT%H%M%SZ"), core.getpid(), opened),
    mark = {}, -- fields every line of this journal carries (undo sets undo_of)
  }, Journal)
  -- The piece of line a killed run left gets its end, so the next line stands alone.
  if torn then self:_put("") end
  return self
end

-- Appends one line and flushes it, so a crash loses at most the line in flight.
function Journal:_put(text)
  local ok, err = self.file:write(text, "\n")
  if ok then ok, err = self.file:flush() end
  if not ok then errors.raise("journal", "cannot write the journal: " .. tostring(err), { path = self.path }) end
end

-- Numbers a line, stamps it with the client's clock and appends it; returns its number.
function Journal:_write(client, line)
  self.seq = self.seq + 1
  line.run, line.seq, line.time = self.run, self.seq, time.iso(client._clock(), true)
  for k, v in pairs(self.mark) do line[k] = v end
  self:_put(core.json_encode(line, { sort_keys = true }))
  return self.seq
end

-- A copy of v with the values of secret-looking keys masked, so that no
-- secret a call carried or got back reaches the file. Not for roles: undo
-- needs them exact, and a role field such as reauthorizationRequired would
-- pass for a secret.
local function redacted(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    out[k] = (type(k) == "string" and log.looks_secret(k)) and "***" or redacted(x)
  end
  return setmetatable(out, getmetatable(v)) -- keeps the mark of a JSON array
end

local function as_is(v)
  return v
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- What a mutating call does to roles, read from its path:
-- {action=, role=, key=, value=, roles=, filters=}, or nil for other calls.
local function classify(client, method, shown, body)
  local base = client:api_path("roles")
  local p = shown:gsub("[?#].*$", "")
  if p:sub(1, 1) ~= "/" then p = "/" .. p end
  if p:sub(1, #base) ~= base then return nil end
  local rest = p:sub(#base + 1)
  if method == "POST" and (rest == "" or rest == "/") then return { action = "create" } end
  if method == "POST" and rest == "/bulk-delete" then return { action = "bulk_delete", roles = body.roleIds } end
  local by = rest:match("^/access%-model%-metadata/bulk%-update/(%a+)$")
  if method == "POST" and by then
    return { action = "bulk_metadata", roles = by == "ids" and body.roles or nil,
      filters = by == "filter" and body.filters or nil }
  end
  local id, key, value = rest:match("^/([^/]+)/access%-model%-metadata/([^/]+)/values/([^/]+)$")
  if id and (method == "POST" or method == "DELETE") then
    return { action = method == "POST" and "add_metadata" or "remove_metadata", role = unescape(id),
      key = unescape(key), value = unescape(value) }
  end
  id = rest:match("^/([^/]+)$")
  if id and (method == "PATCH" or method == "DELETE") then
    return { action = method:lower(), role = unescape(id) }
  end
end

-- The roles a change touches, as they are now: one role, or a list for the
-- bulk calls (by ids, 50 to a request; by filter, as search lists them).
local function before_image(client, what)
  if what.role then return client.roles:get(what.role) end
  if what.filters then return client.roles:search({ filters = what.filters, limit = 250 }):collect() end
  local ids, seen = {}, {}
  for _, id in ipairs(what.roles) do
    if not seen[id] then ids[#ids + 1], seen[id] = id, true end
  end
  local found, list = client.roles:_by_ids(ids), core.json_array({})
  for _, id in ipairs(ids) do list[#list + 1] = found[id] end
  return list
end

-- What became of a call that raised err (README: Retries and outcomes): the
-- outcome the client gave it; a 2xx answer that could not be read was done;
-- an interrupt or another error may have come after sending; isc errors of
-- any other kind (configuration, the token) came before.
local function outcome_of(err, shown)
  if not errors.is(err) then return "unknown" end
  if err.outcome then return err.outcome end
  if err.kind == "bad_response" and err.path == shown then return "done" end
  if err.kind == "unknown_outcome" or err.kind == "interrupted" then return "unknown" end
  return "not_sent"
end

-- What a line keeps of an error: enough to read, nothing secret.
local function essentials(err)
  if not errors.is(err) then return { message = tostring(err) } end
  local cause = err.cause
  return {
    kind = err.kind, message = err.message, status = err.status, detail_code = err.detail_code,
    tracking_id = err.tracking_id,
    cause = errors.is(cause) and { kind = cause.kind, message = cause.message, status = cause.status,
      cause = cause.cause } or nil,
  }
end

--- Sends a mutating call through the client (marked `journaled`, so that it
--- is sent as any other call) and appends its line; returns what the call
--- returns, or raises its error. For a change to existing roles, the roles
--- are read first through the same client (GETs, retried as any).
---@param client table
---@param method string
---@param path string as the caller gave it
---@param shown string the path as the journal shows it (secrets masked)
---@param opts table the request's options
function Journal:record(client, method, path, shown, opts)
  local body = opts.body
  if type(body) == "string" then body = core.json_decode(body) or body end
  local what = classify(client, method, shown, type(body) == "table" and body or {})
  local kept = what and as_is or redacted
  what = what or { action = "other" }
  local line = { action = what.action, method = method, path = shown, query = redacted(opts.query),
    body = kept(body), role = what.role, key = what.key, value = what.value }
  if what.role or what.roles or what.filters then
    local ok, before = pcall(before_image, client, what)
    if ok then
      line.before = before
    elseif errors.is(before, "interrupted") then
      error(before, 0)
    else
      line.before_error = tostring(before)
    end
  end
  local inner = { journaled = true }
  for k, v in pairs(opts) do inner[k] = v end
  local res = table.pack(pcall(client.request, client, method, path, inner))
  if res[1] then
    local dry = type(res[4]) == "table" and res[4]["x-isclua-dry-run"] ~= nil -- how a rehearsed call answers
    line.outcome, line.dry_run, line.status = dry and "not_sent" or "done", dry or nil, (not dry) and res[3] or nil
    line.response = kept(res[2])
    if what.action == "create" and not dry and type(res[2]) == "table" then line.role = res[2].id end
    self:_write(client, line)
    return table.unpack(res, 2, res.n)
  end
  local err = res[2]
  line.outcome, line.error = outcome_of(err, shown), essentials(err)
  local seq = self:_write(client, line)
  if line.outcome == "unknown" and errors.is(err) then
    pending[err] = { journal = self, client = client, seq = seq, kept = kept }
  end
  error(err, 0)
end

--- Records what a helper found out about a call whose answer was lost (err:
--- the error the call raised): a line {resolves = that call's seq, outcome =
--- "done"|"failed"|"unknown", ...fields} (response, checked, done, unknown).
--- Nothing when the call was not journaled.
---@param err table
---@param outcome string
---@param fields table|nil
function M.resolved(err, outcome, fields)
  local p = pending[err]
  if not p then return end
  pending[err] = nil
  local line = {}
  for k, v in pairs(fields or {}) do line[k] = p.kept(v) end
  line.resolves, line.outcome = p.seq, outcome
  p.journal:_write(p.client, line)
end

--- Reads a journal: its calls in file order, each with what a later line
--- found out about it merged in (outcome, response, `resolution`), and the
--- numbers of the lines that are not whole JSON (one cut short by a crash).
---@param path string
---@return table {path=, entries={...}, damaged={line numbers}}
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then errors.raise("journal", "cannot read the journal: " .. err, { path = path }) end
  local entries, damaged, by_key, n = {}, {}, {}, 0
  for text in f:lines() do
    n = n + 1
    local line = text ~= "" and core.json_decode(text)
    if text == "" then
      -- the end given to a line a killed run left
    elseif type(line) ~= "table" or type(line.run) ~= "string" or math.type(line.seq) ~= "integer" then
      damaged[#damaged + 1] = n
    elseif line.resolves then
      local e = by_key[line.run .. "#" .. tostring(line.resolves)]
      if e then
        e.outcome, e.resolution = line.outcome, line
        if line.response ~= nil then e.response = line.response end
        if e.action == "create" and type(line.response) == "table" then e.role = line.response.id end
      end
    else
      by_key[line.run .. "#" .. line.seq] = line
      entries[#entries + 1] = line
    end
  end
  f:close()
  return { path = path, entries = entries, damaged = damaged }
end

-- ISC's patch name of a role field that the role itself spells otherwise (reference §9).
local PATCH_NAMES = { revokeRequestConfig = "revocationRequestConfig" }

--- The top-level role fields a JSON Patch changes, each once, in order:
--- {field = the role's member, path = the pointer as the patch wrote it}.
---@param ops table|nil
---@return table[]
function M.patched_fields(ops)
  local out, seen = {}, {}
  for _, op in ipairs(type(ops) == "table" and ops or {}) do
    local pointers = { op.op ~= "test" and op.path or nil, op.op == "move" and op.from or nil }
    for _, p in pairs(pointers) do
      local token = type(p) == "string" and p:match("^/([^/]+)")
      if token and not seen[token] then
        seen[token] = true
        local name = token:gsub("~1", "/"):gsub("~0", "~")
        out[#out + 1] = { field = PATCH_NAMES[name] or name, path = "/" .. token }
      end
    end
  end
  return out
end

--- The metadata change of an entry as the bulk update's body has it:
--- {operation=, replaceScope=, values={{attribute=, values={...}}}}, from a
--- one-value add or remove or from a bulk update (items given as
--- {attribute=, values=} or as the SDKs' {attributeKey=, attributeValue=}).
---@param entry table
---@return table|nil
function M.metadata_change(entry)
  if entry.action == "add_metadata" or entry.action == "remove_metadata" then
    return { operation = entry.action == "add_metadata" and "ADD" or "REMOVE",
      values = { { attribute = entry.key, values = { entry.value } } } }
  end
  local body = entry.body
  if entry.action ~= "bulk_metadata" or type(body) ~= "table" or type(body.values) ~= "table" then return nil end
  local values = {}
  for i, item in ipairs(body.values) do
    local vs = item.values or item.attributeValue
    values[i] = { attribute = item.attribute or item.attributeKey, values = type(vs) == "table" and vs or { vs } }
  end
  return { operation = tostring(body.operation):upper(), replaceScope = body.replaceScope, values = values }
end

--- The roles an entry changed, one item each: {id=, name=, before=} (before:
--- the role as it was, when the journal has it; id nil for a create whose
--- outcome stayed unknown).
---@param entry table
---@return table[]
function M.roles_of(entry)
  local body = type(entry.body) == "table" and entry.body or {}
  if entry.action == "create" then
    return { { id = entry.role, name = type(entry.response) == "table" and entry.response.name or body.name } }
  elseif entry.role then
    return { { id = entry.role, name = type(entry.before) == "table" and entry.before.name or nil, before = entry.before } }
  end
  local out, by_id = {}, {}
  for _, role in ipairs(type(entry.before) == "table" and entry.before or {}) do
    out[#out + 1], by_id[role.id] = { id = role.id, name = role.name, before = role }, true
  end
  for _, id in ipairs(type(body.roleIds or body.roles) == "table" and (body.roleIds or body.roles) or {}) do
    if not by_id[id] then out[#out + 1], by_id[id] = { id = id }, true end
  end
  return out
end

-- "k=v, k=w" of a metadata change.
local function pairs_text(change)
  local parts = {}
  for _, item in ipairs(change and change.values or {}) do
    for _, v in ipairs(item.values) do parts[#parts + 1] = tostring(item.attribute) .. "=" .. tostring(v) end
  end
  return table.concat(parts, ", ")
end

-- One entry as a short phrase, per action.
local phrases = {
  create = function() return "created" end,
  patch = function(e)
    local names = {}
    for i, f in ipairs(M.patched_fields(e.body)) do names[i] = f.field end
    return "patched " .. table.concat(names, ", ")
  end,
  delete = function() return "deleted" end,
  add_metadata = function(e) return "metadata added: " .. pairs_text(M.metadata_change(e)) end,
  remove_metadata = function(e) return "metadata removed: " .. pairs_text(M.metadata_change(e)) end,
  bulk_delete = function(e) return string.format("deleted (bulk delete of %d)", #M.roles_of(e)) end,
  bulk_metadata = function(e)
    local change = M.metadata_change(e) or {}
    return string.format("metadata %s %s (bulk update of %d)", tostring(change.operation), pairs_text(change),
      #M.roles_of(e))
  end,
}

-- How an entry ended, when not plainly done.
local function ending(e)
  if e.dry_run then return " [dry run: not sent]" end
  if e.outcome == "done" then return "" end
  local why = e.error and e.error.message and (": " .. e.error.message) or ""
  if e.outcome == "unknown" then
    return " [outcome unknown" .. (e.resolution and e.resolution.checked and (": " .. e.resolution.checked) or why) .. "]"
  end
  return string.format(" [%s%s]", e.outcome == "failed" and "FAILED" or "not sent", why)
end

--- A readable summary of a journal read by M.read: what changed, per role,
--- in the order of the file; then the calls that were not role changes.
---@param read table
---@return string
function M.summary(read)
  local order, by_role, other, counts = {}, {}, {}, { done = 0, failed = 0, not_sent = 0, unknown = 0, dry_run = 0 }
  for _, e in ipairs(read.entries) do
    local key = e.dry_run and "dry_run" or e.outcome
    counts[key] = (counts[key] or 0) + 1
    local phrase, roles = phrases[e.action], M.roles_of(e)
    if phrase and #roles > 0 then
      local what = string.format("  %s  %s%s%s", tostring(e.time), phrase(e), ending(e),
        e.undo_of and " (by undo)" or "")
      for _, r in ipairs(roles) do
        local id = r.id or ("(id unknown) " .. tostring(r.name))
        if not by_role[id] then
          by_role[id] = { name = r.name, lines = {} }
          order[#order + 1] = id
        end
        by_role[id].name = by_role[id].name or r.name
        table.insert(by_role[id].lines, what)
      end
    else
      other[#other + 1] = string.format("  %s  %s %s%s", tostring(e.time), e.method, e.path, ending(e))
    end
  end
  local first, last = read.entries[1], read.entries[#read.entries]
  local out = { string.format("%s: %d calls%s; %d done, %d failed, %d not sent, %d unknown, %d dry run%s",
    read.path, #read.entries, first and string.format(" from %s to %s", first.time, last.time) or "",
    counts.done, counts.failed, counts.not_sent, counts.unknown, counts.dry_run,
    #read.damaged > 0 and string.format("; %d damaged lines skipped (%s)", #read.damaged,
      table.concat(read.damaged, ", ")) or "") }
  for _, id in ipairs(order) do
    local r = by_role[id]
    out[#out + 1] = ""
    out[#out + 1] = string.format("role %s%s", id, r.name and string.format(" %q", r.name) or "")
    for _, l in ipairs(r.lines) do out[#out + 1] = l end
  end
  if #other > 0 then
    out[#out + 1] = ""
    out[#out + 1] = "other calls"
    for _, l in ipairs(other) do out[#out + 1] = l end
  end
  return table.concat(out, "\n") .. "\n"
end

local usage = [[
usage: isclua journal FILE

Prints what the journal FILE (written with --journal) says was changed, per
role, oldest first, with each call's outcome. See also: isclua undo FILE.
]]

--- `isclua journal FILE`; returns the exit code.
---@param argv string[]
function M.main(argv)
  local cli = require "isc.cli"
  if argv[1] == "--help" or argv[1] == "-h" then
    io.stdout:write(usage)
    return 0
  end
  if #argv ~= 1 or argv[1]:match("^%-") then
    return cli.usage_error("journal: give one journal file", "isclua journal --help")
  end
  local _, code = cli.protected(function()
    io.stdout:write(M.summary(M.read(argv[1])))
    return 0
  end)
  return code
end

return M
