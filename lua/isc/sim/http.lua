-- HTTP details of the simulated tenant: query strings and form bodies as
-- real clients send them, JSON bodies, and responses in ISC's shapes
-- (ErrorResponseDto, the gateway's 401 and 429 bodies).
local core = require "isc.core"
local rng = require "isc.sim.rng"

local M = {}

M.JSON_TYPE = "application/json;charset=UTF-8"

-- Spec texts of the standard errors (shared/openapi responses/*.yaml).
M.TEXT = {
  [400] = "The request was syntactically correct but its content is semantically invalid.",
  [403] = "The server understood the request but refuses to authorize it.",
  [404] = "The server did not find a current representation for the target resource.",
  [405] = "The request method is not supported for the target resource.",
  [409] = "The request could not be completed due to a conflict with the current state of the target resource.",
  [415] = "The request payload is in a format not supported by this method on the target resource.",
  [500] = "An internal fault occurred.",
  [503] = "The service is temporarily unavailable.",
  [504] = "The gateway timed out waiting for the service.",
}

M.DETAIL = {
  [400] = "400.1 Bad Request Content",
  [403] = "403 Forbidden",
  [404] = "404 Not found",
  [405] = "405 Method Not Allowed",
  [409] = "409 Conflict",
  [415] = "415 Unsupported Media Type",
  [500] = "500.0 Internal Fault",
  [503] = "503 Service Unavailable",
  [504] = "504 Gateway Timeout",
}
M.REFERENCE_NOT_FOUND = "400.1.404 Referenced object not found"

local ids = rng.new("isclua sim tracking ids")

---@return string a fresh 32-hex id (trackingId, Slpt-Request-Id)
function M.new_id()
  return ids:hex(32)
end

---Decodes %XX escapes, and `+` as a space when plus is true (query strings
---and form bodies).
---@param s string
---@param plus? boolean
---@return string
function M.url_decode(s, plus)
  if plus then s = s:gsub("+", " ") end
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

---A 400 for a request whose path or query string is not UTF-8 once
---percent-decoded (ISC's URLs carry UTF-8 text), else nil.
---@param req table
---@return table|nil response
function M.not_utf8(req)
  if utf8.len(M.url_decode(req.path)) and utf8.len(M.url_decode(req.query or "", true)) then return nil end
  return M.bad_request("The request URL has bytes that are not UTF-8 once percent-decoded: "
    .. "percent-encode the UTF-8 bytes of the text")
end

---Parses `a=1&b=x+y` (query string or urlencoded body) into a table; the
---first occurrence of a repeated name wins, as in servlet containers.
---@param s string
---@return table<string, string>
function M.parse_pairs(s)
  local out = {}
  for pair in (s or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = M.url_decode(k, true)
    if k ~= "" and out[k] == nil then out[k] = M.url_decode(v, true) end
  end
  return out
end

---Parses a multipart/form-data body into {name = value} (file parts too).
---@param body string
---@param content_type string the header, carrying `boundary=`
---@return table<string, string>|nil
function M.parse_multipart(body, content_type)
  local boundary = content_type:match('boundary="([^"]+)"') or content_type:match("boundary=([^;%s]+)")
  if not boundary then return nil end
  local out = {}
  local delim = "--" .. boundary
  local pos = body:find(delim, 1, true)
  while pos do
    local start = pos + #delim
    if body:sub(start, start + 1) == "--" then break end
    local next_pos = body:find(delim, start, true)
    local part = body:sub(start, (next_pos or #body + 1) - 1)
    part = part:gsub("^\r?\n", ""):gsub("\r?\n$", "")
    local head, value = part:match("^(.-)\r?\n\r?\n(.*)$")
    if head then
      local name = head:match('[Nn][Aa][Mm][Ee]="([^"]*)"') or head:match("[Nn][Aa][Mm][Ee]=([^;%s]+)")
      if name and out[name] == nil then out[name] = value end
    end
    pos = next_pos
  end
  return out
end

---The parameters of a form request: query string, then the body if it is
---urlencoded or multipart (a body parameter overrides the query).
---@param req table
---@return table<string, string>
function M.form_params(req)
  local params = M.parse_pairs(req.query)
  local ctype = (req.headers["content-type"] or ""):lower()
  local body = {}
  if ctype:find("multipart/form-data", 1, true) then
    body = M.parse_multipart(req.body or "", req.headers["content-type"]) or {}
  elseif req.body and req.body ~= "" and not ctype:find("json", 1, true) then
    body = M.parse_pairs(req.body)
  end
  for k, v in pairs(body) do params[k] = v end
  return params
end

---@param status integer
---@param body? string
---@param headers? table
---@return table response
function M.response(status, body, headers)
  headers = headers or {}
  if body and not headers["Content-Type"] then headers["Content-Type"] = M.JSON_TYPE end
  return { status = status, headers = headers, body = body }
end

---@param status integer
---@param value any encoded as JSON
---@param headers? table
---@return table response
function M.json(status, value, headers)
  return M.response(status, core.json_encode(value), headers)
end

---@param texts table|nil list of strings
---@return table ErrorMessageDto[]
local function messages(texts)
  local out = core.json_array({})
  for i, text in ipairs(texts or {}) do
    out[i] = { locale = "en-US", localeOrigin = "DEFAULT", text = text }
  end
  return out
end

---An ErrorResponseDto response.
---@param status integer
---@param text? string the message (default: the spec's text for status)
---@param opts? {detail: string, causes: string[]}
---@return table response
function M.error(status, text, opts)
  opts = opts or {}
  return M.json(status, {
    detailCode = opts.detail or M.DETAIL[status] or tostring(status),
    trackingId = M.new_id(),
    messages = messages({ text or M.TEXT[status] }),
    causes = messages(opts.causes),
  })
end

---The gateway's 429 (body `{"message": " Rate Limit Exceeded "}`, spaces included).
---@param seconds integer Retry-After
---@return table response
function M.too_many_requests(seconds)
  return M.json(429, { message = " Rate Limit Exceeded " }, { ["Retry-After"] = tostring(seconds) })
end

---@param text string what is wrong with the request
---@return table 400 response
function M.bad_request(text)
  return M.error(400, text)
end

---@param what string e.g. `role "abc"`
---@return table 404 response naming what was missing in causes
function M.not_found(what)
  return M.error(404, nil, { causes = { what .. " was not found." } })
end

---@param text string
---@return table 400 response with the "Referenced object not found" code
function M.reference_not_found(text)
  return M.error(400, text, { detail = M.REFERENCE_NOT_FOUND })
end

---Decodes a JSON request body.
---@param req table
---@param required? boolean an empty body is an error (else it decodes to nil)
---@return any value, table|nil error response
function M.json_body(req, required)
  local body = req.body or ""
  if body:match("^%s*$") then
    if required then return nil, M.bad_request("The request body is required.") end
    return nil
  end
  local value, err = core.json_decode(body)
  if value == nil then
    return nil, M.bad_request("The request body is not valid JSON: " .. tostring(err))
  end
  return value
end

---@param v any
---@return boolean whether v is a decoded (or marked) JSON array
function M.is_array(v)
  return type(v) == "table" and getmetatable(v) == core.array_mt
end

return M
