-- ISC's collection grammar: the `filters` expression (parsed to an AST with
-- messages that point at the problem, then compiled against one endpoint's
-- fields and operators into a predicate) and the `sorters` list. As strict
-- as ISC: strings in double quotes, booleans and numbers bare, sorters
-- without "+" or empty fields.
--
-- A field table maps each filterable field to
--   { type = "string"|"datetime"|"boolean"|"number", ops = "eq,in,...",
--     get = function(item) -> value|nil, many = true|nil, hint = string|nil }
-- where a datetime getter returns epoch milliseconds (an integer), a
-- field with `many` gets a list of values, any of which may match, and a
-- hint ends the message that refuses one of the field's operators.
local clock = require "isc.sim.clock"

local M = {}

local CMP_OPS = { eq = true, ne = true, gt = true, ge = true, lt = true, le = true, co = true, sw = true }
local LIST_OPS = { ["in"] = true, ca = true }
local UNARY_OPS = { pr = true, isnull = true }
local KEYWORDS = { ["and"] = true, ["or"] = true, ["not"] = true }

local function is_operator(w)
  return CMP_OPS[w] or LIST_OPS[w] or UNARY_OPS[w]
end

-- Splits the expression into tokens {kind = "(" | ")" | "," | "string" | "word", text, pos}.
local function tokenize(s)
  local tokens, i, n = {}, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif c == "'" then
      local text = s:match("^'([^']*)'", i)
      return nil, string.format("single quotes at position %d: strings take double quotes (\"%s\")", i,
        text or s:sub(i + 1))
    elseif c == "(" or c == ")" or c == "," then
      tokens[#tokens + 1] = { kind = c, text = c, pos = i }
      i = i + 1
    elseif c == '"' then
      local buf, j = {}, i + 1
      while true do
        local d = s:sub(j, j)
        if d == "" then
          return nil, string.format("unterminated string starting at position %d", i)
        elseif d == "\\" then
          local e = s:sub(j + 1, j + 1)
          if e == "" then return nil, string.format("unterminated string starting at position %d", i) end
          buf[#buf + 1], j = e, j + 2
        elseif d == '"' then
          break
        else
          buf[#buf + 1], j = d, j + 1
        end
      end
      tokens[#tokens + 1] = { kind = "string", text = table.concat(buf), pos = i }
      i = j + 1
    else
      local j = i
      while j <= n and not s:sub(j, j):match('[%s(),"]') do j = j + 1 end
      tokens[#tokens + 1] = { kind = "word", text = s:sub(i, j - 1), pos = i }
      i = j
    end
  end
  return tokens
end

local Parser = {}
Parser.__index = Parser

function Parser:peek() return self.tokens[self.i] end

function Parser:take()
  local t = self.tokens[self.i]
  self.i = self.i + 1
  return t
end

function Parser:fail(msg, tok)
  tok = tok or self:peek()
  local where = tok and string.format(" at position %d (near '%s')", tok.pos, tok.text) or " at the end of the filter"
  error({ filter_error = "Invalid filter: " .. msg .. where }, 0)
end

function Parser:is_word(text)
  local t = self:peek()
  return t and t.kind == "word" and t.text == text
end

local FIELD_PATTERN = "^[%a][%w_]*$"

local function is_field(text)
  for part in (text .. "."):gmatch("([^.]*)%.") do
    if not part:match(FIELD_PATTERN) then return false end
  end
  return true
end

function Parser:field()
  local t = self:take()
  if not t then self:fail("expected a field name") end
  if t.kind ~= "word" or not is_field(t.text) or KEYWORDS[t.text] then
    self:fail("expected a field name", t)
  end
  return t.text
end

function Parser:value(after)
  local t = self:take()
  if not t then self:fail("expected a value after '" .. after .. "'") end
  if t.kind == "string" then return { text = t.text, quoted = true, pos = t.pos } end
  if t.kind ~= "word" or KEYWORDS[t.text] then self:fail("expected a value after '" .. after .. "'", t) end
  return { text = t.text, quoted = false, pos = t.pos }
end

function Parser:value_list(op)
  local open = self:take()
  if not open or open.kind ~= "(" then self:fail("expected '(' and a list of values after '" .. op .. "'", open) end
  local values = { self:value("(") }
  while true do
    local t = self:take()
    if t and t.kind == ")" then break end
    if not t or t.kind ~= "," then self:fail("expected ',' or ')' in the value list", t) end
    values[#values + 1] = self:value(",")
  end
  return values
end

function Parser:predicate()
  local start = self:peek()
  if self:is_word("pr") and self.tokens[self.i + 1] and self.tokens[self.i + 1].kind == "word"
      and not is_operator(self.tokens[self.i + 1].text:lower()) then
    self:take()
    return { kind = "unary", op = "pr", field = self:field(), pos = start.pos }
  end
  local field = self:field()
  local t = self:take()
  if not t then self:fail("expected an operator after '" .. field .. "'") end
  local op = t.kind == "word" and t.text or ""
  if not is_operator(op) then
    if is_operator(op:lower()) then
      self:fail("operators are lowercase: write '" .. op:lower() .. "'", t)
    end
    self:fail("unknown operator after '" .. field .. "' (expected one of eq, ne, gt, ge, lt, le, co, sw, in, ca, pr, isnull)", t)
  end
  if CMP_OPS[op] then
    return { kind = "cmp", op = op, field = field, value = self:value(op), pos = start.pos }
  elseif LIST_OPS[op] then
    return { kind = "list", op = op, field = field, values = self:value_list(op), pos = start.pos }
  end
  return { kind = "unary", op = op, field = field, pos = start.pos }
end

function Parser:primary()
  local t = self:peek()
  if t and t.kind == "(" then
    self:take()
    local e = self:expr()
    local close = self:take()
    if not close or close.kind ~= ")" then self:fail("expected ')'", close) end
    return e
  end
  return self:predicate()
end

function Parser:unary()
  if self:is_word("not") then
    self:take()
    return { kind = "not", self:unary() }
  end
  return self:primary()
end

function Parser:binary(word, operand)
  local left = operand(self)
  while self:is_word(word) do
    self:take()
    left = { kind = word, left, operand(self) }
  end
  return left
end

function Parser:conj() return self:binary("and", Parser.unary) end

function Parser:expr() return self:binary("or", Parser.conj) end

---Parses a filter expression.
---@param s string
---@return table|nil ast, string|nil message (for a 400)
function M.parse(s)
  local tokens, err = tokenize(s)
  if not tokens then return nil, "Invalid filter: " .. err end
  if #tokens == 0 then return nil, "Invalid filter: the expression is empty" end
  local p = setmetatable({ tokens = tokens, i = 1 }, Parser)
  local ok, ast = pcall(function()
    local e = p:expr()
    local t = p:peek()
    if t then
      if t.kind == "word" and KEYWORDS[t.text:lower()] then
        p:fail("keywords are lowercase: write '" .. t.text:lower() .. "'", t)
      end
      p:fail("expected 'and', 'or' or the end of the filter", t)
    end
    return e
  end)
  if ok then return ast end
  if type(ast) == "table" and ast.filter_error then return nil, ast.filter_error end
  error(ast, 0)
end

-- The keys of a set, sorted and comma-separated (for messages).
local function names(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return table.concat(list, ", ")
end

-- The set of operators a field spec allows (memoized on the spec).
local function ops_of(spec)
  if not spec.op_set then
    spec.op_set = {}
    for op in spec.ops:gmatch("[^,%s]+") do spec.op_set[op] = true end
  end
  return spec.op_set
end

local function fail(msg) error({ filter_error = msg }, 0) end

-- Converts a literal to the field's type: lowercased string (quoted), epoch
-- ms (quoted or not), boolean or number (bare).
local function coerce(field, spec, v)
  if spec.type == "string" then
    if not v.quoted then
      fail(string.format('Invalid filter: %s takes a string in double quotes: write "%s" (position %d)',
        field, v.text, v.pos))
    end
    return v.text:lower()
  end
  if v.quoted and spec.type ~= "datetime" then
    fail(string.format('Invalid filter: %s takes a bare %s, not a string: write %s (position %d)', field,
      spec.type == "boolean" and "true or false" or "number", v.text, v.pos))
  end
  if spec.type == "datetime" then
    local t = clock.parse_iso(v.text)
    if not t then fail(string.format('Invalid filter: "%s" is not an ISO-8601 date-time (field %s)', v.text, field)) end
    return math.floor(t * 1000 + 0.5)
  end
  if spec.type == "boolean" then
    local b = v.text:lower()
    if b ~= "true" and b ~= "false" then
      fail(string.format('Invalid filter: "%s" is not a boolean (field %s takes true or false)', v.text, field))
    end
    return b == "true"
  end
  local n = tonumber(v.text)
  if not n then fail(string.format('Invalid filter: "%s" is not a number (field %s)', v.text, field)) end
  return n
end

-- Normalizes an item's value for comparison (lowercase strings).
local function norm(spec, x)
  if x ~= nil and spec.type == "string" then return tostring(x):lower() end
  return x
end

local ORDER = {
  gt = function(a, b) return a > b end,
  ge = function(a, b) return a >= b end,
  lt = function(a, b) return a < b end,
  le = function(a, b) return a <= b end,
}

-- Builds the predicate of one AST node, raising {filter_error} on what the fields refuse.
local function compile_node(node, fields)
  if node.kind == "and" or node.kind == "or" then
    local a, b = compile_node(node[1], fields), compile_node(node[2], fields)
    if node.kind == "and" then return function(x) return a(x) and b(x) end end
    return function(x) return a(x) or b(x) end
  elseif node.kind == "not" then
    local a = compile_node(node[1], fields)
    return function(x) return not a(x) end
  end
  local spec = fields[node.field]
  if not spec then
    fail(string.format('Invalid filter: filtering is not supported on field "%s" here. Supported fields: %s',
      node.field, names(fields)))
  end
  local op = node.op
  if not ops_of(spec)[op] then
    fail(string.format('Invalid filter: operator "%s" is not supported for field "%s". Supported operators: %s%s',
      op, node.field, names(ops_of(spec)), spec.hint and (". " .. spec.hint) or ""))
  end
  if spec.many then
    -- A field with several values per item (a group's members): the item passes when one value does.
    local one = compile_node(node, { [node.field] = { type = spec.type, ops = spec.ops, get = function(v) return v end } })
    local values = spec.get
    return function(x)
      for _, v in ipairs(values(x) or {}) do if one(v) then return true end end
      return false
    end
  end
  local get = spec.get
  if op == "pr" then return function(x) return get(x) ~= nil end end
  if op == "isnull" then return function(x) return get(x) == nil end end
  if node.kind == "list" then
    local wanted = {}
    for i, v in ipairs(node.values) do wanted[i] = coerce(node.field, spec, v) end
    if op == "in" then
      local set = {}
      for _, w in ipairs(wanted) do set[w] = true end
      return function(x) local v = norm(spec, get(x)); return v ~= nil and set[v] == true end
    end
    return function(x)
      local have = {}
      for _, v in ipairs(get(x) or {}) do have[norm(spec, v)] = true end
      for _, w in ipairs(wanted) do if not have[w] then return false end end
      return true
    end
  end
  local want = coerce(node.field, spec, node.value)
  if op == "eq" then return function(x) return norm(spec, get(x)) == want end end
  if op == "ne" then return function(x) return norm(spec, get(x)) ~= want end end
  if op == "co" or op == "sw" then
    if spec.type ~= "string" then
      fail(string.format('Invalid filter: operator "%s" needs a string field; "%s" is not one', op, node.field))
    end
    if op == "co" then
      return function(x) local v = norm(spec, get(x)); return v ~= nil and v:find(want, 1, true) ~= nil end
    end
    return function(x) local v = norm(spec, get(x)); return v ~= nil and v:sub(1, #want) == want end
  end
  if spec.type == "boolean" then
    fail(string.format('Invalid filter: operator "%s" cannot order the boolean field "%s"', op, node.field))
  end
  local cmp = ORDER[op]
  return function(x) local v = norm(spec, get(x)); return v ~= nil and cmp(v, want) end
end

---Checks an AST against an endpoint's fields and builds its predicate.
---@param ast table from M.parse
---@param fields table field name -> {type, ops, get}
---@return (fun(item): boolean)|nil predicate, string|nil message
function M.compile(ast, fields)
  local ok, pred = pcall(compile_node, ast, fields)
  if ok then return pred end
  if type(pred) == "table" and pred.filter_error then return nil, pred.filter_error end
  error(pred, 0)
end

---Parses and compiles in one step.
---@param s string
---@param fields table
---@return (fun(item): boolean)|nil predicate, string|nil message
function M.predicate(s, fields)
  local ast, err = M.parse(s)
  if not ast then return nil, err end
  return M.compile(ast, fields)
end

---Parses `name,-created` against the allowed sorters (field name -> getter).
---@param s string
---@param allowed table<string, function>
---@return table|nil keys {{field=, get=, desc=}...}, string|nil message
function M.parse_sorters(s, allowed)
  local keys = {}
  for part in (s .. ","):gmatch("([^,]*),") do
    part = part:match("^%s*(.-)%s*$")
    if part == "" or part == "-" then
      return nil, string.format('Invalid sorters: "%s" has an empty field: separate the fields by single commas', s)
    end
    if part:sub(1, 1) == "+" then
      return nil, string.format('Invalid sorters: "%s": there is no "+" (ascending is the default); write "%s"',
        part, part:sub(2))
    end
    local desc = part:sub(1, 1) == "-"
    local field = desc and part:sub(2) or part
    if not allowed[field] then
      local list = {}
      for k in pairs(allowed) do list[#list + 1] = k end
      table.sort(list)
      return nil, string.format('Invalid sorters: sorting is not supported on field "%s" here. Supported sorters: %s',
        field, table.concat(list, ", "))
    end
    keys[#keys + 1] = { field = field, get = allowed[field], desc = desc }
  end
  return keys
end

-- Orders two sort keys: nil first, strings without case, false before true.
local function less(a, b)
  if a == nil then return b ~= nil end
  if b == nil then return false end
  if type(a) == "boolean" then return (not a) and b end
  return a < b
end

---Sorts items by the keys (then by tiebreak, ascending) into a new array.
---@param items table
---@param keys table from M.parse_sorters
---@param tiebreak fun(item): string unique per item (the id)
---@return table
function M.sort(items, keys, tiebreak)
  local rows = {}
  for i, item in ipairs(items) do
    local row = { item = item, tie = tiebreak(item) }
    for k, key in ipairs(keys) do
      local v = key.get(item)
      if type(v) == "string" then v = v:lower() end
      row[k] = v
    end
    rows[i] = row
  end
  table.sort(rows, function(a, b)
    for k, key in ipairs(keys) do
      local x, y = a[k], b[k]
      if x ~= y then
        if key.desc then return less(y, x) end
        return less(x, y)
      end
    end
    return a.tie < b.tie
  end)
  local out = {}
  for i, row in ipairs(rows) do out[i] = row.item end
  return out
end

return M
