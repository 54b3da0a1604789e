-- The REPL: first its line-level session (what a typed line does), then
-- isclua itself on a pseudo-terminal (line editing, completion, history,
-- Ctrl-C and Ctrl-D as a user meets them).
local config = require "isc.config"
local H = require "helpers"
local repl = require "isc.repl"
local pty = require "repl_pty"
local run = require "cron_run"

-- A session over a fresh environment, collecting what it prints.
local function session(env)
  local printed, errors = {}, {}
  local s = repl.session {
    env = setmetatable(env or { isc = require "isc" }, { __index = _G }),
    out = function(text) printed[#printed + 1] = text end,
    err = function(text) errors[#errors + 1] = text end,
  }
  s.printed = function()
    local all = table.concat(printed)
    printed = {}
    return all
  end
  s.errors = function()
    local all = table.concat(errors)
    errors = {}
    return all
  end
  return s
end

-- A client with settings but no tenant behind them (nothing here connects).
local function offline_client()
  return require("isc").client { base_url = "https://acme.api.identitynow.com", client_id = "cid",
    client_secret = "not-shown" }
end

describe("a REPL session", function()
  it("prints the values of bare expressions and of =expr", function()
    local s = session()
    assert.equal("done", s:feed("1 + 1"))
    assert.equal("2\n", s.printed())
    s:feed("=math.max(3, 7), 'two'")
    assert.equal("7\ttwo\n", s.printed())
    s:feed("x = 5")
    assert.equal("", s.printed())
    s:feed("x * 2")
    assert.equal("10\n", s.printed())
  end)

  it("continues an incomplete chunk on the next lines, with the continuation prompt", function()
    local s = session()
    assert.equal("> ", s:prompt())
    assert.equal("more", s:feed("function double(n)"))
    assert.equal(">> ", s:prompt())
    assert.equal("more", s:feed("  return n * 2"))
    local status, chunk = s:feed("end")
    assert.equal("done", status)
    assert.equal("function double(n)\n  return n * 2\nend", chunk)
    assert.equal("> ", s:prompt())
    s:feed("double(21)")
    assert.equal("42\n", s.printed())
  end)

  it("continues a table constructor and prints the table", function()
    local s = session()
    assert.equal("more", s:feed("= {"))
    assert.equal("more", s:feed("  name = 'Finance',"))
    assert.equal("done", s:feed("}"))
    assert.equal('{ name = "Finance" }\n', s.printed())
  end)

  it("drops an incomplete chunk on cancel (Ctrl-C at the continuation prompt)", function()
    local s = session()
    s:feed("for i = 1, 3 do")
    s:cancel()
    assert.equal("> ", s:prompt())
    s:feed("'fresh'")
    assert.equal("fresh\n", s.printed())
  end)

  it("reports a syntax error at once rather than waiting for more", function()
    local s = session()
    assert.equal("done", s:feed("x = = 1"))
    assert.matches("^stdin:1: unexpected symbol near '='", s.errors())
  end)

  it("reports a Lua error with its traceback, an isc error as its message, an interrupt in one word", function()
    local s = session()
    s:feed("local function inner() error('broken') end inner()")
    assert.matches("^stdin:1: broken\nstack traceback:\n.*in local 'inner'", s.errors())
    s:feed("isc.errors.raise('argument', 'roles:get: argument #1 must be string, got nil')")
    assert.equal("roles:get: argument #1 must be string, got nil\n", s.errors())
    s:feed("isc.errors.raise('interrupted', 'interrupted by SIGINT', { signal = 2 })")
    assert.equal("interrupted\n", s.errors())
  end)

  it("prints an error that is a table as a value, not as its address", function()
    local s = session()
    s:feed("error({ code = 1, detail = 'quota' })")
    assert.matches('^{ code = 1, detail = "quota" }\nstack traceback:\n', s.errors())
  end)

  it("prints nested tables indented with sorted keys", function()
    local s = session()
    s:feed("{ owner = { type = 'IDENTITY', id = '2c91' }, name = 'Finance', tags = { 'a', 'b' },"
      .. " description = string.rep('d', 80) }")
    assert.equal([[
{
  description = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
  name = "Finance",
  owner = { id = "2c91", type = "IDENTITY" },
  tags = { "a", "b" }
}
]], s.printed())
  end)

  -- A listing over 8 roles, 3 to a page, that records the pages asked for.
  local function listing_of_8()
    local asked = {}
    local p = require("isc.core").pager { label = "GET /v2024/roles", limit = 3, fetch = function(offset, limit, want_total)
      asked[#asked + 1] = string.format("%d+%d", offset, limit)
      local page = {}
      for i = offset + 1, math.min(offset + limit, 8) do
        page[#page + 1] = { id = "r" .. i, name = "Role " .. i, enabled = true, description = "d" }
      end
      return page, want_total and 8 or nil
    end }
    return p, asked
  end

  it("shows a listing as what it walks, how many items it holds and its first items", function()
    local p, asked = listing_of_8()
    local s = session { roles = p }
    s:feed("roles")
    assert.equal([[
isc.pager(GET /v2024/roles: not started, 0 read): 8 items, the first 3:
  { id = "r1", name = "Role 1", ... 2 more }
  { id = "r2", name = "Role 2", ... 2 more }
  { id = "r3", name = "Role 3", ... 2 more }
]], s.printed())
    -- One page fetched apart: the listing was neither walked nor moved.
    assert.same({ "0+3" }, asked)
    assert.equal(0, p:read())
    assert.equal("r1", p:next().id)
  end)

  it("shows a listing returned as a generic-for quadruple once, and from its start when partly read", function()
    local p = listing_of_8()
    local s = session { make = function() return p, nil, nil, p end }
    p:next()
    s:feed("make()")
    local shown = s.printed()
    assert.matches("^isc%.pager%(GET /v2024/roles: reading, 1 of 8 read%): 8 items, the first 3:\n  { id = \"r1\"", shown)
    assert.equal(4, select(2, shown:gsub("\n", "")))
    assert.equal("r2", p:next().id)
  end)

  it("says when a listing is empty, and why a preview could not be had", function()
    local s = session { empty = require("isc.core").pager { fetch = function() return {}, 0 end, label = "GET /x" } }
    s:feed("empty")
    assert.equal("isc.pager(GET /x: not started, 0 read): no items\n", s.printed())
    local failing = require("isc.core").pager { label = "GET /y",
      fetch = function() require("isc.errors").raise("network", "connection refused") end }
    s = session { failing = failing }
    s:feed("failing")
    assert.matches("^isc%.pager%(GET /y: not started, 0 read%)\n  %(no preview: .*connection refused%)\n$", s.printed())
  end)

  it("shows a client without its secret", function()
    local s = session { c = offline_client() }
    s:feed("c")
    assert.equal("isc.client(https://acme.api.identitynow.com, client cid, not authenticated yet)\n", s.printed())
  end)
end)

describe("completion", function()
  local s

  before_each(function()
    s = session {
      alpha = 1, alphabet = 2,
      t = { name = 1, names = 2, other = 3, [4] = "not a name", ["not valid"] = 5 },
      text = "x",
      c = offline_client(),
      isc = require "isc",
    }
  end)

  it("completes globals and keywords", function()
    assert.same({ "alpha", "alphabet" }, s:complete("alph"))
    assert.same({ "while" }, s:complete("whi"))
    assert.same({ "isc" }, s:complete("is"))
  end)

  it("completes the fields of a table after '.'", function()
    assert.same({ "t.name", "t.names" }, s:complete("t.na"))
    assert.same({ "t.name", "t.names", "t.other" }, s:complete("t."))
  end)

  it("completes methods after ':', through metatables, including c.roles:li", function()
    assert.same({ "c.roles:list" }, s:complete("c.roles:li"))
    assert.same({ "text:upper" }, s:complete("text:up"))
    assert.same({}, s:complete("t:"))
  end)

  it("offers a client's services before they are first used", function()
    assert.same({ "c.roles", "c.roles_version" }, s:complete("c.ro"))
    assert.same({ "c.propagation", "c.propagation_version" }, s:complete("c.prop"))
    assert.is_nil(rawget(s.env.c, "roles"), "completion must not create the service")
  end)

  it("keeps private names out unless they are asked for", function()
    local methods = s:complete("c:")
    assert.is_truthy(#methods > 0)
    for _, m in ipairs(methods) do assert.is_nil(m:find("c:_", 1, true)) end
    assert.same({ "c:_target", "c:_token", "c:_trace" }, s:complete("c:_t"))
  end)

  it("offers nothing for what does not exist", function()
    assert.same({}, s:complete("nosuch.field"))
    assert.same({}, s:complete("t.name.deeper"))
  end)
end)

describe("help", function()
  local c = offline_client()

  it("lists a service's functions with the one-line descriptions of its module's help table", function()
    local text = repl.help_text(c.roles, true)
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal("isc.roles(/v2024/roles)", lines[1])
    local help = require("isc.roles").help
    local names = {}
    for name in pairs(help) do names[#names + 1] = name end
    table.sort(names)
    assert.equal(#names + 1, #lines)
    for i, name in ipairs(names) do assert.equal("  " .. help[name], lines[i + 1]) end
  end)

  it("describes every field of isc, functions and values alike", function()
    local text = repl.help_text(require "isc", true)
    assert.matches("^module isc\n", text)
    for _, name in ipairs { "client", "array", "is_error", "sleep", "null", "json", "errors", "log", "dry_run" } do
      assert.matches("\n  isc%." .. name .. "[%s%(%.:{]", text)
    end
    assert.is_nil(text:find("%(%.%.%.%)"), "every line has a description")
    assert.matches("\n  isc%.log%.warn%(message, {field=value}%): ", repl.help_text(require("isc").log, true))
  end)

  it("describes a listing's methods, its pages, on_page and how to resume after a failed page", function()
    local listing = require("isc.core").pager { fetch = function() return {} end, label = "GET /v2024/roles" }
    local text = repl.help_text(listing, true)
    for _, name in ipairs { "next", "next_page", "pages", "collect", "count", "total", "read", "peek", "close" } do
      assert.matches("\n  listing:" .. name .. "%(", text)
    end
    assert.matches("listing:pages%(%) %-> iterator over pages {items=, offset=", text)
    assert.matches("on_page = function%(info%).-{offset=, count=, read=, total=}", text)
    assert.matches("offset= and read=; iterate the same listing again", text)
    assert.is_nil(text:find("c:request", 1, true), "not the client's help")
  end)

  it("lists the fields, operators and sorters of each listing under help \"filters\"", function()
    local text = repl.help_text("filters", true)
    assert.matches("c%.roles:list.-\n%s+id eq,in   name eq,sw   created gt,ge,le   modified lt,ge,le", text)
    assert.matches("c%.roles:search.-\n%s+id eq,in   name eq,sw   created gt,lt,ge,le", text)
    assert.matches("assigned_identities.-\n%s+id eq,in   aliasName eq,sw   email eq,sw   name eq,sw,co", text)
    assert.matches("entitlements.-source%.id eq,in\n%s+sorters: name, attribute, value, created, modified", text)
    assert.matches('help "filters"', repl.help_text(offline_client().roles, true))
    assert.equal('no help on "nope"; topics: "filters"', repl.help_text("nope", true))
  end)

  it("does the same for c.propagation", function()
    local text = repl.help_text(c.propagation, true)
    for _, line in pairs(require("isc.propagation").help) do
      assert.is_truthy(text:find("  " .. line, 1, true))
    end
  end)

  it("points from a client to its services", function()
    local text = repl.help_text(c, true)
    assert.matches("^isc%.client%(https://acme%.api%.identitynow%.com", text)
    assert.matches("\n  c%.roles: help%(c%.roles%) lists its functions", text)
    assert.matches("\n  c:request%(method, path, .-%) %-> body, status, headers", text)
    assert.is_nil(text:find("sleep", 1, true), "injected internals are not listed as methods")
  end)

  it("explains the prompt when called with no argument", function()
    local text = repl.help_text(nil, false)
    assert.matches("help%(c%.roles%)", text)
    assert.matches("Ctrl%-D exits", text)
    assert.matches(repl.history_file(), text, 1, true)
  end)
end)

describe("setting up the REPL", function()
  after_each(function()
    config.process.settings = nil
  end)

  it("creates c and names its tenant in the banner when settings are found", function()
    config.process.settings = { base_url = "https://acme.api.identitynow.com", client_id = "cid",
      client_secret = "not-shown", source = "the spec" }
    local env = {}
    local banner = repl.setup(env)
    assert.equal(require("isc"), env.isc)
    assert.equal("https://acme.api.identitynow.com", env.c.base_url)
    assert.matches("^isclua %S+ %(Lua 5%.4%) %- help%(%) for help, Ctrl%-D to exit\n"
      .. "c: https://acme%.api%.identitynow%.com %(settings from the spec%)$", banner)
  end)

  it("says how to configure a tenant when there is none", function()
    local env = {}
    local banner = repl.setup(env)
    assert.is_nil(env.c)
    local first, second = banner:match("^([^\n]+)\n([^\n]+)$")
    assert.matches("^isclua ", first)
    assert.matches("^No tenant configured: set SAIL_BASE_URL, SAIL_CLIENT_ID and SAIL_CLIENT_SECRET, or add a profile to "
      .. config.config_file():gsub("%p", "%%%0") .. "; then c = isc.client%(%)$", second)
  end)

  it("keeps a c the script already made (isclua -i script.lua)", function()
    local env = { c = "mine" }
    repl.setup(env)
    assert.equal("mine", env.c)
  end)
end)

describe("the history", function()
  it("lives in $XDG_STATE_HOME/isclua/history", function()
    assert.equal(os.getenv("XDG_STATE_HOME") .. "/isclua/history", repl.history_file())
  end)

  it("keeps out lines that look like they set a secret", function()
    for _, line in ipairs {
      'c = isc.client { base_url = "https://x", client_id = "id", client_secret = "abc" }',
      'token = "eyJhbGciOi"',
      'jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"',
      'c:request("GET", "/x", { headers = { Authorization2 = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.sig" } })',
      'pw = "hunter2"',
      'local pwd = "hunter2"',
      'pass = "x"',
      'apiKey = "k1"',
      't = { client_secret = "short" }',
      "password = io.read()",
      'os.getenv("SAIL_CLIENT_SECRET")',
      'c = isc.client { base_url = "https://x", client_id = "id", [k] = "5f2b7a9c0e1d4f6a8b3c5d7e9f0a1b2c3d4e5f6a7b8c9d0e" }',
    } do
      assert.is_true(repl.looks_secret(line), line)
    end
    for _, line in ipairs {
      "c.roles:list():collect()",
      'c.roles:get("2c9180835d2e5168015d32f890ca1581")',
      "x = 1",
      "c:logout()",
      'keys = { "a" }',
      'upward = "north"',
      'c.roles:list { sorters = "name" }',
    } do
      assert.is_false(repl.looks_secret(line), line)
    end
  end)
end)

describe("isclua on a terminal", function()
  local sim, state_dir
  H.shared_sim({ roles = 8, seed = 11, propagation_stage_seconds = 3600 }, function(s) sim = s end, { lazy = true })

  before_each(function()
    local _
    _, state_dir = run.temp_path("unused")
  end)

  after_each(function()
    os.execute("rm -rf " .. run.quote(state_dir))
  end)

  -- isclua at a terminal, connected to the simulator, with its own history.
  local function start(env)
    local e = run.tenant_env(sim)
    e.XDG_STATE_HOME = state_dir
    for k, v in pairs(env or {}) do e[k] = v end
    local p = pty.isclua({}, e)
    return p, assert(p:expect("\n> "), "no prompt")
  end

  -- Types Ctrl-D, once the line editor reads (see await_raw_mode).
  local function ctrl_d(p)
    assert(p:await_raw_mode(), "the line editor never started")
    p:send("\4")
  end

  -- Types a line and returns what the REPL showed up to its next prompt.
  local function type_line(p, line)
    p:send(line .. "\r")
    return assert(p:expect("\n> "), "no prompt after " .. line)
  end

  it("greets with the tenant it is connected to and evaluates lines", function()
    local p, banner = start()
    assert.matches("c: " .. sim.url:gsub("%p", "%%%0") .. " %(settings from environment %(SAIL_%*%)%)", banner)
    assert.matches("\n2\r\n", type_line(p, "1 + 1"))
    -- A listing shows its first roles; the simulator holds 8.
    local shown = type_line(p, "c.roles:list()")
    assert.matches("isc%.pager%(GET /v2024/roles: not started, 0 read%): 8 items, the first 5:\r\n", shown)
    assert.equal(5, select(2, shown:gsub('\r\n  { id = "[^"]+", name = "', "")))
    ctrl_d(p)
    assert.equal(0, (p:wait()))
  end)

  it("works without libedit, reading plain lines, and says once what to install", function()
    local p, banner = start { ISCLUA_LIBEDIT = "libedit-not-here.so.2" }
    assert.matches("isclua: no line editing %(.-libedit%-not%-here%.so%.2.-%): install libedit "
      .. "%(Debian: apt%-get install libedit2%)", banner)
    assert.matches("\n3\r\n", type_line(p, "1 + 2"))
    local shown = type_line(p, "c.roles:list():count()")
    assert.matches("\n8\r\n", shown)
    assert.is_nil(shown:find("no line editing", 1, true))
    p:send("os.exit(0)\r")
    assert.equal(0, (p:wait()))
  end)

  it("reads a multi-line chunk with the continuation prompt", function()
    local p = start()
    p:send("function greet(name)\r")
    assert(p:expect("\n>> "))
    p:send("  return 'hello ' .. name\r")
    assert(p:expect("\n>> "))
    type_line(p, "end")
    assert.matches("hello admin\r\n", type_line(p, "greet('admin')"))
    p:close()
  end)

  it("completes with Tab, also c.roles:li, and lists the candidates on a second Tab", function()
    local p = start()
    type_line(p, "alphabet_soup = 42")
    p:send("alphabet_s")
    assert(p:expect("alphabet_s"))
    p:send("\t")
    assert.matches("\n42\r\n", type_line(p, ""))
    -- c.roles:li<TAB> becomes c.roles:list, then called.
    p:send("c.roles:li")
    assert(p:expect("c.roles:li"))
    p:send("\t")
    assert.matches('name = "', type_line(p, "{ max = 1 }:collect()"))
    p:send("c.roles:")
    assert(p:expect("c.roles:"))
    p:send("\t\t")
    local listing = assert(p:expect("> c.roles:"), "the line should be shown again after the list")
    assert.matches("c%.roles:get", listing)
    assert.matches("c%.roles:search", listing)
    assert.matches("c%.roles:list", listing)
    p:close()
  end)

  it("keeps history across sessions, without the line holding a secret", function()
    local p = start()
    type_line(p, "first = 'visible line'")
    type_line(p, 'c2 = isc.client { base_url = "https://x.example", client_id = "id", client_secret = "hunter2-pw" }')
    type_line(p, 'pw = "hunter3"')
    type_line(p, 'jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"')
    type_line(p, "print(first)")
    ctrl_d(p)
    assert.equal(0, (p:wait()))

    local path = state_dir .. "/isclua/history"
    local f = assert(io.open(path))
    local saved = f:read("a")
    f:close()
    assert.is_truthy(saved:find("visible", 1, true))
    assert.is_nil(saved:find("hunter2", 1, true))
    assert.is_nil(saved:find("hunter3", 1, true))
    assert.is_nil(saved:find("eyJ", 1, true))
    assert.equal(6 * 64, require("isc.core").file_mode(path)) -- 0600: the user's only

    -- A new session recalls the last line with the up arrow.
    local again = start()
    type_line(again, "first = 'recalled'")
    again:send("\27[A\27[A")
    assert.matches("\nrecalled\r\n", type_line(again, ""))
    again:close()
  end)

  it("Ctrl-C during a wait stops it and returns to the prompt", function()
    local p = start()
    p:send("print('waiting') isc.sleep(600)\r")
    assert(p:expect("waiting\r\n"))
    p:send("\3")
    assert.matches("interrupted\r\n", assert(p:expect("\n> ")))
    p:send("c.propagation:start() print('propagating') c.propagation:wait()\r")
    assert(p:expect("propagating\r\n"))
    p:send("\3")
    assert.matches("interrupted\r\n", assert(p:expect("\n> ")))
    -- The session goes on.
    assert.matches("\n3\r\n", type_line(p, "1 + 2"))
    p:close()
  end)

  it("Ctrl-C at the prompt clears the line and does not reach the next statement", function()
    local p = start()
    p:send("half typed")
    assert(p:expect("half typed"))
    p:send("\3")
    assert(p:expect("^C\r\n> "))
    local shown = type_line(p, "for i = 1, 3e6 do end print('finished')")
    assert.matches("finished\r\n", shown)
    assert.is_nil(shown:find("interrupted", 1, true))
    p:close()
  end)

  it("ends on Ctrl-D with exit code 0", function()
    local p = start()
    ctrl_d(p)
    assert.equal(0, (p:wait()))
  end)
end)
