-- Checks decoded JSON values against the official OpenAPI schemas
-- (spec/fixtures/openapi/*.yaml, components.schemas,
-- read with lyaml): property names, types, nullability, enums, required
-- fields, date-time formats, array items; $ref, allOf, anyOf and oneOf.
--   local openapi = require "openapi_check"
--   assert.same({}, openapi.errors("roles", "role", decoded_role))
local core = require "isc.core"
local lyaml = require "lyaml"

local M = {}

local root = os.getenv("ISCLUA_ROOT") or "."
M.FILES = {
  roles = root .. "/spec/fixtures/openapi/roles.yaml",
  propagation = root .. "/spec/fixtures/openapi/role-propagation.yaml",
  lookups = root .. "/spec/fixtures/openapi/lookups.yaml",
}

local docs = {}

local function load(name)
  if not docs[name] then
    local f = assert(io.open(M.FILES[name], "rb"))
    docs[name] = lyaml.load(f:read("a")).components.schemas
    f:close()
  end
  return docs[name]
end

local function resolve(schemas, s)
  while s["$ref"] do
    local name = s["$ref"]:match("^#/components/schemas/(.+)$")
    s = assert(schemas[name], "unknown schema " .. tostring(s["$ref"]))
  end
  return s
end

local DATE_TIME = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.?%d*Z$"

local function check(schemas, s, v, path, errs)
  s = resolve(schemas, s)
  local function err(fmt, ...) errs[#errs + 1] = path .. ": " .. string.format(fmt, ...) end
  -- A nullable reference is written `allOf: [$ref], nullable: true`: null passes without the reference.
  if v == core.null and s.nullable then return end
  if s.allOf then
    for _, sub in ipairs(s.allOf) do check(schemas, sub, v, path, errs) end
  end
  for _, key in ipairs({ "anyOf", "oneOf" }) do
    if s[key] then
      local ok = false
      for _, sub in ipairs(s[key]) do
        local e = {}
        check(schemas, sub, v, path, e)
        if #e == 0 then ok = true break end
      end
      if not ok then err("matches none of %s", key) end
    end
  end
  if v == core.null then
    if not s.nullable and not (s.enum and s.type == nil) then err("is null but not nullable") end
    return
  end
  local t = s.type
  if t == "object" or (not t and s.properties) then
    if type(v) ~= "table" or getmetatable(v) == core.array_mt then return err("expected an object") end
    local props = s.properties or {}
    for k, x in pairs(v) do
      if props[k] then
        check(schemas, props[k], x, path .. "." .. k, errs)
      elseif not s.additionalProperties then
        err("has property %q that the schema does not declare", k)
      end
    end
    for _, k in ipairs(s.required or {}) do
      if v[k] == nil then err("lacks required property %q", k) end
    end
  elseif t == "array" then
    if type(v) ~= "table" or (next(v) ~= nil and getmetatable(v) ~= core.array_mt) then
      return err("expected an array")
    end
    if s.items then
      for i, x in ipairs(v) do check(schemas, s.items, x, string.format("%s[%d]", path, i - 1), errs) end
    end
  elseif t == "string" then
    if type(v) ~= "string" then return err("expected a string, got %s", type(v)) end
    if s.format == "date-time" and not v:match(DATE_TIME) then err("%q is not a UTC date-time", v) end
    if s.maxLength and #v > s.maxLength then err("longer than %d", s.maxLength) end
  elseif t == "boolean" then
    if type(v) ~= "boolean" then return err("expected a boolean, got %s", type(v)) end
  elseif t == "integer" then
    if math.type(v) ~= "integer" then return err("expected an integer") end
  elseif t == "number" then
    if type(v) ~= "number" then return err("expected a number") end
  end
  if s.enum then
    local ok = false
    for _, e in ipairs(s.enum) do
      if e == v then ok = true end
    end
    if not ok then err("%s is not in the enum", tostring(v)) end
  end
end

---Checks a value against a named schema.
---@param doc string "roles", "propagation" or "lookups"
---@param schema string name under components.schemas, e.g. "role"
---@param value any decoded JSON
---@return string[] problems, empty when the value conforms
function M.errors(doc, schema, value)
  local schemas = load(doc)
  local errs = {}
  check(schemas, assert(schemas[schema], "no schema " .. schema), value, schema, errs)
  return errs
end

---Checks each element of an array against a schema.
---@return string[] problems
function M.each_errors(doc, schema, list)
  local errs = {}
  for i, v in ipairs(list) do
    for _, e in ipairs(M.errors(doc, schema, v)) do errs[#errs + 1] = string.format("[%d] %s", i - 1, e) end
  end
  return errs
end

return M
