--- Structured errors: every error isc raises is a table with a `kind` and a
--- `message`, sharing one metatable whose __tostring reads as one line.
local core = require "isc.core"

local M = {}
local mt = core.error_mt

--- Kinds of error, and what they carry besides kind and message:
--- api (status, method, path, detail_code, tracking_id, messages, causes, retry_after, body, location),
--- network (method, url, cause, curl_code, sent), bad_response (status, method, path, body_start),
--- unknown_outcome (method, path, request, status, cause: the mutation was sent
--- and what the tenant did with it cannot be told from what came back),
--- config (looked_at), argument, timeout (last_status, last_error, timeout, elapsed, polls),
--- interrupted (signal), already_running (running_id, cause: a propagation or a --lock),
--- propagation_failed (propagation_id, stage, failure_reason, last_status), sim (the simulator: status),
--- journal (path: the journal of --journal could not be opened, written or read),
--- cancelled (a task ended by task:cancel() or by a stop, see isc.loop).
M.kinds = { "api", "network", "bad_response", "unknown_outcome", "config", "argument", "timeout",
  "interrupted", "already_running", "propagation_failed", "sim", "journal", "cancelled" }

local reasons = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect", [405] = "Method Not Allowed", [409] = "Conflict", [413] = "Payload Too Large",
  [415] = "Unsupported Media Type", [429] = "Too Many Requests", [500] = "Internal Server Error",
  [502] = "Bad Gateway", [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

local function api_line(e)
  local s = string.format("HTTP %d %s on %s %s: %s", e.status, reasons[e.status] or "",
    e.method or "?", e.path or "?", e.message or "")
  local extra = {}
  if e.detail_code then extra[#extra + 1] = "detailCode " .. e.detail_code end
  if e.tracking_id then extra[#extra + 1] = "trackingId " .. e.tracking_id end
  if e.retry_after then extra[#extra + 1] = "retry after " .. e.retry_after .. " s" end
  if #extra > 0 then s = s .. " (" .. table.concat(extra, ", ") .. ")" end
  return s
end

local formats = {
  api = api_line,
  network = function(e)
    return string.format("network error (%s) on %s %s: %s%s", e.cause or "?", e.method or "?",
      e.url or "?", e.message, (e.attempts or 1) > 1 and string.format(" (after %d attempts)", e.attempts) or "")
  end,
  argument = function(e)
    return (e.where and (e.where .. " ") or "") .. e.message
  end,
  unknown_outcome = function(e)
    return string.format("outcome unknown: %s %s was sent and %s; the tenant may or may not have done it: %s",
      e.method or "?", e.path or "?", e.what or "no answer came back", e.message)
  end,
  bad_response = function(e)
    return string.format("bad response to %s %s (HTTP %s): %s", e.method or "?", e.path or "?",
      tostring(e.status), e.message)
  end,
}

mt.__tostring = function(e)
  local f = formats[e.kind]
  return f and f(e) or tostring(e.message)
end

---@param kind string
---@param message string
---@param fields table|nil extra fields
---@return table error
function M.new(kind, message, fields)
  local e = fields or {}
  e.kind, e.message = kind, message
  return setmetatable(e, mt)
end

--- Raises an isc error.
function M.raise(kind, message, fields)
  error(M.new(kind, message, fields), 0)
end

---@return boolean true when v is an isc error (of that kind, if given)
function M.is(v, kind)
  return getmetatable(v) == mt and (kind == nil or v.kind == kind)
end

local function trim(s)
  return type(s) == "string" and s:match("^%s*(.-)%s*$") or nil
end

-- The texts of a list of ErrorMessageDto ({text=}).
local function texts(list)
  local out = {}
  for _, m in ipairs(type(list) == "table" and list or {}) do
    if type(m) == "table" and type(m.text) == "string" then out[#out + 1] = trim(m.text) end
  end
  return out
end

-- ISC's standard message texts, which say no more than the status does.
local GENERIC = {
  ["The request was syntactically correct but its content is semantically invalid."] = true,
  ["The server understood the request but refuses to authorize it."] = true,
  ["The server did not find a current representation for the target resource."] = true,
  ["The request method is not supported for the target resource."] = true,
  ["The request could not be completed due to a conflict with the current state of the target resource."] = true,
  ["The request payload is in a format not supported by this method on the target resource."] = true,
  ["An internal fault occurred."] = true,
}

--- Builds the error for an HTTP error status, from whatever body shape ISC
--- sent: ErrorResponseDto, {error}, {message} or {detailMessage}.
function M.from_response(method, path, status, headers, text)
  local body = text ~= "" and core.json_decode(text) or nil
  local e = {
    status = status, method = method, path = path,
    retry_after = M.retry_after(headers["retry-after"]),
    request_id = headers["slpt-request-id"],
    body = body or (text ~= "" and text or nil),
  }
  if type(body) == "table" then
    e.detail_code = trim(body.detailCode)
    e.tracking_id = trim(body.trackingId)
    e.messages, e.causes = texts(body.messages), texts(body.causes)
    e.message = e.messages[1] or trim(body.error_description) or trim(body.error)
      or trim(body.message) or trim(body.detailMessage)
    -- The standard texts only restate the status; the causes say what was wrong.
    if #e.causes > 0 and (not e.message or GENERIC[e.message]) then
      e.message = table.concat(e.causes, "; ")
    elseif #e.causes > 0 then
      e.message = e.message .. " (" .. table.concat(e.causes, "; ") .. ")"
    end
  end
  if status >= 300 and status < 400 then
    -- Following a redirect would hand the bearer token to another address.
    e.location = headers.location
    e.message = string.format("the server redirected to %s, which isclua does not follow (the token is "
      .. "only sent to base_url); if the tenant moved, set base_url to the new address", e.location or "(no Location)")
  end
  e.message = e.message or (text ~= "" and not body and trim(text:sub(1, 200))) or reasons[status]
    or "no message"
  return M.new("api", e.message, e)
end

local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
  Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

--- Seconds to wait from a Retry-After value: delta-seconds, or an HTTP date
--- taken as its distance from now. nil when absent or unreadable.
function M.retry_after(value, now)
  if not value then return nil end
  -- delay-seconds is digits only (no sign, exponent or hex); a delay too
  -- long to mean anything counts as 2^31 - 1 s, so it stays finite.
  local digits = value:match("^%s*(%d+)%s*$")
  if digits then return math.min(tonumber(digits), 0x7fffffff) end
  local d, mon, y, h, mi, s = value:match("^%s*%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT%s*$")
  if not (d and months[mon]) then return nil end
  local t = require("isc.time").epoch(tonumber(y), months[mon], tonumber(d), tonumber(h), tonumber(mi), tonumber(s))
  return math.max(0, t - (now or os.time()))
end

return M
