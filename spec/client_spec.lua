-- The client core: settings, tokens, the request path, errors and paging,
-- against a real simulated tenant on loopback.
local isc = require "isc"
local core = require "isc.core"
local H = require "helpers"

-- Rate-limit windows are aligned to the clock, as ISC's fixed windows are:
-- specs that count on them stop the simulator's clock at a window's start.
local function freeze_at_window_start(sim)
  sim:admin("POST", "clock", { set = 1800000000 }) -- a multiple of 10 s and of 600 s
  sim:freeze(true)
end

describe("a client of the simulated tenant", function()
  local sim
  H.shared_sim({ roles = 321, identities = 40, seed = 7 }, function(s) sim = s end, { reset = true })

  it("fetches one token for many calls", function()
    local c = H.sim_client(sim)
    for _ = 1, 12 do c:request("GET", "/v2024/roles", { query = { limit = 1 } }) end
    local stats = sim:stats()
    assert.equal(1, stats.tokens_issued)
    assert.equal(12, stats.by_route["GET /v2024/roles"])
  end)

  it("does not ask for a token until the first call", function()
    H.sim_client(sim)
    assert.equal(0, sim:stats().tokens_issued)
  end)

  it("renews the token before it expires", function()
    sim:configure { token_ttl = 120 }
    local c = H.sim_client(sim)
    c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    sim:advance(110) -- within the last tenth of the token's life
    c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    local stats = sim:stats()
    assert.equal(2, stats.tokens_issued)
    assert.is_nil(stats.by_status and stats.by_status["401"])
  end)

  it("re-authenticates once when the tenant says the token expired", function()
    sim:configure { token_ttl = 120 }
    local frozen = sim:now()
    local c = H.sim_client(sim, { clock = function() return frozen end })
    c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    sim:advance(500) -- the client's clock does not see this, the tenant does
    local roles = c:request("GET", "/v2024/roles", { query = { limit = 2 } })
    assert.equal(2, #roles)
    assert.equal(2, sim:stats().tokens_issued)
  end)

  it("raises a structured, readable error for a 404", function()
    local c = H.sim_client(sim)
    local ok, err = pcall(c.request, c, "GET", "/v2024/roles/0000000000000000000000000000dead")
    assert.is_false(ok)
    assert.is_true(isc.is_error(err, "api"))
    assert.equal(404, err.status)
    assert.equal("GET", err.method)
    assert.equal("/v2024/roles/0000000000000000000000000000dead", err.path)
    assert.equal("404 Not found", err.detail_code)
    assert.matches("^%x+$", err.tracking_id)
    assert.matches("^HTTP 404 Not Found on GET /v2024/roles/0+dead: .+ %(detailCode 404 Not found, trackingId %x+%)$", tostring(err))
  end)

  it("reports bad credentials as an authentication failure", function()
    local c = isc.client { base_url = sim.url, client_id = sim.client_id, client_secret = "wrong" }
    local ok, err = pcall(c.request, c, "GET", "/v2024/roles")
    assert.is_false(ok)
    assert.equal(401, err.status)
    assert.matches("authentication failed for client " .. sim.client_id, err.message, 1, true)
    assert.is_nil(tostring(err):find("wrong", 1, true), "the secret must not appear in the error")
  end)

  it("pages through a few hundred roles with no item lost or repeated", function()
    local c = H.sim_client(sim)
    local seen, n = {}, 0
    for role in c:paginate("/v2024/roles", { max_limit = 50 }) do
      assert.is_nil(seen[role.id], "repeated " .. role.id)
      seen[role.id] = true
      n = n + 1
    end
    assert.equal(321, n)
    assert.equal(7, sim:stats().by_route["GET /v2024/roles"]) -- ceil(321/50), none past the end
  end)

  it("passes filters and sorters through, encoded", function()
    local c = H.sim_client(sim)
    local all = c:paginate("/v2024/roles", { max_limit = 50, sorters = "-name" }):collect()
    local first = all[1].name
    local found = c:paginate("/v2024/roles", { max_limit = 50, filters = string.format("name eq %q", first) }):collect()
    assert.equal(1, #found)
    assert.equal(first, found[1].name)
    for i = 2, #all do assert.is_true(all[i - 1].name:lower() >= all[i].name:lower()) end
  end)

  it("counts a listing with X-Total-Count", function()
    local c = H.sim_client(sim)
    assert.equal(321, c:paginate("/v2024/roles", { max_limit = 50 }):count())
  end)

  it("checks paging options before sending anything", function()
    local c = H.sim_client(sim)
    assert.equal("client:paginate: limit must be between 1 and 50 for /v2024/roles, got 51",
      H.catch(c.paginate, c, "/v2024/roles", { max_limit = 50, limit = 51 }).message)
    assert.has_error(function() c:paginate("/v2024/roles", { filter = "x" }) end)
    assert.equal(0, sim:stats().requests)
  end)

  it("waits the Retry-After of a 429 and then succeeds", function()
    sim:configure { rate_limit = "3/10s" }
    freeze_at_window_start(sim)
    local c, slept = H.sim_client(sim)
    for _ = 1, 5 do c:request("GET", "/v2024/roles", { query = { limit = 1 } }) end
    assert.same({ 10 }, slept) -- the 4th request waited for the next window; the 5th fit in it
    assert.equal(1, sim:stats().by_status["429"])
  end)

  it("gives up on a 429 whose Retry-After is longer than max_retry_wait", function()
    sim:configure { rate_limit = "2/600s" }
    freeze_at_window_start(sim)
    local c = H.sim_client(sim, { max_retry_wait = 30 })
    c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    local ok, err = pcall(c.request, c, "GET", "/v2024/roles", { query = { limit = 1 } })
    assert.is_false(ok)
    assert.equal(429, err.status)
    assert.equal(600, err.retry_after)
  end)

  it("traces requests without secrets", function()
    local lines = {}
    local c = H.sim_client(sim, { trace = function(l) lines[#lines + 1] = l end })
    c:request("GET", "/v2024/roles", { query = { limit = 1, filters = 'name sw "A"' } })
    local all = table.concat(lines, "\n")
    assert.matches("POST " .. sim.url .. "/oauth/token -> 200", all, 1, true)
    assert.matches("GET " .. sim.url .. "/v2024/roles?filters=name%20sw%20%22A%22&limit=1 -> 200", all, 1, true)
    assert.is_nil(all:find(sim.client_secret, 1, true))
    assert.is_nil(all:find("Bearer", 1, true))
  end)

  it("never shows the secret or the token in its description", function()
    local c = H.sim_client(sim)
    c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    local s = tostring(c)
    assert.equal(1, s:find("isc.client(" .. sim.url .. ", client " .. sim.client_id .. ", ", 1, true))
    assert.matches("token valid", s)
    assert.is_nil(s:find(sim.client_secret, 1, true))
    for k, v in pairs(c) do
      assert.is_nil(tostring(v):find(sim.client_secret, 1, true), "field " .. k)
    end
  end)

  it("sends a fixed bearer token when given one", function()
    local c = H.sim_client(sim)
    c:request("GET", "/v2024/roles", { query = { limit = 1 } })
    local token_client = isc.client { base_url = sim.url, token = "not-a-real-token" }
    local ok, err = pcall(token_client.request, token_client, "GET", "/v2024/roles")
    assert.is_false(ok)
    assert.equal(401, err.status) -- a fixed token is never silently replaced
  end)
end)

describe("a client facing odd answers", function()
  local server, c

  setup(function()
    server = require("isc.sim.server").serve_thread { module = "fake_api", config = {} }
    c = isc.client { base_url = server:url(), client_id = "x", client_secret = "y", retries = 1,
      sleep = function() end }
  end)
  teardown(function() server:stop() end)

  it("raises bad_response quoting the start of a body that is not JSON", function()
    local ok, err = pcall(c.request, c, "GET", "/html")
    assert.is_false(ok)
    assert.is_true(isc.is_error(err, "bad_response"))
    assert.equal(200, err.status)
    assert.matches('the body starts: "<html><body>Gateway maintenance', tostring(err), 1, true)
  end)

  it("keeps a non-JSON error body readable", function()
    local ok, err = pcall(c.request, c, "GET", "/html-error")
    assert.is_false(ok)
    assert.equal(502, err.status)
    assert.equal("<html>Bad gateway</html>", err.message)
  end)

  it("reads the detailMessage error shape", function()
    local ok, err = pcall(c.request, c, "GET", "/detail-message")
    assert.is_false(ok)
    assert.equal("Specified offset is invalid.", err.message)
  end)

  it("returns nil for an empty body", function()
    local body, status = c:request("DELETE", "/no-content")
    assert.is_nil(body)
    assert.equal(204, status)
  end)

  it("sends the bearer token and encodes the query", function()
    local body = c:request("GET", "/echo", { query = { filters = 'name eq "a&b"', sorters = { "name", "-created" } } })
    assert.equal("Bearer fake-token", body.authorization)
    assert.equal("filters=name%20eq%20%22a%26b%22&sorters=name%2C-created", body.query)
  end)

  it("takes a full URL on its own tenant", function()
    local body = c:request("GET", server:url() .. "/echo?x=1")
    assert.equal("Bearer fake-token", body.authorization)
    assert.equal("x=1", body.query)
  end)

  it("never sends its token to another host, even one whose URL starts the same", function()
    for _, url in ipairs { "http://127.0.0.1:1/echo", server:url() .. "0/echo", server:url() .. ".evil.example/echo" } do
      local err = H.catch(c.request, c, "GET", url)
      assert.is_true(isc.is_error(err, "argument"))
      assert.matches("is not on this client's tenant", err.message, 1, true)
    end
    assert.has_error(function() c:paginate("http://127.0.0.1:1/v2024/roles") end)
  end)

  it("raises an error naming a redirect's target, and does not follow it", function()
    local err = H.catch(c.request, c, "GET", "/redirect")
    assert.is_true(isc.is_error(err, "api"))
    assert.equal(302, err.status)
    assert.equal("https://elsewhere.example/v2024/roles", err.location)
    assert.matches("redirected to https://elsewhere.example/v2024/roles, which isclua does not follow", err.message, 1, true)
  end)

  it("stops reading a response larger than max_response_bytes, and does not retry it", function()
    local capped = isc.client { base_url = server:url(), client_id = "x", client_secret = "y", max_response_bytes = 4096,
      sleep = function() end }
    local err = H.catch(capped.request, capped, "GET", "/big")
    assert.is_true(isc.is_error(err, "network"))
    assert.equal("too_large", err.cause)
    assert.matches("larger than the 4096 bytes allowed", err.message, 1, true)
    assert.equal(1, err.attempts)
    assert.equal(5001, #c:request("GET", "/big"), "the default cap is far above")
    -- Headers count against the cap too: a server need not announce a size.
    assert.equal("too_large", H.catch(capped.request, capped, "GET", "/big-headers").cause)
  end)

  it("asks the spec's literal bulk-update/id path when bulk-update/{id} is not found", function()
    assert.equal("COMPLETED", c.roles:bulk_update_status("job-7").status)
    assert.equal(404, H.catch(c.roles.bulk_update_status, c.roles, "job-8").status, "not another job's status")
  end)

  it("raises a network error when the connection is reset", function()
    local ok, err = pcall(c.request, c, "GET", "/reset")
    assert.is_false(ok)
    assert.is_true(isc.is_error(err, "network"))
    assert.equal("reset", err.cause)
  end)
end)

describe("a client whose tenant is unreachable", function()
  it("raises a network error naming the cause, after retrying", function()
    local lines = {}
    local c = isc.client { base_url = "http://127.0.0.1:1", client_id = "x", client_secret = "y",
      sleep = function() end, trace = function(l) lines[#lines + 1] = l end, retries = 2 }
    local ok, err = pcall(c.request, c, "GET", "/v2024/roles")
    assert.is_false(ok)
    assert.is_true(isc.is_error(err, "network"))
    assert.equal("refused", err.cause)
    assert.matches("^network error %(refused%) on POST http://127%.0%.0%.1:1/oauth/token: ", tostring(err))
    assert.matches("%(after 3 attempts%)$", tostring(err))
    local retries = 0
    for _, l in ipairs(lines) do if l:find("^retrying") then retries = retries + 1 end end
    assert.equal(2, retries)
  end)
end)

describe("errors.retry_after", function()
  local errors, now = require "isc.errors", 1700000000

  it("reads delay-seconds and an IMF-fixdate as a wait from now", function()
    assert.equal(120, errors.retry_after("120", now))
    assert.equal(6400, errors.retry_after("Wed, 15 Nov 2023 00:00:00 GMT", now))
    assert.equal(0, errors.retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now))
  end)

  it("gives nil for what is neither, and a finite wait for any delay (found by fuzz/retry_after)", function()
    assert.is_nil(errors.retry_after("1e999", now))
    assert.is_nil(errors.retry_after("0x10", now))
    assert.is_nil(errors.retry_after("-5", now))
    assert.is_nil(errors.retry_after("x Mon, 01 Jan 9223372036854775807 00:00:00 GMT", now))
    assert.equal(0x7fffffff, errors.retry_after(string.rep("9", 400), now))
  end)
end)
