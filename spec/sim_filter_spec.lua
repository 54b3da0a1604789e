-- The simulator's collection grammar (isc.sim.filter): every operator of
-- ISC's `filters` language, its precedence and quoting, the 400 messages
-- for what an endpoint does not accept, and `sorters`, as strict as ISC: a
-- script that passes here must not fail on a tenant.
local filter = require "isc.sim.filter"
local clock = require "isc.sim.clock"

-- A small collection with one field of each type; tags is collection-valued (for ca).
local function ms(iso) return math.floor(clock.parse_iso(iso) * 1000) end
local ITEMS = {
  { id = "a1", name = "Alpha", created = ms("2021-01-01T00:00:00Z"), ok = true, n = 3, tags = { "x", "y" } },
  { id = "b2", name = "Beta \"B\"", created = ms("2022-06-15T12:00:00Z"), ok = false, n = 10, tags = { "y" } },
  { id = "c3", name = "gamma", created = ms("2023-03-03T03:03:03.500Z"), ok = true, n = 7, tags = {} },
  { id = "d4", name = nil, created = ms("2024-12-31T23:59:59Z"), ok = false, n = 0, tags = { "x" } },
}
local ALL_OPS = "eq,ne,gt,ge,lt,le,co,sw,in,pr,isnull"
local FIELDS = {
  id = { type = "string", ops = ALL_OPS, get = function(x) return x.id end },
  name = { type = "string", ops = ALL_OPS, get = function(x) return x.name end },
  created = { type = "datetime", ops = ALL_OPS, get = function(x) return x.created end },
  ok = { type = "boolean", ops = "eq,ne,pr,isnull", get = function(x) return x.ok end },
  n = { type = "number", ops = ALL_OPS, get = function(x) return x.n end },
  tags = { type = "string", ops = "ca", get = function(x) return x.tags end },
  ["owner.id"] = { type = "string", ops = "eq", get = function(x) return x.id end },
}

-- The ids of the items an expression selects.
local function select(expr, fields)
  local pred, err = filter.predicate(expr, fields or FIELDS)
  assert(pred, err)
  local ids = {}
  for _, item in ipairs(ITEMS) do
    if pred(item) then ids[#ids + 1] = item.id end
  end
  return table.concat(ids, " ")
end

local function problem(expr, fields)
  local pred, err = filter.predicate(expr, fields or FIELDS)
  assert.is_nil(pred)
  return err
end

describe("the simulator's filters", function()
  describe("operators", function()
    it("eq and ne compare strings without regard to case", function()
      assert.equal("a1", select('name eq "alpha"'))
      assert.equal("b2 c3 d4", select('name ne "ALPHA"'))
    end)

    it("gt, ge, lt and le order strings lexicographically (without case)", function()
      assert.equal("c3", select('name gt "beta \\"b\\""'))
      assert.equal("b2 c3", select('name ge "beta \\"b\\""'))
      assert.equal("a1", select('name lt "b"'))
      assert.equal("a1 b2", select('name le "beta \\"b\\""'))
    end)

    it("gt, ge, lt and le order date-times in time, with or without quotes and fractions", function()
      assert.equal("c3 d4", select("created gt 2022-06-15T12:00:00Z"))
      assert.equal("b2 c3 d4", select('created ge "2022-06-15T12:00:00Z"'))
      assert.equal("a1", select("created lt 2022-06-15T12:00:00Z"))
      assert.equal("a1 b2", select("created le 2022-06-15T12:00:00.000Z"))
      assert.equal("c3", select("created eq 2023-03-03T03:03:03.5Z"))
      assert.equal("c3", select("created eq 2023-03-03T05:03:03.5+02:00"))
    end)

    it("orders numbers numerically", function()
      assert.equal("b2 c3", select("n gt 3"))
      assert.equal("a1 d4", select("n le 3"))
    end)

    it("co finds a substring and sw a prefix, without regard to case", function()
      assert.equal("a1 b2 c3", select('name co "A"'))
      assert.equal("c3", select('name co "MM"'))
      assert.equal("c3", select('name sw "GAM"'))
      assert.equal("b2", select('name co "\\"b\\""'))
    end)

    it("in matches any value of a list", function()
      assert.equal("a1 c3", select('id in ("c3", "A1", "zz")'))
      assert.equal("b2", select("n in (10, 11)"))
    end)

    it("ca needs every listed value in a collection field", function()
      assert.equal("a1", select('tags ca ("x","y")'))
      assert.equal("a1 d4", select('tags ca ("x")'))
    end)

    it("pr selects present values and isnull missing ones, pr also written before the field", function()
      assert.equal("a1 b2 c3", select("name pr"))
      assert.equal("a1 b2 c3", select("pr name"))
      assert.equal("d4", select("name isnull"))
    end)

    it("compares booleans with eq and ne", function()
      assert.equal("a1 c3", select("ok eq true"))
      assert.equal("a1 c3", select("ok ne false"))
    end)
  end)

  describe("composition", function()
    it("joins with and, or and not", function()
      assert.equal("c3", select('ok eq true and name sw "g"'))
      assert.equal("a1 d4", select('id eq "a1" or id eq "d4"'))
      assert.equal("b2 d4", select("not ok eq true"))
    end)

    it("binds not tighter than and, and and tighter than or", function()
      -- (not (id eq a1)) or ((id eq a1) and (n eq 3))
      assert.equal("a1 b2 c3 d4", select('not id eq "a1" or id eq "a1" and n eq 3'))
      -- (id eq b2) or ((id eq c3) and (n eq 0)): c3 has n 7
      assert.equal("b2", select('id eq "b2" or id eq "c3" and n eq 0'))
    end)

    it("groups with parentheses", function()
      assert.equal("b2", select('(id eq "b2" or id eq "c3") and n eq 10'))
      assert.equal("a1 d4", select('not (id eq "b2" or id eq "c3")'))
    end)

    it("reads backslash escapes inside quotes", function()
      assert.equal("b2", select('name eq "Beta \\"B\\""'))
      local pred = assert(filter.predicate('name eq "a\\\\b"', FIELDS))
      assert.is_true(pred({ name = "A\\B" }))
    end)
  end)

  describe("errors, as the 400 messages say them", function()
    it("names the position of a syntax error", function()
      assert.equal("Invalid filter: expected a value after 'eq' at the end of the filter", problem("name eq"))
      assert.equal("Invalid filter: expected ')' at the end of the filter", problem('(name eq "x"'))
      assert.equal("Invalid filter: unterminated string starting at position 9", problem('name eq "abc'))
      assert.matches("expected 'and', 'or' or the end of the filter at position 13 (near 'id')",
        problem('name eq "x" id eq "y"'), 1, true)
      assert.equal("Invalid filter: the expression is empty", problem("  "))
    end)

    it("refuses operators and keywords in upper case", function()
      assert.equal("Invalid filter: operators are lowercase: write 'eq' at position 6 (near 'EQ')", problem('name EQ "x"'))
      assert.equal("Invalid filter: keywords are lowercase: write 'and' at position 13 (near 'AND')",
        problem('name eq "x" AND id eq "y"'))
    end)

    it("refuses an unknown operator", function()
      assert.matches("unknown operator after 'name'", problem('name like "x"'), 1, true)
    end)

    it("refuses a field the endpoint does not filter on, listing those it does", function()
      assert.equal('Invalid filter: filtering is not supported on field "color" here. '
        .. "Supported fields: created, id, n, name, ok, owner.id, tags", problem('color eq "red"'))
    end)

    it("refuses an operator the field does not support, listing those it does", function()
      assert.equal('Invalid filter: operator "co" is not supported for field "owner.id". Supported operators: eq',
        problem('owner.id co "x"'))
    end)

    it("refuses a string value without double quotes: unquoted, or in single quotes", function()
      assert.equal('Invalid filter: name takes a string in double quotes: write "gam" (position 9)',
        problem("name sw gam"))
      assert.equal('Invalid filter: id takes a string in double quotes: write "a1" (position 14)',
        problem('id in ("c3", a1)'))
      assert.equal('Invalid filter: single quotes at position 9: strings take double quotes ("E")', problem("name sw 'E'"))
      assert.equal("Invalid filter: single quotes at position 9: strings take double quotes (\"E)\")",
        problem("name sw 'E)"))
    end)

    it("refuses a boolean or a number in quotes, and takes a date-time either way", function()
      assert.equal("Invalid filter: ok takes a bare true or false, not a string: write true (position 7)",
        problem('ok eq "true"'))
      assert.equal("Invalid filter: n takes a bare number, not a string: write 3 (position 6)", problem('n eq "3"'))
      assert.equal("b2 c3 d4", select('created ge "2022-06-15T12:00:00Z"'))
    end)

    it("ends the refusal of an operator with the field's hint, when it has one", function()
      local fields = { created = { type = "datetime", ops = "gt", get = FIELDS.created.get, hint = "try gt" } }
      assert.equal('Invalid filter: operator "lt" is not supported for field "created". Supported operators: gt. try gt',
        problem("created lt 2022-06-15T12:00:00Z", fields))
    end)

    it("refuses values of the wrong type", function()
      assert.matches('"yesterday" is not an ISO-8601 date-time', problem("created gt yesterday"), 1, true)
      assert.matches('"maybe" is not a boolean', problem("ok eq maybe"), 1, true)
      assert.matches('"ten" is not a number', problem("n gt ten"), 1, true)
    end)
  end)

  describe("sorters", function()
    local SORTERS = { name = FIELDS.name.get, created = FIELDS.created.get, n = FIELDS.n.get, ok = FIELDS.ok.get }

    local function order(s)
      local keys = assert(filter.parse_sorters(s, SORTERS))
      local ids = {}
      for i, item in ipairs(filter.sort(ITEMS, keys, function(x) return x.id end)) do ids[i] = item.id end
      return table.concat(ids, " ")
    end

    it("sorts ascending, and descending with a leading -", function()
      assert.equal("d4 a1 b2 c3", order("name"))
      assert.equal("c3 b2 a1 d4", order("-name"))
      assert.equal("d4 c3 b2 a1", order("-created"))
      assert.equal("d4 a1 c3 b2", order("n"))
    end)

    it("gives earlier keys precedence and breaks ties by id", function()
      assert.equal("b2 d4 a1 c3", order("ok"))
      assert.equal("b2 d4 c3 a1", order("ok,-n"))
    end)

    it("refuses a field the endpoint does not sort on", function()
      local keys, err = filter.parse_sorters("name,color", SORTERS)
      assert.is_nil(keys)
      assert.equal('Invalid sorters: sorting is not supported on field "color" here. Supported sorters: created, n, name, ok', err)
    end)

    it("refuses a + prefix (ascending is the default) and empty fields", function()
      local function refused(s)
        local keys, err = filter.parse_sorters(s, SORTERS)
        assert.is_nil(keys)
        return err
      end
      assert.equal('Invalid sorters: "+name": there is no "+" (ascending is the default); write "name"', refused("+name"))
      for _, s in ipairs({ "name,,created", "name,", ",name", "-", "-name,-" }) do
        assert.equal(string.format('Invalid sorters: "%s" has an empty field: separate the fields by single commas', s),
          refused(s))
      end
    end)
  end)
end)
