-- Where a client's settings come from, and what it says when there are none.
local H = require "helpers"

local show = "local c = require('isc').client(); print(c.base_url, c.client_id, c.source)"

-- Runs isclua in a scratch directory with a controlled environment.
local function run(dir, env, argv)
  local e = { SAIL_BASE_URL = false, SAIL_CLIENT_ID = false, SAIL_CLIENT_SECRET = false,
    ISCLUA_PROFILE = false, ISCLUA_CONFIG = false, XDG_CONFIG_HOME = dir .. "/xdg" }
  for k, v in pairs(env or {}) do e[k] = v end
  local args = {}
  for _, a in ipairs(argv or {}) do args[#args + 1] = a end
  args[#args + 1] = "-e"
  args[#args + 1] = show
  return H.isclua(args, { env = e, cwd = dir })
end

local function profiles(dir, text, mode)
  os.execute("mkdir -p " .. H.shell_quote(dir .. "/xdg/isclua"))
  local path = H.write(dir .. "/xdg/isclua/config.lua", text)
  os.execute("chmod " .. (mode or "600") .. " " .. H.shell_quote(path))
  return path
end

local sdk_env = { SAIL_BASE_URL = "https://env.api.identitynow.com", SAIL_CLIENT_ID = "env-id",
  SAIL_CLIENT_SECRET = "env-secret" }
local config_json = '{"BaseURL":"https://json.api.identitynow.com","ClientId":"json-id","ClientSecret":"json-secret"}'
local two_profiles = [[
default = "prod"
profiles = {
  prod = { base_url = "https://prod.api.identitynow.com", client_id = "prod-id", client_secret = "prod-secret" },
  sandbox = { base_url = "https://sandbox.api.identitynow.com/", client_id = "sb-id", secret_command = "echo sb-secret" },
}
]]

describe("client settings", function()
  local dir
  before_each(function() dir = H.tmpdir() end)

  it("come from the SAIL_* environment variables first", function()
    H.write(dir .. "/config.json", config_json)
    profiles(dir, two_profiles)
    local code, out = run(dir, sdk_env)
    assert.equal(0, code)
    assert.equal("https://env.api.identitynow.com\tenv-id\tenvironment (SAIL_*)\n", out)
  end)

  it("then from ./config.json, as the SailPoint SDKs read it", function()
    H.write(dir .. "/config.json", config_json)
    profiles(dir, two_profiles)
    local code, out = run(dir)
    assert.equal(0, code)
    assert.equal("https://json.api.identitynow.com\tjson-id\t./config.json\n", out)
  end)

  it("then from the default profile of isclua's config file", function()
    local path = profiles(dir, two_profiles)
    local code, out = run(dir)
    assert.equal(0, code)
    assert.equal("https://prod.api.identitynow.com\tprod-id\tprofile 'prod' of " .. path .. "\n", out)
  end)

  it("come from the profile named by --profile, over everything else", function()
    H.write(dir .. "/config.json", config_json)
    profiles(dir, two_profiles)
    local code, out = run(dir, sdk_env, { "--profile", "sandbox" })
    assert.equal(0, code)
    assert.matches("^https://sandbox.api.identitynow.com\tsb%-id\tprofile 'sandbox'", out)
  end)

  it("can take the secret from a command instead of the file", function()
    profiles(dir, two_profiles)
    local code, out = run(dir, { ISCLUA_PROFILE = "sandbox" }, { "-e",
      "local config = require 'isc.config'; print(config.run_secret_command(config.resolve({}).secret_command))" })
    assert.equal(0, code)
    assert.matches("^sb%-secret\n", out)
  end)

  it("explain a failing secret command", function()
    local code, _, err = H.isclua({ "-e", "require('isc.config').run_secret_command('exit 3')" })
    assert.equal(1, code)
    assert.matches("secret_command of this profile failed %(exit 3%)", err)
  end)

  it("list every place looked at when there are none", function()
    local code, out, err = run(dir)
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("no ISC tenant configured; looked in:", err, 1, true)
    assert.matches("environment: SAIL_BASE_URL (not set)", err, 1, true)
    assert.matches("./config.json (no such file)", err, 1, true)
    assert.matches(dir .. "/xdg/isclua/config.lua (no such file)", err, 1, true)
    assert.matches("Set SAIL_BASE_URL, SAIL_CLIENT_ID and SAIL_CLIENT_SECRET", err, 1, true)
  end)

  it("name a missing profile", function()
    profiles(dir, two_profiles)
    local code, _, err = run(dir, {}, { "--profile", "staging" })
    assert.equal(1, code)
    assert.matches("profile 'staging' not found", err, 1, true)
    assert.matches("(no profile 'staging')", err, 1, true)
  end)

  it("refuse a tenant with no credentials, naming where it came from", function()
    local code, _, err = run(dir, { SAIL_BASE_URL = "https://x.api.identitynow.com" })
    assert.equal(1, code)
    assert.matches("incomplete ISC settings", err, 1, true)
    assert.matches("environment (SAIL_*) names https://x.api.identitynow.com", err, 1, true)
  end)

  it("refuse a base URL that is not http(s)", function()
    local code, _, err = run(dir, { SAIL_BASE_URL = "acme.api.identitynow.com", SAIL_CLIENT_ID = "a", SAIL_CLIENT_SECRET = "b" })
    assert.equal(1, code)
    assert.matches("must start with https://", err, 1, true)
  end)

  it("warn when a file holding a secret is readable by others", function()
    local path = profiles(dir, two_profiles, "644")
    local code, _, err = run(dir)
    assert.equal(0, code)
    assert.matches("warning: " .. path .. " holds a client secret and is readable by other users; run: chmod 600", err, 1, true)
    profiles(dir, two_profiles, "600")
    code, _, err = run(dir)
    assert.equal(0, code)
    assert.equal("", err)
  end)

  it("take explicit arguments over every source", function()
    local code, out = H.isclua({ "-e",
      "local c = require('isc').client{base_url='https://arg.api.identitynow.com', client_id='i', client_secret='s'}; print(c.base_url, c.source)" },
      { env = sdk_env })
    assert.equal(0, code)
    assert.equal("https://arg.api.identitynow.com\tisc.client{} arguments\n", out)
  end)

  it("reject unknown client options", function()
    local code, _, err = H.isclua({ "-e", "require('isc').client{base_url='https://a.b', clientid='x'}" })
    assert.equal(1, code)
    assert.matches("isc.client: unknown option 'clientid'", err, 1, true)
  end)
end)
