-- Plain HTTP calls to a simulated tenant for the sim_* specs: libcurl
-- through the controller's sim:request (never isclua's own client), with a
-- token fetched the way client-credentials clients do, JSON in and out.
--   local api = require("sim_api").new(sim)
--   local status, body, headers = api:call("GET", "/v2024/roles", { query = "limit=2" })
local core = require "isc.core"

local M = {}

local Api = {}
Api.__index = Api

---@param sim table from require("isc.sim").start
---@param client? {id: string, secret: string} another API client of it (default: sim's own)
---@return table api
function M.new(sim, client)
  return setmetatable({ sim = sim, client = client }, Api)
end

---@param s string
---@return string s percent-encoded for a query string
function M.encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

---Builds a query string from a table (keys sorted) or returns a string as is.
---@param q string|table|nil
---@return string
function M.query(q)
  if type(q) ~= "table" then return q or "" end
  local keys = {}
  for k in pairs(q) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = M.encode(k) .. "=" .. M.encode(q[k]) end
  return table.concat(parts, "&")
end

---A fresh access token (urlencoded client-credentials request).
---@return string
function Api:new_token()
  local sim = self.sim
  local client = self.client or { id = sim.client_id, secret = sim.client_secret }
  local status, _, body = sim:request {
    method = "POST", path = "/oauth/token",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
    body = "grant_type=client_credentials&client_id=" .. M.encode(client.id)
      .. "&client_secret=" .. M.encode(client.secret),
  }
  assert(status == 200, "token request failed: " .. body)
  return core.json_decode(body).access_token
end

---@return string the api's token (fetched once)
function Api:token()
  self.cached_token = self.cached_token or self:new_token()
  return self.cached_token
end

---One API call.
---@param method string
---@param path string e.g. /v2024/roles
---@param opts? {query: string|table, json: any, body: string, headers: table, token: string|false, experimental: boolean}
---@return integer status, any body (decoded JSON, or the raw string when not JSON), table headers
function Api:call(method, path, opts)
  opts = opts or {}
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if opts.token ~= false then headers.Authorization = "Bearer " .. (opts.token or self:token()) end
  if opts.experimental then headers["X-SailPoint-Experimental"] = "true" end
  local body = opts.body
  if opts.json ~= nil then
    body = core.json_encode(opts.json)
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
  end
  local q = M.query(opts.query)
  local status, rh, raw = self.sim:request {
    method = method, path = path .. (q ~= "" and ("?" .. q) or ""), headers = headers, body = body,
  }
  local decoded = raw ~= "" and core.json_decode(raw)
  if decoded == nil or decoded == false then decoded = raw end
  return status, decoded, rh
end

---Every item of a list endpoint, paging through it 50 at a time.
---@param path string e.g. /v2024/roles
---@return table[]
function Api:all(path)
  local out, offset = {}, 0
  repeat
    local status, page = self:call("GET", path, { query = { offset = offset, limit = 50 } })
    assert(status == 200, "listing " .. path .. " failed")
    for _, item in ipairs(page) do out[#out + 1] = item end
    offset = offset + 50
  until #page < 50
  return out
end

---Asserts (with luassert, busted's assert) an ErrorResponseDto answer: status, schema,
---detailCode, a tracking id and, when given, the message text.
---@param doc string "roles" or "propagation" (the OpenAPI file)
---@param status integer the answer's status
---@param expected integer
---@param body table
---@param detail string
---@param text? string
function M.assert_error(doc, status, expected, body, detail, text)
  local assert = require "luassert"
  assert.equal(expected, status)
  assert.same({}, require("openapi_check").errors(doc, "errorresponsedto", body))
  assert.equal(detail, body.detailCode)
  assert.matches("^%x+$", body.trackingId)
  if text then assert.equal(text, M.message(body)) end
end

---The message text of an ErrorResponseDto body.
---@param body table
---@return string
function M.message(body)
  return type(body) == "table" and body.messages and body.messages[1] and body.messages[1].text or tostring(body)
end

return M
