-- Tenant snapshots as JSON files (--state FILE): the whole tenant as saved
-- by the simulator, or just a list of roles as an admin exports them from
-- a real tenant (GET /v2024/roles), in which case the objects the roles
-- refer to (owners, access profiles, entitlements, sources...) are made up
-- from the references so that everything resolves. A save replaces the file
-- whole or not at all.
local core = require "isc.core"
local clock = require "isc.sim.clock"
local data = require "isc.sim.data"
local model = require "isc.sim.model"
local rng = require "isc.sim.rng"
local store = require "isc.sim.store"

local A = core.json_array
local null = core.null

local M = {}

M.FORMAT = "isclua-sim-state/1"

---Reads a snapshot file.
---@param path string
---@return table|nil snapshot (nil when the file does not exist yet)
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local snap, err = core.json_decode(text)
  if type(snap) ~= "table" then error(string.format("isc.sim: %s is not a JSON state file: %s", path, tostring(err)), 0) end
  return snap
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list or {}) do s[v] = true end
  return s
end

local function array(list)
  local out = A({})
  for i, v in ipairs(list) do out[i] = v end
  return out
end

local function list_of(set)
  local l = A({})
  for k in pairs(set or {}) do l[#l + 1] = k end
  table.sort(l)
  return l
end

-- Adds an object to a world list and its index.
local function add(world, list, index, item, key)
  world[list][#world[list] + 1] = item
  world[index][item[key or "id"]] = item
  return item
end

local function add_identity(world, identity)
  add(world, "identities", "identity_by_id", identity)
  local dept = identity.attributes.department or ""
  world.identities_by_dept[dept] = world.identities_by_dept[dept] or {}
  table.insert(world.identities_by_dept[dept], identity)
  return identity
end

local function add_metadata(world, attr)
  attr.value_by_name = {}
  for _, v in ipairs(attr.values) do attr.value_by_name[v.value] = v end
  return add(world, "metadata", "metadata_by_key", attr, "key")
end

-- A world from a saved snapshot's catalogues.
local function world_from(snap)
  local world = data.empty_world(snap.seed or 1)
  for _, s in ipairs(snap.sources or {}) do
    add(world, "sources", "source_by_id", s)
    if s.key then world.source_by_key[s.key] = s end
  end
  for _, e in ipairs(snap.entitlements or {}) do
    e.created, e.modified = clock.parse_iso(e.created) or 0, clock.parse_iso(e.modified) or 0
    add(world, "entitlements", "entitlement_by_id", e)
  end
  for _, ap in ipairs(snap.access_profiles or {}) do add(world, "access_profiles", "access_profile_by_id", ap) end
  for _, i in ipairs(snap.identities or {}) do
    i.entitlements, i.accounts = set_of(i.entitlements), set_of(i.accounts)
    if i.subadmin_sources then i.subadmin_sources = set_of(i.subadmin_sources) end
    add_identity(world, i)
  end
  for _, g in ipairs(snap.governance_groups or {}) do add(world, "governance_groups", "governance_groups_by_id", g) end
  for _, s in ipairs(snap.segments or {}) do add(world, "segments", "segments_by_id", s) end
  for _, d in ipairs(snap.dimensions or {}) do add(world, "dimensions", "dimension_by_id", d) end
  for _, m in ipairs(snap.metadata or {}) do add_metadata(world, m) end
  return world
end

local function present(v) return v ~= nil and v ~= null end

-- Makes up the objects a role refers to that the world does not have.
local function stub_references(world, role)
  local function identity(ref)
    if not present(ref) or type(ref.id) ~= "string" or world.identity_by_id[ref.id] then return end
    local name = present(ref.name) and ref.name or ref.id
    local alias = present(ref.aliasName) and ref.aliasName or name:lower():gsub("%s+", ".")
    add_identity(world, { id = ref.id, name = name, alias = alias, email = alias .. "@" .. data.DOMAIN,
      attributes = { displayName = name, email = alias .. "@" .. data.DOMAIN }, entitlements = {}, accounts = {} })
  end
  local function source(id)
    if type(id) == "string" and not world.source_by_id[id] then
      add(world, "sources", "source_by_id", { id = id, name = "Source " .. id:sub(1, 8), attribute = "memberOf", object = "group" })
    end
  end
  local function criteria(node)
    if not present(node) then return end
    if present(node.key) then source(node.key.sourceId) end
    for _, child in ipairs(present(node.children) and node.children or {}) do criteria(child) end
  end
  identity(role.owner)
  for _, ref in ipairs(present(role.additionalOwners) and role.additionalOwners or {}) do
    if ref.type == "GOVERNANCE_GROUP" then
      if not world.governance_groups_by_id[ref.id] then
        add(world, "governance_groups", "governance_groups_by_id", { id = ref.id, name = present(ref.name) and ref.name or ref.id })
      end
    else
      identity(ref)
    end
  end
  for _, ref in ipairs(present(role.accessProfiles) and role.accessProfiles or {}) do
    if not world.access_profile_by_id[ref.id] then
      add(world, "access_profiles", "access_profile_by_id", { id = ref.id, name = present(ref.name) and ref.name or ref.id, entitlements = {} })
    end
  end
  for _, ref in ipairs(present(role.entitlements) and role.entitlements or {}) do
    if not world.entitlement_by_id[ref.id] then
      local src = world.source_by_key.imported
      if not src then
        src = add(world, "sources", "source_by_id", { id = "imported", key = "imported", name = "Imported", attribute = "memberOf", object = "group" })
        world.source_by_key.imported = src
      end
      local name = present(ref.name) and ref.name or ref.id
      add(world, "entitlements", "entitlement_by_id", { id = ref.id, name = name, attribute = "memberOf", value = name,
        source_id = src.id, object = "group", privileged = false, requestable = false, created = 0, modified = 0 })
    end
  end
  local m = role.membership
  if present(m) then
    for _, ref in ipairs(present(m.identities) and m.identities or {}) do identity(ref) end
    criteria(m.criteria)
  end
  for _, id in ipairs(present(role.segments) and role.segments or {}) do
    if not world.segments_by_id[id] then add(world, "segments", "segments_by_id", { id = id, name = id }) end
  end
  for _, ref in ipairs(present(role.dimensionRefs) and role.dimensionRefs or {}) do
    if type(ref) == "table" and type(ref.id) == "string" and not world.dimension_by_id[ref.id] then
      add(world, "dimensions", "dimension_by_id",
        { type = "DIMENSION", id = ref.id, name = present(ref.name) and ref.name or ref.id })
    end
  end
  local amm = present(role.accessModelMetadata) and role.accessModelMetadata.attributes
  for _, attr in ipairs(present(amm) and amm or {}) do
    local known = world.metadata_by_key[attr.key]
    if not known then
      known = add_metadata(world, { key = attr.key, name = attr.name or attr.key, multiselect = attr.multiselect == true,
        status = attr.status or "active", type = attr.type or "custom", objectTypes = attr.objectTypes or { "all" },
        description = attr.description or "", values = {} })
    end
    for _, v in ipairs(present(attr.values) and attr.values or {}) do
      if not known.value_by_name[v.value] then
        local def = { value = v.value, name = v.name or v.value, status = v.status or "active" }
        known.values[#known.values + 1] = def
        known.value_by_name[v.value] = def
      end
    end
  end
end

---Builds the world and role store: generated from the settings when there
---is no snapshot, else from it (a saved tenant, or a bare list of roles).
---@param snap table|nil
---@param cfg table settings (seed, roles, identities)
---@return table world, table store
function M.load(snap, cfg)
  if not snap then
    local world = data.generate(cfg)
    return world, store.new(world)
  end
  local roles_list = getmetatable(snap) == core.array_mt and snap or snap.roles or {}
  local world
  if snap.identities then
    world = world_from(snap)
  else
    world = data.generate({ seed = cfg.seed, identities = cfg.identities, roles = 0 })
  end
  local st = store.new(world)
  local checker = { world = world, store = { named = function() return nil end } }
  local now = clock.iso(os.time(), true)
  local requested = type(snap.requested) == "table" and snap.requested or {}
  local items = {}
  for i, role in ipairs(roles_list) do
    if type(role) ~= "table" or type(role.id) ~= "string" then
      error(string.format("isc.sim: role %d of the state file has no id", i), 0)
    end
    stub_references(world, role)
    local checked, err = model.check(checker, role, role)
    if not checked then
      local body = core.json_decode(err.body)
      error(string.format("isc.sim: role %s of the state file: %s", role.id, body.messages[1].text), 0)
    end
    checked.created = present(role.created) and role.created or now
    checked.modified = present(role.modified) and role.modified or checked.created
    items[i] = { role = checked, requested = requested[role.id] }
  end
  st:load(items)
  return world, st
end

-- A copy of an entitlement with its times as ISO strings.
local function iso_fields(e)
  local out = {}
  for k, v in pairs(e) do out[k] = v end
  out.created, out.modified = clock.iso(e.created, true), clock.iso(e.modified, true)
  return out
end

-- Replaces path with text: written to a new file of a name no one can guess
-- in the same directory, flushed to the disk, then renamed over path, so
-- that a full disk, a crash or a kill leaves the old file whole. (A crash
-- right after the rename may undo it; the old file is then still whole.)
local function replace_file(path, text)
  local tmp = string.format("%s.%s.tmp", path, rng.unpredictable_hex(8))
  local ok, err = core.write_new_file(tmp, text)
  if ok then
    ok, err = os.rename(tmp, path)
    if not ok then os.remove(tmp) end
  end
  if not ok then return nil, string.format("%s was not saved (the file there is unchanged): %s", path, err) end
  return true
end

---Writes the whole tenant (catalogues, roles, access-request assignments).
---@param t table tenant
---@param path string
---@return boolean|nil ok, string|nil message naming path and the OS error
function M.save(t, path)
  local w, st = t.world, t.store
  local identities, entitlements, roles, requested = A({}), A({}), A({}), {}
  for i, idn in ipairs(w.identities) do
    local copy = {}
    for k, v in pairs(idn) do copy[k] = v end
    copy.entitlements, copy.accounts = list_of(idn.entitlements), list_of(idn.accounts)
    if idn.subadmin_sources then copy.subadmin_sources = list_of(idn.subadmin_sources) end
    identities[i] = copy
  end
  for i, e in ipairs(w.entitlements) do entitlements[i] = iso_fields(e) end
  local metadata = A({})
  for i, m in ipairs(w.metadata) do
    metadata[i] = { key = m.key, name = m.name, multiselect = m.multiselect, status = m.status, type = m.type,
      objectTypes = array(m.objectTypes), description = m.description, values = array(m.values) }
  end
  for i, e in ipairs(st.list) do
    roles[i] = st:role(e)
    if #e.requested > 0 then requested[e.id] = array(e.requested) end
  end
  local snap = {
    format = M.FORMAT, seed = w.seed, sources = array(w.sources), entitlements = entitlements,
    access_profiles = array(w.access_profiles), identities = identities,
    governance_groups = array(w.governance_groups), segments = array(w.segments), dimensions = array(w.dimensions),
    metadata = metadata, roles = roles, requested = requested,
  }
  return replace_file(path, core.json_encode(snap))
end

return M
