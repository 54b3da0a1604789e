-- Controlling the simulated tenant: require("isc.sim") (start, connect,
-- clock, reset, stats, configure, save), the /__sim/ control API it drives
-- over HTTP, seeded determinism, --state files, and `isclua sim` itself.
local core = require "isc.core"
local H = require "helpers"
local sim_api = require "sim_api"
local isc_sim = require "isc.sim"

-- Every role of a simulator, in the default order.
local function all_roles(sim) return sim_api.new(sim):all("/v2024/roles") end

describe("require('isc.sim')", function()
  describe("start", function()
    it("listens on a free loopback port and says how to reach it", function()
      local sim <close> = isc_sim.start { roles = 2, identities = 2 }
      assert.matches("^http://127%.0%.0%.1:%d+$", sim.url)
      assert.equal(tonumber(sim.url:match("%d+$")), sim.port)
      assert.equal("isclua-sim", sim.client_id)
      assert.equal("sim-secret", sim.client_secret)
      assert.equal("isc.sim(" .. sim.url .. ")", tostring(sim))
    end)

    it("takes its own credentials", function()
      local sim <close> = isc_sim.start { roles = 1, identities = 1, client_id = "my-client", client_secret = "s3cret" }
      assert.equal("my-client", sim.client_id)
      assert.equal(200, (sim_api.new(sim):call("GET", "/v2024/roles")))
    end)

    it("raises an argument error for an unknown or bad setting", function()
      local ok, err = pcall(isc_sim.start, { rolez = 5 })
      assert.is_false(ok)
      assert.equal("argument", err.kind)
      assert.matches('unknown setting "rolez"', err.message, 1, true)
      ok, err = pcall(isc_sim.start, { rate_limit = "fast" })
      assert.equal("argument", err.kind)
      assert.matches('rate_limit: rate limit "fast": expected COUNT/WINDOW such as 100/10s', err.message, 1, true)
      ok, err = pcall(isc_sim.start, { faults = "http500=2" })
      assert.matches("faults: rate of http500 must be a number from 0 to 1", err.message, 1, true)
      ok, err = pcall(isc_sim.start, { faults = "boom=0.1" })
      assert.matches('faults: unknown kind "boom"', err.message, 1, true)
    end)

    it("stops, after which its controller refuses calls", function()
      local sim = isc_sim.start { roles = 1, identities = 1 }
      local url = sim.url
      sim:stop()
      sim:stop()
      assert.equal("isc.sim(" .. url .. ", stopped)", tostring(sim))
      local ok, err = pcall(sim.now, sim)
      assert.is_false(ok)
      assert.equal("sim", err.kind)
    end)
  end)

  describe("on a running simulator", function()
    local sim, api
    H.shared_sim({ roles = 30, identities = 10, seed = 5 }, function(s) sim, api = s, sim_api.new(s) end,
      { reset = true })
    before_each(function() api.cached_token = nil end)

    it("has a clock that runs with real time plus an offset the specs move", function()
      local now = sim:now()
      assert.is_true(math.abs(now - core.time()) < 60)
      sim:freeze(true)
      local frozen = sim:now()
      assert.equal(frozen, sim:now())
      assert.equal(frozen + 3600.5, sim:advance(3600.5))
      sim:admin("POST", "clock", { set = 2000000000 })
      assert.equal(2000000000, sim:now())
      local clock = sim:admin("GET", "clock")
      assert.is_true(clock.frozen)
      sim:reset()
      clock = sim:admin("GET", "clock")
      assert.equal(0, clock.offset)
      assert.is_false(clock.frozen)
    end)

    it("counts requests by route template and status, tokens and successful changes", function()
      local role = all_roles(sim)[1]
      sim:reset()
      api.cached_token = nil
      api:call("GET", "/v2024/roles/" .. role.id)
      api:call("GET", "/v2024/roles/nope")
      api:call("PATCH", "/v2024/roles/" .. role.id, { json = { { op = "replace", path = "/enabled", value = true } },
        headers = { ["Content-Type"] = "application/json-patch+json" } })
      api:call("POST", "/v2024/roles", { json = { name = "" } })
      api:call("GET", "/v2025/role-propagation/is-running", { experimental = true })
      api:call("GET", "/nowhere")
      local stats = sim:stats()
      assert.equal(7, stats.requests)
      assert.same({
        ["POST /oauth/token"] = 1, ["GET /v2024/roles/{id}"] = 2, ["PATCH /v2024/roles/{id}"] = 1,
        ["POST /v2024/roles"] = 1, ["GET /v2025/role-propagation/is-running"] = 1, ["GET (unmatched)"] = 1,
      }, stats.by_route)
      assert.same({ ["200"] = 4, ["404"] = 2, ["400"] = 1 }, stats.by_status)
      assert.equal(1, stats.tokens_issued)
      assert.equal(1, stats.mutating, "the PATCH; the refused POST changed nothing")
      assert.equal(0, stats.rate_limited)
      sim:reset()
      assert.equal(0, sim:stats().requests)
    end)

    it("resets data and settings to the seeded start", function()
      local before = all_roles(sim)
      local _, created = api:call("POST", "/v2024/roles", { json = { name = "Temporary", owner = { id = before[1].owner.id } } })
      api:call("DELETE", "/v2024/roles/" .. before[2].id)
      sim:configure { token_ttl = 5, faults = "http500=0.5" }
      sim:reset()
      api.cached_token = nil
      assert.same(before, all_roles(sim))
      assert.equal(404, (api:call("GET", "/v2024/roles/" .. created.id)))
      local cfg = sim:config()
      assert.equal(749, cfg.token_ttl)
      assert.is_nil(cfg.faults)
    end)

    it("keeps issued tokens valid across a reset", function()
      local token = api:new_token()
      sim:reset()
      assert.equal(200, (api:call("GET", "/v2024/roles", { token = token, query = { limit = 1 } })))
    end)

    it("regenerates the data when roles, identities or seed change", function()
      sim:configure { roles = 3 }
      assert.equal(3, #all_roles(sim))
      sim:configure { seed = 6 }
      assert.equal(3, #all_roles(sim))
    end)

    it("answers its control API with plain JSON, and 4xx for mistakes", function()
      local status, _, body = sim:request { method = "POST", path = "/__sim/config", body = '{"token_ttl": -1}' }
      assert.equal(400, status)
      assert.same({ error = "token_ttl: expected a number of seconds >= 0" }, core.json_decode(body))
      status, _, body = sim:request { method = "POST", path = "/__sim/config", body = '{"colour": 1}' }
      assert.equal(400, status)
      assert.matches('unknown setting \\"colour\\"', body, 1, true)
      status, _, body = sim:request { method = "POST", path = "/__sim/clock", body = '{"advance": "soon"}' }
      assert.equal(400, status)
      status = sim:request { method = "POST", path = "/__sim/clock", body = "[1]" }
      assert.equal(400, status)
      status = sim:request { method = "GET", path = "/__sim/nothing" }
      assert.equal(404, status)
      status = sim:request { method = "DELETE", path = "/__sim/stats" }
      assert.equal(405, status)
      status, _, body = sim:request { method = "GET", path = "/__sim/health" }
      assert.equal(200, status)
      assert.same({ ok = true }, core.json_decode(body))
      assert.equal(0, sim:stats().requests, "control calls are not counted")
    end)

    it("follows credential changes made with configure", function()
      sim:configure { client_secret = "rotated" }
      assert.equal("rotated", sim.client_secret)
      assert.is_string(sim_api.new(sim):new_token())
      sim:reset()
      assert.equal("sim-secret", sim.client_secret)
    end)

    it("refuses to save without a file", function()
      local ok, err = pcall(sim.save, sim)
      assert.is_false(ok)
      assert.matches("no file", err.message, 1, true)
    end)
  end)

  describe("connect", function()
    it("drives a simulator started elsewhere, and leaves it running on stop", function()
      local sim <close> = isc_sim.start { roles = 4, identities = 2, client_secret = "elsewhere" }
      local remote = isc_sim.connect(sim.url .. "/")
      assert.equal(sim.url, remote.url)
      assert.equal("elsewhere", remote.client_secret)
      remote:advance(10)
      remote:stop()
      assert.is_number(sim:now())
    end)
  end)
end)

describe("the simulated tenant's data", function()
  it("is the same for the same seed and differs for another", function()
    local a <close> = isc_sim.start { roles = 60, identities = 20, seed = 77 }
    local b <close> = isc_sim.start { roles = 60, identities = 20, seed = 77 }
    local c <close> = isc_sim.start { roles = 60, identities = 20, seed = 78 }
    local ra, rb, rc = all_roles(a), all_roles(b), all_roles(c)
    assert.same(ra, rb)
    assert.is_not.same(ra[1].id, rc[1].id)
    local names = {}
    for _, r in ipairs(ra) do
      assert.is_nil(names[r.name], "names are unique")
      names[r.name] = true
    end
  end)

  it("gives each role a unique name even with 10,000 roles", function()
    local data = require "isc.sim.data"
    local seen = {}
    for i = 1, 10000 do
      local name = data.role_name(i)
      assert.is_nil(seen[name])
      seen[name] = true
    end
  end)
end)

describe("--state files", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. H.shell_quote(dir)) end)

  it("saves the whole tenant and loads it back, changes included", function()
    local path = dir .. "/tenant.json"
    local before
    do
      local sim <close> = isc_sim.start { roles = 12, identities = 8, seed = 3, state = path }
      local api = sim_api.new(sim)
      local _, r = api:call("POST", "/v2024/roles", { json = { name = "Saved Role", owner = { id = all_roles(sim)[1].owner.id } } })
      api:call("POST", "/v2024/roles/" .. r.id .. "/access-model-metadata/iscPrivacy/values/public")
      assert.equal(path, sim:save())
      before = all_roles(sim)
    end
    local sim <close> = isc_sim.start { state = path }
    local after = all_roles(sim)
    assert.equal(13, #after)
    assert.same(before, after)
    local snap = core.json_decode(H.slurp(path))
    assert.equal("isclua-sim-state/1", snap.format)
  end)

  it("loads a bare JSON list of roles, as exported from a real tenant, making up what they refer to", function()
    local path = dir .. "/export.json"
    H.write(path, core.json_encode(core.json_array({
      { id = "2c918086749d78830174a1a40e121518", name = "Role 2567", created = "2021-03-01T22:32:58.104Z",
        modified = "2021-03-02T20:22:28.104Z", description = "Access for the engineering team",
        owner = { type = "IDENTITY", id = "2c9180a46faadee4016fb4e018c20639", name = "support" },
        accessProfiles = { { id = "ff808081751e6e129f1518161919ecca", type = "ACCESS_PROFILE", name = "Access Profile 2567" } },
        entitlements = { { type = "ENTITLEMENT", id = "2c91809773dee32014e13e122092014e", name = "CN=Engineering" } },
        membership = { type = "IDENTITY_LIST", identities = { { id = "2c91808973fe906c0174262092014ed9",
          name = "Thomas Edison", aliasName = "t.edison" } } },
        requestable = true, enabled = true, segments = { "f7b1b8a3-5fed-4fd4-ad29-82014e137e19" },
        accessModelMetadata = { attributes = { { key = "iscFederalClassifications", name = "Federal Classifications",
          multiselect = true, status = "active", type = "governance", objectTypes = { "general" },
          description = "Classification used by government organizations.",
          values = { { value = "secret", name = "Secret", status = "active" } } } } } },
      { id = "2c918086749d78830174a1a40e121519", name = "Role 2568", created = "2020-01-01T00:00:00.000Z",
        owner = { id = "2c9180a46faadee4016fb4e018c20639", name = "support" },
        membership = { type = "STANDARD", criteria = { operation = "EQUALS", key = { type = "ACCOUNT",
          property = "attribute.department", sourceId = "2c9180887701fb2014213e122092014e" }, stringValue = "Eng" } } },
    })))
    local sim <close> = isc_sim.start { state = path }
    local roles = all_roles(sim)
    assert.equal(2, #roles)
    assert.equal("Role 2568", roles[1].name, "default order is by created")
    local r = roles[2]
    assert.equal("support", r.owner.name)
    assert.equal("Access Profile 2567", r.accessProfiles[1].name)
    assert.equal("secret", r.accessModelMetadata.attributes[1].values[1].value)
    local api = sim_api.new(sim)
    local _, members = api:call("GET", "/v2024/roles/" .. r.id .. "/assigned-identities")
    assert.same({ { id = "2c91808973fe906c0174262092014ed9", name = "Thomas Edison", aliasName = "t.edison",
      email = "t.edison@acme-corp.com", roleAssignmentSource = "ROLE_MEMBERSHIP" } }, members)
    local _, ents = api:call("GET", "/v2024/roles/" .. r.id .. "/entitlements")
    assert.equal("2c91809773dee32014e13e122092014e", ents[1].id)
    local status = api:call("POST", "/v2024/roles/" .. r.id .. "/access-model-metadata/iscFederalClassifications/values/secret")
    assert.equal(200, status)
  end)

  it("generates the tenant when the file does not exist yet", function()
    local sim <close> = isc_sim.start { roles = 4, identities = 2, state = dir .. "/new.json" }
    assert.equal(4, #all_roles(sim))
  end)

  it("refuses a file that is not JSON", function()
    local path = H.write(dir .. "/bad.json", "roles: [")
    local ok, err = pcall(isc_sim.start, { state = path })
    assert.is_false(ok)
    assert.matches("is not a JSON state file", tostring(err.message), 1, true)
  end)
end)

describe("isclua sim (the command)", function()
  local cli = require "isc.sim.cli"

  it("turns the fixed option names into settings", function()
    local settings = assert(cli.parse({ "--port", "9000", "--host=0.0.0.0", "--client-id", "cid", "--client-secret", "cs",
      "--roles", "500", "--identities", "70", "--seed", "7", "--state", "t.json", "--rate-limit", "100/10s",
      "--faults", "http500=0.03,reset=0.02", "--fault-seed", "3", "--token-ttl", "60",
      "--propagation-stage-seconds", "0.5", "--log" }))
    assert.same({ port = 9000, host = "0.0.0.0", client_id = "cid", client_secret = "cs", roles = 500, identities = 70,
      seed = 7, state = "t.json", rate_limit = "100/10s", faults = "http500=0.03,reset=0.02", fault_seed = 3,
      token_ttl = 60, propagation_stage_seconds = 0.5, log = true }, settings)
  end)

  it("explains bad options and exits 2", function()
    local cases = {
      { { "--roles", "many" }, "--roles many: expected a whole number >= 0" },
      { { "--port", "70000" }, "--port 70000: expected a port number from 0 to 65535" },
      { { "--rate-limit", "lots" }, '--rate-limit lots: rate limit "lots": expected COUNT/WINDOW such as 100/10s' },
      { { "--faults", "http500" }, '--faults http500: faults: "http500" is not KIND=RATE' },
      { { "--token-ttl" }, "--token-ttl needs a value" },
      { { "--colour", "red" }, 'unknown option "--colour"' },
    }
    for _, case in ipairs(cases) do
      local settings, err, code = cli.parse(case[1])
      assert.is_nil(settings)
      assert.equal(case[2], err)
      assert.equal(2, code)
    end
    local code, out, err = H.isclua({ "sim", "--roles", "many" })
    assert.equal(2, code)
    assert.equal("", out)
    assert.equal("isclua sim: --roles many: expected a whole number >= 0\nTry 'isclua sim --help'.\n", err)
  end)

  it("prints its help with the defaults", function()
    local code, out = H.isclua({ "sim", "--help" })
    assert.equal(0, code)
    assert.matches("--port N%s+port to listen on %(default 8765", out)
    assert.matches("--rate-limit N/Ws", out, 1, true)
  end)

  it("serves until SIGTERM, printing the URL, credentials and SAIL_* exports, and saves --state", function()
    local dir = H.tmpdir()
    local state, out = dir .. "/state.json", dir .. "/out.txt"
    local script = string.format([[
      %s sim --port 0 --roles 7 --identities 3 --client-secret s3 --state %s > %s 2>&1 &
      pid=$!
      for _ in $(seq 100); do grep -q SAIL_CLIENT_SECRET %s && break; sleep 0.05; done
      url=$(sed -n 's/^export SAIL_BASE_URL=//p' %s)
      curl -s -o /dev/null -X POST "$url/__sim/config" -d '{"roles": 5}'
      kill -TERM $pid
      wait $pid
      echo "exit $?" >> %s
    ]], H.shell_quote(H.bin), H.shell_quote(state), H.shell_quote(out), H.shell_quote(out), H.shell_quote(out),
      H.shell_quote(out))
    H.sh(script)
    local text = H.slurp(out)
    os.execute("rm -rf " .. H.shell_quote(dir))
    local url = text:match("export SAIL_BASE_URL=(http://127%.0%.0%.1:%d+)\n")
    assert.is_string(url, text)
    assert.matches("isclua sim: simulated ISC tenant listening on " .. url, text, 1, true)
    assert.matches("client id isclua-sim, client secret s3", text, 1, true)
    assert.matches("export SAIL_CLIENT_ID=isclua-sim\nexport SAIL_CLIENT_SECRET=s3\n", text, 1, true)
    assert.matches("saved 5 roles to " .. state, text, 1, true)
    assert.matches("exit 0\n$", text)
  end)
end)
