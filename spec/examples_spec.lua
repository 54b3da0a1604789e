-- The examples admins copy, each run by the isclua binary against a
-- simulated tenant as a script would be against theirs, and judged by what
-- it leaves on the tenant (and in its files), not only by what it prints.
local H = require "helpers"
local run = require "cron_run"
local isc = require "isc"

local function example(name) return H.root .. "/examples/" .. name end

-- The tenant every spec here starts from: reset before each, quick stages so
-- that jobs and propagations end within the spec, no rate limit to wait on.
local sim, c
H.shared_sim({ roles = 40, seed = 5, rate_limit = false, propagation_stage_seconds = 0.05,
  bulk_update_stage_seconds = 0.05 }, function(s)
  sim = s
  c = isc.client { base_url = sim.url, client_id = sim.client_id, client_secret = sim.client_secret }
end, { reset = true })

-- Runs an example against the simulator, as cron would (no terminal).
local function run_example(args)
  return run.run(args, run.tenant_env(sim))
end

local function owner() return c.roles:list({ max = 1 }):next().owner end

local function lines_of(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

-- Role ids in the tenant's order of creation.
local function tenant_ids()
  return H.ids_of(c.roles:list({ sorters = "created" }):collect())
end

describe("examples/export_roles.lua", function()
  it("writes every role to quoted CSV and to a JSON array, and changes nothing", function()
    local tricky = c.roles:create { name = 'Ops, "Tier 2"', description = "line one\nline two", owner = owner(),
      enabled = true }
    local csv_path, dir = run.temp_path("roles.csv")
    local json_path = dir .. "/roles.json"
    local mutating = sim:stats().mutating

    local r = run_example { example("export_roles.lua"), csv_path, json_path }
    assert.equal(0, r.code, r.stderr)
    assert.equal(mutating, sim:stats().mutating)

    local saved = assert(isc.json.decode(H.slurp(json_path)))
    assert.same(tenant_ids(), H.ids_of(saved))
    assert.equal(H.canon(c.roles:get(tricky.id)), H.canon(saved[#saved]))

    local csv = H.slurp(csv_path)
    assert.matches("^id,name,enabled,requestable,owner,access_profiles,entitlements,description,created,modified\n", csv)
    -- Quotes doubled, the comma and the line break kept inside their fields.
    assert.truthy(csv:find('\n"' .. tricky.id .. '","Ops, ""Tier 2""","true","false","' .. tricky.owner.name
      .. '","","","line one\nline two","' .. tricky.created .. '"', 1, true))
    local _, records = csv:gsub('\n"%x+","', "")
    assert.equal(#saved, records)
  end)

  it("writes a snapshot that a simulator loads, to rehearse on a copy of the tenant", function()
    c.roles:patch(c.roles:list({ max = 1 }):next().id, { { op = "replace", path = "/description", value = "prod" } })
    local json_path = run.temp_path("prod-roles.json")
    assert.equal(0, run_example({ example("export_roles.lua"), json_path }).code)

    local copy = require("isc.sim").start { state = json_path, rate_limit = false }
    local cc = isc.client { base_url = copy.url, client_id = copy.client_id, client_secret = copy.client_secret }
    local ok, err = pcall(function()
      local theirs, ours = c.roles:list({ sorters = "created" }):collect(), cc.roles:list({ sorters = "created" }):collect()
      assert.same(H.ids_of(theirs), H.ids_of(ours))
      assert.equal("prod", ours[1].description)
    end)
    copy:stop()
    assert(ok, err)
  end)

  it("refuses a file that is neither .csv nor .json, with usage and code 2", function()
    local r = run_example { example("export_roles.lua"), "roles.txt" }
    assert.equal(2, r.code)
    assert.matches("usage: export_roles.lua", r.stderr)
  end)
end)

describe("examples/roles_audit.lua", function()
  it("lists exactly the roles with no access or no members, and changes nothing", function()
    local someone = c:paginate("/v2024/identities", { max = 1 }):collect()[1]
    local ap = c.roles:list({ filters = 'name sw "Eng"', max = 1 }):next().accessProfiles[1]
    local empty = c.roles:create { name = "Grants Nothing", owner = owner(),
      membership = { type = "IDENTITY_LIST", identities = { { type = "IDENTITY", id = someone.id } } } }
    local unused = c.roles:create { name = "Nobody Has It", owner = owner(), accessProfiles = { ap } }
    local neither = c.roles:create { name = "Neither", owner = owner() }
    local mutating = sim:stats().mutating

    local r = run_example { example("roles_audit.lua") }
    assert.equal(0, r.code, r.stderr)
    assert.equal(mutating, sim:stats().mutating)

    local reported = {}
    for id, problems in r.stdout:gmatch('\n(%x+),"[^\n]-","([^"\n]*)"') do reported[id] = problems end
    assert.equal("no access", reported[empty.id])
    assert.equal("no members", reported[unused.id])
    assert.equal("no access; no members", reported[neither.id])
    -- Every other role: listed as having no members exactly when it has no
    -- membership and nobody is assigned it.
    for role in c.roles:list() do
      if role.id ~= empty.id and role.id ~= unused.id and role.id ~= neither.id then
        local members = role.membership or c.roles:assigned_identities(role.id):count() > 0
        assert.equal(not members and "no members" or nil, reported[role.id], role.name)
      end
    end
  end)
end)

describe("examples/tag_roles.lua", function()
  -- The values of one metadata attribute on a role.
  local function tags(id, key)
    local out = {}
    local amm = c.roles:get(id).accessModelMetadata
    for _, attr in ipairs(amm and amm.attributes or {}) do
      if attr.key == key then
        for _, v in ipairs(attr.values) do out[#out + 1] = v.value end
      end
    end
    return out
  end

  it("tags the roles named by name or id, one bulk update per value, and reports the lines it could not apply", function()
    local a = c.roles:create { name = "Billing, EMEA", owner = owner() }
    local b = c.roles:create { name = "Billing US", owner = owner() }
    local d = c.roles:create { name = "Data Lake", owner = owner() }
    local csv = H.write(run.temp_path("tags.csv"), table.concat({
      "role,attribute,value",
      '"Billing, EMEA",costCenter,cc2000',
      b.id .. ",costCenter,cc2000",
      "Data Lake,dataCategory,pii",
      "Data Lake,costCenter,cc9999",
      "No Such Role,costCenter,cc2000",
    }, "\r\n") .. "\r\n")

    local r = run_example { example("tag_roles.lua"), csv }
    assert.equal(1, r.code, r.stderr)
    assert.same({
      'line 6: no role "No Such Role"',
      'costCenter = cc9999 on 1 roles: refused: Referenced attribute value "cc9999" of "costCenter" was not found.',
      "costCenter = cc2000 on 2 roles: done",
      "dataCategory = pii on 1 roles: done",
    }, lines_of(r.stdout))
    -- One bulk update per value, the refused one included.
    assert.equal(3, H.hits(sim, "POST /v2024/roles/access-model-metadata/bulk-update/ids"))
    assert.same({ "cc2000" }, tags(a.id, "costCenter"))
    assert.same({ "cc2000" }, tags(b.id, "costCenter"))
    assert.same({ "pii" }, tags(d.id, "dataCategory"))
    assert.same({}, tags(d.id, "costCenter"))
  end)
end)

describe("examples/replace_access_profile.lua", function()
  it("swaps the access profile in every role that has it, then propagates and waits", function()
    local old, new = "AD Baseline", "AD Engineering Baseline"
    local function ap_id(name)
      return c:paginate("/v2024/access-profiles", { filters = string.format("name eq %q", name), max_limit = 50 }):collect()[1].id
    end
    local old_id, new_id = ap_id(old), ap_id(new)
    -- The roles that hold the old one; one of them is given the new one too.
    local holders = {}
    for role in c.roles:list() do
      for _, ap in ipairs(role.accessProfiles) do
        if ap.id == old_id then holders[#holders + 1] = role.id end
      end
    end
    assert.is_true(#holders >= 2)
    local both = c.roles:get(holders[1])
    local aps = both.accessProfiles
    aps[#aps + 1] = { type = "ACCESS_PROFILE", id = new_id }
    c.roles:patch(both.id, { { op = "replace", path = "/accessProfiles", value = aps } })

    local r = run_example { example("replace_access_profile.lua"), old, new_id }
    assert.equal(0, r.code, r.stderr)
    assert.matches(string.format('\n%d roles granted "%s"; %d now grant "%s" instead\npropagation %%S+: SUCCEEDED\n$',
      #holders, old, #holders, new), r.stdout)

    -- No role grants the old one; each former holder grants the new one once.
    local held = {}
    for _, id in ipairs(holders) do held[id] = true end
    for role in c.roles:list() do
      local count = {}
      for _, ap in ipairs(role.accessProfiles) do count[ap.id] = (count[ap.id] or 0) + 1 end
      assert.is_nil(count[old_id], role.name)
      if held[role.id] then assert.equal(1, count[new_id], role.name) end
    end
    assert.is_false(c.propagation:ongoing().isRunning)
    assert.equal(1, H.hits(sim, "POST /v2026/role-propagation"))
  end)

  it("says which access profile it cannot find, and changes nothing", function()
    local mutating = sim:stats().mutating
    local r = run_example { example("replace_access_profile.lua"), "No Such Profile", "AD Baseline" }
    assert.equal(1, r.code)
    assert.matches("no access profile No Such Profile", r.stderr)
    assert.equal(mutating, sim:stats().mutating)
  end)
end)

describe("examples/cron/nightly-roles.lua", function()
  it("run with --lock and --log-format json, disables the roles that grant nothing and propagates", function()
    local empty = c.roles:create { name = "Grants Nothing", owner = owner(), enabled = true }
    local lock = run.temp_path("nightly.lock")
    local r = run_example { "--lock", lock, "--log-format", "json", example("cron/nightly-roles.lua") }
    assert.equal(0, r.code, r.stderr)
    assert.equal("id,name\n" .. empty.id .. ',"Grants Nothing"\n', r.stdout)
    assert.is_false(c.roles:get(empty.id).enabled)

    local logged = {}
    for _, line in ipairs(r.lines) do
      local entry = assert(isc.json.decode(line), line)
      logged[entry.message] = entry.fields
    end
    assert.equal(empty.id, logged["role disabled"].id)
    assert.equal(1, logged["roles checked"].disabled)
    assert.equal("SUCCEEDED", logged["role propagation finished"].stage)

    -- The next night finds nothing left to do and starts no propagation.
    local again = run_example { "--lock", lock, "--log-format", "json", example("cron/nightly-roles.lua") }
    assert.equal(0, again.code, again.stderr)
    assert.equal("id,name\n", again.stdout)
    assert.equal(1, H.hits(sim, "POST /v2026/role-propagation"))
  end)
end)

describe("examples/diff_roles.lua", function()
  it("names the roles added, removed and changed since a snapshot, and the fields changed", function()
    local snapshot = run.temp_path("monday.json")
    assert.equal(0, run_example({ example("export_roles.lua"), snapshot }).code)
    local same = run_example { example("diff_roles.lua"), snapshot }
    assert.equal(0, same.code, same.stderr)
    assert.equal("0 added, 0 removed, 0 changed since " .. snapshot .. "\n", same.stdout)

    local roles = c.roles:list({ sorters = "created", max = 2 }):collect()
    c.roles:patch(roles[1].id, { { op = "replace", path = "/description", value = "changed" },
      { op = "replace", path = "/requestable", value = not roles[1].requestable } })
    c.roles:delete(roles[2].id)
    local created = c.roles:create { name = "Brand New", owner = owner() }

    local r = run_example { example("diff_roles.lua"), snapshot }
    assert.equal(1, r.code, r.stderr)
    assert.same({
      string.format('changed  %s  "%s": description, requestable', roles[1].id, roles[1].name),
      string.format('added    %s  "Brand New"', created.id),
      string.format('removed  %s  "%s"', roles[2].id, roles[2].name),
      "1 added, 1 removed, 1 changed since " .. snapshot,
    }, lines_of(r.stdout))
  end)
end)
