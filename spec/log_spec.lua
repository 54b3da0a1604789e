-- Logging for scripts and cron jobs (isc.log, --log-level, --log-format,
-- --log-file): lines on stderr or in a file, never on stdout; JSON lines
-- that parse; secrets masked.
local core = require "isc.core"
local log = require "isc.log"
local run = require "cron_run"
local pty = require "repl_pty"

local function read_lines(path)
  local lines = {}
  local f = io.open(path)
  if not f then return lines end
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  return lines
end

local timestamp = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ"

describe("isc.log", function()
  local file, dir

  before_each(function()
    file, dir = run.temp_path("isclua.log")
  end)

  after_each(function()
    log.configure()
    os.execute("rm -rf " .. run.quote(dir))
  end)

  it("writes text lines with a timestamp, the level, the message and sorted fields", function()
    log.configure { file = file }
    log.info("roles listed", { count = 3, filter = 'name sw "Fin"', api = "v2024" })
    local line = read_lines(file)[1]
    assert.matches(timestamp .. " info: roles listed api=v2024 count=3 filter=\"name sw \\\"Fin\\\"\"$", line)
  end)

  it("leaves timestamps out of text lines when asked (as on a terminal)", function()
    log.configure { file = file, timestamps = false }
    log.warn("slow tenant")
    assert.same({ "warn: slow tenant" }, read_lines(file))
  end)

  it("writes one JSON object per line with timestamp, level, message and fields", function()
    log.configure { format = "json", file = file }
    log.error("propagation failed", { id = "p-1", stages = { "QUEUED", "FAILED" }, detail = { code = 7 } })
    log.info("no fields")
    local lines = read_lines(file)
    assert.equal(2, #lines)
    local first = assert(core.json_decode(lines[1]))
    assert.matches(timestamp .. "$", first.timestamp)
    assert.equal("error", first.level)
    assert.equal("propagation failed", first.message)
    assert.same({ id = "p-1", stages = { "QUEUED", "FAILED" }, detail = { code = 7 } }, first.fields)
    assert.same({}, assert(core.json_decode(lines[2])).fields)
  end)

  it("drops lines below the configured level", function()
    log.configure { level = "warn", file = file, timestamps = false }
    log.debug("d")
    log.info("i")
    log.warn("w")
    log.error("e")
    assert.same({ "warn: w", "error: e" }, read_lines(file))
    assert.is_false(log.enabled("info"))
    assert.is_true(log.enabled("error"))
  end)

  it("masks fields whose name looks secret, at any depth", function()
    log.configure { format = "json", file = file }
    log.info("settings", { client_secret = "s3cr3t", auth = { access_token = "tok", user = "me" }, password = "pw" })
    local line = read_lines(file)[1]
    assert.is_nil(line:find("s3cr3t", 1, true))
    assert.is_nil(line:find("tok\"", 1, true))
    assert.same({ client_secret = "***", auth = { access_token = "***", user = "me" }, password = "***" },
      core.json_decode(line).fields)
  end)

  it("tells a secret by the words of a field's name, so a role's fields stay readable", function()
    for _, name in ipairs { "client_secret", "clientSecret", "accessToken", "Authorization", "X-Api-Key", "apiKey" } do
      assert.is_true(log.looks_secret(name), name)
    end
    for _, name in ipairs { "reauthorizationRequired", "tokenizer", "secretary", "name" } do
      assert.is_false(log.looks_secret(name), name)
    end
  end)

  it("writes values JSON cannot hold as their text", function()
    log.configure { format = "json", file = file }
    log.info("odd fields", { fn = print, nested = { co = coroutine.create(print) }, mixed = { 10, 20, note = "x" },
      ceiling = math.huge })
    local fields = assert(core.json_decode(read_lines(file)[1])).fields
    assert.matches("^function: ", fields.fn)
    assert.matches("^thread: ", fields.nested.co)
    assert.same({ ["1"] = 10, ["2"] = 20, note = "x" }, fields.mixed)
    assert.equal("inf", fields.ceiling)
  end)

  it("reopens the file for every line, so a rotated log needs no signal", function()
    log.configure { file = file, timestamps = false }
    log.info("before rotation")
    assert(os.rename(file, file .. ".1"))
    log.info("after rotation")
    assert.same({ "info: before rotation" }, read_lines(file .. ".1"))
    assert.same({ "info: after rotation" }, read_lines(file))
  end)

  it("refuses an unknown level or format with an argument error", function()
    local ok, err = pcall(log.configure, { level = "loud" })
    assert.is_false(ok)
    assert.equal("argument", err.kind)
    assert.equal("isc.log.configure: unknown level 'loud' (debug, info, warn, error)", err.message)
    ok, err = pcall(log.configure, { format = "xml" })
    assert.equal("isc.log.configure: unknown format 'xml' (text, json)", err.message)
    ok, err = pcall(log.log, "chatty", "hello")
    assert.equal("isc.log.log: unknown level 'chatty'", err.message)
  end)
end)

describe("logging options of isclua", function()
  local script = [[
    local log = require "isc.log"
    log.info("starting", { job = "nightly" })
    print("data line")
    log.debug("details")
    log.warn("almost done")
  ]]

  it("--log-format json: every stderr line is a JSON object, and stdout holds only data", function()
    local r = run.run { "--log-format", "json", "-e", script }
    assert.equal(0, r.code)
    assert.equal("data line\n", r.stdout)
    assert.equal(2, #r.lines)
    local messages = {}
    for i, line in ipairs(r.lines) do
      local entry = assert(core.json_decode(line), "not JSON: " .. line)
      assert.matches(timestamp, entry.timestamp)
      messages[i] = entry.level .. " " .. entry.message
    end
    assert.same({ "info starting", "warn almost done" }, messages)
  end)

  it("text logs carry timestamps when stderr is not a terminal", function()
    local r = run.run { "-e", script }
    assert.matches(timestamp .. " info: starting job=nightly$", r.lines[1])
  end)

  it("text logs on a terminal have no timestamps", function()
    local p = pty.isclua { "-e", script }
    assert(p:expect("info: starting job=nightly\r\n"))
    local code, rest = p:wait()
    assert.equal(0, code)
    assert.matches("^data line\r\nwarn: almost done\r\n$", rest)
  end)

  it("--log-level debug shows debug lines; warn hides info", function()
    assert.equal(3, #run.run({ "--log-level", "debug", "-e", script }).lines)
    assert.equal(1, #run.run({ "--log-level=warn", "-e", script }).lines)
  end)

  it("--log-file appends the lines to the file, including the error that ended the run", function()
    local file, dir = run.temp_path("nightly.log")
    local r = run.run { "--log-file", file, "--log-format", "json", "-e", script .. " error('disk full')" }
    assert.equal(1, r.code)
    -- stderr keeps a one-line report for cron's mail; the traceback is in the file.
    assert.matches("^isclua: %(command line%):%d+: disk full\n$", r.stderr)
    local lines = read_lines(file)
    assert.equal(3, #lines)
    local last = assert(core.json_decode(lines[3]))
    assert.equal("error", last.level)
    assert.matches("disk full", last.message)
    assert.equal("error", last.fields.kind)
    assert.matches("traceback", last.fields.traceback)
    os.execute("rm -rf " .. run.quote(dir))
  end)

  it("JSON logs of an API error carry its status, tracking id and detail code as fields", function()
    local file, dir = run.temp_path("nightly.log")
    local r = run.run { "--sim", "--log-file", file, "--log-format", "json", "-e",
      "require('isc').client().roles:get('2c9180no0such0role0000000000000')" }
    assert.equal(3, r.code)
    local lines = read_lines(file)
    local last = assert(core.json_decode(lines[#lines]))
    assert.equal(404, last.fields.status)
    assert.equal("404 Not found", last.fields.detail_code)
    assert.matches("^%x+$", last.fields.tracking_id)
    assert.equal("GET", last.fields.method)
    assert.equal("api", last.fields.kind)
    os.execute("rm -rf " .. run.quote(dir))
  end)
end)
