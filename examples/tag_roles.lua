-- Tags roles with access-model metadata listed in a CSV file, one tag a line
-- after a header line:
--
--   role,attribute,value
--   Engineering Base,costCenter,cc1000
--   2c918081653bcf1643d5171cee61cf95,riskLevel,low
--
-- A role is named by its name or id, an attribute by its key and a value as
-- the attribute's catalogue names it (see "Looking things up" in README.md).
-- The roles given one value are tagged by one bulk update, which ISC runs as
-- a job; the script waits for the jobs, then reports what was done.
--
--   isclua examples/tag_roles.lua tags.csv
--   isclua --sim examples/tag_roles.lua tags.csv
--
-- Exits 0 when every line was applied, 1 when some were not (unknown role,
-- value refused), 7 when ISC's answer was lost: look at the tenant first.
local isc = require "isc"

local path = arg[1]
if not path or arg[2] then
  io.stderr:write("usage: tag_roles.lua TAGS.csv\n")
  os.exit(2)
end

local c = isc.client()

-- The fields of one CSV line (RFC 4180: a quoted field may hold commas,
-- and "" stands for a quote in it).
local function csv_fields(line)
  local fields, pos = {}, 1
  while pos <= #line + 1 do
    local value
    if line:sub(pos, pos) == '"' then
      local parts, i = {}, pos + 1
      while true do
        local q = line:find('"', i, true) or #line + 1
        if line:sub(q + 1, q + 1) ~= '"' then
          parts[#parts + 1], pos = line:sub(i, q - 1), q + 1
          break
        end
        parts[#parts + 1], i = line:sub(i, q), q + 2
      end
      value = table.concat(parts)
    else
      local comma = line:find(",", pos, true) or #line + 1
      value, pos = line:sub(pos, comma - 1), comma
    end
    fields[#fields + 1] = value
    pos = pos + 1
  end
  return fields
end

-- Every role's id, by id and by name, from one listing: cheaper than a
-- lookup per line when the file is long.
local role_id = {}
for role in c.roles:list() do
  role_id[role.id], role_id[role.name] = role.id, role.id
end

-- The lines grouped by attribute and value, in the file's order.
local groups, group_of, failed = {}, {}, 0
local n = 0
for line in io.lines(path) do
  n = n + 1
  line = line:gsub("\r$", "")
  local role, key, value = table.unpack(csv_fields(line))
  if n > 1 and line ~= "" then
    local id = role and role_id[role]
    if not (id and key and value) then
      print(string.format("line %d: %s", n, id and "needs role,attribute,value" or string.format("no role %q", role)))
      failed = failed + 1
    else
      local g = group_of[key .. "=" .. value]
      if not g then
        g = { key = key, value = value, ids = {} }
        group_of[key .. "=" .. value], groups[#groups + 1] = g, g
      end
      g.ids[#g.ids + 1] = id
    end
  end
end

-- Starts the bulk updates: one per value, of at most 3000 roles (ISC's limit).
-- ADD keeps a role's other values (a single-select attribute's value is replaced).
local jobs, unknown = {}, false
for _, g in ipairs(groups) do
  for first = 1, #g.ids, 3000 do
    local ids = table.move(g.ids, first, math.min(first + 2999, #g.ids), 1, {})
    local what = string.format("%s = %s on %d roles", g.key, g.value, #ids)
    local ok, job = pcall(c.roles.bulk_update_metadata, c.roles,
      { ids = ids, operation = "ADD", values = { { attribute = g.key, values = { g.value } } } })
    if ok then
      jobs[#jobs + 1] = { job = job, what = what }
    elseif isc.is_error(job, "unknown_outcome") then
      -- Sent, and the answer lost: the roles may or may not be tagged.
      print(what .. ": outcome unknown (" .. job.message .. ")")
      unknown = true
    elseif isc.is_error(job, "api") then
      print(what .. ": refused: " .. job.message)
      failed = failed + #ids
    else
      error(job, 0)
    end
  end
end

-- Waits for each job; a job verified on the roles themselves (its answer
-- was lost, the roles show the change) or rehearsed (--dry-run) has no
-- status to ask for.
for _, j in ipairs(jobs) do
  local job, wait = j.job, 1
  while job.status ~= "COMPLETED" and not job.verified and not isc.dry_run do
    isc.sleep(wait)
    wait = math.min(wait * 2, 30)
    job = c.roles:bulk_update_status(job.id)
  end
  print(string.format("%s: %s", j.what, isc.dry_run and "rehearsed" or "done"))
end

os.exit(unknown and 7 or failed > 0 and 1 or 0)
