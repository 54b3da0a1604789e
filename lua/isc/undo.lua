--- `isclua undo FILE`: puts roles back as a journal (isc.journal) says they
--- were, newest change first, and reports what was reverted, skipped or
--- refused and why. Its own changes go to a journal of their own, so an undo
--- can be undone.
local core = require "isc.core"
local config = require "isc.config"
local errors = require "isc.errors"
local journal = require "isc.journal"
local roles = require "isc.roles"
local time = require "isc.time"

local M = {}

--- What a role created again does not get back, said in every report that creates one.
M.NOT_RESTORED = "its id, its created date, its legacyMembershipInfo (ISC sets it), the access requests "
  .. "that gave it to identities, and everything that points at the old id (requests, certifications, policies)"

local FORCE = "; --force reverts it anyway"

-- Fields the tenant sets on a role, which no create or undo can choose.
local TENANT_SET = { id = true, created = true, modified = true, legacyMembershipInfo = true }
-- Fields a create must not carry: those, and the metadata ISC refuses on
-- create (added value by value afterwards).
local NOT_CREATABLE = { accessModelMetadata = true }
for k in pairs(TENANT_SET) do NOT_CREATABLE[k] = true end

local function canon(v)
  return core.json_encode(v == nil and core.null or v, { sort_keys = true })
end

-- The fields of a role but those in except, sorted.
local function fields_but(role, except)
  local out = {}
  for k in pairs(role) do
    if not except[k] then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

-- The first of the fields whose value differs between two roles, or nil.
local function first_difference(a, b, fields)
  for _, f in ipairs(fields) do
    if canon(a[f]) ~= canon(b[f]) then return f end
  end
end

-- A copy of role with the given fields taken from source.
local function with(role, source, fields)
  local out = {}
  for k, v in pairs(role) do out[k] = v end
  for _, f in ipairs(fields) do out[f] = source[f] end
  return out
end

-- A role's before-image as create takes it: without what the tenant sets or
-- refuses, and with owners by id alone (ISC checks a name given against the
-- identity's current one, which may have changed since).
local function creatable(role)
  local body = {}
  for k, v in pairs(role) do
    if not NOT_CREATABLE[k] then body[k] = v end
  end
  local function ref(o) return { type = o.type, id = o.id } end
  if type(role.owner) == "table" then body.owner = ref(role.owner) end
  if type(role.additionalOwners) == "table" then
    body.additionalOwners = core.json_array({})
    for i, o in ipairs(role.additionalOwners) do body.additionalOwners[i] = ref(o) end
  end
  return body
end

-- A role's metadata attributes (AttributeDTOs) as a list.
local function attributes(role)
  local amm = type(role.accessModelMetadata) == "table" and role.accessModelMetadata.attributes
  return type(amm) == "table" and amm or {}
end

-- The metadata to put back: the attributes a change touched as they were
-- before it, the others as they are now; in their order before, new ones last.
local function restored_metadata(now, before, change)
  local all = change.operation == "REPLACE" and change.replaceScope ~= "ATTRIBUTE"
  local touched, current, seen = {}, {}, {}
  for _, item in ipairs(change.values) do touched[item.attribute] = true end
  for _, a in ipairs(attributes(now)) do current[a.key] = a end
  local out = core.json_array({})
  for _, a in ipairs(attributes(before)) do
    seen[a.key] = true
    out[#out + 1] = (all or touched[a.key]) and a or current[a.key]
  end
  for _, a in ipairs(attributes(now)) do
    if not seen[a.key] and not (all or touched[a.key]) then out[#out + 1] = a end
  end
  return { attributes = out }
end

local Undo = {}
Undo.__index = Undo

-- The role as it is now (nil when there is none): read from the tenant, or
-- in a dry run as the undo would have left it.
function Undo:current(id)
  local known = self.cache[id]
  if known ~= nil then return known or nil end
  local ok, role = pcall(self.client.roles.get, self.client.roles, id)
  if ok then return role end
  if errors.is(role, "api") and role.status == 404 then return nil end
  error(role, 0)
end

-- Notes what a revert left (false: no role); only a dry run, which changed
-- nothing, needs to remember it.
function Undo:changed(id, role)
  if self.dry_run then self.cache[id] = role end
end

-- How each kind of change is reverted: handler(undo, step, id) returns
-- "reverted", "skipped" or "refused" and a sentence.
local handlers = {}

-- A role the journal created: deleted, unless it changed since.
function handlers.create(u, step, id)
  local role = u:current(id)
  if not role then return "skipped", "already gone" end
  local after = step.entry.response
  if not u.force then
    local f = first_difference(role, after, fields_but(after, TENANT_SET))
    if f then return "refused", "changed since the journal created it (" .. f .. ")" .. FORCE end
  end
  u.client.roles:delete(id)
  u:changed(id, false)
  return "reverted", "deleted the role the journal created"
end

-- A patch: the fields it touched get their values from the before-image,
-- unless one of them is no longer what the patch left.
function handlers.patch(u, step, id)
  local role = u:current(id)
  if not role then return "skipped", "the role no longer exists" end
  local before = step.before
  local touched = journal.patched_fields(step.entry.body)
  local names = {}
  for i, t in ipairs(touched) do names[i] = t.field end
  if not first_difference(role, before, names) then return "skipped", "already as before" end
  local after = step.entry.outcome == "done" and step.entry.response
  if not u.force then
    if type(after) ~= "table" then
      return "refused", "the patch's outcome is unknown and the role differs from the journal's before-image" .. FORCE
    end
    local f = first_difference(role, after, names)
    if f then return "refused", "changed since the journal (" .. f .. " is not what the patch left)" .. FORCE end
  end
  local ops = {}
  for i, t in ipairs(touched) do
    -- ISC sends every field of a role; one missing from the before-image
    -- was null there (the client reads null members as absent)
    local was = before[t.field]
    ops[i] = { op = "replace", path = t.path, value = was == nil and core.null or was }
  end
  u.client.roles:patch(id, ops)
  u:changed(id, with(role, before, names))
  return "reverted", "restored " .. table.concat(names, ", ")
end

-- A deleted role: created again from its before-image, then its metadata
-- added value by value (ISC refuses an id and metadata on create).
function handlers.delete(u, step, id)
  local before = step.before
  if u:current(id) then return "skipped", "the role still exists (the delete was not done)" end
  local same = u.client.roles:_named(before.name)
  if same then
    local differs = first_difference(same, before, fields_but(before, TENANT_SET))
    if differs and not u.force then
      return "refused", string.format("a role named %q exists now (%s) and its %s differs from the journal's: "
        .. "not created again; --force takes it for this role", before.name, same.id, differs)
    end
    u.renamed[step.id] = same.id
    return "skipped", differs and string.format("a role named %q exists now (%s): taken for this role (--force)",
      before.name, same.id) or ("already created again, as " .. same.id)
  end
  local created = u.client.roles:create(creatable(before))
  for _, a in ipairs(attributes(before)) do
    for _, v in ipairs(type(a.values) == "table" and a.values or {}) do
      u.client.roles:add_metadata(created.id, a.key, v.value)
    end
  end
  if u.dry_run then
    u:changed(id, before)
  else
    u.renamed[step.id] = created.id
    u.recreated[#u.recreated + 1] = { old = step.id, new = created.id, name = before.name }
  end
  return "reverted", string.format("created again as %s (a new id: what pointed at the old one does not follow)%s",
    created.id, type(before.legacyMembershipInfo) == "table" and "; its legacyMembershipInfo is not restored" or "")
end

-- A metadata change (one value, or a bulk update): the attributes it
-- touched are put back as they were, unless the role no longer shows it.
function handlers.metadata(u, step, id)
  local role = u:current(id)
  if not role then return "skipped", "the role no longer exists" end
  local change = journal.metadata_change(step.entry)
  if not change then return "skipped", "the journal's line does not say what changed" end
  local target = restored_metadata(role, step.before, change)
  if canon(target.attributes) == canon(attributes(role)) then return "skipped", "already as before" end
  if not roles.metadata_shows(role, change) then
    if step.entry.outcome == "unknown" then return "skipped", "its outcome was unknown and the role does not show it" end
    if not u.force then
      return "refused", "changed since the journal (its metadata no longer shows the change)" .. FORCE
    end
  end
  u.client.roles:patch(id, { { op = "replace", path = "/accessModelMetadata", value = target } })
  u:changed(id, with(role, { accessModelMetadata = target }, { "accessModelMetadata" }))
  return "reverted", "restored metadata (" .. (step.entry.action == "bulk_metadata" and "bulk update" or step.entry.key) .. ")"
end

-- The handler of each action of a journal line.
local by_action = {
  create = handlers.create, patch = handlers.patch, delete = handlers.delete, bulk_delete = handlers.delete,
  add_metadata = handlers.metadata, remove_metadata = handlers.metadata, bulk_metadata = handlers.metadata,
}

-- Reverts one role's part of an entry; returns the report's item.
function Undo:revert(step)
  local item = { id = step.id, name = step.name, time = step.entry.time, action = step.entry.action }
  local handler = by_action[step.entry.action]
  if not step.id then
    item.outcome, item.text = "skipped", "its outcome stayed unknown and the journal has no id: look for a role named "
      .. string.format("%q", tostring(step.name))
  elseif self.blocked[step.id] then
    item.outcome, item.text = "skipped", "a newer change to this role was not reverted"
  elseif step.entry.action ~= "create" and type(step.before) ~= "table" then
    item.outcome, item.text = "skipped", "the journal has no before-image of it ("
      .. tostring(step.entry.before_error or "not read") .. ")"
  else
    local ok, outcome, text = pcall(handler, self, step, self.renamed[step.id] or step.id)
    if not ok then
      if not errors.is(outcome) or outcome.kind == "interrupted" then error(outcome, 0) end
      outcome, text = "failed", tostring(outcome)
    end
    item.outcome, item.text = outcome, text
  end
  if item.outcome == "refused" or item.outcome == "failed" then self.blocked[step.id] = true end
  return item
end

--- Reverts the entries of a journal (as isc.journal.read gives it), newest
--- first, one role at a time: a role whose change is refused or fails keeps
--- its older changes too. Entries of dry runs, and changes that were not
--- made, are left aside.
---@param client table the client to revert with (its journal records the undo)
---@param read table isc.journal.read's result
---@param opts table|nil {since = epoch seconds, only = {[id] = true}, force = boolean}
---@return table report {items = {...}, recreated = {{old=, new=, name=}}, dry_run_entries=, not_done=, older=, path=, damaged=}
function M.run(client, read, opts)
  opts = opts or {}
  local u = setmetatable({ client = client, force = opts.force, dry_run = config.process.dry_run,
    cache = {}, renamed = {}, blocked = {}, recreated = {} }, Undo)
  local report = { path = read.path, damaged = read.damaged, items = {}, recreated = u.recreated,
    dry_run_entries = 0, not_done = 0, older = 0, dry_run = u.dry_run }
  for i = #read.entries, 1, -1 do
    local e = read.entries[i]
    if e.dry_run then
      report.dry_run_entries = report.dry_run_entries + 1
    elseif e.outcome == "failed" or e.outcome == "not_sent" then
      report.not_done = report.not_done + 1
    elseif opts.since and (time.parse_iso(e.time) or -math.huge) < opts.since then
      report.older = report.older + 1
    elseif not by_action[e.action] or #journal.roles_of(e) == 0 then
      if not opts.only then
        report.items[#report.items + 1] = { outcome = "skipped", time = e.time, text = string.format(
          "%s %s: %s", e.method, e.path, by_action[e.action] and "the journal does not know which roles it changed"
            or "not a change to roles, which undo cannot reverse") }
      end
    else
      for _, r in ipairs(journal.roles_of(e)) do
        if not opts.only or opts.only[r.id] then
          report.items[#report.items + 1] = u:revert { entry = e, id = r.id, name = r.name, before = r.before }
        end
      end
    end
  end
  return report
end

--- The report as text: one line per role and change, newest first, then the
--- totals and the roles created again under new ids.
---@param report table M.run's result
---@return string
function M.format(report)
  local labels = { reverted = report.dry_run and "would revert" or "reverted", skipped = "skipped",
    refused = "refused", failed = "FAILED" }
  local out = { string.format("undo of %s, newest change first%s:", report.path,
    report.dry_run and " (dry run: nothing is changed)" or "") }
  local counts = { reverted = 0, skipped = 0, refused = 0, failed = 0 }
  for _, item in ipairs(report.items) do
    counts[item.outcome] = counts[item.outcome] + 1
    local who = item.id and string.format("role %s%s ", item.id, item.name and string.format(" %q", item.name) or "") or ""
    out[#out + 1] = string.format("  %-12s %s(%s %s): %s", labels[item.outcome], who, tostring(item.action or "call"),
      tostring(item.time), item.text)
  end
  if #report.items == 0 then out[#out + 1] = "  nothing to undo" end
  local aside = {}
  if report.dry_run_entries > 0 then
    aside[#aside + 1] = report.dry_run_entries .. " from dry runs (nothing was sent)"
  end
  if report.not_done > 0 then aside[#aside + 1] = report.not_done .. " that failed or were not sent" end
  if report.older > 0 then aside[#aside + 1] = report.older .. " older than --since" end
  if #report.damaged > 0 then aside[#aside + 1] = #report.damaged .. " damaged lines" end
  out[#out + 1] = string.format("%d %s, %d skipped, %d refused, %d failed%s", counts.reverted, labels.reverted,
    counts.skipped, counts.refused, counts.failed,
    #aside > 0 and ("; left aside: " .. table.concat(aside, ", ")) or "")
  for _, r in ipairs(report.recreated) do
    out[#out + 1] = string.format("created again: %q was %s and is now %s", tostring(r.name), r.old, r.new)
  end
  if #report.recreated > 0 then out[#out + 1] = "not restored for roles created again: " .. M.NOT_RESTORED end
  if report.journal then
    out[#out + 1] = string.format("this undo's own changes are in %s (isclua undo %s puts them back)",
      report.journal, report.journal)
  end
  return table.concat(out, "\n") .. "\n"
end

local usage = [[
usage: isclua undo FILE [options]

Reverses the changes the journal FILE (written with --journal) records,
newest first: deletes the roles it created, creates the roles it deleted
again (under new ids), puts patched fields and metadata back as they were.
A role changed since the journal is refused unless --force. The undo's own
changes are journaled too (to FILE.undo unless --journal says otherwise).

options:
  --dry-run         say what would be reverted; send no change
  --since TIME      only the changes made at or after TIME (ISO 8601, UTC:
                    2026-08-22 or 2026-08-22T10:00:00Z)
  --only ID...      only the changes to these roles (ids as in the journal)
  --force           revert roles changed since the journal too
  --journal FILE    where the undo journals its own changes
  --profile NAME    use the named profile of the isclua config file
  -v                trace every HTTP request on stderr
  --help            show this help

Exits 0 when every change was reverted or needed nothing, 1 when one was
refused or failed (the report says which and why), 2 on a usage error.
]]

-- Parses undo's arguments; returns the options or nil, message.
local function parse(argv)
  local o, i = {}, 1
  local function value(name)
    i = i + 1
    if argv[i] == nil then return nil, "'" .. name .. "' needs a value" end
    return argv[i]
  end
  while i <= #argv do
    local a, err = argv[i], nil
    if a == "--help" or a == "-h" then
      o.help = true
    elseif a == "--dry-run" then
      o.dry_run = true
    elseif a == "--force" then
      o.force = true
    elseif a == "-v" then
      o.verbose = true
    elseif a == "--since" then
      local v
      v, err = value(a)
      o.since = v and time.parse_iso(v)
      if v and not o.since then err = "'--since' must be an ISO 8601 time such as 2026-08-22T10:00:00Z, got '" .. v .. "'" end
    elseif a == "--journal" or a == "--profile" then
      o[a:sub(3)], err = value(a)
    elseif a == "--only" then
      o.only = o.only or {}
      while argv[i + 1] and not argv[i + 1]:match("^%-") do
        i = i + 1
        o.only[argv[i]] = true
      end
      if not next(o.only) then err = "'--only' needs at least one role id" end
    elseif a:match("^%-") or o.file then
      err = a:match("^%-") and ("unknown option '" .. a .. "'") or ("one journal at a time, got '" .. a .. "' too")
    else
      o.file = a
    end
    if err then return nil, err end
    i = i + 1
  end
  if not o.file and not o.help then return nil, "give the journal to undo" end
  return o
end

--- `isclua undo FILE [options]`; returns the exit code.
---@param argv string[]
function M.main(argv)
  local cli = require "isc.cli"
  local o, err = parse(argv)
  if not o then return cli.usage_error("undo: " .. err, "isclua undo --help") end
  if o.help then
    io.stdout:write(usage)
    return 0
  end
  config.process.dry_run, config.process.verbose, config.process.profile = o.dry_run or false, o.verbose or false, o.profile
  local _, code = cli.protected(function()
    local read = journal.read(o.file)
    local own = o.journal or (o.file .. ".undo")
    local client = require("isc").client { journal = own }
    client.journal.mark.undo_of = o.file
    local report = M.run(client, read, o)
    report.journal = own
    io.stdout:write(M.format(report))
    for _, item in ipairs(report.items) do
      if item.outcome == "refused" or item.outcome == "failed" then return 1 end
    end
    return 0
  end)
  return code
end

return M
