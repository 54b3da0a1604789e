-- How the REPL shows values (isc.pretty): Lua table constructors, key-sorted
-- and indented, that stay readable for large ISC objects, and objects that
-- describe themselves without giving their secrets away.
local core = require "isc.core"
local pretty = require "isc.pretty"

describe("isc.pretty.format", function()
  it("shows a string at the top level as it is, and quoted inside tables", function()
    assert.equal("Finance Admins", pretty.format("Finance Admins"))
    assert.equal('{ "a\\n\\"b\\"", "tab\\t", "bell\\x07" }', pretty.format({ 'a\n"b"', "tab\t", "bell\a" }))
  end)

  it("shows scalars as Lua writes them, and JSON null as isc.null", function()
    assert.equal("42", pretty.format(42))
    assert.equal("1.5", pretty.format(1.5))
    assert.equal("9007199254740993", pretty.format(9007199254740993))
    assert.equal("0.1", pretty.format(0.1))
    assert.equal("true", pretty.format(true))
    assert.equal("nil", pretty.format(nil))
    assert.equal("{ membership = isc.null }", pretty.format({ membership = core.null }))
    assert.equal("{ math.huge, -math.huge, 0/0 }", pretty.format({ math.huge, -math.huge, 0 / 0 }))
  end)

  it("writes tables as Lua constructors: lists by position, names as name =, other keys in brackets", function()
    assert.equal("{ 1, 2 }", pretty.format({ 1, 2 }))
    assert.equal('{ [2] = "b", [3] = "c" }', pretty.format({ [2] = "b", [3] = "c" }))
    assert.equal('{ ["end"] = true, name = "x", ["odd key"] = 1 }', pretty.format({ name = "x", ["odd key"] = 1, ["end"] = true }))
    -- An empty JSON array (as decoded, or isc.array{}) stays told apart from an empty object.
    assert.equal("{ attributes = {}, tags = isc.array{} }", pretty.format({ tags = core.json_array {}, attributes = {} }))
  end)

  it("prints nested tables indented, keys sorted, small parts on one line", function()
    local role = {
      name = "Finance",
      description = string.rep("x", 70),
      owner = { type = "IDENTITY", id = "2c91" },
      entitlements = { { id = "e1", name = "AD Finance" }, { id = "e2", name = "SAP Finance" } },
      segments = core.json_array {},
      attributes = {},
      enabled = true,
      [1] = "numbers first",
      ["with space"] = 1.5,
    }
    assert.equal([[
{
  [1] = "numbers first",
  attributes = {},
  description = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  enabled = true,
  entitlements = { { id = "e1", name = "AD Finance" }, { id = "e2", name = "SAP Finance" } },
  name = "Finance",
  owner = { id = "2c91", type = "IDENTITY" },
  segments = isc.array{},
  ["with space"] = 1.5
}]], pretty.format(role))
  end)

  it("indents every level that does not fit on a line", function()
    local deep = { roles = { { name = "A", description = string.rep("a", 90) } }, count = 1 }
    assert.equal([[
{
  count = 1,
  roles = {
    {
      description = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      name = "A"
    }
  }
}]], pretty.format(deep))
  end)

  it("shows the first items of a long list, and its length", function()
    local ids = {}
    for i = 1, 250 do ids[i] = i end
    assert.equal("{ 1, 2, 3, ... 247 more (250 in all) }", pretty.format(ids, { items = 3 }))
    assert.equal("{ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, ... 230 more (250 in all) }",
      pretty.format(ids))
  end)

  it("cuts deep nesting and long strings, saying how much there is", function()
    assert.equal("{ a = { b = { ... 1 key } } }", pretty.format({ a = { b = { c = { d = 1 } } } }, { depth = 2 }))
    assert.equal("{ { { ... 3 items } } }", pretty.format({ { { 1, 2, 3 } } }, { depth = 2 }))
    assert.equal('{ s = "abcde"... (26 chars) }', pretty.format({ s = "abcdefghijklmnopqrstuvwxyz" }, { string_length = 5 }))
  end)

  it("marks a table that contains itself instead of looping", function()
    local t = { name = "loop" }
    t.self = t
    assert.equal('{ name = "loop", self = <cycle> }', pretty.format(t))
    local shared = { 1 }
    assert.equal("{ { 1 }, { 1 } }", pretty.format({ shared, shared }))
  end)

  it("shows an iterator as what it walks", function()
    local p = core.pager { fetch = function() return {} end, label = "GET /v2024/roles" }
    assert.equal("isc.pager(GET /v2024/roles: not started, 0 read)", pretty.format(p))
    assert.equal("{ roles = isc.pager(GET /v2024/roles: not started, 0 read) }", pretty.format({ roles = p }))
  end)

  it("shows a client by its base URL and auth state, never its secret", function()
    local c = require("isc").client { base_url = "https://acme.api.identitynow.com", client_id = "cid-123",
      client_secret = "s3cr3t-never-shown" }
    local shown = pretty.format({ client = c, roles = c.roles })
    assert.equal([[
{
  client = isc.client(https://acme.api.identitynow.com, client cid-123, not authenticated yet),
  roles = isc.roles(/v2024/roles)
}]], shown)
    assert.is_nil(shown:find("s3cr3t", 1, true))
  end)

  it("shows an isc error as its one-line message", function()
    local e = require("isc.errors").new("argument", "roles:get: argument #1 must be string, got nil")
    assert.equal("roles:get: argument #1 must be string, got nil", pretty.format(e))
  end)
end)

describe("isc.pretty.summary", function()
  it("shows an item of a listing's preview by its id and name, counting its other fields", function()
    local role = { id = "2c91", name = "Finance", description = "d", owner = { id = "o1" }, enabled = true }
    assert.equal('{ id = "2c91", name = "Finance", ... 3 more }', pretty.summary(role))
    assert.equal('{ name = "Cost Center" }', pretty.summary({ name = "Cost Center" }))
  end)

  it("shows any other item on one line, cut to the width", function()
    assert.equal('{ a = 1, b = { 1, 2 } }', pretty.summary({ a = 1, b = { 1, 2 } }))
    assert.equal('{ "aaaaaaaaaa...', pretty.summary({ string.rep("a", 50) }, { width = 16 }))
  end)
end)

describe("isc.pretty.format_all", function()
  it("puts a statement's results on one line, tab-separated, or one per line if any spans lines", function()
    assert.equal("1\tx\t{ 1 }", pretty.format_all(1, "x", { 1 }))
    assert.equal('1\n{\n  a = "' .. string.rep("z", 120) .. '"\n}', pretty.format_all(1, { a = string.rep("z", 120) }))
    assert.equal("nil\t2", pretty.format_all(nil, 2))
  end)
end)
