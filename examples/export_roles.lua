-- Exports every role of the tenant to CSV (one line per role, for a
-- spreadsheet) and to JSON (the roles whole, as the API gives them). Each
-- file's format is taken from its extension; give either or both.
--
--   isclua examples/export_roles.lua roles.csv roles.json
--   isclua --sim examples/export_roles.lua roles.csv roles.json
--
-- The JSON file is also a snapshot of the tenant's roles: `isclua sim --state
-- FILE` loads it, to rehearse a script on a copy of production, and
-- examples/diff_roles.lua compares it with the tenant later.
local isc = require "isc"

local csv_path, json_path
for _, path in ipairs(arg) do
  if path:match("%.csv$") then
    csv_path = path
  elseif path:match("%.json$") then
    json_path = path
  else
    csv_path, json_path = nil, nil
    break
  end
end
if not (csv_path or json_path) then
  io.stderr:write("usage: export_roles.lua [FILE.csv] [FILE.json]\n")
  os.exit(2)
end
local csv = csv_path and assert(io.open(csv_path, "w"))
local json = json_path and assert(io.open(json_path, "w"))

local c = isc.client()

-- A CSV field: always quoted, inner quotes doubled (RFC 4180), so names
-- holding commas, quotes or line breaks stay in their column.
local function field(v)
  return '"' .. tostring(v == nil and "" or v):gsub('"', '""') .. '"'
end

-- The names of a list of references, joined by "; ".
local function names(refs)
  local out = {}
  for i, ref in ipairs(refs or {}) do out[i] = ref.name or ref.id end
  return table.concat(out, "; ")
end

local function csv_line(role)
  local cells = { role.id, role.name, role.enabled, role.requestable, role.owner and role.owner.name,
    names(role.accessProfiles), names(role.entitlements), role.description, role.created, role.modified }
  for i = 1, #cells do cells[i] = field(cells[i]) end
  return table.concat(cells, ",") .. "\n"
end

if csv then
  csv:write("id,name,enabled,requestable,owner,access_profiles,entitlements,description,created,modified\n")
end
if json then json:write("[") end

-- One page at a time: the files grow as pages come, and memory stays flat
-- however many roles the tenant has. Sorted by creation, so roles created
-- meanwhile come last rather than shifting the pages.
local written = 0
for page in c.roles:list({ sorters = "created" }):pages() do
  for _, role in ipairs(page.items) do
    if csv then csv:write(csv_line(role)) end
    if json then json:write(written == 0 and "\n" or ",\n", isc.json.encode(role)) end
    written = written + 1
  end
end

if json then json:write("\n]\n") end
-- A full disk shows here: close() reports what write() could not.
if csv then assert(csv:close()) end
if json then assert(json:close()) end
isc.log.info("roles exported", { roles = written })
