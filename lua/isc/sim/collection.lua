-- ISC's "standard collection parameters" on a list endpoint: limit (with the
-- endpoint's default and maximum), offset, count -> X-Total-Count, filters
-- and sorters; pages are built by concatenating each item's JSON.
local filter = require "isc.sim.filter"
local http = require "isc.sim.http"

local M = {}

-- A non-negative integer written in decimal digits, or nil.
local function whole(s)
  return s and s:match("^%s*%d+%s*$") and tonumber(s) or nil
end

---Reads limit, offset and count.
---@param q table parsed query string
---@param default integer default limit
---@param max integer maximum limit
---@return table|nil {limit, offset, count}, table|nil 400 response
function M.paging(q, default, max)
  local limit, offset = default, 0
  if q.limit and q.limit ~= "" then
    limit = whole(q.limit)
    if not limit or limit > max then
      return nil, http.bad_request(string.format("limit %q is invalid: this endpoint accepts an integer from 0 to %d", q.limit, max))
    end
  end
  if q.offset and q.offset ~= "" then
    offset = whole(q.offset)
    if not offset or offset > 2147483647 then
      return nil, http.bad_request(string.format("offset %q is invalid: expected an integer >= 0", q.offset))
    end
  end
  local count = false
  if q.count and q.count ~= "" then
    local c = q.count:lower()
    if c ~= "true" and c ~= "false" then
      return nil, http.bad_request(string.format("count %q is invalid: expected true or false", q.count))
    end
    count = c == "true"
  end
  return { limit = math.tointeger(limit), offset = math.tointeger(offset), count = count }
end

---Reads paging, filters and sorters in one go.
---@param q table parsed query string (filters may also come from a body)
---@param spec {default: integer, max: integer, fields: table, sorters: table}
---@param filters? string filter expression (default q.filters)
---@return table|nil {limit, offset, count, predicate, sort}, table|nil 400 response
function M.params(q, spec, filters)
  local p, err = M.paging(q, spec.default, spec.max)
  if not p then return nil, err end
  filters = filters or q.filters
  if filters and not filters:match("^%s*$") then
    local pred, msg = filter.predicate(filters, spec.fields)
    if not pred then return nil, http.bad_request(msg) end
    p.predicate = pred
  end
  if q.sorters and not q.sorters:match("^%s*$") then
    local keys, msg = filter.parse_sorters(q.sorters, spec.sorters)
    if not keys then return nil, http.bad_request(msg) end
    p.sort = keys
  end
  return p
end

---Answers a page of rows: a JSON array built from each row's encoding, with
---X-Total-Count when asked for.
---@param rows table all matching rows, in order
---@param p table from M.params
---@param encode fun(row): string
---@return table response
function M.page(rows, p, encode)
  local parts = {}
  local last = math.min(#rows, p.offset + p.limit)
  for i = p.offset + 1, last do parts[#parts + 1] = encode(rows[i]) end
  local headers = {}
  if p.count then headers["X-Total-Count"] = tostring(#rows) end
  return http.response(200, "[" .. table.concat(parts, ",") .. "]", headers)
end

---Filters and sorts rows (ties broken by id), as p asks.
---@param rows table
---@param p table from M.params
---@param id fun(row): string
---@return table
function M.select(rows, p, id)
  if p.predicate then
    local out = {}
    for _, row in ipairs(rows) do
      if p.predicate(row) then out[#out + 1] = row end
    end
    rows = out
  end
  if p.sort then rows = filter.sort(rows, p.sort, id) end
  return rows
end

return M
