--- The ISC client: settings, the OAuth2 token, and the one request path every
--- API call goes through (authentication, retries honouring Retry-After,
--- tracing, structured errors), plus the generic paginator.
local core = require "isc.core"
local args = require "isc.args"
local config = require "isc.config"
local errors = require "isc.errors"
local loop = require "isc.loop"
local ratelimit = require "isc.ratelimit"

local M = {}

local Client = {}
M.Client = Client

--- One line per public function, for the REPL's help(c).
M.help = {
  request = "c:request(method, path, {query=, body=, headers=, experimental=}) -> body, status, headers (any endpoint)",
  paginate = "c:paginate(path, {filters=, sorters=, limit=, offset=, max=, on_page=, max_limit=, concurrency=, ...}) -> listing of any offset/limit endpoint",
  api_path = "c:api_path('roles'|'role-propagation'|'role-propagation-config') -> the path prefix under the client's layout",
  logout = "c:logout(): forgets the token, so the next call fetches a new one",
  each = "c:each(items, fn(item, i), {concurrency=8}) -> results, failures: fn for every item (a list or a listing), N at a time",
  close = "c:close(): closes the client's connection",
}

-- Secrets live here, keyed by client, so that no dump of a client shows them.
local secrets = setmetatable({}, { __mode = "k" })

--- The API families a client serves lazily as fields (c.roles, c.propagation).
M.services = { roles = "isc.roles", propagation = "isc.propagation" }

local layouts = {
  versioned = {
    roles = function(c) return "/" .. c.roles_version .. "/roles" end,
    ["role-propagation"] = function(c) return "/" .. c.propagation_version .. "/role-propagation" end,
    ["role-propagation-config"] = function(c) return "/" .. c.propagation_version .. "/role-propagation-config" end,
  },
  ["per-api"] = {
    roles = function() return "/roles/v1" end,
    ["role-propagation"] = function() return "/role-propagation/v1" end,
    ["role-propagation-config"] = function() return "/role-propagation-config/v1" end,
  },
}

local client_options = {
  base_url = "string", client_id = "string", client_secret = "string", secret_command = "string",
  token = "string", profile = "string", timeout = "number", connect_timeout = "number",
  retries = "integer", max_retry_wait = "number", verbose = "boolean", trace = "function",
  layout = "string", propagation_version = "string", verify = "boolean",
  sleep = "function", clock = "function", allow_insecure_http = "boolean", max_response_bytes = "integer",
  keep_nulls = "boolean",
  journal = "string",
  rate_limit = "table|boolean", concurrency = "integer",
}

-- Whether a URL's host is this machine, where plain http exposes nothing.
local function loopback(url)
  local host = url:match("^%a+://%[([^%]]*)%]") or url:match("^%a+://([^/:?#]*)") or ""
  host = host:lower()
  return host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

Client.__index = function(self, k)
  local method = Client[k]
  if method ~= nil then return method end
  if k == "dry_run" then return config.process.dry_run end
  local module = M.services[k]
  if module then
    local service = require(module).new(self)
    rawset(self, k, service)
    return service
  end
end

Client.__tostring = function(self)
  local s = secrets[self]
  local auth
  if s.fixed_token then
    auth = "fixed bearer token"
  elseif s.token and self._clock() < s.expires_at then
    auth = string.format("token valid %ds", math.floor(s.expires_at - self._clock()))
  else
    auth = "not authenticated yet"
  end
  return string.format("isc.client(%s, client %s, %s)", self.base_url, self.client_id or "-", auth)
end

--- Creates a client. With no options, settings come from the places listed in
--- isc.config (environment, ./config.json, profiles).
---@param opts table|nil
function M.new(opts)
  opts = args.check("isc.client", opts, client_options)
  local s = config.resolve(opts)
  local layout = opts.layout or "versioned"
  if not layouts[layout] then
    args.fail("isc.client", "layout must be 'versioned' (/v2024/roles) or 'per-api' (/roles/v1), got '%s'", layout)
  end
  local pv = opts.propagation_version or "v2026"
  if pv ~= "v2025" and pv ~= "v2026" then
    args.fail("isc.client", "propagation_version must be 'v2025' or 'v2026', got '%s'", pv)
  end
  if s.base_url:match("^[Hh][Tt][Tt][Pp]://") and not loopback(s.base_url) and not opts.allow_insecure_http then
    errors.raise("config", string.format("%s: base_url %s would send the client secret and the token in clear; "
      .. "use https://, or pass isc.client{allow_insecure_http = true} for a test server you trust",
      s.source or "settings", s.base_url), { looked_at = { s.source } })
  end
  local version = s.base_url:match("/v20%d%d$") or s.base_url:match("/v3$") or s.base_url:match("/beta$")
  if version then
    errors.raise("config", string.format("%s: base_url %s ends in %s; give the tenant's API root (%s): isclua "
      .. "adds the API paths (/oauth/token, /v2024/roles, ...) itself", s.source or "settings", s.base_url, version,
      s.base_url:sub(1, -#version - 1)), { looked_at = { s.source } })
  end
  local rate = opts.rate_limit
  if rate == nil or rate == true then rate = { requests = 100, per = 10 } end
  if rate then
    args.check("isc.client rate_limit", rate, { requests = "integer", per = "number" })
    if not (rate.requests and rate.requests >= 1 and rate.per and rate.per > 0) then
      args.fail("isc.client", "rate_limit must be {requests = N >= 1, per = seconds > 0} "
        .. "(ISC allows {requests = 100, per = 10}) or false")
    end
  end
  if opts.concurrency and opts.concurrency < 1 then
    args.fail("isc.client", "concurrency must be >= 1, got %d", opts.concurrency)
  end
  if opts.max_response_bytes and opts.max_response_bytes < 1 then
    args.fail("isc.client", "max_response_bytes must be > 0, got %d", opts.max_response_bytes)
  end
  local self = setmetatable({
    base_url = s.base_url,
    client_id = s.client_id,
    source = s.source,
    layout = layout,
    roles_version = "v2024",
    propagation_version = pv,
    retries = opts.retries or 4,
    max_retry_wait = opts.max_retry_wait or 120,
    verbose = opts.verbose,
    keep_nulls = opts.keep_nulls or false,
    trace = opts.trace,
    concurrency = opts.concurrency or 4,
    _sleep = opts.sleep or loop.sleep,
    _clock = opts.clock or core.time,
    journal = require("isc.journal").open(opts.journal or config.process.journal),
    conn = core.http_new { timeout = opts.timeout or 120, connect_timeout = opts.connect_timeout or 10,
      verify = opts.verify, max_response_bytes = opts.max_response_bytes },
  }, Client)
  if self.verbose == nil then self.verbose = config.process.verbose end
  if rate then
    self.limiter = ratelimit.new { requests = rate.requests, per = rate.per, clock = self._clock,
      sleep = function(s) self._sleep(s) end }
  end
  secrets[self] = {
    client_secret = s.client_secret, secret_command = s.secret_command,
    fixed_token = s.token, token = s.token, expires_at = math.huge,
  }
  return self
end

--- The path prefix of an API family under the client's layout, e.g.
--- c:api_path("roles") == "/v2024/roles" (or "/roles/v1").
function Client:api_path(api)
  local f = layouts[self.layout][api]
  if not f then args.fail("client:api_path", "unknown API '%s'", tostring(api)) end
  return f(self)
end

local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.escape = escape

--- Encodes a query table; lists become comma-separated values, booleans
--- true/false. Keys are sorted so URLs are reproducible.
function M.encode_query(q)
  local keys = {}
  for k in pairs(q) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = q[k]
    if type(v) == "table" then
      local items = {}
      for i, x in ipairs(v) do items[i] = tostring(x) end
      v = table.concat(items, ",")
    end
    parts[#parts + 1] = escape(k) .. "=" .. escape(v)
  end
  return table.concat(parts, "&")
end

local function form_encode(fields)
  local parts = {}
  for _, kv in ipairs(fields) do parts[#parts + 1] = escape(kv[1]) .. "=" .. escape(kv[2]) end
  return table.concat(parts, "&")
end

-- What a trace line may show of a URL: secrets in the query are masked.
local function masked(url)
  return (url:gsub("([?&][^=&]*)=([^&]*)", function(k, v)
    local lk = k:lower()
    if lk:find("secret") or lk:find("token") or lk:find("password") then return k .. "=***" end
    return k .. "=" .. v
  end))
end

local function human_bytes(n)
  if n < 1024 then return n .. " B" end
  return string.format("%.1f KB", n / 1024)
end

function Client:_trace(line)
  if self.trace then
    self.trace(line)
  elseif self.verbose then
    io.stderr:write("isc: ", line, "\n")
  end
end

-- Methods that leave the tenant as one call would when sent twice.
local idempotent = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
-- Answers after which a request that is safe to repeat is sent again: the
-- tenant refused (429) or failed or was not reached behind its gateway.
local retry_statuses = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
-- Answers that say nothing of whether a mutation behind the gateway was done.
local gateway_statuses = { [502] = true, [503] = true, [504] = true }
-- Network failures that another attempt will not cure.
local permanent = { url = true, tls = true, dns = true, too_large = true }

-- Backoff for retries without Retry-After: 0.5, 1, 2, 4, 8 s, with jitter.
local function backoff(attempt)
  local base = math.min(8, 0.5 * 2 ^ (attempt - 1))
  return base * (0.8 + 0.4 * math.random())
end

-- Sends one request under the retry policy (README: Retries and outcomes).
-- A 429 is retried for any request (ISC did nothing); 500, 502-504 and
-- network failures only when `safe` (sending it twice does no harm), and a
-- failure before anything went out for any request. A request that is not
-- safe goes on a fresh connection, so that libcurl never resends it on its
-- own. Returns status, headers, body and whether an earlier attempt may
-- have been applied (so a DELETE's 404 can mean "done"); raises network
-- errors, which say whether the request went out (`sent`).
function Client:_send(method, url, headers, body, label, safe)
  local attempt, doubtful = 0, false
  local key = url:sub(#self.base_url + 1):match("^/([^/?#]+)") or ""
  while true do
    attempt = attempt + 1
    if self.limiter then self.limiter:take(key) end
    local status, hdrs, text, info = loop.perform(self.conn, { method = method, url = url, headers = headers,
      body = body, fresh = not safe })
    local wait
    if status then
      self:_trace(string.format("%s %s -> %d (%.1f ms, %s out, %s in)", method, masked(url), status,
        info.time * 1000, human_bytes(info.bytes_out), human_bytes(info.bytes_in)))
      local again = retry_statuses[status] and (safe or status == 429)
      if not again or attempt > self.retries then
        return status, hdrs, text, doubtful
      end
      wait = errors.retry_after(hdrs["retry-after"]) or backoff(attempt)
      if status == 429 and self.limiter then self.limiter:refused(key, wait) end
      if wait > self.max_retry_wait then return status, hdrs, text, doubtful end
      doubtful = doubtful or gateway_statuses[status] or false
    else
      local err = hdrs
      err.method, err.url = method, masked(url)
      self:_trace(string.format("%s %s -> %s (%s)%s", method, masked(url), err.cause, err.message,
        err.sent and "" or ", not sent"))
      if permanent[err.cause] or (err.sent and not safe) or attempt > self.retries then
        err.attempts = attempt
        error(err, 0)
      end
      doubtful = doubtful or err.sent
      wait = backoff(attempt)
    end
    self:_trace(string.format("retrying %s in %.1f s (attempt %d of %d)", label, wait, attempt + 1, self.retries + 1))
    self._sleep(wait)
  end
end

-- Returns a bearer token, fetching one when there is none or it is about to
-- expire (a minute early, or a tenth of its life for short-lived tokens).
function Client:_token()
  local s = secrets[self]
  if s.token and self._clock() < s.expires_at then return s.token end
  -- tasks needing a token at once share one request
  if not s.fetching then
    s.fetching = loop.spawn(self._fetch_token, self)
  end
  local task = s.fetching
  local ok, err = pcall(task.join, task)
  if s.fetching == task then s.fetching = nil end
  if not ok then error(err, 0) end
  return s.token
end

function Client:_fetch_token()
  local s = secrets[self]
  local now = self._clock()
  if s.secret_command and not s.client_secret then
    s.client_secret = config.run_secret_command(s.secret_command)
  end
  local body = form_encode { { "grant_type", "client_credentials" }, { "client_id", self.client_id },
    { "client_secret", s.client_secret } }
  local url = self.base_url .. "/oauth/token"
  -- A token request changes nothing on the tenant: safe to repeat.
  local status, hdrs, text = self:_send("POST", url,
    { ["Content-Type"] = "application/x-www-form-urlencoded", Accept = "application/json" }, body, "token request", true)
  if status ~= 200 then
    local e = errors.from_response("POST", "/oauth/token", status, hdrs, text)
    e.message = "authentication failed for client " .. tostring(self.client_id) .. ": " .. e.message
    error(e, 0)
  end
  local t = core.json_decode(text)
  if type(t) ~= "table" or type(t.access_token) ~= "string" then
    errors.raise("bad_response", "the token response has no access_token",
      { status = status, method = "POST", path = "/oauth/token", body_start = text:sub(1, 120) })
  end
  local ttl = tonumber(t.expires_in) or 600
  s.token = t.access_token
  s.expires_at = now + ttl - math.min(60, ttl / 10)
end

--- Forgets the current token, so the next request fetches a new one.
function Client:logout()
  local s = secrets[self]
  if not s.fixed_token then s.token, s.expires_at = nil, 0 end
end

local mutating = { POST = true, PUT = true, PATCH = true, DELETE = true }

-- Under --dry-run a mutating call is logged and not sent; it returns a
-- result marked dry_run = true and status 0: what shape(result) makes of it
-- (the helpers give the tenant's answer its real shape), or the body echoed.
function Client:_rehearse(method, path, body, shape)
  require("isc.log").info("dry run: not sent", { method = method, path = path, body = body })
  local result = { dry_run = true, method = method, path = path, id = "dry-run" }
  if type(body) == "table" and body[1] == nil then
    for k, v in pairs(body) do
      if result[k] == nil then result[k] = v end
    end
  end
  if shape then
    result = shape(result)
    result.dry_run = true
  end
  return result, 0, { ["x-isclua-dry-run"] = "true" }
end

-- The URL of a path on the tenant, and the path as errors and traces show
-- it. A full URL must be on the client's own tenant: the bearer token goes
-- nowhere else.
function Client:_target(fname, path)
  if not path:match("^https?://") then
    return self.base_url .. (path:sub(1, 1) == "/" and "" or "/") .. path, path
  end
  local rest = path:sub(#self.base_url + 1)
  if path:sub(1, #self.base_url) ~= self.base_url or not (rest == "" or rest:match("^[/?]")) then
    args.fail(fname, "%s is not on this client's tenant (%s): give a path such as /v2024/roles",
      path, self.base_url)
  end
  return path, rest
end

local request_options = {
  query = "table", body = "table|string", headers = "table", content_type = "string",
  experimental = "boolean", raw = "boolean", read_only = "boolean", idempotent = "boolean",
  journaled = "boolean", rehearse = "function", keep_nulls = "boolean",
}

-- The error for a mutation sent whose outcome cannot be known from what
-- came back: what was sent, and the failure that hid the answer.
local function unknown_outcome(method, shown, body, cause, what)
  return errors.new("unknown_outcome", tostring(cause.message), {
    method = method, path = shown, status = cause.status, cause = cause, what = what, outcome = "unknown",
    request = { method = method, path = shown, body = body },
  })
end

--- Calls any ISC endpoint. `path` is relative to the base URL (or a full URL).
--- Returns the decoded JSON body (nil when empty), the status and the headers.
--- A table body is sent as JSON; HTTP errors raise isc errors of kind "api".
--- Under --dry-run, mutating methods are not sent unless `read_only` says the
--- call only reads (a search sent as POST); `rehearse(result)` then gives
--- the result the shape of the tenant's answer.
--- GET, HEAD, PUT, DELETE and requests marked `read_only` or `idempotent`
--- (sending them twice does no harm) are retried after 5xx and network
--- failures; any other request is sent once, and when what it did cannot be
--- told (its answer lost, or a gateway's 502-504) the error is of kind
--- "unknown_outcome", carrying the request. Errors of a mutation carry
--- `outcome`: "failed" (the tenant refused it), "not_sent" or "unknown".
--- A client with a journal records each mutation (isc.journal), which sends
--- it again through here marked `journaled`.
---@param method string
---@param path string
---@param opts table|nil {query=, body=, headers=, content_type=, experimental=, raw=, read_only=, idempotent=, journaled=, rehearse=, keep_nulls=}
function Client:request(method, path, opts)
  args.need("client:request", 1, method, "string")
  args.need("client:request", 2, path, "string")
  opts = args.check("client:request", opts, request_options)
  method = method:upper()
  local url, shown = self:_target("client:request", path)
  if opts.query and next(opts.query) then
    url = url .. (url:find("?", 1, true) and "&" or "?") .. M.encode_query(opts.query)
  end
  local headers = { Accept = "application/json" }
  local body = opts.body
  if type(body) == "table" then body = core.json_encode(body) end
  if body then headers["Content-Type"] = opts.content_type or "application/json" end
  if opts.experimental then headers["X-SailPoint-Experimental"] = "true" end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local label = method .. " " .. shown

  if self.journal and mutating[method] and not opts.read_only and not opts.journaled then
    return self.journal:record(self, method, path, masked(shown), opts)
  end
  if config.process.dry_run and mutating[method] and not opts.read_only then
    return self:_rehearse(method, shown, opts.body, opts.rehearse)
  end

  local safe = idempotent[method] or opts.read_only or opts.idempotent or false
  local mutation = mutating[method] and not opts.read_only
  local refreshed = false
  while true do
    headers.Authorization = "Bearer " .. self:_token()
    local ok, status, hdrs, text, doubtful = pcall(self._send, self, method, url, headers, body, label, safe)
    if not ok then
      local err = status
      if mutation and errors.is(err, "network") then
        if err.sent and not safe then
          error(unknown_outcome(method, shown, opts.body, err, "its answer was lost (" .. err.cause .. ")"), 0)
        end
        err.outcome = err.sent and "unknown" or "not_sent"
      end
      error(err, 0)
    end
    if status == 401 and not refreshed and not secrets[self].fixed_token then
      refreshed = true
      self:logout()
    elseif status >= 300 then
      local err = errors.from_response(method, shown, status, hdrs, text)
      if mutation and not safe and gateway_statuses[status] then
        error(unknown_outcome(method, shown, opts.body, err, "the gateway answered " .. status), 0)
      end
      if mutation then
        err.outcome = (status == 429 and "not_sent") or ((gateway_statuses[status] or doubtful) and "unknown") or "failed"
        err.resent = doubtful or nil
      end
      error(err, 0)
    elseif opts.raw or text == "" then
      return (text ~= "" and text or nil), status, hdrs
    else
      -- A member that is JSON null reads as absent, so `if role.owner then`
      -- works; keep_nulls keeps isc.null for a round trip that needs it.
      local keep = opts.keep_nulls
      if keep == nil then keep = self.keep_nulls end
      local value, err = core.json_decode(text, { drop_nulls = not keep })
      if value == nil then
        local start = text:sub(1, 80):gsub("%c", " ")
        errors.raise("bad_response", string.format("%s; the body starts: %q", err, start),
          { status = status, method = method, path = shown, body_start = start })
      end
      return value, status, hdrs
    end
  end
end

local paginate_options = {
  filters = "string", sorters = "string|table", limit = "integer", offset = "integer", max = "integer",
  query = "table", method = "string", body = "table", headers = "table", experimental = "boolean",
  on_page = "function", max_limit = "integer", concurrency = "integer",
}

--- A lazy iterator over any offset/limit list endpoint:
---   for item in c:paginate("/v2024/roles", {filters = 'name sw "A"'}) do ... end
--- Also p:collect(), p:count(), p:pages(), p:total(). Options: filters,
--- sorters, limit (page size, default 250 or max_limit), offset, max (stop
--- after that many items), query (other parameters), method and body (for
--- POST listings), headers, experimental, on_page, max_limit, concurrency
--- (pages kept in flight ahead of the reader; the client's, 4, by default).
---@return userdata pager, nil, nil, userdata pager
function Client:paginate(path, opts)
  args.need("client:paginate", 1, path, "string")
  opts = args.check("client:paginate", opts, paginate_options)
  local max_limit = opts.max_limit or 250
  local limit = opts.limit or max_limit
  if limit < 1 or limit > max_limit then
    args.fail("client:paginate", "limit must be between 1 and %d for %s, got %d", max_limit, path, limit)
  end
  if opts.offset and opts.offset < 0 then args.fail("client:paginate", "offset must be >= 0, got %d", opts.offset) end
  if opts.max and opts.max < 0 then args.fail("client:paginate", "max must be >= 0, got %d", opts.max) end
  local base_query = {}
  for k, v in pairs(opts.query or {}) do base_query[k] = v end
  base_query.filters = opts.filters
  if type(opts.sorters) == "table" then
    base_query.sorters = table.concat(opts.sorters, ",")
  else
    base_query.sorters = opts.sorters
  end
  local method = opts.method or "GET"
  local _, shown = self:_target("client:paginate", path)
  local function fetch_now(offset, page_limit, want_total)
    local q = {}
    for k, v in pairs(base_query) do q[k] = v end
    q.offset, q.limit = offset, page_limit
    if want_total then q.count = true end
    local items, status, hdrs = self:request(method, path,
      { query = q, body = opts.body, headers = opts.headers, experimental = opts.experimental, read_only = true })
    if type(items) ~= "table" then
      errors.raise("bad_response", "expected a JSON array (a page of items), got " .. type(items),
        { status = status, method = method, path = shown })
    end
    return items, math.tointeger(tonumber(hdrs["x-total-count"] or ""))
  end

  -- Reading ahead: the pages after the one handed to the pager are asked
  -- for as tasks, up to `concurrency` in flight, all of them once the total
  -- is known and one otherwise. They are the pages the pager will ask for
  -- next (same offsets and limits), so its rules on totals, short pages and
  -- resuming still decide; a page it asks for that was not read ahead drops
  -- them all.
  local concurrency = opts.concurrency or self.concurrency
  if concurrency < 1 then args.fail("client:paginate", "concurrency must be >= 1, got %d", concurrency) end
  local start, ahead, in_flight, total = opts.offset or 0, {}, 0, nil
  local function drop_ahead()
    for _, a in pairs(ahead) do a.task:cancel() end
    ahead, in_flight = {}, 0
  end
  local function read_ahead(from, full)
    local at = from
    while in_flight < concurrency and (total and at < total or (not total and full and in_flight == 0)) do
      local page_limit = limit
      if opts.max then page_limit = math.min(limit, start + opts.max - at) end
      if page_limit <= 0 then break end
      if not ahead[at] then
        local want_total = total ~= nil and total - at <= page_limit
        ahead[at] = { limit = page_limit, task = loop.spawn(fetch_now, at, page_limit, want_total) }
        in_flight = in_flight + 1
      end
      at = at + page_limit
    end
  end
  local function fetch(offset, page_limit, want_total, probe)
    if probe then return fetch_now(offset, page_limit, want_total) end
    local a = ahead[offset]
    local items, page_total
    if a and a.limit == page_limit then
      ahead[offset], in_flight = nil, in_flight - 1
      items, page_total = a.task:join()
    else
      drop_ahead()
      items, page_total = fetch_now(offset, page_limit, want_total)
    end
    total = page_total or total
    if #items > 0 then read_ahead(offset + #items, #items == page_limit) end
    return items, page_total
  end
  local label = method .. " " .. shown
  local on_page = opts.on_page or require("isc.progress").listing(label)
  -- The first page asks for the total only when something uses it: reading
  -- several pages ahead, or a progress line. One page at a time, a short
  -- page ends the listing (ISC's rule; isclua never asks above an
  -- endpoint's maximum page, so ISC does not shorten one).
  local p = core.pager { fetch = fetch, limit = limit, offset = opts.offset, max = opts.max,
    on_page = on_page, label = label, on_close = drop_ahead, count_first = concurrency > 1 or on_page ~= nil }
  return p, nil, nil, p
end

--- Calls fn(item, i) for every item (a list, or a listing such as
--- c.roles:list{...}), up to `concurrency` at once (default 8) as tasks on
--- the event loop, within the client's rate limit. Returns results (by item
--- position; results.n items in all) and failures ({index=, item=, error=}
--- for each item whose fn raised). Ctrl-C stops all of them.
function Client:each(items, fn, opts)
  return loop.each(items, fn, opts, "client:each")
end

--- Closes the client's connection; idempotent.
function Client:close()
  self.conn:close()
end
Client.__close = Client.close

return M
