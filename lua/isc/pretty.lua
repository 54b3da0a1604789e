--- Readable text for any Lua value, as the REPL prints results: tables in
--- Lua constructor notation ({ 1, 2 }, { name = "x", ["odd key"] = 1 }),
--- indented and key-sorted within depth and length limits, JSON null as
--- isc.null and an empty JSON array as isc.array{}; objects that describe
--- themselves (clients, pagers, errors, services) through their __tostring,
--- so a client never shows its secret.
local core = require "isc.core"

local M = {}

--- Default limits: nesting depth, items shown of a list or keys of an
--- object, characters of a string, and the width a table may take on one line.
M.defaults = { depth = 5, items = 20, string_length = 400, width = 100, indent = "  " }

local array_mt = getmetatable(core.json_array({}))

-- Lua quoting, readable for the text ISC returns (no line breaks).
local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function quote(s, max)
  local cut = ""
  if #s > max then
    cut = string.format("... (%d chars)", #s)
    s = s:sub(1, max)
  end
  s = s:gsub('[%c"\\]', function(c) return escapes[c] or string.format("\\x%02x", c:byte()) end)
  return '"' .. s .. '"' .. cut
end

-- Tables with their own __tostring (clients, services, errors) say what they are.
local function describes_itself(t)
  local mt = getmetatable(t)
  return type(mt) == "table" and mt ~= array_mt and mt.__tostring ~= nil
end

-- Whether t is a list: keys exactly 1..n (or a table marked as a JSON array).
local function list_length(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  if n == 0 then return getmetatable(t) == array_mt and 0 or nil end
  if n == #t then return n end
  return nil
end

local type_rank = { number = 1, string = 2, boolean = 3 }

-- Sorts keys: numbers, then strings, then the rest by their text.
local function key_order(a, b)
  local ra, rb = type_rank[type(a)] or 4, type_rank[type(b)] or 4
  if ra ~= rb then return ra < rb end
  if ra <= 2 then return a < b end
  return tostring(a) < tostring(b)
end

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do keywords[w] = true end

-- A key as a constructor writes it: name = , ["odd key"] = , [1] = .
local function key_text(k, opts)
  if type(k) == "string" then
    if k:match("^[%a_][%w_]*$") and not keywords[k] then return k end
    return "[" .. quote(k, opts.string_length) .. "]"
  end
  return "[" .. tostring(k) .. "]"
end

-- The defaults, overridden by what opts gives.
local function options(opts)
  local o = {}
  for k, d in pairs(M.defaults) do o[k] = (opts and opts[k]) or d end
  return o
end

local render

-- A table's entries as {key_text|nil, value}, in display order, within
-- the item limit; also how many were left out.
local function entries(t, n, opts)
  local out = {}
  if n then
    for i = 1, math.min(n, opts.items) do out[i] = { nil, t[i] } end
    return out, math.max(0, n - opts.items)
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, key_order)
  for i = 1, math.min(#keys, opts.items) do out[i] = { key_text(keys[i], opts), t[keys[i]] } end
  return out, math.max(0, #keys - opts.items)
end

local function render_table(t, opts, level, seen)
  local n = list_length(t)
  if n == 0 then return "isc.array{}" end
  if next(t) == nil then return "{}" end
  if seen[t] then return "<cycle>" end
  if level >= opts.depth then
    local count = n
    if not count then
      count = 0
      for _ in pairs(t) do count = count + 1 end
    end
    local noun = n and (count == 1 and "item" or "items") or (count == 1 and "key" or "keys")
    return string.format("{ ... %d %s }", count, noun)
  end
  seen[t] = true
  local items, omitted = entries(t, n, opts)
  local parts = {}
  for i, e in ipairs(items) do
    local v = render(e[2], opts, level + 1, seen)
    parts[i] = e[1] and (e[1] .. " = " .. v) or v
  end
  seen[t] = nil
  local more = omitted > 0 and string.format("... %d more (%d in all)", omitted, n or (#items + omitted)) or nil

  -- One line when it fits and holds nothing spread over lines.
  local flat = table.concat(parts, ", ")
  if more then flat = flat .. ", " .. more end
  local width = opts.width - #opts.indent * level
  if not flat:find("\n", 1, true) and #flat + 4 <= width then
    return "{ " .. flat .. " }"
  end
  local pad = opts.indent:rep(level + 1)
  local lines = { "{" }
  for i, p in ipairs(parts) do
    lines[#lines + 1] = pad .. p .. ((i < #parts or more) and "," or "")
  end
  if more then lines[#lines + 1] = pad .. more end
  lines[#lines + 1] = opts.indent:rep(level) .. "}"
  return table.concat(lines, "\n")
end

render = function(v, opts, level, seen)
  local tv = type(v)
  if tv == "string" then return quote(v, opts.string_length) end
  if v == core.null then return "isc.null" end
  if tv == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v then return "0/0" end
    if v == math.huge or v == -math.huge then return v > 0 and "math.huge" or "-math.huge" end
    local short = string.format("%.14g", v)
    return tonumber(short) == v and short or string.format("%.17g", v)
  end
  if tv == "table" and not describes_itself(v) then return render_table(v, opts, level, seen) end
  -- Userdata, functions, and tables describing themselves.
  return tostring(v)
end

--- Formats a value. A string at the top level is shown as it is (as print
--- would); inside a table it is quoted.
---@param v any
---@param opts table|nil {depth=, items=, string_length=, width=, indent=}
---@return string
function M.format(v, opts)
  if type(v) == "string" then return v end
  return render(v, options(opts), 0, {})
end

--- One line for an item of a listing's preview: its id and name, the fields
--- ISC objects are known by, and how many fields more; any other value on
--- one line, cut to the width.
---@param item any
---@param opts table|nil as for format
---@return string
function M.summary(item, opts)
  local o = options(opts)
  if type(item) == "table" and not describes_itself(item) and (item.id ~= nil or item.name ~= nil) then
    local parts, rest = {}, 0
    for k in pairs(item) do
      if k ~= "id" and k ~= "name" then rest = rest + 1 end
    end
    for _, k in ipairs { "id", "name" } do
      if item[k] ~= nil then parts[#parts + 1] = k .. " = " .. render(item[k], o, 1, {}) end
    end
    if rest > 0 then parts[#parts + 1] = string.format("... %d more", rest) end
    return "{ " .. table.concat(parts, ", ") .. " }"
  end
  local width = o.width
  o.width = math.huge
  local text = render(item, o, 0, {})
  return #text > width and text:sub(1, width - 3) .. "..." or text
end

--- Formats several values, as the REPL shows a statement's results: on one
--- line separated by tabs, or one per line when any spans lines.
---@return string
function M.format_all(...)
  local n = select("#", ...)
  local parts, multi = {}, false
  for i = 1, n do
    parts[i] = M.format((select(i, ...)))
    multi = multi or parts[i]:find("\n", 1, true) ~= nil
  end
  return table.concat(parts, multi and "\n" or "\t")
end

return M
