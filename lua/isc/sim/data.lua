-- Seeded, deterministic generation of a tenant: sources, entitlements,
-- access profiles, identities, governance groups, segments, the metadata
-- catalogue, and roles. Roles are made lazily: start-up computes only each
-- role's id and creation time (their default order); the body of role i is
-- generated from its own random stream when first needed, so 10,000 roles
-- cost almost nothing until they are read.
local core = require "isc.core"
local rng = require "isc.sim.rng"
local clock = require "isc.sim.clock"
local membership = require "isc.sim.membership"

local A = core.json_array
local null = core.null

local M = {}

M.DOMAIN = "acme-corp.com"

local DEPARTMENTS = {
  "Engineering", "Finance", "Sales", "Marketing", "Human Resources", "IT Operations",
  "Legal", "Customer Support", "Security", "Procurement", "Data Science", "Facilities",
}
local FUNCTIONS = {
  "Base", "Analyst", "Manager", "Administrator", "Contractor", "Auditor",
  "Approver", "Read Only", "Power User", "Team Lead", "Intern", "On-Call",
}
local LOCATIONS = { "Austin", "New York", "Toronto", "London", "Berlin", "Dublin", "Singapore", "Sydney", "Bangalore", "Sao Paulo" }
local TITLES = { "Associate", "Specialist", "Senior Specialist", "Analyst", "Senior Analyst", "Engineer",
  "Senior Engineer", "Manager", "Senior Manager", "Director" }
local FIRST = { "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
  "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Priya",
  "Wei", "Aisha", "Mateo", "Sofia", "Hiroshi", "Fatima", "Lars", "Chloe", "Diego", "Amara", "Noah", "Olivia",
  "Liam", "Emma", "Arjun", "Mei", "Omar", "Ingrid", "Kwame" }
local LAST = { "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
  "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
  "Patel", "Nguyen", "Kim", "Chen", "Okafor", "Schmidt", "Rossi", "Tanaka", "Silva", "Novak", "Edison", "Larsen",
  "Dubois", "Kowalski", "Haddad", "Singh", "Murphy", "Costa", "Ivanova" }

-- Entitlement catalogue per source: {name, value, privileged, departments...}.
local SOURCES = {
  { key = "ad", name = "Corporate Active Directory", attribute = "memberOf", object = "group" },
  { key = "sfdc", name = "Salesforce", attribute = "permissionSets", object = "PermissionSet" },
  { key = "gh", name = "GitHub Enterprise", attribute = "teams", object = "team" },
  { key = "aws", name = "AWS IAM", attribute = "roles", object = "role" },
  { key = "sap", name = "SAP ERP", attribute = "roles", object = "role" },
  { key = "snow", name = "ServiceNow", attribute = "groups", object = "group" },
}
local APP_ENTITLEMENTS = {
  sfdc = { { "Sales Cloud User", "Sales" }, { "Service Cloud User", "Customer Support" }, { "Marketing User", "Marketing" },
    { "Sales Manager", "Sales" }, { "Report Builder", "Sales", "Marketing" }, { "Quote Approver", "Sales", "Finance" },
    { "System Administrator", "IT Operations", privileged = true }, { "Read Only", "Legal", "Finance" } },
  gh = { { "platform", "Engineering" }, { "frontend", "Engineering" }, { "backend", "Engineering" },
    { "data-platform", "Data Science" }, { "security", "Security" }, { "sre", "IT Operations", "Engineering" },
    { "docs", "Marketing", "Engineering" }, { "owners", "IT Operations", privileged = true } },
  aws = { { "ReadOnlyAccess", "Engineering", "Security", "Data Science" }, { "PowerUserAccess", "IT Operations" },
    { "AdministratorAccess", "IT Operations", privileged = true }, { "BillingViewer", "Finance" },
    { "DataScientist", "Data Science" }, { "SecurityAudit", "Security", "Legal" },
    { "NetworkAdministrator", "IT Operations", privileged = true }, { "DeveloperSandbox", "Engineering" } },
  sap = { { "Z_FI_AP_CLERK", "Finance" }, { "Z_FI_AR_CLERK", "Finance" }, { "Z_FI_GL_ACCOUNTANT", "Finance" },
    { "Z_MM_BUYER", "Procurement" }, { "Z_MM_APPROVER", "Procurement", "Finance" }, { "Z_HR_ADMIN", "Human Resources" },
    { "Z_BASIS_ADMIN", "IT Operations", privileged = true }, { "Z_DISPLAY_ALL", "Legal", "Facilities" } },
  snow = { { "Service Desk", "Customer Support", "IT Operations" }, { "Change Approvers", "IT Operations" },
    { "Incident Managers", "IT Operations", "Security" }, { "ITIL Users", "IT Operations", "Facilities" },
    { "Knowledge Authors", "Customer Support" }, { "Asset Managers", "Facilities", "Procurement" } },
}
local METADATA = {
  { key = "iscPrivacy", name = "Privacy", multiselect = false, type = "governance", objectTypes = { "all" },
    description = "Specifies the level of privacy associated with an access item.",
    values = { { "public", "Public" }, { "internal", "Internal" }, { "confidential", "Confidential" }, { "private", "Private" } } },
  { key = "iscFederalClassifications", name = "Federal Classifications", multiselect = true, type = "governance",
    objectTypes = { "general" }, description = "Classification used by government organizations.",
    values = { { "unclassified", "Unclassified" }, { "confidential", "Confidential" }, { "secret", "Secret" },
      { "topSecret", "Top Secret" } } },
  { key = "iscCsp", name = "CSP", multiselect = true, type = "governance", objectTypes = { "general" },
    description = "Indicates the type of deployment environment of an access item.",
    values = { { "development", "Development" }, { "staging", "Staging" }, { "production", "Production" } } },
  { key = "dataCategory", name = "Data Category", multiselect = true, type = "custom", objectTypes = { "all" },
    description = "Kinds of data the access reaches.",
    values = { { "pii", "PII" }, { "phi", "PHI" }, { "pci", "PCI" }, { "financial", "Financial" }, { "hr", "HR" },
      { "legal", "Legal" }, { "sourceCode", "Source Code" }, { "customer", "Customer" }, { "marketing", "Marketing" },
      { "operational", "Operational" }, { "security", "Security" }, { "publicData", "Public Data" },
      { "research", "Research" }, { "contracts", "Contracts" }, { "payroll", "Payroll" }, { "pricing", "Pricing" },
      { "telemetry", "Telemetry" }, { "backups", "Backups" }, { "credentials", "Credentials" }, { "audit", "Audit" } } },
  { key = "costCenter", name = "Cost Center", multiselect = false, type = "custom", objectTypes = { "all" },
    description = "Cost center that pays for the access.",
    values = { { "cc1000", "CC-1000 Engineering" }, { "cc2000", "CC-2000 Finance" }, { "cc3000", "CC-3000 Sales" },
      { "cc4000", "CC-4000 Operations" } } },
}
local GOVERNANCE_GROUPS = { "Access Review Board", "Finance Approvers", "Security Reviewers", "Engineering Leads",
  "HR Business Partners" }
local SEGMENTS = { "North America", "EMEA", "APAC", "Contractors" }

-- Fixed anchors keep generated data identical whatever the date of the run.
local ENTITLEMENTS_FROM = clock.parse_iso("2019-03-01T00:00:00Z")
local ROLES_FROM = clock.parse_iso("2021-01-04T08:00:00Z")
local ROLES_UNTIL = clock.parse_iso("2025-06-30T18:00:00Z")

local function gcd(a, b)
  while b ~= 0 do a, b = b, a % b end
  return a
end

-- Walks 1..n in a scrambled but deterministic order: a golden-ratio step
-- coprime to n visits every slot once.
local function scramble(i, n)
  local step = math.max(1, math.floor(n * 0.618))
  while gcd(step, n) ~= 1 do step = step + 1 end
  return ((i - 1) * step) % n + 1
end

---@param identity table internal identity
---@return table OwnerReference
function M.owner_ref(identity)
  return { type = "IDENTITY", id = identity.id, name = identity.name }
end

---@param ap table access profile
---@return table AccessProfileRef
function M.access_profile_ref(ap)
  return { id = ap.id, type = "ACCESS_PROFILE", name = ap.name }
end

---@param ent table entitlement
---@return table EntitlementRef
function M.entitlement_ref(ent)
  return { type = "ENTITLEMENT", id = ent.id, name = ent.name }
end

---@param identity table
---@return table RoleMembershipIdentity
function M.member_ref(identity)
  return { type = "IDENTITY", id = identity.id, name = identity.name, aliasName = identity.alias }
end

---An AttributeDTO of the catalogue carrying only the given values.
---@param attr table catalogue attribute
---@param values string[] technical value names, all in the catalogue
---@return table AttributeDTO
function M.attribute_dto(attr, values)
  local vals = A({})
  for _, v in ipairs(values) do
    local def = attr.value_by_name[v]
    vals[#vals + 1] = { value = def.value, name = def.name, status = def.status }
  end
  return {
    key = attr.key, name = attr.name, multiselect = attr.multiselect, status = attr.status, type = attr.type,
    objectTypes = A({ table.unpack(attr.objectTypes) }), description = attr.description, values = vals,
  }
end

-- The connected sources (Active Directory, Salesforce, ...).
local function make_sources(world, r)
  for _, def in ipairs(SOURCES) do
    local src = { id = r:isc_id(), name = def.name, key = def.key, attribute = def.attribute, object = def.object }
    world.sources[#world.sources + 1] = src
    world.source_by_key[def.key] = src
    world.source_by_id[src.id] = src
  end
end

-- Adds one entitlement of a source, typical of the given departments.
local function add_entitlement(world, r, src, name, value, departments, privileged)
  local created = ENTITLEMENTS_FROM + r:float() * 700 * 86400
  local ent = {
    id = r:isc_id(), name = name, attribute = src.attribute, value = value, source_id = src.id,
    object = src.object, privileged = privileged or false, requestable = not privileged and r:chance(0.6),
    departments = departments,
    description = string.format("%s %s on %s.", privileged and "Privileged" or "Grants", name, src.name),
    created = created, modified = created + r:float() * 400 * 86400,
  }
  world.entitlements[#world.entitlements + 1] = ent
  world.entitlement_by_id[ent.id] = ent
  return ent
end

-- AD groups per department, plus the applications' entitlements.
local function make_entitlements(world, r)
  local ad = world.source_by_key.ad
  local function ad_group(name, departments, privileged)
    return add_entitlement(world, r, ad, name, string.format("CN=%s,OU=Groups,DC=acme,DC=local", name), departments, privileged)
  end
  for _, d in ipairs({ "All Employees", "VPN Users", "Remote Desktop Users", "Contractors" }) do ad_group(d, {}) end
  ad_group("Domain Admins", { "IT Operations" }, true)
  for _, dept in ipairs(DEPARTMENTS) do
    for _, suffix in ipairs({ " Users", " Managers", " Share Read", " Share Write" }) do
      ad_group(dept .. suffix, { dept })
    end
  end
  for _, def in ipairs(SOURCES) do
    for _, e in ipairs(APP_ENTITLEMENTS[def.key] or {}) do
      local src = world.source_by_key[def.key]
      local value = e[1]
      if def.key == "aws" then value = "arn:aws:iam::123456789012:role/" .. e[1]
      elseif def.key == "gh" then value = "acme/" .. e[1]
      elseif def.key == "sfdc" then value = "0PS" .. r:hex(12):upper() end
      add_entitlement(world, r, src, e[1], value, { table.unpack(e, 2) }, e.privileged)
    end
  end
  for _, ent in ipairs(world.entitlements) do
    for _, dept in ipairs(ent.departments) do
      local list = world.entitlements_by_dept[dept] or {}
      world.entitlements_by_dept[dept] = list
      list[#list + 1] = ent
    end
  end
end

-- Adds an access profile bundling entitlements of one source.
local function add_access_profile(world, r, name, ents, dept)
  if #ents == 0 then return end
  local ids = {}
  for i, e in ipairs(ents) do ids[i] = e.id end
  local ap = { id = r:isc_id(), name = name, source_id = ents[1].source_id, entitlements = ids, department = dept }
  world.access_profiles[#world.access_profiles + 1] = ap
  world.access_profile_by_id[ap.id] = ap
  local list = world.access_profiles_by_dept[dept or ""] or {}
  world.access_profiles_by_dept[dept or ""] = list
  list[#list + 1] = ap
end

-- A baseline and a managers profile per department, plus one per application.
local function make_access_profiles(world, r)
  local by_name = {}
  for _, e in ipairs(world.entitlements) do
    if e.source_id == world.source_by_key.ad.id then by_name[e.name] = e end
  end
  add_access_profile(world, r, "AD Baseline", { by_name["All Employees"], by_name["VPN Users"] })
  for _, dept in ipairs(DEPARTMENTS) do
    add_access_profile(world, r, "AD " .. dept .. " Baseline", { by_name[dept .. " Users"], by_name[dept .. " Share Read"] }, dept)
    add_access_profile(world, r, "AD " .. dept .. " Managers", { by_name[dept .. " Managers"], by_name[dept .. " Share Write"] }, dept)
    for _, src in ipairs(world.sources) do
      if src.key ~= "ad" then
        local ents = {}
        for _, e in ipairs(world.entitlements_by_dept[dept] or {}) do
          if e.source_id == src.id then ents[#ents + 1] = e end
        end
        add_access_profile(world, r, src.name .. " - " .. dept, ents, dept)
      end
    end
  end
end

local function is_manager(identity)
  local title = identity.attributes.title
  return title:find("Manager", 1, true) or title:find("Director", 1, true)
end

-- n identities with unique names, department attributes and the entitlements that go with them.
local function make_identities(world, r, n)
  local combos = #FIRST * #LAST
  for i = 1, n do
    local c = scramble(i, combos) - 1
    local first, last = FIRST[c // #LAST + 1], LAST[c % #LAST + 1]
    local cycle = (i - 1) // combos
    local name = cycle == 0 and (first .. " " .. last) or string.format("%s %s %d", first, last, cycle + 1)
    local alias = (first .. "." .. last):lower() .. (cycle == 0 and "" or tostring(cycle + 1))
    local dept = DEPARTMENTS[(scramble(i, 97) - 1) % #DEPARTMENTS + 1]
    local identity = {
      id = r:isc_id(), name = name, alias = alias, email = alias .. "@" .. M.DOMAIN,
      attributes = {
        department = dept, title = r:pick(TITLES), location = r:pick(LOCATIONS),
        employeeNumber = string.format("E%06d", 100000 + i), email = alias .. "@" .. M.DOMAIN,
        displayName = name, firstname = first, lastname = last,
        cloudLifecycleState = r:chance(0.94) and "active" or "inactive",
      },
      entitlements = {}, accounts = {},
    }
    local ents = { world.entitlements[1] }
    if r:chance(0.7) then ents[#ents + 1] = world.entitlements[2] end
    for _, e in ipairs(world.entitlements_by_dept[dept] or {}) do
      local manager_only = e.name:find(" Managers$") or e.name:find("Write$") or e.privileged
      if (not manager_only and r:chance(0.75)) or (manager_only and is_manager(identity) and r:chance(0.8))
          or (manager_only and r:chance(0.05)) then
        ents[#ents + 1] = e
      end
    end
    for _, e in ipairs(ents) do
      identity.entitlements[e.id] = true
      identity.accounts[e.source_id] = true
    end
    if r:chance(0.03) then
      identity.subadmin_sources = {}
      for _, s in ipairs(r:sample(world.sources, r:range(1, 2))) do identity.subadmin_sources[s.id] = true end
    end
    world.identities[i] = identity
    world.identity_by_id[identity.id] = identity
    local list = world.identities_by_dept[dept] or {}
    world.identities_by_dept[dept] = list
    list[#list + 1] = identity
  end
end

-- The access-model metadata catalogue (governance and custom attributes).
local function make_metadata(world)
  for _, def in ipairs(METADATA) do
    local attr = {
      key = def.key, name = def.name, multiselect = def.multiselect, status = "active", type = def.type,
      objectTypes = def.objectTypes, description = def.description, values = {}, value_by_name = {},
    }
    for i, v in ipairs(def.values) do
      attr.values[i] = { value = v[1], name = v[2], status = "active" }
      attr.value_by_name[v[1]] = attr.values[i]
    end
    world.metadata[#world.metadata + 1] = attr
    world.metadata_by_key[attr.key] = attr
  end
end

-- What the read endpoints show beyond what roles refer to: dates, owners,
-- managers, group members. Drawn from a stream of its own, after the rest,
-- so that the roles of a seed stay as they were.
local function make_details(world, r)
  local ids = world.identities
  local function someone() return r:pick(ids).id end
  local function dates(x, from, days)
    x.created = from + r:float() * days * 86400
    x.modified = x.created + r:float() * 300 * 86400
  end
  local managers = {}
  for _, identity in ipairs(ids) do
    local dept = identity.attributes.department
    dates(identity, ENTITLEMENTS_FROM, 600)
    if not managers[dept] and is_manager(identity) then managers[dept] = identity end
  end
  for _, identity in ipairs(ids) do
    local manager = managers[identity.attributes.department]
    if manager and manager ~= identity then
      identity.manager_id = manager.id
      manager.is_manager = true
    end
  end
  for _, ap in ipairs(world.access_profiles) do
    dates(ap, ENTITLEMENTS_FROM, 700)
    local pool = world.identities_by_dept[ap.department or ""] or ids
    ap.owner_id = r:pick(pool).id
    ap.requestable = r:chance(0.7)
    ap.description = string.format("%s access, bundled for roles.", ap.name)
  end
  for _, seg in ipairs(world.segments) do
    dates(seg, ENTITLEMENTS_FROM, 400)
    seg.owner_id = someone()
    seg.description = string.format("Access visible to %s.", seg.name)
  end
  for _, gg in ipairs(world.governance_groups) do
    dates(gg, ENTITLEMENTS_FROM, 400)
    gg.owner_id = someone()
    gg.description = string.format("The %s governance group.", gg.name)
    gg.member_ids = {}
    for i, m in ipairs(r:sample(ids, math.min(#ids, r:range(2, 6)))) do gg.member_ids[i] = m.id end
  end
end

-- Governance groups or segments: UUID ids and the given names.
local function make_named(world, list_name, names, r)
  for _, name in ipairs(names) do
    local item = { id = r:uuid(), name = name }
    world[list_name][#world[list_name] + 1] = item
    world[list_name .. "_by_id"][item.id] = item
  end
end

---An empty world with every catalogue table in place.
---@param seed integer
---@return table
function M.empty_world(seed)
  return {
    seed = seed, sources = {}, source_by_id = {}, source_by_key = {},
    entitlements = {}, entitlement_by_id = {}, entitlements_by_dept = {},
    access_profiles = {}, access_profile_by_id = {}, access_profiles_by_dept = {},
    identities = {}, identity_by_id = {}, identities_by_dept = {},
    governance_groups = {}, governance_groups_by_id = {}, segments = {}, segments_by_id = {},
    metadata = {}, metadata_by_key = {}, dimensions = {}, dimension_by_id = {}, role_count = 0,
  }
end

-- The dimensions of dimensional roles: one per location.
local function make_dimensions(world)
  for _, loc in ipairs(LOCATIONS) do
    local d = { type = "DIMENSION", id = rng.new(world.seed, "dimension", loc):isc_id(), name = loc }
    world.dimensions[#world.dimensions + 1] = d
    world.dimension_by_id[d.id] = d
  end
end

---Generates the catalogues and the roles' ids and creation times.
---@param config table with roles, identities (at least 1 is made: roles need owners), seed
---@return table world
function M.generate(config)
  local seed = config.seed
  local world = M.empty_world(seed)
  local r = rng.new(seed, "catalogue")
  make_sources(world, r)
  make_entitlements(world, r)
  make_access_profiles(world, r)
  make_metadata(world)
  make_named(world, "governance_groups", GOVERNANCE_GROUPS, r)
  make_named(world, "segments", SEGMENTS, r)
  make_dimensions(world)
  make_identities(world, rng.new(seed, "identities"), math.max(1, config.identities))
  for i, e in ipairs(world.entitlements) do
    e.owner_id = world.identities[(i * 31) % #world.identities + 1].id
  end
  make_details(world, rng.new(seed, "details"))
  world.role_count = config.roles
  return world
end

---The ids and creation times (epoch ms) of the generated roles; times grow
---with the index, so this is also their default order.
---@param world table
---@return string[] ids, integer[] created_ms
function M.role_keys(world)
  local r = rng.new(world.seed, "role-keys")
  local n = world.role_count
  local slot = (ROLES_UNTIL - ROLES_FROM) / math.max(n, 1)
  local ids, created = {}, {}
  for i = 1, n do
    local a, b = r:next(), r:next()
    ids[i] = string.format("2c9180%010x%016x", a & 0xffffffffff, b)
    created[i] = math.floor((ROLES_FROM + (i - 1 + (b >> 11) * 2.0 ^ -53 * 0.9) * slot) * 1000)
  end
  return ids, created
end

-- The unique display name of role i, from its department and function.
local function role_name(i)
  local per_cycle = #DEPARTMENTS * #FUNCTIONS
  local c = scramble(((i - 1) % per_cycle) + 1, per_cycle) - 1
  local dept, fn = DEPARTMENTS[c // #FUNCTIONS + 1], FUNCTIONS[c % #FUNCTIONS + 1]
  local cycle = (i - 1) // per_cycle
  if cycle == 0 then return dept .. " " .. fn, dept, fn end
  if cycle <= #LOCATIONS then return string.format("%s %s - %s", dept, fn, LOCATIONS[cycle]), dept, fn end
  return string.format("%s %s - %s %d", dept, fn, LOCATIONS[(cycle - 1) % #LOCATIONS + 1],
    (cycle - 1) // #LOCATIONS + 1), dept, fn
end
M.role_name = role_name

-- A criteria leaf testing one attribute.
local function leaf(ktype, property, value, op, source_id)
  return { operation = op or "EQUALS", key = { type = ktype, property = property, sourceId = source_id or null },
    stringValue = value }
end

-- An AND / OR criteria node.
local function node(op, children)
  return { operation = op, key = null, stringValue = null, children = A(children) }
end

-- A STANDARD membership criteria tree in one of the shapes admins write.
local function make_criteria(world, r, dept, fn)
  local shape = r:int(4)
  local by_dept = leaf("IDENTITY", "attribute.department", dept)
  if shape == 1 then
    return by_dept
  elseif shape == 2 then
    return node("AND", { by_dept, leaf("IDENTITY", "attribute.title", fn == "Base" and "Associate" or "Manager", "CONTAINS") })
  elseif shape == 3 then
    local ad = world.source_by_key.ad
    local group = string.format("CN=%s Users,OU=Groups,DC=acme,DC=local", dept)
    return node("OR", {
      leaf("ENTITLEMENT", "attribute.memberOf", group, "EQUALS", ad.id),
      node("AND", { leaf("IDENTITY", "attribute.department", dept), leaf("IDENTITY", "attribute.location", r:pick(LOCATIONS)) }),
    })
  end
  local other = DEPARTMENTS[r:int(#DEPARTMENTS)]
  return node("AND", {
    node("OR", { leaf("IDENTITY", "attribute.department", dept), leaf("IDENTITY", "attribute.department", other) }),
    leaf("IDENTITY", "attribute.email", "@" .. M.DOMAIN, "ENDS_WITH"),
  })
end

---The default (empty) access request settings of a role.
---@return table RequestabilityForRole
function M.default_access_request_config()
  return { commentsRequired = false, denialCommentsRequired = false, reauthorizationRequired = false,
    requireEndDate = false, maxPermittedAccessDuration = null, approvalSchemes = A({}), formDefinitionId = null }
end

---The default (empty) revocation settings of a role.
---@return table RevocabilityForRole
function M.default_revocation_config()
  return { commentsRequired = false, denialCommentsRequired = false, approvalSchemes = A({}) }
end

-- Up to n identities of a department (any, if it has none).
local function pick_identities(world, r, dept, n)
  local pool = world.identities_by_dept[dept]
  if not pool or #pool == 0 then pool = world.identities end
  return r:sample(pool, n)
end

---Generates the body of role i (its id and creation time given).
---@param world table
---@param i integer
---@param id string
---@param created_ms integer
---@return table role, table requested identity ids (ACCESS_REQUEST assignments)
function M.role(world, i, id, created_ms)
  local r = rng.new(world.seed, "role", i)
  local name, dept, fn = role_name(i)
  local created = created_ms / 1000
  local modified = created + r:float() * (ROLES_UNTIL - created) * 0.5
  local owner = pick_identities(world, r, dept, 1)[1]

  local aps = A({})
  local dept_aps = world.access_profiles_by_dept[dept] or {}
  for _, ap in ipairs(r:sample(dept_aps, r:range(1, 3))) do aps[#aps + 1] = M.access_profile_ref(ap) end
  if r:chance(0.3) then aps[#aps + 1] = M.access_profile_ref(world.access_profiles[1]) end
  local ents = A({})
  local privileged = false
  for _, e in ipairs(r:sample(world.entitlements_by_dept[dept] or {}, r:range(0, 2))) do
    ents[#ents + 1] = M.entitlement_ref(e)
    privileged = privileged or e.privileged
  end

  local member = null
  local m = r:float()
  if m < 0.45 then
    local criteria = assert(membership.check_criteria(make_criteria(world, r, dept, fn), function() return true end))
    member = { type = "STANDARD", criteria = criteria, identities = null }
  elseif m < 0.75 then
    local members = A({})
    for _, idn in ipairs(pick_identities(world, r, dept, r:range(1, 8))) do members[#members + 1] = M.member_ref(idn) end
    member = { type = "IDENTITY_LIST", criteria = null, identities = members }
  end

  local requestable = r:chance(0.4)
  local arc, rrc = M.default_access_request_config(), M.default_revocation_config()
  local requested = {}
  if requestable then
    arc.commentsRequired = r:chance(0.6)
    arc.denialCommentsRequired = r:chance(0.4)
    arc.approvalSchemes[1] = { approverType = "OWNER", approverId = null }
    if r:chance(0.4) then
      arc.approvalSchemes[2] = { approverType = "GOVERNANCE_GROUP", approverId = r:pick(world.governance_groups).id }
    end
    if r:chance(0.3) then arc.maxPermittedAccessDuration = { value = r:range(1, 12), timeUnit = "MONTHS" } end
    if r:chance(0.3) then
      rrc.approvalSchemes[1] = { approverType = "MANAGER", approverId = null }
    end
    for _, idn in ipairs(r:sample(world.identities, r:range(0, 4))) do requested[#requested + 1] = idn.id end
  end

  local additional = A({})
  if r:chance(0.15) then
    local gg = r:pick(world.governance_groups)
    additional[1] = { type = "GOVERNANCE_GROUP", id = gg.id, name = gg.name }
  end
  local segments = A({})
  if r:chance(0.2) then segments[1] = r:pick(world.segments).id end
  local dimensional = r:chance(0.05)
  local dimension_refs = null
  if dimensional then
    local d = r:pick(world.dimensions)
    dimension_refs = A({ { type = d.type, id = d.id, name = d.name } })
  end
  local attributes = A({})
  if r:chance(0.3) then
    local attr = r:pick(world.metadata)
    local vals = { r:pick(attr.values).value }
    attributes[1] = M.attribute_dto(attr, vals)
  end
  local level = null
  if fn == "Administrator" or privileged then level = "High"
  elseif r:chance(0.1) then level = r:pick({ "Medium", "Low" }) end

  local role = {
    id = id,
    name = name,
    created = clock.iso(created, true),
    modified = clock.iso(modified, true),
    description = r:chance(0.9) and string.format("%s access for the %s team.", fn, dept) or null,
    owner = M.owner_ref(owner),
    additionalOwners = additional,
    accessProfiles = aps,
    entitlements = ents,
    membership = member,
    legacyMembershipInfo = r:chance(0.01) and { type = "IDENTITY_LIST" } or null,
    enabled = r:chance(0.92),
    requestable = requestable,
    accessRequestConfig = arc,
    revocationRequestConfig = rrc,
    segments = segments,
    dimensional = dimensional,
    dimensionRefs = dimension_refs,
    accessModelMetadata = { attributes = attributes },
    privilegeLevel = level,
  }
  return role, requested
end

---The Entitlement object served by GET roles/{id}/entitlements.
---@param world table
---@param ent table
---@return table Entitlement
function M.entitlement_dto(world, ent)
  local src = world.source_by_id[ent.source_id]
  local owner = world.identity_by_id[ent.owner_id or ""]
  return {
    id = ent.id, name = ent.name, attribute = ent.attribute, value = ent.value,
    sourceSchemaObjectType = ent.object, description = ent.description or null,
    privileged = ent.privileged, cloudGoverned = false, requestable = ent.requestable,
    owner = owner and M.owner_ref(owner) or null, additionalOwners = A({}), manuallyUpdatedFields = null,
    accessModelMetadata = { attributes = A({}) },
    created = clock.iso(ent.created, true), modified = clock.iso(ent.modified, true),
    source = { id = src.id, type = "SOURCE", name = src.name },
    attributes = { displayName = ent.name, [ent.attribute] = ent.value },
    segments = A({}), directPermissions = A({}),
  }
end

return M
