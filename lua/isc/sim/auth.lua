-- OAuth for the simulated tenant: the client-credentials token endpoint as
-- official clients call it (urlencoded, multipart or query parameters, or
-- HTTP Basic), JWT-shaped tokens that expire on the sim clock, and the
-- gateway's 401 answers.
local core = require "isc.core"
local http = require "isc.sim.http"
local rng = require "isc.sim.rng"

local M = {}

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Base64 (standard alphabet, padded) of a string.
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local chunk = {}
    for k = 1, 4 do
      local idx = (n >> (6 * (4 - k))) & 63
      chunk[k] = B64:sub(idx + 1, idx + 1)
    end
    if not b then chunk[3], chunk[4] = "=", "=" elseif not c then chunk[4] = "=" end
    out[#out + 1] = table.concat(chunk)
  end
  return table.concat(out)
end

local function b64url(s)
  return (b64(s):gsub("+", "-"):gsub("/", "_"):gsub("=", ""))
end

-- Decodes standard base64 (for HTTP Basic credentials); nil if malformed.
local function unb64(s)
  s = s:gsub("%s", ""):gsub("=+$", "")
  local bits, nbits, out = 0, 0, {}
  for ch in s:gmatch(".") do
    local idx = B64:find(ch, 1, true)
    if not idx then return nil end
    bits, nbits = (bits << 6) | (idx - 1), nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((bits >> nbits) & 255)
    end
  end
  return table.concat(out)
end

-- An OAuth error body ({error, error_description}).
local function oauth_error(status, err, description)
  return http.json(status, { error = err, error_description = description })
end

---Creates the tenant's token registry.
---@param seed integer
---@return table
function M.new(seed)
  return { tokens = {}, count = 0, rng = rng.new(seed, "tokens"), tenant_id = rng.new(seed, "tenant"):uuid() }
end

-- A JWT-shaped access token carrying the claims clients look at (exp, client_id).
local function make_token(reg, client_id, exp)
  local r = reg.rng
  local jti = r:uuid()
  local header = core.json_encode({ alg = "HS256", typ = "JWT", kid = "isclua-sim" })
  local claims = core.json_encode({
    tenant_id = reg.tenant_id, internal = false, pod = "sim", org = "acme-sim", strong_auth = false,
    authorities = core.json_array({ "API" }), client_id = client_id, strong_auth_supported = false,
    scope = core.json_array({ "sp:scopes:all" }), exp = math.floor(exp), jti = jti,
  })
  local sig = string.pack(">i8>i8>i8>i8", r:next(), r:next(), r:next(), r:next())
  return b64url(header) .. "." .. b64url(claims) .. "." .. b64url(sig), jti
end

---POST /oauth/token
---@param t table tenant
---@param req table
---@return table response
function M.token(t, req)
  local params = http.form_params(req)
  local basic = (req.headers["authorization"] or ""):match("^[Bb]asic%s+(%S+)")
  if basic then
    local id, secret = (unb64(basic) or ""):match("^([^:]*):(.*)$")
    params.client_id = params.client_id or id
    params.client_secret = params.client_secret or secret
  end
  local grant = params.grant_type
  if not grant or grant == "" then
    return oauth_error(400, "invalid_request", "Missing grant type")
  end
  if grant ~= "client_credentials" then
    return oauth_error(400, "unsupported_grant_type", "Unsupported grant type: " .. grant)
  end
  local cfg = t.config
  if params.client_id ~= cfg.client_id or params.client_secret ~= cfg.client_secret then
    return oauth_error(401, "invalid_client", "Bad credentials")
  end
  local reg = t.auth
  local now = t.clock:now()
  local exp = now + cfg.token_ttl
  local token, jti = make_token(reg, cfg.client_id, exp)
  reg.tokens[token] = { client_id = cfg.client_id, exp = exp }
  reg.count = reg.count + 1
  if reg.count % 1000 == 0 then
    for k, info in pairs(reg.tokens) do
      if info.exp <= now then reg.tokens[k] = nil end
    end
  end
  t.stats.tokens_issued = t.stats.tokens_issued + 1
  return http.json(200, {
    access_token = token, token_type = "bearer", expires_in = math.floor(cfg.token_ttl),
    scope = "sp:scopes:all", accessType = "OFFLINE", tenant_id = reg.tenant_id, internal = false,
    pod = "sim", strong_auth_supported = false, org = "acme-sim", strong_auth = false, enabled = true,
    jti = jti,
  })
end

---Checks the bearer token of an API request.
---@param t table tenant
---@param req table
---@return table|nil token info {client_id, exp}, table|nil 401 response
function M.check(t, req)
  local header = req.headers["authorization"]
  if not header or header == "" then
    return nil, http.json(401, { error = "Full authentication is required to access this resource" })
  end
  local token = header:match("^[Bb]earer%s+(%S+)%s*$")
  local info = token and t.auth.tokens[token]
  if not info then
    return nil, http.json(401, { error = "JWT validation failed: JWT is invalid" })
  end
  if info.exp <= t.clock:now() then
    return nil, http.json(401, { error = "JWT validation failed: JWT is expired" })
  end
  return info
end

return M
