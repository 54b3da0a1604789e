-- Controlling the simulated tenant: require("isc.sim") (start, connect,
-- clock, reset, stats, configure, save), the /__sim/ control API it drives
-- over HTTP and who may use it, seeded determinism, --state files and how
-- they are saved, and `isclua sim` itself.
local core = require "isc.core"
local H = require "helpers"
local sim_api = require "sim_api"
local isc_sim = require "isc.sim"

-- Every role of a simulator, in the default order.
local function all_roles(sim) return sim_api.new(sim):all("/v2024/roles") end

-- A raw control request as a local program sends it: the simulator's token
-- and a JSON Content-Type, unless req.headers says otherwise (false: left out).
-- Returns the status and the decoded answer.
local function control(sim, req)
  local headers = { ["X-Isclua-Sim-Token"] = sim.token, ["Content-Type"] = "application/json" }
  for k, v in pairs(req.headers or {}) do headers[k] = v or nil end
  local status, _, body = sim:request { method = req.method or "GET", path = req.path, headers = headers, body = req.body }
  return status, core.json_decode(body)
end

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
      local status, body = control(sim, { method = "POST", path = "/__sim/config", body = '{"token_ttl": -1}' })
      assert.equal(400, status)
      assert.same({ error = "token_ttl: expected a number of seconds >= 0" }, body)
      status, body = control(sim, { method = "POST", path = "/__sim/config", body = '{"colour": 1}' })
      assert.equal(400, status)
      assert.matches('unknown setting "colour"', body.error, 1, true)
      status = control(sim, { method = "POST", path = "/__sim/clock", body = '{"advance": "soon"}' })
      assert.equal(400, status)
      status = control(sim, { method = "POST", path = "/__sim/clock", body = "[1]" })
      assert.equal(400, status)
      status, body = control(sim, { path = "/__sim/nothing" })
      assert.equal(404, status)
      assert.equal("no such simulator endpoint: they are /__sim/health, clock, reset, stats, config and save", body.error)
      status = control(sim, { method = "DELETE", path = "/__sim/stats" })
      assert.equal(405, status)
      status, body = control(sim, { path = "/__sim/health" })
      assert.equal(200, status)
      assert.same({ ok = true }, body)
      assert.equal(0, sim:stats().requests, "control calls are not counted")
    end)

    it("refuses to change the settings fixed at start: where it listens and saves, and who controls it", function()
      for _, setting in ipairs({ "state", "host", "port", "control", "control_token", "log" }) do
        local err = H.catch(sim.configure, sim, { [setting] = "x" })
        assert.equal("sim", err.kind)
        assert.matches(setting .. " is fixed when the simulator starts: start it again to change it", err.message, 1, true)
      end
      assert.is_nil(sim:config().state)
    end)

    it("limits each client to ISC's 100 requests per 10 s unless told otherwise", function()
      assert.equal("100/10s", sim:config().rate_limit)
      sim:freeze(true)
      for _ = 1, 100 do assert.equal(200, (api:call("GET", "/v2024/roles", { query = { limit = 1 } }))) end
      local status, _, headers = api:call("GET", "/v2024/roles", { query = { limit = 1 } })
      assert.equal(429, status)
      assert.matches("^%d+$", headers["retry-after"])
      sim:configure { rate_limit = "off" }
      assert.is_false(sim:config().rate_limit)
      assert.equal(200, (api:call("GET", "/v2024/roles", { query = { limit = 1 } })))
    end)

    it("follows credential changes made with configure", function()
      sim:configure { client_secret = "rotated" }
      assert.equal("rotated", sim.client_secret)
      assert.is_string(sim_api.new(sim):new_token())
      sim:reset()
      assert.equal("sim-secret", sim.client_secret)
    end)

    it("refuses to save without a state file, and to save anywhere else", function()
      local err = H.catch(sim.save, sim)
      assert.equal("sim", err.kind)
      assert.matches("no state file: start the simulator with --state FILE to save it", err.message, 1, true)
      err = H.catch(sim.save, sim, "/tmp/elsewhere.json")
      assert.equal("argument", err.kind)
      assert.equal("sim:save() takes no file: the simulator saves only to its state setting", err.message)
    end)
  end)

  describe("connect", function()
    it("drives a simulator started elsewhere, with its control token, and leaves it running on stop", function()
      local sim <close> = isc_sim.start { roles = 4, identities = 2, client_secret = "elsewhere" }
      local remote = isc_sim.connect(sim.url .. "/", sim.token)
      assert.equal(sim.url, remote.url)
      assert.equal("elsewhere", remote.client_secret)
      remote:advance(10)
      remote:stop()
      assert.is_number(sim:now())
    end)

    it("needs the control token", function()
      local sim <close> = isc_sim.start { roles = 1, identities = 1 }
      local err = H.catch(isc_sim.connect, sim.url)
      assert.equal("argument", err.kind)
      assert.equal("isc.sim.connect: give the control token: the ISCLUA_SIM_TOKEN that isclua sim printed", err.message)
      err = H.catch(isc_sim.connect, sim.url, "guessed")
      assert.equal(401, err.status)
    end)
  end)
end)

describe("the control API (/__sim/), which only the user who started the simulator can reach", function()
  local sim, dir, state
  setup(function()
    dir = H.tmpdir()
    state = dir .. "/state.json"
    sim = isc_sim.start { roles = 3, identities = 3, state = state }
  end)
  teardown(function()
    sim:stop()
    os.execute("rm -rf " .. H.shell_quote(dir))
  end)

  it("makes up a new token each time it starts (32 hex digits)", function()
    local other <close> = isc_sim.start { roles = 1, identities = 1 }
    assert.matches("^%x+$", sim.token)
    assert.equal(32, #sim.token)
    assert.not_equal(sim.token, other.token)
  end)

  it("refuses a request without the token, or with another, and does nothing", function()
    local before = sim:now()
    sim:freeze(true)
    local status, body = control(sim, { method = "POST", path = "/__sim/clock", body = '{"advance": 3600}',
      headers = { ["X-Isclua-Sim-Token"] = false } })
    assert.equal(401, status)
    assert.equal("a control token is required: send the X-Isclua-Sim-Token header with the ISCLUA_SIM_TOKEN "
      .. "that isclua sim printed", body.error)
    status, body = control(sim, { method = "POST", path = "/__sim/clock", body = '{"advance": 3600}',
      headers = { ["X-Isclua-Sim-Token"] = string.rep("0", 32) } })
    assert.equal(401, status)
    assert.matches("wrong control token", body.error, 1, true)
    assert.equal(401, (control(sim, { path = "/__sim/config", headers = { ["X-Isclua-Sim-Token"] = false } })))
    assert.is_true(sim:now() - before < 60, "the clock did not move")
    sim:freeze(false)
  end)

  it("refuses a POST a web page could send cross-origin without asking: text/plain or a form", function()
    for _, ctype in ipairs({ "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x" }) do
      local status, body = control(sim, { method = "POST", path = "/__sim/config", body = '{"token_ttl": 5}',
        headers = { ["Content-Type"] = ctype } })
      assert.equal(415, status)
      assert.equal(string.format("POST /__sim/config needs Content-Type: application/json (it had %q)", ctype),
        body.error)
    end
    assert.equal(749, sim:config().token_ttl)
    assert.equal(200, (control(sim, { method = "POST", path = "/__sim/config", body = '{"token_ttl": 749}',
      headers = { ["Content-Type"] = "application/json; charset=utf-8" } })))
  end)

  it("refuses a Host that is not this simulator on loopback (DNS rebinding), and a web page's Origin", function()
    local port = sim.port
    for _, host in ipairs({ "evil.example:" .. port, "127.0.0.1:" .. (port + 1), "127.0.0.1", "10.0.0.1:" .. port, "" }) do
      local status, body = control(sim, { path = "/__sim/config", headers = { Host = host } })
      assert.equal(403, status, host)
      assert.equal(string.format("Host %q is not this simulator: control requests name it 127.0.0.1:%d, "
        .. "localhost:%d or [::1]:%d", host, port, port, port), body.error)
    end
    for _, host in ipairs({ "localhost:" .. port, "127.0.0.1:" .. port, "127.1.2.3:" .. port, "[::1]:" .. port }) do
      assert.equal(200, (control(sim, { path = "/__sim/health", headers = { Host = host } })), host)
    end
    local status, body = control(sim, { path = "/__sim/health", headers = { Origin = "http://evil.example" } })
    assert.equal(403, status)
    assert.equal('requests from the web origin "http://evil.example" are refused: the control API is for programs '
      .. "on this machine, not web pages", body.error)
    assert.equal(403, (control(sim, { path = "/__sim/health", headers = { Origin = "null" } })))
    assert.equal(200, (control(sim, { path = "/__sim/health", headers = { Origin = "http://127.0.0.1:" .. port } })))
  end)

  it("saves only to the --state file: a save names no file, and /__sim/config cannot set one", function()
    local elsewhere = dir .. "/elsewhere.json"
    local status, body = control(sim, { method = "POST", path = "/__sim/save",
      body = core.json_encode({ file = elsewhere }) })
    assert.equal(400, status)
    assert.equal("save takes no parameters: it writes only the state file the simulator started with", body.error)
    status, body = control(sim, { method = "POST", path = "/__sim/config", body = core.json_encode({ state = elsewhere }) })
    assert.equal(400, status)
    assert.equal("state is fixed when the simulator starts: start it again to change it", body.error)
    assert.is_nil(io.open(elsewhere))
    assert.equal(state, sim:save())
    assert.equal("isclua-sim-state/1", core.json_decode(H.slurp(state)).format)
  end)

  it("does not show the token in its settings", function()
    local cfg = sim:config()
    assert.is_nil(cfg.control_token)
    assert.is_true(cfg.control)
    assert.equal(sim.port, cfg.port, "the port it listens on")
  end)

  it("is served on loopback only: another host needs the control API off", function()
    local err = H.catch(isc_sim.start, { host = "0.0.0.0" })
    assert.equal("argument", err.kind)
    assert.equal("isc.sim.start: host 0.0.0.0 is not a loopback address, and the control API (/__sim/) must not be "
      .. "reachable from other machines: listen on 127.0.0.1 or ::1, or turn it off (--control off)", err.message)
    local off <close> = isc_sim.start { roles = 1, identities = 1, control = false }
    local status, body = control(off, { path = "/__sim/health" })
    assert.equal(404, status)
    assert.equal("the control API is off (the simulator was started with control off)", body.error)
    assert.equal(200, (sim_api.new(off):call("GET", "/v2024/roles")), "the API itself is served")
    local code, _, stderr = H.isclua({ "sim", "--host", "0.0.0.0", "--port", "0" })
    assert.equal(2, code)
    assert.matches("isclua sim: host 0.0.0.0 is not a loopback address", stderr, 1, true)
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

  it("saves through a new file beside it, renamed over the old one: readable by its owner alone, nothing left", function()
    local path = dir .. "/tenant.json"
    local sim <close> = isc_sim.start { roles = 2, identities = 2, state = path }
    sim:save()
    sim:configure { roles = 3 }
    sim:save()
    assert.equal(3, #core.json_decode(H.slurp(path)).roles)
    local _, listing = H.sh("ls -A " .. H.shell_quote(dir))
    assert.equal("tenant.json\n", listing)
    local _, mode = H.sh("stat -c %a " .. H.shell_quote(path))
    assert.equal("600\n", mode, "it holds the client secrets")
  end)

  it("writes its temporary file only where no file is (core.write_new_file), and checks every step", function()
    local taken = H.write(dir .. "/taken", "keep")
    local ok, err = core.write_new_file(taken, "new")
    assert.is_nil(ok)
    assert.equal(taken .. ": File exists", err)
    assert.equal("keep", H.slurp(taken))
    ok, err = core.write_new_file(dir .. "/no/such/dir", "new")
    assert.is_nil(ok)
    assert.equal(dir .. "/no/such/dir: No such file or directory", err)
    assert.is_true(core.write_new_file(dir .. "/fresh", "new"))
    assert.equal("new", H.slurp(dir .. "/fresh"))
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
    local settings = assert(cli.parse({ "--port", "9000", "--host=0.0.0.0", "--control", "off", "--client-id", "cid",
      "--client-secret", "cs", "--client", "ro:ro-secret:read-only", "--client=more:s2",
      "--client", "sub:s3:subadmin:2c9180aa", "--roles", "500", "--identities", "70", "--seed", "7",
      "--state", "t.json", "--rate-limit", "off", "--faults", "http500=0.03,reset=0.02", "--fault-seed", "3",
      "--token-ttl", "60", "--propagation-stage-seconds", "0.5", "--log" }))
    assert.same({ port = 9000, host = "0.0.0.0", control = false, client_id = "cid", client_secret = "cs",
      clients = {
        { id = "ro", secret = "ro-secret", role = "read-only" },
        { id = "more", secret = "s2", role = "admin" },
        { id = "sub", secret = "s3", role = "subadmin:2c9180aa", identity = "2c9180aa" },
      },
      roles = 500, identities = 70, seed = 7, state = "t.json", rate_limit = false, faults = "http500=0.03,reset=0.02",
      fault_seed = 3, token_ttl = 60, propagation_stage_seconds = 0.5, log = true }, settings)
    assert.equal("5/1s", cli.parse({ "--rate-limit", "5/1" }).rate_limit)
  end)

  it("explains bad options and exits 2", function()
    local cases = {
      { { "--roles", "many" }, "--roles many: expected a whole number >= 0" },
      { { "--port", "70000" }, "--port 70000: expected a port number from 0 to 65535" },
      { { "--rate-limit", "lots" }, '--rate-limit lots: rate limit "lots": expected COUNT/WINDOW such as 100/10s' },
      { { "--faults", "http500" }, '--faults http500: faults: "http500" is not KIND=RATE' },
      { { "--token-ttl" }, "--token-ttl needs a value" },
      { { "--colour", "red" }, 'unknown option "--colour"' },
      { { "--control", "maybe" }, "--control maybe: expected true or false (on or off)" },
      { { "--client", "nocolon" }, '--client nocolon: "nocolon": expected ID:SECRET or ID:SECRET:ROLE, '
        .. "ROLE admin, read-only or subadmin:IDENTITY_ID (no ':' in ID or SECRET)" },
      { { "--client", "a:b:boss" }, '--client a:b:boss: client a: unknown role "boss" '
        .. "(roles: admin, read-only or subadmin:IDENTITY_ID)" },
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
    assert.matches("--rate-limit N/Ws|off", out, 1, true)
    assert.matches("100/10s, as ISC", out, 1, true)
    assert.matches("--client ID:SECRET[:ROLE]", out, 1, true)
    assert.matches("X-Isclua-Sim-Token: $ISCLUA_SIM_TOKEN", out, 1, true)
  end)

  it("refuses two clients of one id, and a sub-admin client whose identity is not a sub-admin", function()
    local code, _, err = H.isclua({ "sim", "--client", "a:b", "--client", "a:c" })
    assert.equal(2, code)
    assert.equal("isclua sim: clients: client id a is given twice\nTry 'isclua sim --help'.\n", err)
    code, _, err = H.isclua({ "sim", "--client", "isclua-sim:x" })
    assert.equal(2, code)
    assert.matches("isclua-sim is already client_id; give each client its own id", err, 1, true)
    code, _, err = H.isclua({ "sim", "--port", "0", "--roles", "1", "--identities", "50",
      "--client", "sub:s:subadmin:nobody" })
    assert.equal(1, code)
    assert.matches("^isclua sim: isc.sim: client sub: identity nobody is not a ROLE_SUBADMIN of this tenant "
      .. "%(sub%-admins: %x+", err)
  end)

  describe("running", function()
    local dir
    before_each(function() dir = H.tmpdir() end)
    after_each(function() os.execute("rm -rf " .. H.shell_quote(dir)) end)

    -- Runs `prefix isclua sim --port 0 ARGS` in the background (stdout and
    -- stderr to files of dir), waits for its export lines, evaluates them as
    -- `eval "$(isclua sim ...)"` would, runs the shell commands `body`, stops
    -- it with SIGTERM and appends "exit N" to its stderr. Returns stdout,
    -- stderr and what body printed.
    local function run_sim(args, body, prefix)
      local out, err, said = dir .. "/out", dir .. "/err", dir .. "/said"
      local words = {}
      for i, a in ipairs(args) do words[i] = H.shell_quote(a) end
      H.sh(string.format([[
        %s %s sim --port 0 %s > %s 2> %s &
        pid=$!
        for _ in $(seq 200); do grep -q ISCLUA_SIM_TOKEN %s && break; sleep 0.05; done
        eval "$(cat %s)"
        { %s ; } > %s 2>&1
        kill -TERM $pid
        wait $pid
        echo "exit $?" >> %s
      ]], prefix or "", H.shell_quote(H.bin), table.concat(words, " "), out, err, out, out, body, said, err))
      return H.slurp(out), H.slurp(err), H.slurp(said)
    end

    local CONFIGURE = [[curl -s -H "X-Isclua-Sim-Token: $ISCLUA_SIM_TOKEN" -H 'Content-Type: application/json' ]]
      .. [[-d '{"roles": 5}' "$SAIL_BASE_URL/__sim/config" > /dev/null]]

    it("prints only the export lines on stdout, so that eval \"$(isclua sim ...)\" sets them", function()
      local out, err, said = run_sim({ "--roles", "7", "--identities", "3", "--client-secret", "s 3" },
        CONFIGURE .. [[ && echo "$SAIL_CLIENT_ID/$SAIL_CLIENT_SECRET" && ]] .. H.shell_quote(H.bin)
        .. [[ -e 'print(require("isc").client().roles:list():count())']])
      local url = out:match("^export SAIL_BASE_URL=(http://127%.0%.0%.1:%d+)\n")
      assert.is_string(url, out)
      assert.matches("^export SAIL_BASE_URL=%S+\nexport SAIL_CLIENT_ID=isclua%-sim\nexport SAIL_CLIENT_SECRET='s 3'\n"
        .. "export ISCLUA_SIM_TOKEN=%x+\nexport ISCLUA_SIM_PID=%d+\n$", out)
      assert.equal("isclua-sim/s 3\n5\n", said, "the variables reached the shell, and the token the control API")
      assert.matches("^isclua sim: simulated ISC tenant listening on " .. url:gsub("%p", "%%%0"), err)
      assert.matches("client id isclua-sim, client secret s 3 (admin)", err, 1, true)
      assert.matches("rate limit 100/10s", err, 1, true)
      assert.matches("exit 0\n$", err)
    end)

    it("closes stdout after the export lines: eval \"$(isclua sim ... &)\" returns while it runs on", function()
      local err, said = dir .. "/err", dir .. "/said"
      H.sh(string.format([[
        eval "$(%s sim --port 0 --roles 3 --identities 2 2> %s &)"
        {
          %s -e 'print(require("isc").client().roles:list():count())'
          curl -s -H "X-Isclua-Sim-Token: $ISCLUA_SIM_TOKEN" "$SAIL_BASE_URL/__sim/health"; echo
          kill -TERM "$ISCLUA_SIM_PID"
          for _ in $(seq 200); do kill -0 "$ISCLUA_SIM_PID" 2> /dev/null || break; sleep 0.05; done
          kill -0 "$ISCLUA_SIM_PID" 2> /dev/null && echo "still running"
        } > %s 2>&1
      ]], H.shell_quote(H.bin), err, H.shell_quote(H.bin), said))
      local count, health = H.slurp(said):match("^(%d+)\n(.*)\n$")
      assert.equal("3", count, H.slurp(said))
      assert.same({ ok = true }, core.json_decode(health))
      assert.matches("^isclua sim: simulated ISC tenant listening on", H.slurp(err))
    end)

    it("saves --state on SIGTERM, saying so on stderr", function()
      local state = dir .. "/state.json"
      local out, err = run_sim({ "--roles", "7", "--identities", "3", "--state", state }, CONFIGURE)
      assert.not_matches("saved", out)
      assert.equal("isclua sim: saved 5 roles to " .. state .. "\nexit 0\n", err:match("isclua sim: saved.*$"))
      assert.equal(5, #core.json_decode(H.slurp(state)).roles)
    end)

    it("keeps the old state file whole when the disk is full, says that it did not save, and exits 1", function()
      -- A file size limit of 2 KiB (RLIMIT_FSIZE, which binds root too)
      -- makes the state's writes fail as a full disk does; what the
      -- simulator prints stays well under it.
      local state = dir .. "/state.json"
      do
        local small <close> = isc_sim.start { roles = 1, identities = 1, state = state }
        small:save()
      end
      local old = H.slurp(state)
      local out, err, said = run_sim({ "--roles", "40", "--identities", "30", "--state", state },
        [[curl -s -X POST -H "X-Isclua-Sim-Token: $ISCLUA_SIM_TOKEN" -H 'Content-Type: application/json' ]]
        .. [["$SAIL_BASE_URL/__sim/save"]],
        "trap '' XFSZ; ulimit -f 4;")
      assert.matches("ISCLUA_SIM_TOKEN", out)
      local answer = core.json_decode(said)
      local not_saved = "^" .. state:gsub("%p", "%%%0") .. " was not saved %(the file there is unchanged%): "
        .. state:gsub("%p", "%%%0") .. "%.%x+%.tmp: File too large$"
      assert.matches(not_saved, answer.error)
      assert.matches("isclua sim: " .. not_saved:sub(2, -2) .. "\nexit 1\n$", err)
      assert.not_matches("saved %d", err)
      assert.equal(old, H.slurp(state), "the old file is whole")
      local _, listing = H.sh("ls -A " .. H.shell_quote(dir))
      assert.equal("err\nout\nsaid\nstate.json\n", listing, "no temporary file is left")
    end)
  end)
end)
