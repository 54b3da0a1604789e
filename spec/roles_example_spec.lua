-- examples/roles_audit.lua, run by the isclua binary against its embedded
-- simulator: the admin chore the Roles API is for, end to end.
local H = require "helpers"

local function audit(...)
  return H.isclua({ "--sim", H.root .. "/examples/roles_audit.lua", ... })
end

describe("examples/roles_audit.lua", function()
  it("finds nothing wrong with the generated tenant", function()
    local code, out, err = audit()
    assert.equal(0, code, err)
    assert.matches("^%d+ requestable roles checked; 0 enabled ones need attention\n$", out)
  end)

  it("reports enabled, requestable roles that grant no access", function()
    local code, out, err = audit("--demo")
    assert.equal(0, code, err)
    assert.matches("3 enabled ones need attention", out)
    local flagged = 0
    for line in out:gmatch("[^\n]+") do
      if line:match("^  Audit demo .- no access$") then flagged = flagged + 1 end
    end
    assert.equal(3, flagged)
    assert.matches("run with %-%-fix", out)
  end)

  it("fixes them with a guarded JSON Patch when asked", function()
    local code, out, err = audit("--demo", "--fix")
    assert.equal(0, code, err)
    local fixed = 0
    for line in out:gmatch("[^\n]+") do
      if line:match("^  Audit demo .- no access  %-> made non%-requestable$") then fixed = fixed + 1 end
    end
    assert.equal(3, fixed)
    assert.matches("3 fixed, 0 failed\n$", out)
  end)

  it("refuses unknown arguments with usage and exit code 2", function()
    local code, out, err = audit("--frobnicate")
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("usage: roles_audit.lua", err)
  end)
end)
