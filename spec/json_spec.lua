-- The JSON codec of isc.core: strict decoding, and encoding that keeps [] apart
-- from {} and null apart from nothing, so that ISC roles survive a round trip.
local core = require "isc.core"

-- A full ISC Role (isc-api-reference.md §5.1) with an empty array ("segments",
-- revocation "approvalSchemes"), an empty object ("legacyMembershipInfo") and
-- nulls. Written exactly as Python's json.dumps(role, indent=2, sort_keys=True)
-- writes it, and so as json_encode(role, {sort_keys = true, indent = 2}) must.
local role_text = [[
{
  "accessModelMetadata": {
    "attributes": [
      {
        "description": "Classification used by government organizations.",
        "key": "iscFederalClassifications",
        "multiselect": true,
        "name": "Federal Classifications",
        "objectTypes": [
          "general"
        ],
        "status": "active",
        "type": "governance",
        "values": [
          {
            "name": "Secret",
            "status": "active",
            "value": "secret"
          }
        ]
      }
    ]
  },
  "accessProfiles": [
    {
      "id": "ff808081751e6e129f1518161919ecca",
      "name": "Access Profile 2567",
      "type": "ACCESS_PROFILE"
    }
  ],
  "accessRequestConfig": {
    "approvalSchemes": [
      {
        "approverId": null,
        "approverType": "OWNER"
      }
    ],
    "commentsRequired": true,
    "denialCommentsRequired": true,
    "formDefinitionId": null,
    "maxPermittedAccessDuration": {
      "timeUnit": "MONTHS",
      "value": 6
    },
    "reauthorizationRequired": false,
    "requireEndDate": false
  },
  "additionalOwners": [
    {
      "id": "46c79819-a69f-49a2-becb-12c971ae66c6",
      "name": "Eng Approvers",
      "type": "GOVERNANCE_GROUP"
    }
  ],
  "created": "2021-03-01T22:32:58.104Z",
  "description": "Access for the engineering team",
  "dimensionRefs": null,
  "dimensional": false,
  "enabled": true,
  "entitlements": [
    {
      "id": "2c91809773dee32014e13e122092014e",
      "name": "CN=Engineering,OU=Groups,DC=example,DC=com",
      "type": "ENTITLEMENT"
    }
  ],
  "id": "2c918086749d78830174a1a40e121518",
  "legacyMembershipInfo": {},
  "membership": {
    "criteria": {
      "children": [
        {
          "children": null,
          "key": {
            "property": "attribute.memberOf",
            "sourceId": "2c9180887701fb2014213e122092014e",
            "type": "ENTITLEMENT"
          },
          "operation": "EQUALS",
          "stringValue": "Engineering"
        },
        {
          "children": [
            {
              "key": {
                "property": "attribute.department",
                "sourceId": null,
                "type": "IDENTITY"
              },
              "operation": "EQUALS",
              "stringValue": "Engineering"
            },
            {
              "key": {
                "property": "attribute.email",
                "sourceId": null,
                "type": "IDENTITY"
              },
              "operation": "ENDS_WITH",
              "stringValue": "@example.com"
            }
          ],
          "key": null,
          "operation": "AND",
          "stringValue": null
        }
      ],
      "key": null,
      "operation": "OR",
      "stringValue": null
    },
    "identities": null,
    "type": "STANDARD"
  },
  "modified": "2021-03-02T20:22:28.104Z",
  "name": "Role 2567",
  "owner": {
    "id": "2c9180a46faadee4016fb4e018c20639",
    "name": "support",
    "type": "IDENTITY"
  },
  "privilegeLevel": null,
  "requestable": true,
  "revocationRequestConfig": {
    "approvalSchemes": [],
    "commentsRequired": false,
    "denialCommentsRequired": false
  },
  "segments": []
}]]

-- Returns the error json_encode raises for v.
local function encode_error(v, opts)
  local ok, err = pcall(core.json_encode, v, opts)
  assert.is_false(ok, "json_encode should have failed")
  return err
end

-- Returns the message json_decode gives for s, checking that it gave no value.
local function decode_error(s)
  local value, err = core.json_decode(s)
  assert.is_nil(value)
  return err
end

describe("core.null", function()
  it("is the light userdata NULL that lua-cjson also uses", function()
    assert.equal("userdata", type(core.null))
    local ok, cjson = pcall(require, "cjson")
    if not ok then return pending("lua-cjson is not installed") end
    assert.equal(cjson.null, core.null)
  end)

  it("is what JSON null decodes to and what it encodes from", function()
    assert.equal(core.null, core.json_decode("null"))
    assert.equal(core.null, core.json_decode('{"a":null}').a)
    assert.equal("null", core.json_encode(core.null))
    assert.equal('[1,null,3]', core.json_encode({ 1, core.null, 3 }))
  end)
end)

describe("core.json_array", function()
  it("marks a table as a JSON array with core.array_mt, kept in the registry", function()
    local t = {}
    assert.equal(t, core.json_array(t))
    assert.equal(core.array_mt, getmetatable(t))
    assert.equal("isc.json.array", core.array_mt.__name)
    assert.equal(core.array_mt, debug.getregistry()["isc.json.array"])
  end)

  it("makes a new marked table when given none", function()
    local t = core.json_array()
    assert.equal(core.array_mt, getmetatable(t))
    assert.equal("[]", core.json_encode(t))
  end)

  it("can mark a table twice but refuses one with another metatable", function()
    local t = core.json_array(core.json_array({ 1 }))
    assert.equal(core.array_mt, getmetatable(t))
    assert.has_error(function() core.json_array(setmetatable({}, {})) end)
  end)
end)

describe("a full ISC role", function()
  it("decodes with [] as a marked table, {} as a plain table and null as core.null", function()
    local role = assert(core.json_decode(role_text))
    assert.is_nil(getmetatable(role))
    assert.equal("Role 2567", role.name)
    assert.equal(core.array_mt, getmetatable(role.segments))
    assert.equal(0, #role.segments)
    assert.equal(core.array_mt, getmetatable(role.revocationRequestConfig.approvalSchemes))
    assert.is_nil(getmetatable(role.legacyMembershipInfo))
    assert.is_nil(next(role.legacyMembershipInfo))
    assert.equal(core.null, role.privilegeLevel)
    assert.equal(core.null, role.membership.identities)
    assert.equal(core.null, role.accessRequestConfig.approvalSchemes[1].approverId)
    assert.equal(math.tointeger(6), role.accessRequestConfig.maxPermittedAccessDuration.value)
    assert.equal("integer", math.type(role.accessRequestConfig.maxPermittedAccessDuration.value))
    assert.is_true(role.enabled)
    assert.is_false(role.dimensional)
    local leaf = role.membership.criteria.children[2].children[2]
    assert.equal("@example.com", leaf.stringValue)
  end)

  it("encodes back to exactly the same text with sort_keys and indent = 2", function()
    local role = core.json_decode(role_text)
    assert.equal(role_text, core.json_encode(role, { sort_keys = true, indent = 2 }))
  end)

  it("keeps [], {} and null through a compact round trip", function()
    local text = core.json_encode(core.json_decode(role_text))
    assert.truthy(text:find('"segments":[]', 1, true))
    assert.truthy(text:find('"approvalSchemes":[]', 1, true))
    assert.truthy(text:find('"legacyMembershipInfo":{}', 1, true))
    assert.truthy(text:find('"privilegeLevel":null', 1, true))
    assert.equal(role_text, core.json_encode(core.json_decode(text), { sort_keys = true, indent = 2 }))
  end)

  it("can be built in Lua: json_array and core.null say what plain tables cannot", function()
    local role = {
      name = "Engineering",
      owner = { type = "IDENTITY", id = "2c9180a46faadee4016fb4e018c20639" },
      entitlements = core.json_array(),
      accessModelMetadata = { attributes = core.json_array() },
      description = core.null,
      legacyMembershipInfo = {},
    }
    assert.equal('{"accessModelMetadata":{"attributes":[]},"description":null,"entitlements":[],'
      .. '"legacyMembershipInfo":{},"name":"Engineering",'
      .. '"owner":{"id":"2c9180a46faadee4016fb4e018c20639","type":"IDENTITY"}}',
      core.json_encode(role, { sort_keys = true }))
  end)
end)

describe("core.json_decode", function()
  it("turns objects into plain tables and arrays into marked ones", function()
    local v = core.json_decode(' { "a" : [ 1 , "two" , { } , [ ] ] , "b" : true } ')
    assert.is_nil(getmetatable(v))
    assert.equal(core.array_mt, getmetatable(v.a))
    assert.same({ 1, "two", {}, {} }, v.a)
    assert.is_nil(getmetatable(v.a[3]))
    assert.equal(core.array_mt, getmetatable(v.a[4]))
    assert.is_true(v.b)
    assert.is_false(core.json_decode("false"))
  end)

  it("keeps the last of duplicate keys", function()
    assert.equal(2, core.json_decode('{"a":1,"a":2}').a)
  end)

  describe("strings", function()
    it("understand every escape", function()
      assert.equal('"\\/\b\f\n\r\t', core.json_decode([["\"\\\/\b\f\n\r\t"]]))
      assert.equal("A\0z", core.json_decode([["\u0041\u0000\u007a"]]))
    end)

    it("turn \\u escapes into UTF-8, surrogate pairs into one character", function()
      assert.equal("é", core.json_decode([["\u00e9"]]))
      assert.equal("€", core.json_decode([["\u20AC"]]))
      assert.equal("😀", core.json_decode([["\ud83d\ude00"]]))
      assert.equal("\xF0\x9F\x98\x80", core.json_decode([["\uD83D\uDE00"]]))
      assert.equal("\u{10FFFF}", core.json_decode([["\udbff\udfff"]]))
    end)

    it("pass UTF-8 through unchanged", function()
      assert.equal("Zoë, 東京, 😀", core.json_decode('"Zoë, 東京, 😀"'))
    end)

    it("may start with an escape when no scratch buffer is kept (UBSan once aborted here)", function()
      -- A text over 1 MB leaves no scratch buffer behind, as in a fresh state.
      assert.equal(2 ^ 20 + 2, #core.json_encode(string.rep("x", 2 ^ 20)))
      assert.equal("\nx", core.json_decode([["\nx"]]))
    end)
  end)

  describe("numbers", function()
    it("stay integers when they are written as integers and fit", function()
      assert.equal("integer", math.type(core.json_decode("42")))
      assert.equal(9007199254740993, core.json_decode("9007199254740993")) -- 2^53 + 1, exact
      assert.equal(math.maxinteger, core.json_decode("9223372036854775807"))
      assert.equal(math.mininteger, core.json_decode("-9223372036854775808"))
    end)

    it("become floats with a fraction or an exponent, or when too big for an integer", function()
      assert.equal("float", math.type(core.json_decode("1.0")))
      assert.equal(100.0, core.json_decode("1e2"))
      assert.equal("float", math.type(core.json_decode("1E+2")))
      assert.equal(0.1, core.json_decode("0.1"))
      assert.equal(1e300, core.json_decode("1e300"))
      assert.equal(2.5e-3, core.json_decode("25e-4"))
      assert.equal(2^63, core.json_decode("9223372036854775808"))
      assert.equal("float", math.type(core.json_decode("9223372036854775808")))
    end)

    it("keep the sign of zero: -0 and -0.0 are the float -0.0", function()
      assert.equal(-math.huge, 1 / core.json_decode("-0.0"))
      assert.equal(-math.huge, 1 / core.json_decode("-0"))
      assert.equal("integer", math.type(core.json_decode("0")))
    end)
  end)

  describe("refuses what RFC 8259 does not allow, naming the byte (from 1) and what was expected", function()
    local cases = {
      { "", "invalid JSON at byte 1: unexpected end of input, expected a value" },
      { "   ", "invalid JSON at byte 4: unexpected end of input, expected a value" },
      { '{"a":1', "invalid JSON at byte 7: unexpected end of input, expected ',' or '}'" },
      { '{"a":', "invalid JSON at byte 6: unexpected end of input, expected a value" },
      { '{"a"', "invalid JSON at byte 5: unexpected end of input, expected ':'" },
      { "[1,2", "invalid JSON at byte 5: unexpected end of input, expected ',' or ']'" },
      { '"abc', "invalid JSON at byte 5: unexpected end of input, expected '\"'" },
      { "tru", "invalid JSON at byte 4: unexpected end of input, expected 'true'" },
      { "nul1", "invalid JSON at byte 4: expected 'null'" },
      { "[1,2,]", "invalid JSON at byte 6: expected a value" },
      { '{"a":1,}', "invalid JSON at byte 8: expected a string key" },
      { "{'a':1}", "invalid JSON at byte 2: expected a string key or '}'" },
      { '{"a" 1}', "invalid JSON at byte 6: expected ':'" },
      { '{"a":1 "b":2}', "invalid JSON at byte 8: expected ',' or '}'" },
      { "[1 2]", "invalid JSON at byte 4: expected ',' or ']'" },
      { "[1] x", "invalid JSON at byte 5: expected end of input" },
      { "{}{}", "invalid JSON at byte 3: expected end of input" },
      { '"\\x"', "invalid JSON at byte 3: invalid escape character" },
      { '"\\u12g4"', "invalid JSON at byte 6: expected 4 hex digits after \\u" },
      { '"\\u12', "invalid JSON at byte 6: unexpected end of input, expected 4 hex digits after \\u" },
      { '"\\ud83d"', "invalid JSON at byte 2: unpaired surrogate in \\u escape" },
      { '"\\ud83d\\u0041"', "invalid JSON at byte 2: unpaired surrogate in \\u escape" },
      { '"\\ude00"', "invalid JSON at byte 2: unpaired surrogate in \\u escape" },
      { '"a\tb"', "invalid JSON at byte 3: unescaped control character in a string" },
      { '"\xff"', "invalid JSON at byte 2: invalid UTF-8 in a string" },
      { '"\xc0\xaf"', "invalid JSON at byte 2: invalid UTF-8 in a string" }, -- overlong "/"
      { '"\xed\xa0\x80"', "invalid JSON at byte 2: invalid UTF-8 in a string" }, -- encoded surrogate
      { "01", "invalid JSON at byte 1: leading zeros are not allowed" },
      { "[-007]", "invalid JSON at byte 3: leading zeros are not allowed" },
      { "-", "invalid JSON at byte 2: unexpected end of input, expected a digit" },
      { "+1", "invalid JSON at byte 1: expected a value" },
      { ".5", "invalid JSON at byte 1: expected a value" },
      { "1.", "invalid JSON at byte 3: unexpected end of input, expected a digit after '.'" },
      { "1.e5", "invalid JSON at byte 3: expected a digit after '.'" },
      { "1e", "invalid JSON at byte 3: unexpected end of input, expected a digit in the exponent" },
      { "1e999", "invalid JSON at byte 1: number out of range" },
      { "NaN", "invalid JSON at byte 1: expected a value" },
      { "\xEF\xBB\xBF{}", "invalid JSON at byte 1: expected a value" }, -- no byte order mark
    }
    for _, case in ipairs(cases) do
      -- the name shows bytes above 127 as \xHH, so the report stays UTF-8
      local name = string.format("%q", case[1]):gsub("[\128-\255]", function(c) return string.format("\\x%02X", c:byte()) end)
      it(name, function()
        assert.equal(case[2], decode_error(case[1]))
      end)
    end
  end)

  it("accepts 512 levels of nesting and refuses the 513th, without a crash", function()
    local deep = string.rep("[", 512) .. string.rep("]", 512)
    assert.equal(deep, core.json_encode(assert(core.json_decode(deep))))
    assert.equal("invalid JSON at byte 513: nesting deeper than 512 levels",
      decode_error(string.rep("[", 513) .. string.rep("]", 513)))
    assert.equal("invalid JSON at byte 1537: nesting deeper than 512 levels",
      decode_error(string.rep('{"a":[', 100000)))
  end)

  it("returns nil and a message for every truncation of a valid document", function()
    local text = core.json_encode(core.json_decode(role_text))
    for len = 0, #text - 1 do
      local value, err = core.json_decode(text:sub(1, len))
      assert.is_nil(value)
      assert.matches("^invalid JSON at byte %d+: ", err)
    end
  end)
end)

describe("core.json_encode", function()
  describe("chooses between array and object", function()
    it("writes a marked table as an array, even when empty", function()
      assert.equal("[]", core.json_encode(core.json_array()))
      assert.equal('["a","b"]', core.json_encode(core.json_array({ "a", "b" })))
    end)

    it("writes an unmarked empty table as an object", function()
      assert.equal("{}", core.json_encode({}))
    end)

    it("writes unmarked keys 1..n as an array and string keys as an object", function()
      assert.equal("[1,2,3]", core.json_encode({ 1, 2, 3 }))
      assert.equal('{"a":1}', core.json_encode({ a = 1 }))
    end)

    it("ignores other metatables and looks at the keys", function()
      assert.equal('{"a":1}', core.json_encode(setmetatable({ a = 1 }, { __index = {} })))
    end)
  end)

  it("writes booleans, core.null, and a top-level nil as null", function()
    assert.equal("[true,false,null]", core.json_encode({ true, false, core.null }))
    assert.equal("null", core.json_encode(nil))
  end)

  describe("numbers", function()
    it("writes integers as integers", function()
      assert.equal("[0,-7,9223372036854775807,-9223372036854775808]",
        core.json_encode({ 0, -7, math.maxinteger, math.mininteger }))
      assert.equal("9007199254740992", core.json_encode(1 << 53))
    end)

    it("writes floats in the shortest form that reads back the same, and as floats", function()
      assert.equal("0.1", core.json_encode(0.1))
      assert.equal("0.30000000000000004", core.json_encode(0.1 + 0.2))
      assert.equal("1e+300", core.json_encode(1e300))
      assert.equal("2.5e-08", core.json_encode(2.5e-8))
      assert.equal("2.0", core.json_encode(2.0))
      assert.equal("9007199254740992.0", core.json_encode(2^53))
      assert.equal("-0.0", core.json_encode(-0.0))
    end)

    it("round-trips floats exactly, type included", function()
      for _, x in ipairs({ 0.1, 1 / 3, math.pi, -1e-310, 1e300, 2^53, 2^63, -0.0, 123456789.125 }) do
        local back = core.json_decode(core.json_encode(x))
        assert.equal("float", math.type(back))
        assert.equal(x, back)
        assert.equal(1 / x, 1 / back) -- same sign, even for zero
      end
    end)
  end)

  describe("strings", function()
    it("escapes quotes, backslashes and control characters, and nothing else", function()
      assert.equal([["\"\\\b\f\n\r\t\u0000\u0001\u001f/]] .. "\127" .. [["]],
        core.json_encode('"\\\b\f\n\r\t\0\1\31/\127'))
    end)

    it("leaves UTF-8 as it is", function()
      assert.equal('"Zoë, 東京, 😀"', core.json_encode("Zoë, 東京, 😀"))
    end)

    it("round-trips every byte value below 128", function()
      local bytes = {}
      for b = 0, 127 do bytes[#bytes + 1] = string.char(b) end
      local s = table.concat(bytes)
      assert.equal(s, core.json_decode(core.json_encode(s)))
    end)
  end)

  describe("refuses what JSON cannot hold, saying what and where", function()
    local cases = {
      { "a function", { owner = { name = print } }, "json: cannot encode a function at .owner.name" },
      { "a function at the top", print, "json: cannot encode a function" },
      { "a path through arrays", { roles = { {}, { tags = { "a", print } } } },
        "json: cannot encode a function at .roles[2].tags[2]" },
      { "a thread", { co = coroutine.create(print) }, "json: cannot encode a thread at .co" },
      { "a full userdata", { io.stdout }, "json: cannot encode a userdata at [1]" },
      { "NaN", { x = 0 / 0 }, "json: cannot encode NaN at .x" },
      { "infinity", { x = math.huge }, "json: cannot encode inf at .x" },
      { "minus infinity", { -math.huge }, "json: cannot encode -inf at [1]" },
      { "a sparse array", { list = { 1, nil, 3 } }, "json: cannot encode a sparse array at .list" },
      { "an array not starting at 1", { [2] = "b", [3] = "c" }, "json: cannot encode a sparse array" },
      { "integer and string keys mixed", { 1, 2, name = "x" },
        "json: cannot encode a table with both integer and string keys" },
      { "an integer key in an object", { a = { name = "x", [10] = "y" } },
        "json: cannot encode a table with both integer and string keys at .a" },
      { "a marked array with string keys", core.json_array({ name = "x" }),
        "json: cannot encode an array with string keys" },
      { "a boolean key", { [true] = 1 }, "json: cannot encode a table with a boolean key" },
      { "a float key", { [1.5] = 1 }, "json: cannot encode a table with a number key" },
      { "a table key", { [{}] = 1 }, "json: cannot encode a table with a table key" },
      { "invalid UTF-8", { "ok", "\xff" }, "json: cannot encode a string with invalid UTF-8 at [2]" },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        assert.equal(case[3], encode_error(case[2]))
      end)
    end

    it("a cycle, by its depth", function()
      local t = { name = "loop" }
      t.self = t
      assert.equal("json: cannot encode tables nested deeper than 512 levels (is there a cycle?)",
        encode_error(t))
    end)
  end)

  describe("options", function()
    local value = { b = 1, a = core.json_array({ 2, { d = 4, c = 3 } }), e = {}, f = core.json_array() }

    it("sort_keys orders the members of objects by their bytes", function()
      assert.equal('{"a":[2,{"c":3,"d":4}],"b":1,"e":{},"f":[]}',
        core.json_encode(value, { sort_keys = true }))
      assert.equal('{"B":1,"a":2,"ab":3,"b":4}',
        core.json_encode({ b = 4, ab = 3, a = 2, B = 1 }, { sort_keys = true }))
    end)

    it("indent writes one value a line, with \": \" after keys and no final newline", function()
      assert.equal(table.concat({
        '{',
        '   "a": [',
        '      2,',
        '      {',
        '         "c": 3,',
        '         "d": 4',
        '      }',
        '   ],',
        '   "b": 1,',
        '   "e": {},',
        '   "f": []',
        '}',
      }, "\n"), core.json_encode(value, { sort_keys = true, indent = 3 }))
    end)

    it("indent = 0 is the compact form", function()
      assert.equal("[1,2]", core.json_encode({ 1, 2 }, { indent = 0 }))
    end)

    it("refuses unknown options and a bad indent", function()
      assert.has_error(function() core.json_encode({}, { sortkeys = true }) end,
        "bad argument #2 to 'json_encode' (unknown option 'sortkeys')")
      assert.has_error(function() core.json_encode({}, { indent = 1.5 }) end,
        "bad argument #2 to 'json_encode' (indent must be an integer from 0 to 32)")
      assert.has_error(function() core.json_encode({}, { indent = -1 }) end,
        "bad argument #2 to 'json_encode' (indent must be an integer from 0 to 32)")
    end)
  end)
end)

describe("core.json_decode with drop_nulls", function()
  local core = require "isc.core"

  it("leaves out the object members that are null, at any depth, and keeps nulls in arrays", function()
    local v = core.json_decode('{"a":null,"b":[null,1],"c":{"d":null,"e":2},"f":false}', { drop_nulls = true })
    assert.is_nil(v.a)
    assert.equal(core.null, v.b[1])
    assert.equal(2, #v.b)
    assert.is_nil(v.c.d)
    assert.equal(2, v.c.e)
    assert.is_false(v.f)
    assert.equal('{"b":[null,1],"c":{"e":2},"f":false}', core.json_encode(v, { sort_keys = true }))
  end)

  it("keeps them by default, and refuses an unknown option", function()
    assert.equal(core.null, core.json_decode('{"a":null}').a)
    local ok, err = pcall(core.json_decode, "{}", { dropnulls = true })
    assert.is_false(ok)
    assert.matches("unknown option 'dropnulls'", err)
  end)
end)
