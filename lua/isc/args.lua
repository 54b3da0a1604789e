--- Checks of the options tables that isc functions take, before any request
--- is sent, with errors that name the function and the option.
local errors = require "isc.errors"

local M = {}

local checks = {
  string = function(v) return type(v) == "string" end,
  integer = function(v) return math.type(v) == "integer" or (math.type(v) == "float" and v == math.floor(v)) end,
  number = function(v) return type(v) == "number" end,
  boolean = function(v) return type(v) == "boolean" end,
  table = function(v) return type(v) == "table" end,
  ["function"] = function(v) return type(v) == "function" end,
  list = function(v) return type(v) == "table" end,
}

local function accepts(want, v)
  for t in want:gmatch("[^|]+") do
    if checks[t](v) then return true end
  end
  return false
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- Where isc's own Lua files come from ("@lua/isc/" when embedded), so that
-- errors can point past them to the script's line.
local ISC_SOURCE = debug.getinfo(1, "S").source:match("^(.*[/@])args%.lua$")

--- Whether a chunk's source (debug.getinfo(...).source) is one of isc's files.
---@param source string
function M.is_isc_source(source)
  return source:sub(1, #ISC_SOURCE) == ISC_SOURCE
end

-- "file:line:" of the innermost Lua frame outside isc: the line of the
-- script that made the call. nil when isc was called from C alone.
local function caller()
  for level = 3, 100 do
    local info = debug.getinfo(level, "Sl")
    if not info then return nil end
    if info.what ~= "C" and not M.is_isc_source(info.source) then
      return string.format("%s:%d:", info.short_src, info.currentline or 0)
    end
  end
end

--- Fails with an argument error naming the function; `where` is the line of
--- the script that called it.
function M.fail(fname, fmt, ...)
  errors.raise("argument", fname .. ": " .. string.format(fmt, ...), { where = caller() })
end

-- Edit distance between two short names, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- The name among `names` closest to `name`, if it is close enough to be a
--- typo of it (at most two edits, fewer for short names).
---@param name string
---@param names string[]
---@return string|nil
function M.closest(name, names)
  local best, best_d = nil, math.min(2, #name // 3 + 1)
  for _, n in ipairs(names) do
    local d = distance(name, n)
    if d <= best_d and (not best or d < distance(name, best)) then best, best_d = n, d end
  end
  return best
end

--- Makes a service class (c.roles, c.propagation) say what went wrong when
--- it is misused: a method called with a dot (c.roles.get(id)) instead of a
--- colon, and a name that is not one of its methods (c.roles:lsit(), with
--- the closest name suggested).
---@param class table the metatable of the service objects, holding the methods
---@param label string how scripts reach it, e.g. "c.roles"
function M.service(class, label)
  local names = {}
  for name, f in pairs(class) do
    if type(f) == "function" and not name:match("^_") then
      names[#names + 1] = name
      class[name] = function(self, ...)
        if getmetatable(self) ~= class then
          M.fail(label:match("[^.]+$") .. ":" .. name, "call it with a colon: %s:%s(...)", label, name)
        end
        return f(self, ...)
      end
    end
  end
  table.sort(names)
  class.__index = function(_, key)
    local v = class[key]
    if v ~= nil or type(key) ~= "string" or key:match("^_") then return v end
    local near = M.closest(key, names)
    M.fail(label, "no function '%s'%s (functions are: %s)", key, near and (", did you mean '" .. near .. "'?") or "",
      table.concat(names, ", "))
  end
end

--- Checks `opts` against `spec` ({name = "string|integer|..."}); returns opts
--- (an empty table for nil). Integers given as integral floats are converted.
---@param fname string the function, as the script wrote it (e.g. "roles:list")
---@param opts table|nil
---@param spec table<string,string>
---@return table
function M.check(fname, opts, spec)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    M.fail(fname, "options must be a table, got %s", type(opts))
  end
  for k, v in pairs(opts) do
    local want = spec[k]
    if not want then
      M.fail(fname, "unknown option '%s' (options are: %s)", tostring(k), table.concat(sorted_keys(spec), ", "))
    end
    if not accepts(want, v) then
      M.fail(fname, "option '%s' must be %s, got %s", k, want:gsub("|", " or "), type(v))
    end
    if want:find("integer") and math.type(v) == "float" then opts[k] = math.tointeger(v) end
  end
  return opts
end

--- Checks one positional argument.
function M.need(fname, n, value, want)
  if not accepts(want, value) then
    M.fail(fname, "argument #%d must be %s, got %s", n, want:gsub("|", " or "), type(value))
  end
  return value
end

return M
