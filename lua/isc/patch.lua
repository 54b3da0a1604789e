-- JSON Patch (RFC 6902) and JSON Pointer (RFC 6901) over decoded JSON, for the
-- simulator's PATCH and the client's --dry-run; arrays carry core.array_mt, null is core.null.
local core = require "isc.core"

local M = {}

local function is_array(v)
  return type(v) == "table" and getmetatable(v) == core.array_mt
end

---@param v any
---@return any a deep copy (arrays keep their mark)
function M.copy(v)
  if type(v) ~= "table" or v == core.null then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = M.copy(x) end
  return setmetatable(out, getmetatable(v))
end

---@return boolean whether a and b are the same JSON value
function M.equal(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b
  end
  if is_array(a) ~= is_array(b) then return false end
  for k, x in pairs(a) do
    if not M.equal(x, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

---Splits a JSON Pointer into unescaped tokens.
---@param pointer string
---@return string[]|nil tokens, string|nil message
function M.tokens(pointer)
  if type(pointer) ~= "string" then return nil, "path must be a string" end
  if pointer == "" then return {} end
  if pointer:sub(1, 1) ~= "/" then return nil, string.format("path %q must start with '/'", pointer) end
  local out = {}
  for tok in (pointer:sub(2) .. "/"):gmatch("([^/]*)/") do
    out[#out + 1] = tok:gsub("~1", "/"):gsub("~0", "~")
  end
  return out
end

-- The array index a token names (0-based in the pointer); "-" is the end.
local function index(arr, tok, for_add)
  if tok == "-" and for_add then return #arr + 1 end
  if not tok:match("^%d+$") or (#tok > 1 and tok:sub(1, 1) == "0") then return nil end
  local i = tonumber(tok) + 1
  if i > #arr + (for_add and 1 or 0) then return nil end
  return i
end

local function fail(fmt, ...)
  error({ patch_error = string.format(fmt, ...) }, 0)
end

-- Walks to the container of the last token.
local function parent(doc, toks, pointer)
  local node = doc
  for k = 1, #toks - 1 do
    local tok = toks[k]
    if is_array(node) then
      local i = index(node, tok, false)
      node = i and node[i]
    elseif type(node) == "table" then
      node = node[tok]
    else
      node = nil
    end
    if type(node) ~= "table" then fail("path %s does not exist", pointer) end
  end
  return node, toks[#toks]
end

-- The value at a pointer (raises if absent).
local function get(doc, pointer)
  local toks = assert(M.tokens(pointer))
  if #toks == 0 then return doc end
  local node, last = parent(doc, toks, pointer)
  local v
  if is_array(node) then
    local i = index(node, last, false)
    v = i and node[i]
  else
    v = node[last]
  end
  if v == nil then fail("path %s does not exist", pointer) end
  return v
end

-- Removes and returns the value at a pointer.
local function remove(doc, pointer)
  local toks = assert(M.tokens(pointer))
  if #toks == 0 then fail("cannot remove the whole document") end
  local node, last = parent(doc, toks, pointer)
  if is_array(node) then
    local i = index(node, last, false)
    if not i then fail("path %s does not exist", pointer) end
    return table.remove(node, i)
  end
  local v = node[last]
  if v == nil then fail("path %s does not exist", pointer) end
  node[last] = nil
  return v
end

-- Adds (inserting into arrays) or replaces the value at a pointer.
local function add(doc, pointer, value, replace)
  local toks = assert(M.tokens(pointer))
  if #toks == 0 then fail("cannot replace the whole document") end
  local node, last = parent(doc, toks, pointer)
  if is_array(node) then
    local i = index(node, last, not replace)
    if not i then fail("path %s is not a valid array position", pointer) end
    if replace then node[i] = value else table.insert(node, i, value) end
  else
    if replace and node[last] == nil then fail("path %s does not exist", pointer) end
    node[last] = value
  end
end

-- Applies operation n of a patch in place.
local function apply_op(doc, op, n)
  if type(op) ~= "table" or is_array(op) then fail("operation %d must be an object", n) end
  local path = op.path
  local ok, err = M.tokens(path)
  if not ok then fail("operation %d: %s", n, err) end
  local kind = op.op
  local needs_value = kind == "add" or kind == "replace" or kind == "test"
  if needs_value and op.value == nil then fail("operation %d (%s) needs a value", n, kind) end
  if kind == "add" then
    add(doc, path, M.copy(op.value), false)
  elseif kind == "remove" then
    remove(doc, path)
  elseif kind == "replace" then
    add(doc, path, M.copy(op.value), true)
  elseif kind == "move" or kind == "copy" then
    local _, ferr = M.tokens(op.from)
    if ferr then fail("operation %d: from: %s", n, ferr) end
    if kind == "move" then
      if path:sub(1, #op.from + 1) == op.from .. "/" then fail("operation %d: cannot move a value into itself", n) end
      add(doc, path, remove(doc, op.from), false)
    else
      add(doc, path, M.copy(get(doc, op.from)), false)
    end
  elseif kind == "test" then
    if not M.equal(get(doc, path), op.value) then fail("test failed: %s is not the given value", path) end
  else
    fail("operation %d: op must be one of add, remove, replace, move, copy, test", n)
  end
end

---Applies a patch to a copy of doc.
---@param doc table
---@param ops table array of JsonPatchOperation
---@return table|nil patched copy, string|nil message
function M.apply(doc, ops)
  local out = M.copy(doc)
  local ok, err = pcall(function()
    for n, op in ipairs(ops) do apply_op(out, op, n - 1) end
  end)
  if ok then return out end
  if type(err) == "table" and err.patch_error then return nil, "Invalid patch: " .. err.patch_error end
  error(err, 0)
end

return M
