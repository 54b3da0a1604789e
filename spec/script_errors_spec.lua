-- What a script's author sees when a call is wrong: the line of their own
-- script, not isc's insides, and a hint at what was meant.
local isc = require "isc"
local H = require "helpers"

describe("an error in a call to isc", function()
  local sim, c
  H.shared_sim({ roles = 5, seed = 2 }, function(s)
    sim = s
    c = H.sim_client(sim)
  end)

  it("points at the script's line that made the call", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local err = H.catch(function() local p = c.roles:list { limit = 500 }; return p end) -- not a tail call, which leaves no line
    assert.is_true(isc.is_error(err, "argument"))
    assert.equal("spec/script_errors_spec.lua:" .. line .. ":", err.where)
    assert.equal("spec/script_errors_spec.lua:" .. line .. ": roles:list: option 'limit' must be between 1 and 50 "
      .. "(this endpoint's maximum page size), got 500", tostring(err))
  end)

  it("says to use a colon when a method is called with a dot", function()
    local err = H.catch(function() return c.roles.get("2c9180") end)
    assert.equal("roles:get: call it with a colon: c.roles:get(...)", err.message)
    err = H.catch(function() return c.propagation.status("x") end)
    assert.equal("propagation:status: call it with a colon: c.propagation:status(...)", err.message)
  end)

  it("suggests the function a misspelt name was meant to be", function()
    assert.matches("c.roles: no function 'lsit', did you mean 'list'?", H.catch(function() return c.roles:lsit() end).message,
      1, true)
    assert.matches("c.propagation: no function 'wiat', did you mean 'wait'?",
      H.catch(function() return c.propagation:wiat() end).message, 1, true)
    local err = H.catch(function() return c.roles:frobnicate() end)
    assert.matches("^c.roles: no function 'frobnicate' %(functions are: add_metadata, .*search%)$", err.message)
    assert.equal(0, sim:stats().requests)
  end)
end)

describe("the report of a run that ended on an error", function()
  local script = [[
local c = require("isc").client()
local function audit()
  for _ in c.roles:list { limit = 500 } do end
end
audit()
]]

  it("shows the script's own frames only", function()
    local path = H.write(os.tmpname() .. ".lua", script)
    local code, _, stderr = H.isclua { "--sim", path }
    assert.equal(1, code)
    assert.matches(path .. ":3: roles:list: option 'limit' must be between 1 and 50", stderr, 1, true)
    local trace = "stack traceback:\n\t" .. path .. ":3: in local 'audit'\n\t" .. path .. ":5: in main chunk\n"
    assert.equal(trace, stderr:sub(-#trace))
  end)

  it("keeps isc's frames under -v", function()
    local path = H.write(os.tmpname() .. ".lua", script)
    local _, _, stderr = H.isclua { "-v", "--sim", path }
    assert.matches("lua/isc/roles.lua:%d+:", stderr)
    assert.matches("in function 'error'", stderr, 1, true)
  end)
end)

describe("a mistake in the settings or a terse answer", function()
  it("says a base_url ending in an API version is one level too deep", function()
    local err = H.catch(isc.client, { base_url = "https://acme.api.identitynow.com/v2024", token = "t" })
    assert.is_true(isc.is_error(err, "config"))
    assert.matches("ends in /v2024; give the tenant's API root (https://acme.api.identitynow.com)", err.message, 1, true)
  end)

  it("gives ISC's causes when its message only restates the status", function()
    local errors = require "isc.errors"
    local body = '{"detailCode":"400.1 Bad Request Content","trackingId":"e7",'
      .. '"messages":[{"locale":"en-US","text":"The request was syntactically correct but its content is semantically invalid."}],'
      .. '"causes":[{"text":"owner.id is not a known identity"},{"text":"name is too long"}]}'
    local err = errors.from_response("POST", "/v2024/roles", 400, {}, body)
    assert.equal("owner.id is not a known identity; name is too long", err.message)
    assert.same({ "owner.id is not a known identity", "name is too long" }, err.causes)
    body = body:gsub("The request was syntactically correct but its content is semantically invalid%.", "Role is locked")
    assert.equal("Role is locked (owner.id is not a known identity; name is too long)",
      errors.from_response("POST", "/v2024/roles", 400, {}, body).message)
  end)
end)
