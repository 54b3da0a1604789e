-- OAuth for the simulated tenant: the client-credentials token endpoint as
-- official clients call it (urlencoded, multipart or query parameters, or
-- HTTP Basic), JWT-shaped tokens that expire on the sim clock, the gateway's
-- 401 answers, and what each client may do: an admin everything, a
-- read-only client no change (403), a sub-admin what its identity may.
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

-- Every API client of the tenant: client_id's (an admin), then the clients setting's.
local function clients(cfg)
  local list = { { id = cfg.client_id, secret = cfg.client_secret, role = "admin" } }
  for _, c in ipairs(cfg.clients or {}) do list[#list + 1] = c end
  return list
end

-- The scopes of a client's tokens (a sub-admin's limits come from its identity).
local function scopes(client)
  if client.role == "read-only" then return { "idn:role-unchecked:read", "idn:role-checked:read" } end
  return { "sp:scopes:all" }
end

-- Why a sub-admin client cannot act in this tenant (its identity is no
-- ROLE_SUBADMIN here), or nil.
local function subadmin_problem(t, client)
  if not client.identity then return nil end
  local identity = t.world.identity_by_id[client.identity]
  if identity and identity.subadmin_sources then return nil end
  local some = {}
  for _, idn in ipairs(t.world.identities) do
    if idn.subadmin_sources and #some < 5 then some[#some + 1] = idn.id end
  end
  return string.format("client %s: identity %s is not a ROLE_SUBADMIN of this tenant (sub-admins: %s)",
    client.id, client.identity, #some > 0 and table.concat(some, ", ") or "none")
end

---Checks that each sub-admin client names a ROLE_SUBADMIN of the tenant.
---@param t table tenant
---@return string|nil message
function M.check_clients(t)
  for _, client in ipairs(clients(t.config)) do
    local problem = subadmin_problem(t, client)
    if problem then return problem end
  end
end

-- A JWT-shaped access token carrying the claims clients look at (exp, client_id, scope).
local function make_token(reg, client, exp)
  local r = reg.rng
  local jti = r:uuid()
  local header = core.json_encode({ alg = "HS256", typ = "JWT", kid = "isclua-sim" })
  local claims = core.json_encode({
    tenant_id = reg.tenant_id, internal = false, pod = "sim", org = "acme-sim", strong_auth = false,
    authorities = core.json_array({ client.identity and "ROLE_SUBADMIN" or "API" }), client_id = client.id,
    identity_id = client.identity, strong_auth_supported = false,
    scope = core.json_array(scopes(client)), exp = math.floor(exp), jti = jti,
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
  local cfg, client = t.config, nil
  for _, c in ipairs(clients(cfg)) do
    if params.client_id == c.id and params.client_secret == c.secret then
      client = c
      break
    end
  end
  if not client then return oauth_error(401, "invalid_client", "Bad credentials") end
  local problem = subadmin_problem(t, client)
  if problem then return oauth_error(401, "invalid_client", problem) end
  local reg = t.auth
  local now = t.clock:now()
  local exp = now + cfg.token_ttl
  local token, jti = make_token(reg, client, exp)
  reg.tokens[token] = { client_id = client.id, exp = exp, role = client.role, identity = client.identity }
  reg.count = reg.count + 1
  if reg.count % 1000 == 0 then
    for k, info in pairs(reg.tokens) do
      if info.exp <= now then reg.tokens[k] = nil end
    end
  end
  t.stats.tokens_issued = t.stats.tokens_issued + 1
  return http.json(200, {
    access_token = token, token_type = "bearer", expires_in = math.floor(cfg.token_ttl),
    scope = table.concat(scopes(client), " "), accessType = "OFFLINE", tenant_id = reg.tenant_id, internal = false,
    pod = "sim", strong_auth_supported = false, org = "acme-sim", strong_auth = false, enabled = true,
    jti = jti, identity_id = client.identity,
  })
end

---Checks the bearer token of an API request.
---@param t table tenant
---@param req table
---@return table|nil token info {client_id, exp, role, identity}, table|nil 401 response
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

---The 403 for a request the token's client may not make (a change by a
---read-only client), else nil. A sub-admin's limits are the endpoints'.
---@param token table from M.check
---@param route table
---@param req table
---@return table|nil response
function M.forbidden(token, route, req)
  if token.role == "read-only" and route.mutates then
    return http.error(403, nil, { causes = { string.format("The API client %s is read-only: it may not %s %s.",
      token.client_id, req.method, req.path) } })
  end
end

return M
