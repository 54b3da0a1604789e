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

--- Fails with an argument error naming the function.
function M.fail(fname, fmt, ...)
  errors.raise("argument", fname .. ": " .. string.format(fmt, ...))
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
