-- The simulator's HTTP/1.1 server (isc.sim.server: serve_thread, serve), driven
-- by the curl command and by raw bytes over bash's /dev/tcp.
local core = require "isc.core"
local sim_server = require "isc.sim.server"
local H = require "helpers"

local q = H.shell_quote

-- curl hangs in its start-up under the sanitized runs' LD_PRELOAD of ASan,
-- and it need not be instrumented anyway.
local plain = "env -u LD_PRELOAD "

-- Runs curl with the given arguments; returns its exit code, the body and
-- the -w value written after the last newline (status code by default).
local function curl(args, write_out)
  local code, out, err = H.sh(plain .. "curl -sS --max-time 30 " .. args .. " -w " .. q("\n" .. (write_out or "%{http_code}")))
  local body, written = out:match("^(.*)\n([^\n]*)$")
  return code, body or out, written, err
end

-- Sends raw bytes on one connection and returns all the server sent back
-- until it closed the connection.
local function raw(port, bytes)
  local script = 'exec 3<>/dev/tcp/127.0.0.1/"$1" || exit 9; printf %s "$2" >&3; cat <&3'
  local code, out = H.sh(table.concat({ plain .. "timeout 20 bash -c", q(script), "raw", port, q(bytes) }, " "))
  assert.equal(0, code, "the server did not close the connection")
  return out
end

-- Statuses of every response in a raw byte stream, in order.
local function statuses(stream)
  local out = {}
  for s in stream:gmatch("HTTP/1%.1 (%d%d%d)") do out[#out + 1] = tonumber(s) end
  return out
end

-- A temporary file of numbered lines, at least size bytes; returns its path
-- and its content.
local function text_file(size)
  local lines, n = {}, 0
  while n < size do
    local line = string.format("line %08d of a body that should come back exactly\n", #lines + 1)
    lines[#lines + 1] = line
    n = n + #line
  end
  local content = table.concat(lines)
  return H.write(os.tmpname(), content), content
end

describe("the simulator server", function()
  local server, url

  setup(function()
    server = sim_server.serve_thread { module = "sim_server_echo", config = { greeting = "hello" } }
    url = server:url()
  end)

  teardown(function()
    server:stop()
  end)

  describe("started with serve_thread", function()
    it("listens on loopback on a free port and says where", function()
      assert.matches("^http://127%.0%.0%.1:%d+$", url)
      assert.equal(url, "http://127.0.0.1:" .. server:port())
      assert.equal("isc.sim_server (" .. url .. ")", tostring(server))
    end)

    it("hands the handler the request split into its parts", function()
      local code, body, status = curl("-H 'X-Trace: a' -H 'x-trace: b' -H 'Content-Type: text/plain' "
        .. "--data-binary 'some body' " .. q(url .. "/echo/roles%20x?limit=5&offset=0"))
      assert.equal(0, code)
      assert.equal("200", status)
      local req = core.json_decode(body)
      assert.equal("POST", req.method)
      assert.equal("/echo/roles%20x?limit=5&offset=0", req.target)
      assert.equal("/echo/roles%20x", req.path)
      assert.equal("limit=5&offset=0", req.query)
      assert.equal("a, b", req.headers["x-trace"])
      assert.equal("text/plain", req.headers["content-type"])
      assert.equal("some body", req.body)
    end)

    it("gives an empty query and body when there are none", function()
      local _, body = curl(q(url .. "/echo"))
      local req = core.json_decode(body)
      assert.equal("", req.query)
      assert.equal("", req.body)
    end)

    it("gives the handler module its config, through JSON", function()
      local _, body = curl(q(url .. "/echo"))
      assert.equal("hello", core.json_decode(body).greeting)
    end)

    it("sends the handler's status and headers, with its own Content-Length", function()
      local _, head = curl("-D - -o /dev/null " .. q(url .. "/headers"))
      assert.matches("^HTTP/1%.1 201 Created\r\n", head)
      assert.matches("\r\nX%-Custom: yes\r\n", head)
      assert.matches("\r\nContent%-Length: 4\r\n", head)
      assert.matches("\r\nDate: %a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT\r\n", head)
      assert.not_matches("999", head)
    end)

    it("answers HEAD with the headers only", function()
      local code, head = curl("-sI " .. q(url .. "/headers"))
      assert.equal(0, code)
      assert.matches("\r\nContent%-Length: 4\r\n\r\n$", head)
    end)

    it("passes a 404 from the handler through", function()
      local _, body, status = curl(q(url .. "/missing"))
      assert.equal("404", status)
      assert.equal("404 Not found", core.json_decode(body).detailCode)
    end)
  end)

  describe("connections", function()
    it("keeps one connection alive for several requests", function()
      -- curl writes each transfer's body, then its count of new connections
      local code, out, second = curl(q(url .. "/echo/1") .. " " .. q(url .. "/echo/2"), "%{num_connects}")
      assert.equal(0, code)
      assert.matches('"path":"/echo/1".*}\n1{.*"path":"/echo/2"', out)
      assert.equal("0", second)
    end)

    it("closes when the client asks with Connection: close", function()
      local _, out, connects = curl("-H 'Connection: close' -D - " .. q(url .. "/echo/1") .. " " .. q(url .. "/echo/2"),
        "%{num_connects}")
      assert.matches("\r\nConnection: close\r\n", out)
      assert.equal("1", connects)
    end)

    it("closes after an HTTP/1.0 request that does not ask for keep-alive", function()
      local _, out, connects = curl("-0 " .. q(url .. "/echo/1") .. " " .. q(url .. "/echo/2"), "%{num_connects}")
      assert.matches('"path":"/echo/2"', out)
      assert.equal("1", connects)
    end)

    it("answers pipelined requests in order on one connection", function()
      local out = raw(server:port(), "GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\n"
        .. "POST /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        .. "GET /echo/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.same({ 200, 200, 200 }, statuses(out))
      assert.matches('"path":"/echo/a".*"body":"abc".*"path":"/echo/c"', out)
    end)

    it("closes an idle connection after idle_timeout", function()
      local idle <close> = sim_server.serve_thread { module = "sim_server_echo", idle_timeout = 0.2 }
      -- raw() returns only once the server has closed the silent connection
      assert.equal("", raw(idle:port(), ""))
    end)
  end)

  describe("request bodies", function()
    local path, content = text_file(1.5 * 1024 * 1024)

    teardown(function() os.remove(path) end)

    it("answers Expect: 100-continue before the client sends a large body", function()
      local code, body, status, err = curl("-v -H 'Expect: 100-continue' --expect100-timeout 20 --data-binary @"
        .. q(path) .. " " .. q(url .. "/echo"))
      assert.equal(0, code)
      assert.equal("200", status)
      assert.matches("< HTTP/1.1 100 Continue", err, 1, true)
      assert.equal(content, core.json_decode(body).body)
    end)

    it("decodes a chunked request body", function()
      local _, body, status = curl("-H 'Transfer-Encoding: chunked' --data-binary @" .. q(path) .. " " .. q(url .. "/echo"))
      assert.equal("200", status)
      local req = core.json_decode(body)
      assert.equal("chunked", req.headers["transfer-encoding"])
      assert.equal(content, req.body)
    end)

    it("decodes chunk extensions and trailers, then serves the next request", function()
      local out = raw(server:port(), "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "3;name=value\r\nabc\r\n0A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
        .. "GET /echo/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.same({ 200, 200 }, statuses(out))
      assert.matches('"body":"abc0123456789"', out)
    end)

    it("refuses a body above the limit with 413 and closes", function()
      local out = raw(server:port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
      assert.same({ 413 }, statuses(out))
      assert.matches("Connection: close", out)
    end)
  end)

  describe("malformed requests", function()
    it("answers a malformed request line with 400 and closes", function()
      local out = raw(server:port(), "GARBAGE\r\n\r\nGET /echo HTTP/1.1\r\n\r\n")
      assert.same({ 400 }, statuses(out))
      assert.matches('"detailCode":"400 Bad Request"', out)
    end)

    it("refuses a header section above 64 KiB with 431", function()
      local out = raw(server:port(), "GET /echo HTTP/1.1\r\nX-Big: " .. ("b"):rep(70000) .. "\r\n\r\n")
      assert.same({ 431 }, statuses(out))
    end)

    it("refuses transfer codings other than chunked with 501", function()
      local out = raw(server:port(), "POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
      assert.same({ 501 }, statuses(out))
    end)
  end)

  describe("handler failures", function()
    it("answers a handler error with a 500 ErrorResponseDto and keeps serving", function()
      local _, body, status = curl(q(url .. "/fail"))
      assert.equal("500", status)
      local dto = core.json_decode(body)
      assert.equal("500.0 Internal Fault", dto.detailCode)
      assert.matches("^%x+$", dto.trackingId)
      assert.equal(32, #dto.trackingId)
      assert.equal("en-US", dto.messages[1].locale)
      assert.equal("DEFAULT", dto.messages[1].localeOrigin)
      assert.matches("deliberate failure", dto.messages[1].text, 1, true)
      local _, _, again = curl(q(url .. "/echo"))
      assert.equal("200", again)
    end)

    it("still answers 500 when the error message is not valid UTF-8", function()
      local _, body, status = curl(q(url .. "/binary"))
      assert.equal("500", status)
      assert.matches("not valid UTF-8", core.json_decode(body).messages[1].text, 1, true)
    end)

    it("answers a response that is not a table with 500", function()
      local _, body, status = curl(q(url .. "/nonsense"))
      assert.equal("500", status)
      assert.matches("expected a response table", core.json_decode(body).messages[1].text, 1, true)
    end)
  end)

  describe("faults", function()
    it("resets the connection without a response for fault = reset", function()
      local code = curl(q(url .. "/reset"))
      assert.is_true(code == 52 or code == 56, "curl exit " .. code)
    end)

    it("sends a short body for fault = truncate", function()
      local code, _, status = curl("-o /dev/null " .. q(url .. "/truncate"))
      assert.equal(18, code)
      assert.equal("200", status)
    end)

    it("holds a delayed response without holding other connections", function()
      local order = os.tmpname()
      -- the slow request must reach the server before the fast one starts
      local script = [[
        curl -sS -o /dev/null -w 'slow %{http_code}\n' "$1/slow?delay=1" >> "$2" &
        i=0
        until [ "$(curl -sS "$1/seen?path=/slow")" = 1 ] || [ $i -gt 2000 ]; do i=$((i+1)); done
        curl -sS -o /dev/null -w 'fast %{http_code}\n' "$1/echo" >> "$2"
        wait
      ]]
      assert.equal(0, (H.sh(table.concat({ plain .. "bash -c", q(script), "delay", q(url), q(order) }, " "))))
      assert.equal("fast 200\nslow 200\n", H.slurp(order))
      os.remove(order)
    end)
  end)

  describe("start-up errors", function()
    it("raises a sim error when the port is taken", function()
      local ok, err = pcall(sim_server.serve_thread, { module = "sim_server_echo", port = server:port() })
      assert.is_false(ok)
      assert.equal("sim", err.kind)
      assert.matches("cannot listen on 127.0.0.1:" .. server:port(), err.message, 1, true)
    end)

    it("raises a sim error when the handler module does not load", function()
      local ok, err = pcall(sim_server.serve_thread, { module = "sim_server_no_such_module" })
      assert.is_false(ok)
      assert.equal("sim", err.kind)
      assert.matches("sim_server_no_such_module", err.message, 1, true)
    end)

    it("raises a sim error when the module's handler() fails", function()
      local ok, err = pcall(sim_server.serve_thread, { module = "sim_server_echo", config = { fail_setup = true } })
      assert.is_false(ok)
      assert.equal("sim", err.kind)
      assert.matches("setup refused by the config", err.message, 1, true)
    end)
  end)

  describe("stopping", function()
    it("stops once, refuses connections after, and raises on later use", function()
      local s = sim_server.serve_thread { module = "sim_server_echo" }
      local port = s:port()
      s:stop()
      s:stop()
      assert.equal("isc.sim_server (stopped)", tostring(s))
      assert.equal(7, (curl(q("http://127.0.0.1:" .. port .. "/echo"))))
      local ok, err = pcall(s.url, s)
      assert.is_false(ok)
      assert.equal("sim", err.kind)
      assert.matches("stopped", err.message)
    end)

    it("stops when a to-be-closed variable goes out of scope", function()
      local port
      do
        local s <close> = sim_server.serve_thread { module = "sim_server_echo" }
        port = s:port()
      end
      assert.equal(7, (curl(q("http://127.0.0.1:" .. port .. "/echo"))))
    end)
  end)

  describe("serve in the calling state", function()
    -- A child process serving until a signal or a "stop" response.
    local child = [[
      local core = require "isc.core"
      local sig = require("isc.sim.server").serve { handler = require("sim_server_echo").handler({}), log = true,
        on_listen = function(port) print(core.getpid(), port); io.stdout:flush() end }
      print("returned", sig)
    ]]

    local log = os.tmpname()
    teardown(function() os.remove(log) end)

    local function start()
      local p = io.popen("lua5.4 -e " .. q(child) .. " 2>" .. q(log))
      local pid, port = p:read("n", "n")
      return p, pid, port
    end

    it("returns the signal number on SIGTERM, after closing everything", function()
      local p, pid, port = start()
      local _, _, status = curl(q("http://127.0.0.1:" .. port .. "/echo"))
      assert.equal("200", status)
      os.execute("kill -TERM " .. pid)
      assert.equal("returned\t15", p:read("a"):match("returned\t%d+"))
      p:close()
      assert.equal(7, (curl(q("http://127.0.0.1:" .. port .. "/echo"))))
    end)

    it("returns nothing once the handler returns \"stop\"", function()
      local p, _, port = start()
      local _, _, status = curl(q("http://127.0.0.1:" .. port .. "/stop"))
      assert.equal("204", status)
      assert.equal("returned\tnil", p:read("a"):match("returned\t%w+"))
      p:close()
    end)

    it("logs method, target, status, bytes and duration of each request with log = true", function()
      local p, _, port = start()
      curl(q("http://127.0.0.1:" .. port .. "/echo/logged?x=1"))
      curl(q("http://127.0.0.1:" .. port .. "/stop"))
      p:read("a")
      p:close()
      local lines = H.slurp(log)
      assert.matches("GET /echo/logged%?x=1 200 %d+ [%d.]+ms\n", lines)
      assert.matches("GET /stop 204 0 [%d.]+ms\n", lines)
    end)
  end)
end)
