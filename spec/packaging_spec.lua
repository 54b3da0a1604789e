-- What a packager takes from the repository: the man page (matching
-- --help), make install and uninstall, bash completion, the rockspec.
local H = require "helpers"

local function root(path) return H.root .. "/" .. path end

-- The Makefile's VERSION, which every packaged version must repeat.
local version = H.slurp(root("Makefile")):match("\nVERSION := (%S+)")

describe("the man page", function()
  it("renders without a warning", function()
    local code, out, err = H.sh("groff -man -Tascii -ww -P-cbou " .. H.shell_quote(root("man/isclua.1")))
    assert.same({ 0, "" }, { code, err })
    assert.matches("SYNOPSIS", out)
  end)

  it("describes every option --help lists, and this version", function()
    local _, page = H.sh("groff -man -Tascii -ww -P-cbou " .. H.shell_quote(root("man/isclua.1")))
    local _, help = H.isclua({ "--help" })
    local options = {}
    for word in help:gmatch("%f[%S](%-%-?[%a][%w-]*)") do options[word] = true end
    assert.is_true(options["-e"] and options["-W"] and options["--log-file"] and true)
    for option in pairs(options) do
      assert.truthy(page:find("%f[%S]" .. option:gsub("%p", "%%%0") .. "%f[^%w-]"), option .. " is not in the man page")
    end
    assert.truthy(page:find("isclua " .. version, 1, true))
  end)
end)

describe("make install and make uninstall", function()
  it("install the program, the module, the man page and the completion, and take them all away", function()
    local prefix = H.tmpdir()
    -- -o: install what the build under test holds, never rebuild it (with
    -- other flags than its own, as under make asan)
    local make = string.format("make -C %s --no-print-directory -o all -o modules BUILD=%s BOOTSTRAP= PREFIX=%s ",
      H.shell_quote(H.root), H.shell_quote(os.getenv("ISCLUA_BUILD") or "build"), H.shell_quote(prefix))
    local code, _, err = H.sh(make .. "install")
    assert.same({ 0, "" }, { code, err })
    for _, file in ipairs { "bin/isclua", "share/man/man1/isclua.1", "share/bash-completion/completions/isclua",
      "lib/lua/5.4/isc/core.so", "lib/lua/5.4/isc/sim/server.so", "share/lua/5.4/isc/init.lua",
      "share/lua/5.4/isc/sim/init.lua" } do
      assert.truthy(io.open(prefix .. "/" .. file), file .. " is not installed")
    end
    local out
    code, out = H.sh(H.shell_quote(prefix .. "/bin/isclua") .. " -e 'print(require(\"isc\").version)'")
    assert.same({ 0, version .. "\n" }, { code, out })
    -- a stock lua5.4 finds the installed module on paths of that prefix alone
    code, out = H.sh(H.stock_lua() .. " -e 'print(require(\"isc.sim\").start{roles=2}.url:match(\"^http\"))'",
      { env = { LUA_PATH_5_4 = prefix .. "/share/lua/5.4/?.lua;" .. prefix .. "/share/lua/5.4/?/init.lua",
        LUA_CPATH_5_4 = prefix .. "/lib/lua/5.4/?.so" } })
    assert.same({ 0, "http\n" }, { code, out })

    code, _, err = H.sh(make .. "uninstall")
    assert.same({ 0, "" }, { code, err })
    local _, left = H.sh("find " .. H.shell_quote(prefix) .. " -mindepth 1")
    assert.equal("", left)
    os.remove(prefix)
  end)
end)

describe("bash completion", function()
  -- The completions bash would offer for the words typed so far.
  local function complete(words, env)
    local line = table.concat(words, " ")
    local cmd = string.format([[bash -c 'source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _isclua; printf "%%s\n" "${COMPREPLY[@]}" | sort']],
      root("completion/isclua.bash"), line, #words - 1)
    local code, out = H.sh(cmd, { env = env })
    assert.equal(0, code)
    return out
  end

  it("offers options, subcommands and the profiles of the config file", function()
    assert.equal("--profile\n", complete { "isclua", "--prof" })
    assert.equal("-E\n", complete { "isclua", "-E" })
    assert.equal("sim\n", complete { "isclua", "si" })
    local config = H.write(os.tmpname() .. ".lua", [[
default = "prod"
profiles = {
  prod = { base_url = "https://acme.api.identitynow.com", client_id = "x", secret_command = "pass show isc/prod" },
  ["prod-eu"] = {
    base_url = "https://acme-eu.api.identitynow.com",
  },
  sandbox = { base_url = "https://acme-sb.api.identitynow.com" },
}
]])
    assert.equal("prod\nprod-eu\n", complete({ "isclua", "--profile", "pro" }, { ISCLUA_CONFIG = config }))
    assert.equal("json\n", complete { "isclua", "--log-format", "j" })
    os.remove(config)
  end)
end)

describe("the rockspec", function()
  it("builds the module with the Makefile's targets, at the Makefile's version", function()
    local spec = {}
    assert(loadfile(root("isclua-" .. version .. "-1.rockspec"), "t", spec))()
    assert.equal("isclua", spec.package)
    assert.equal(version .. "-1", spec.version)
    assert.equal("MIT", spec.description.license)
    assert.equal("make", spec.build.type)
    local makefile = H.slurp(root("Makefile"))
    for _, target in ipairs { spec.build.build_target, spec.build.install_target } do
      assert.truthy(makefile:find("\n" .. target .. ":", 1, true), target .. " is not a make target")
    end
    -- the variables luarocks sets are the ones the Makefile reads
    for _, var in ipairs { "BOOTSTRAP", "LUA_INCDIR", "LUA_LIB", "LUA_SHARE" } do
      assert.truthy(makefile:find("$(" .. var .. ")", 1, true), var .. " is not used by the Makefile")
    end
    assert.equal("$(LIBDIR)", spec.build.install_variables.LUA_LIB)
    assert.equal("$(LUADIR)", spec.build.install_variables.LUA_SHARE)
  end)

  it("is under the licence the LICENSE file grants, which the CHANGELOG's release matches", function()
    assert.matches("^MIT License\n\nCopyright %(c%) 2026 the isclua authors\n", H.slurp(root("LICENSE")))
    assert.matches("\n## %[?" .. version:gsub("%p", "%%%0") .. "%]?", H.slurp(root("CHANGELOG.md")))
  end)
end)
