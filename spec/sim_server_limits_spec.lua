-- The simulator server's bounds: a connection cap that idle and slow clients
-- cannot hold against a new one, deadlines per request that trickled bytes
-- do not push back, and request bodies buffered as they arrive rather than
-- as announced. Driven by spec/support/slow_clients.c and curl, on loopback.
local core = require "isc.core"
local sim_server = require "isc.sim.server"
local H = require "helpers"
local slow = require "slow_clients"

local q = H.shell_quote

-- Runs curl on url; returns its exit code and the HTTP status.
local function curl(url)
  local code, out = H.sh("env -u LD_PRELOAD curl -sS --max-time 10 -o /dev/null -w '%{http_code}' " .. q(url))
  return code, out
end

-- Polls the server's stats until pred(stats) holds: at most 2,000 times and 20 s.
local function until_stats(server, pred)
  local deadline = core.monotonic() + 20
  for _ = 1, 2000 do
    local st = server:stats()
    if pred(st) then return st end
    if core.monotonic() > deadline then break end
    core.sleep(0.01)
  end
  error("the server's stats never got there: " .. core.json_encode(server:stats()))
end

local HEAD = "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: "        -- a head that never ends
local BODY = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" -- a body that never ends

describe("the simulator server's limits", function()
  it("is no longer part of isc.core", function()
    assert.is_nil(core.serve)
    assert.is_nil(core.serve_thread)
    assert.is_function(sim_server.serve)
    assert.is_function(sim_server.serve_thread)
  end)

  it("serves a new client while 1,000 slow connections hold it, within its cap of 256", function()
    local server <close> = sim_server.serve_thread { module = "sim_server_echo" }
    -- silent, trickling a head, trickling a body: a byte a second each
    local clients = slow.start(server:port(), 1000, 1, 60, { "", HEAD, BODY })
    -- the helper raises its descriptor limit to the hard one; 1,000 needs no more than 1,024
    assert.is_true(clients.n >= 900, "only " .. clients.n .. " connections could be made")
    -- the server accepts in order, so this one comes after every slow one
    local code, status = curl(server:url() .. "/echo")
    local st = server:stats()
    clients:stop()
    assert.equal(0, code)
    assert.equal("200", status)
    assert.is_true(st.accepted >= clients.n + 1)
    assert.is_true(st.connections <= 256, st.connections .. " connections open")
    assert.is_true(st.evicted >= clients.n + 1 - 256, st.evicted .. " evicted")
    assert.equal(0, st.refused)
  end)

  it("evicts the connection that has waited longest for a request", function()
    local server <close> = sim_server.serve_thread { module = "sim_server_echo", max_connections = 3 }
    local clients = slow.start(server:port(), 3, 0, 30, { "" })
    local code, status = curl(server:url() .. "/echo")
    assert.equal(0, code)
    assert.equal("200", status)
    assert.equal(0, (clients:closed()))
    clients:stop()
    assert.equal(1, server:stats().evicted)
  end)

  it("closes a new connection at once when every one at the cap is being answered", function()
    local server <close> = sim_server.serve_thread { module = "sim_server_echo", max_connections = 2 }
    local clients = slow.start(server:port(), 2, 0, 30, { "GET /slow?delay=60 HTTP/1.1\r\nHost: x\r\n\r\n" })
    until_stats(server, function(st) return st.heads == 2 end)
    local code = curl(server:url() .. "/echo")
    assert.is_true(code == 52 or code == 56, "curl exit " .. code)
    local st = server:stats()
    clients:stop()
    assert.equal(1, st.refused)
    assert.equal(0, st.evicted)
  end)

  it("cuts off a head or a body trickled a byte at a time at its deadline, with 408", function()
    local server <close> = sim_server.serve_thread { module = "sim_server_echo", head_timeout = 0.5,
      body_timeout = 0.5 }
    -- a byte every 50 ms: each would have reset an idle timer, and kept them for 20 s
    local clients = slow.start(server:port(), 2, 0.05, 20, { HEAD, BODY })
    local seen = {}
    for _ = 1, 2 do
      local i, t, status = clients:closed()
      seen[i] = { t = t, status = status }
    end
    clients:stop()
    for i = 0, 1 do
      assert.equal(408, seen[i].status)
      assert.is_true(seen[i].t < 10, "closed after " .. seen[i].t .. " s")
    end
    assert.equal(2, server:stats().timed_out)
  end)

  it("does not reserve an announced body before it arrives", function()
    local server <close> = sim_server.serve_thread { module = "sim_server_echo" }
    local head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n"
    local clients = slow.start(server:port(), 1, 0.01, 30, { head })
    -- the head, then some bytes of the body read after it
    local st = until_stats(server, function(s) return s.heads == 1 and s.received >= #head + 10 end)
    clients:stop()
    assert.is_true(st.buffered < 1024 * 1024, st.buffered .. " bytes buffered")
  end)

  it("refuses limits out of range", function()
    for _, opts in ipairs { { max_connections = 0 }, { head_timeout = 0 }, { body_timeout = -1 },
      { max_connections = 1.5 } } do
      opts.module = "sim_server_echo"
      local ok, err = pcall(sim_server.serve_thread, opts)
      assert.is_false(ok)
      assert.matches("opts%.%a+_%a+ must be", tostring(err))
    end
  end)
end)
