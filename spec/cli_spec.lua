-- The isclua command line behaves like lua(1) where that makes sense, with
-- documented exit codes.
local H = require "helpers"

local function script(text)
  return H.write(os.tmpname() .. ".lua", text)
end

describe("isclua", function()
  it("runs a script with its arguments in arg and ...", function()
    local path = script("print(arg[0]:match('[^/]*$'), arg[1], arg[2], select('#', ...), ...)")
    local code, out = H.isclua({ path, "one", "two words" })
    assert.equal(0, code)
    assert.equal(path:match("[^/]*$") .. "\tone\ttwo words\t2\tone\ttwo words\n", out)
  end)

  it("puts the interpreter and its options at negative indices of arg", function()
    local code, out = H.isclua({ "-v", script("print(arg[-2], arg[-1])") })
    assert.equal(0, code)
    assert.equal("isclua\t-v\n", out)
  end)

  it("executes -e statements in order before the script", function()
    local code, out = H.isclua({ "-e", "x = 2", "-e", "print(x * 21)" })
    assert.equal(0, code)
    assert.equal("42\n", out)
  end)

  it("reads the script from stdin with -", function()
    local code, out = H.isclua({ "-", "a" }, { stdin = "print('from stdin', ...)" })
    assert.equal(0, code)
    assert.equal("from stdin\ta\n", out)
  end)

  it("reads the script from stdin when stdin is not a terminal and nothing else is given", function()
    local code, out = H.isclua({}, { stdin = "print(1 + 1)" })
    assert.equal(0, code)
    assert.equal("2\n", out)
  end)

  it("enters the prompt after the script with -i", function()
    local code, out = H.isclua({ "-i", script("greeting = 'hello'") }, { stdin = "greeting .. ' world'\n" })
    assert.equal(0, code)
    assert.matches("hello world", out)
  end)

  it("makes require 'isc' work with no set-up", function()
    local code, out = H.isclua({ "-e", "local isc = require 'isc'; print(type(isc.client), isc.null ~= nil)" })
    assert.equal(0, code)
    assert.equal("function\ttrue\n", out)
  end)

  it("prints help and the version, exiting 0", function()
    local code, out = H.isclua({ "--help" })
    assert.equal(0, code)
    assert.matches("usage: isclua", out)
    assert.matches("exit codes:", out)
    code, out = H.isclua({ "--version" })
    assert.equal(0, code)
    assert.matches("^isclua %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libcurl %d+%.%d+%.%d+%)\nbuilt [^\n]+, [^\n]+\n$", out)
  end)

  it("exits 2 on a usage error, saying what was wrong", function()
    local code, _, err = H.isclua({ "--frobnicate" })
    assert.equal(2, code)
    assert.matches("unknown option '%-%-frobnicate'", err)
    code, _, err = H.isclua({ "-e" })
    assert.equal(2, code)
    assert.matches("'%-e' needs an argument", err)
  end)

  it("exits 1 with a traceback naming file and line on a script error", function()
    local path = script("local function f()\n  error('it broke')\nend\nf()\n")
    local code, out, err = H.isclua({ path })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches(path:gsub("%p", "%%%0") .. ":2: it broke", err)
    assert.matches("stack traceback:", err)
    assert.matches(path:gsub("%p", "%%%0") .. ":4: in main chunk", err)
    assert.is_nil(err:find("cli.lua", 1, true), "the host's own frames are not shown")
  end)

  it("exits 1 on a syntax error", function()
    local code, _, err = H.isclua({ script("x = = 1") })
    assert.equal(1, code)
    assert.matches("unexpected symbol", err)
  end)

  it("exits 1 on a syntax error in -e, naming it", function()
    local code, out, err = H.isclua({ "-e", "x = = 1", "-e", "print('not reached')" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("isclua: (command line):1: unexpected symbol near '='\n", err)
  end)

  it("exits 1 when the script does not exist", function()
    local code, _, err = H.isclua({ "/nonexistent/job.lua" })
    assert.equal(1, code)
    assert.matches("cannot open /nonexistent/job.lua", err)
  end)

  it("exits 4 on a network error", function()
    local code, _, err = H.isclua({ "-e",
      "require('isc').client{base_url='http://127.0.0.1:1', client_id='a', client_secret='b', retries=0}:request('GET', '/v2024/roles')" })
    assert.equal(4, code)
    assert.matches("network error %(refused%)", err)
  end)

  it("exits 3 on an API error and prints it on one line", function()
    local code, _, err = H.isclua({ "--sim", "-e",
      "require('isc').client():request('GET', '/v2024/roles/00000000000000000000000000000000')" })
    assert.equal(3, code)
    assert.matches("isclua: HTTP 404 Not Found on GET /v2024/roles/0+: ", err)
  end)

  it("runs a script against an embedded simulated tenant with --sim", function()
    local code, out = H.isclua({ "--sim=--roles 30 --seed 3", "-e",
      "local c = require('isc').client(); print(c:paginate(c:api_path('roles'), {max_limit=50}):count(), c.source)" })
    assert.equal(0, code)
    assert.equal("30\tthe embedded simulator (--sim)\n", out)
  end)

  it("prints the libcurl it runs with in --version", function()
    local _, curl = H.sh("curl --version")
    local _, out = H.isclua({ "--version" })
    assert.equal(curl:match("libcurl/([%d.]+)"), out:match("libcurl ([%d.]+)"))
  end)

  it("loads libcurl only for a request, and says what to install when it cannot", function()
    local env = { env = { ISCLUA_LIBCURL = "libcurl-not-here.so.4" } }
    local code, out = H.isclua({ "-e", "print(require('isc').json.encode({1}))" }, env)
    assert.equal(0, code) -- no request, no libcurl
    assert.equal("[1]\n", out)
    local _, version, err = H.isclua({ "--version" }, env)
    assert.matches("libcurl not found", version)
    assert.matches("apt%-get install libcurl4", err)
    local failed, _, said = H.isclua({ "-e", "require('isc').client{ base_url = 'http://127.0.0.1:9', "
      .. "client_id = 'a', client_secret = 'b' }.roles:get('x')" }, env)
    assert.equal(1, failed)
    assert.matches("cannot load libcurl %(libcurl%-not%-here%.so%.4: .-%); install it: apt%-get install libcurl4", said)
  end)

  it("is a module that a stock lua5.4 can require", function()
    local code, out = H.sh(H.stock_lua() .. " -e \"local isc = require 'isc'; print(isc.version, require('isc.core').version)\"")
    assert.equal(0, code)
    assert.matches("^%d+%.%d+%.%d+\t%d+%.%d+%.%d+\n$", out)
  end)

  describe("as lua(1)", function()
    -- Runs the same arguments through isclua and the stock lua5.4; returns
    -- both results, {code, out, err}, the program's name taken out of err.
    local function both(argv, opts)
      local words = {}
      for _, a in ipairs(argv) do words[#words + 1] = H.shell_quote(a) end
      local c1, o1, e1 = H.isclua(argv, opts)
      local c2, o2, e2 = H.sh("lua5.4 " .. table.concat(words, " "), opts)
      return { c1, o1, (e1:gsub("^isclua: ", "")) }, { c2, o2, (e2:gsub("^lua5%.4: ", "")) }
    end

    -- Asserts that isclua does what lua5.4 does with argv, and that this is
    -- expected: {exit code, stdout, stderr}.
    local function like_lua(argv, expected, opts)
      local mine, stock = both(argv, opts)
      assert.same(stock, mine)
      assert.same(expected, mine)
    end

    it("requires -l G=NAME into the global G, and -lNAME into NAME", function()
      like_lua({ "-l", "s=string", "-lutf8", "-e", "print(s == string, utf8.char(72))" }, { 0, "true\tH\n", "" })
    end)

    it("takes -e's statement in the same word", function()
      like_lua({ "-eprint(6 * 7)" }, { 0, "42\n", "" })
    end)

    it("turns warnings on with -W, where it stands among -e", function()
      like_lua({ "-e", "warn('before')", "-W", "-e", "warn('after')" }, { 0, "", "Lua warning: after\n" })
    end)

    it("runs LUA_INIT_5_4 before -e and the script, in preference to LUA_INIT", function()
      local env = { LUA_INIT_5_4 = "greeting = 'from init'", LUA_INIT = "error('not this one')" }
      like_lua({ "-e", "print(greeting)" }, { 0, "from init\n", "" }, { env = env })
    end)

    it("runs the file LUA_INIT names after an @, and stops when it fails", function()
      local init = script("print('init file')")
      like_lua({ "-e", "print('after')" }, { 0, "init file\nafter\n", "" }, { env = { LUA_INIT = "@" .. init } })
      local mine, stock = both({ "-e", "print('not reached')" }, { env = { LUA_INIT = "error('bad init', 0)" } })
      assert.same({ 1, "" }, { mine[1], mine[2] })
      assert.same({ stock[1], stock[2] }, { mine[1], mine[2] })
      assert.matches("^bad init\n", mine[3])
    end)

    it("ignores LUA_INIT, LUA_PATH and LUA_CPATH with -E, but not SAIL_* settings", function()
      local env = { LUA_INIT = "error('not run')", LUA_PATH_5_4 = "/nowhere/?.lua", LUA_CPATH_5_4 = "/nowhere/?.so" }
      local argv = { "-E", "-e", "print(package.path == package.path:gsub('/nowhere', ''), package.cpath:find('/nowhere') == nil)" }
      like_lua(argv, { 0, "true\ttrue\n", "" }, { env = env })
      local code, out = H.isclua({ "-E", "-e", "print(package.path)" }, { env = env })
      local _, default = H.sh("lua5.4 -E -e 'print(package.path)'")
      assert.same({ 0, default }, { code, out })

      code, out = H.isclua({ "-E", "-e", "print(require('isc').client().base_url)" },
        { env = { SAIL_BASE_URL = "http://127.0.0.1:9", SAIL_CLIENT_ID = "a", SAIL_CLIENT_SECRET = "b" } })
      assert.same({ 0, "http://127.0.0.1:9\n" }, { code, out })
    end)

    it("reads LUA_PATH without -E, putting the default path at ;;", function()
      local dir = H.tmpdir()
      H.write(dir .. "/greeter.lua", "return { hello = 'hi from LUA_PATH' }")
      local env = { LUA_PATH_5_4 = dir .. "/?.lua;;" }
      like_lua({ "-l", "greeter", "-e", "print(greeter.hello, package.path:find(';;') == nil)" },
        { 0, "hi from LUA_PATH\ttrue\n", "" }, { env = env })
      os.remove(dir .. "/greeter.lua")
      os.remove(dir)
    end)
  end)
end)
