-- Edge cases of the native module: nested
-- JSON calls from finalizers, HTTP request fields, and pager offsets.
local core = require "isc.core"

-- Runs make_garbage and then call() up to `rounds` times, with finalizers
-- that call `nested` whenever the collector runs them inside `inside`; returns
-- how many results differed from `expected` and how many nested calls ran.
local function under_nested_finalizers(inside, nested, call, expected, rounds)
  local nested_calls, wrong = 0, 0
  local function finalizer()
    local caller = debug.getinfo(2, "f")
    if caller and caller.func == inside then
      nested_calls = nested_calls + 1
      nested()
    end
  end
  -- a collector that runs often, so finalizers run in the middle of calls
  local mode = collectgarbage("incremental", 10, 400)
  for _ = 1, rounds do
    for _ = 1, 200 do setmetatable({}, { __gc = finalizer }) end
    if call() ~= expected then wrong = wrong + 1 end
  end
  collectgarbage("incremental", 200, 100) -- Lua's defaults
  if mode == "generational" then collectgarbage("generational") end
  collectgarbage()
  return wrong, nested_calls
end

describe("JSON inside a finalizer", function()
  -- Over 1 MiB of output, so that the scratch buffer is given back after
  -- each call and grows again (allocating, so collecting) the next time.
  local big = {}
  for i = 1, 60000 do big[i] = string.format("value %010d", i) end
  local big_text = core.json_encode(big)

  it("does not write over the text of the encoding it interrupts", function()
    local wrong, nested = under_nested_finalizers(core.json_encode, function()
      assert.equal('["inner"]', core.json_encode({ "inner" }))
    end, function() return core.json_encode(big) end, big_text, 30)
    assert.is_true(nested > 0, "no finalizer ran inside json_encode")
    assert.equal(0, wrong)
  end)

  it("does not write over the string being decoded that it interrupts", function()
    local text = '["' .. string.rep("ab\\n", 400000) .. '"]'
    local decoded = string.rep("ab\n", 400000)
    local wrong, nested = under_nested_finalizers(core.json_decode, function()
      assert.equal("in\tner", core.json_decode('"in\\tner"'))
    end, function() return core.json_decode(text)[1] end, decoded, 30)
    assert.is_true(nested > 0, "no finalizer ran inside json_decode")
    assert.equal(0, wrong)
  end)
end)

describe("core.http_new and conn:perform", function()
  local server, url, conn

  setup(function()
    server = require("isc.sim.server").serve_thread { module = "sim_server_echo" }
    url = server:url()
    conn = core.http_new()
  end)

  teardown(function()
    conn:close()
    server:stop()
  end)

  -- Sends req to the echo route and decodes what the server saw.
  local function echo(req)
    req.url = url .. "/echo"
    local status, _, body = conn:perform(req)
    assert.equal(200, status)
    return core.json_decode(body)
  end

  it("takes an explicit nil for the options, as it takes none", function()
    local c = core.http_new(nil)
    assert.matches("open", tostring(c))
    c:close()
  end)

  it("keeps the method of a GET that carries a body", function()
    local seen = echo { method = "GET", body = "payload" }
    assert.equal("GET", seen.method)
    assert.equal("payload", seen.body)
  end)

  it("refuses a header value with a line break, which would smuggle in another header", function()
    local ok, err = pcall(conn.perform, conn, { url = url .. "/echo",
      headers = { ["X-Note"] = "a\r\nX-Injected: yes" } })
    assert.is_false(ok)
    assert.matches("X%-Note", tostring(err))
    assert.matches("line break", tostring(err))
    -- the connection stays usable
    assert.equal("yes", echo { headers = { ["X-Plain"] = "yes" } }.headers["x-plain"])
  end)

  it("names the request field that has the wrong type", function()
    local _, err = pcall(conn.perform, conn, {})
    assert.matches("field 'url' must be a string, got nil", tostring(err))
    _, err = pcall(conn.perform, conn, { url = url, method = {} })
    assert.matches("field 'method' must be a string, got table", tostring(err))
    _, err = pcall(conn.perform, conn, { url = url, body = true })
    assert.matches("field 'body' must be a string, got boolean", tostring(err))
  end)

  it("keeps a timeout under a millisecond a limit, not the absence of one", function()
    local status, err = conn:perform { url = url .. "/slow?delay=1", timeout = 0.0001 }
    assert.is_nil(status)
    assert.equal("timeout", err.cause)
  end)

  it("takes math.huge as a timeout", function()
    local c = core.http_new { timeout = math.huge, connect_timeout = math.huge }
    local status = c:perform { url = url .. "/echo", timeout = math.huge }
    assert.equal(200, status)
    c:close()
  end)
end)

describe("the pager", function()
  it("raises a clear error rather than count past the largest offset", function()
    local p = core.pager { offset = math.maxinteger, fetch = function() return { "x" } end }
    local ok, err = pcall(p.next, p)
    assert.is_false(ok)
    assert.matches("runs past the largest offset", tostring(err))
  end)

  it("says what count got when fetch returns no list", function()
    local p = core.pager { fetch = function() return 42 end }
    local ok, err = pcall(p.count, p)
    assert.is_false(ok)
    assert.matches("fetch must return a list of items, got number", tostring(err))
  end)

  it("refuses an on_page that is not a function", function()
    local ok, err = pcall(core.pager, { fetch = function() return {} end, on_page = "no" })
    assert.is_false(ok)
    assert.matches("on_page", tostring(err))
  end)
end)

describe("the fallback __tostring of isc errors", function()
  -- The fallback is in place only until isc.errors installs its own, so it is
  -- checked in a fresh interpreter that loads nothing but isc.core.
  it("checks its argument", function()
    local H = require "helpers"
    local code, _, err = H.sh(H.stock_lua() .. [[ -e "print(require('isc.core').error_mt.__tostring(42))"]])
    assert.equal(1, code)
    assert.matches("table expected", err)
  end)

  it("reads kind and message", function()
    local H = require "helpers"
    local code, out = H.sh(H.stock_lua() ..
      [[ -e "local c = require('isc.core'); print(c.error_mt.__tostring(setmetatable({kind='network', message='down'}, c.error_mt)))"]])
    assert.equal(0, code)
    assert.equal("isc network error: down\n", out)
  end)
end)

describe("the isclua host", function()
  local H = require "helpers"

  it("reports an error that escapes everything even when its __tostring fails", function()
    -- the development override makes isclua load this broken isc.cli
    local dir = H.tmpdir()
    assert(os.execute("mkdir -p " .. H.shell_quote(dir .. "/isc")))
    H.write(dir .. "/isc/cli.lua",
      'error(setmetatable({}, { __tostring = function() error("cannot say") end }))\n')
    local code, _, err = H.isclua({ "-e", "return 1" }, { env = { ISCLUA_LUA_DIR = dir } })
    os.execute("rm -rf " .. H.shell_quote(dir))
    assert.equal(1, code)
    assert.matches("isclua: .*cannot say", err)
    assert.not_matches("fatal", err)
  end)
end)
