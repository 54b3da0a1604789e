--- The isclua command line: what to run, how, and the exit code it ends with.
--- The C host only creates the Lua state and calls main(argv).
local args = require "isc.args"
local config = require "isc.config"
local core = require "isc.core"
local cron = require "isc.cron"
local errors = require "isc.errors"
local log = require "isc.log"

local M = {}

--- Exit codes, stable for cron jobs and scripts that call isclua.
M.exit_codes = {
  ok = 0, script_error = 1, usage = 2, api = 3, network = 4, timeout = 5, already_running = 6,
  unknown_outcome = 7, interrupted = 130, terminated = 143,
}

--- Seconds a stopped run has to unwind to its report before the process
--- ends anyway, with the same exit code.
M.stop_grace = 1

local usage = [==[
usage: isclua [options] [script [args...]]
       isclua sim [simulator options]     (isclua sim --help)
       isclua journal FILE                what a --journal file says changed
       isclua undo FILE [undo options]    put back what it changed (isclua undo --help)

Runs a Lua 5.4 script with require "isc" ready; with no script, an interactive
prompt on a terminal (or a script read from stdin otherwise).

options:
  -e STAT         execute the Lua statement STAT
  -i              enter interactive mode after running the script
  -l NAME         require library NAME into global NAME
  -l G=NAME       require library NAME into global G
  -v              trace every HTTP request on stderr (secrets masked);
                  unlike lua(1), which prints its version
  -E              ignore LUA_INIT, LUA_PATH and LUA_CPATH (not the SAIL_*
                  and ISCLUA_* settings)
  -W              turn warnings on
  -               read the script from stdin
  --              stop handling options
  --profile NAME  use the named profile of the isclua config file
  --sim[=OPTS]    run against an embedded simulated tenant (OPTS as for
                  'isclua sim', e.g. --sim='--roles 500 --seed 7')
  --dry-run       log mutating calls (POST, PUT, PATCH, DELETE) instead of
                  sending them; reads still go to the tenant
  --journal FILE  append one JSON line per change sent (and the roles as they
                  were before) to FILE, created 0600; see isclua undo
  --help          show this help
  --version       show the version

cron options (also as --option=VALUE):
  --lock FILE     hold an exclusive lock on FILE for the run; if another run
                  holds it, exit at once with code 6
  --lock-wait S   wait up to S seconds for the lock before giving up
  --timeout S     stop the run after S seconds, with exit code 5
  --log-level L   debug, info (default), warn or error
  --log-format F  text (default) or json: one JSON object per line
  --log-file FILE append log lines to FILE instead of stderr

exit codes: 0 ok, 1 script error, 2 usage, 3 ISC API error, 4 network error,
5 timeout, 6 already running, 7 a change's outcome is unknown (look before
running again), 130 interrupted (SIGINT), 143 terminated (SIGTERM)
]==]

--- Reports a usage error on stderr, pointing at the help (help: the command
--- that shows it, 'isclua --help' by default); returns its exit code.
function M.usage_error(msg, help)
  io.stderr:write("isclua: ", msg, "\n", "Try '", help or "isclua --help", "'.\n")
  return M.exit_codes.usage
end
local usage_error = M.usage_error

--- Exit code for an error that ended a run.
function M.exit_code_for(err)
  if errors.is(err) then
    if err.kind == "interrupted" then
      if err.signal == cron.deadline_signal then return M.exit_codes.timeout end
      return err.signal == 15 and M.exit_codes.terminated or M.exit_codes.interrupted
    end
    if err.kind == "bad_response" then return M.exit_codes.api end
    return M.exit_codes[err.kind] or M.exit_codes.script_error
  end
  return M.exit_codes.script_error
end

-- The frames of a traceback that are the script's own: isc's files and C
-- functions say nothing to the script's author (-v keeps them all).
local function script_frames(trace)
  if config.process.verbose then return trace end
  local kept = {}
  for line in trace:gmatch("[^\n]+") do
    local file = line:match("^%s+([^:]+):")
    local theirs = file == "[C]" or (file and args.is_isc_source("@" .. file)) or line:match("^%s+%(%.%.%.tail calls")
    if not theirs then kept[#kept + 1] = line end
  end
  return table.concat(kept, "\n")
end

-- Message handler: keeps the error value, adding a traceback for the report.
-- The frames below the script's own (this module's xpcall) are cut off.
local function handler(err)
  local trace = debug.traceback("", 2):gsub("^\n", ""):gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
  return { err = err, traceback = script_frames(trace) }
end

--- Reports an error that ended a run on stderr (and in the log when it is
--- JSON or a file); returns its exit code.
function M.report(caught)
  local err = cron.explain(caught.err)
  local text = tostring(err)
  local trace = caught.traceback
  if errors.is(err, "interrupted") or errors.is(err, "already_running") or (errors.is(err) and err.deadline) then
    trace = nil
  end
  local logged = log.settings()
  if logged.format == "json" or logged.file then
    local fields = { kind = errors.is(err) and err.kind or "error", traceback = trace }
    if errors.is(err) then
      -- what a log search or an alert wants to match on, as fields of their own
      for _, k in ipairs { "status", "tracking_id", "detail_code", "outcome", "method", "path" } do
        if type(err[k]) ~= "table" then fields[k] = err[k] end
      end
    end
    log.error(text, fields)
  end
  if logged.file then
    -- the traceback is in the log file; cron mails the one line
    io.stderr:write("isclua: ", text, "\n")
  elseif logged.format ~= "json" then
    io.stderr:write("isclua: ", text, "\n", trace and trace .. "\n" or "")
  end
  return M.exit_code_for(err)
end

-- A stop (SIGINT, SIGTERM, --timeout) unwinds the run to here and is
-- reported, whatever the script caught on the way.
local stop_handler = core.stop_handler(handler)

--- Runs fn(...) protected; returns true, results or false, exit code.
function M.protected(fn, ...)
  local res = table.pack(xpcall(fn, stop_handler, ...))
  if res[1] then return table.unpack(res, 1, res.n) end
  return false, M.report(res[2])
end

-- Runs a compiled chunk protected with its arguments; a chunk that did not
-- compile (nil, message) is a script error. Returns true or false, exit code.
local function run_chunk(chunk, err, ...)
  if not chunk then
    io.stderr:write("isclua: ", err, "\n")
    return false, M.exit_codes.script_error
  end
  return M.protected(chunk, ...)
end

-- lua(1)'s LUA_INIT_5_4 (or LUA_INIT): a chunk run before everything else,
-- or with a leading @ the file to run. Returns true or false, exit code.
local function run_lua_init()
  local name = "LUA_INIT_5_4"
  local init = os.getenv(name)
  if not init then
    name = "LUA_INIT"
    init = os.getenv(name)
  end
  if not init then return true end
  if init:sub(1, 1) == "@" then return run_chunk(loadfile(init:sub(2))) end
  return run_chunk(load(init, "=" .. name))
end

-- -l NAME or -l G=NAME: require(NAME) into the global G (NAME by default).
local function require_into_global(spec)
  local global, name = spec:match("^([^=]*)=(.*)$")
  _G[global or spec] = require(name or spec)
end

-- Loads and runs a script file ("-" or nil: stdin) with its arguments.
local function run_script(path, ...)
  local chunk, err
  if path == nil or path == "-" then
    chunk, err = load(io.stdin:read("a"), "=stdin")
  else
    chunk, err = loadfile(path)
  end
  return run_chunk(chunk, err, ...)
end

-- Splits --sim's option string like a shell would for simple words.
local function split_words(s)
  local words = {}
  for w in s:gmatch("%S+") do words[#words + 1] = w end
  return words
end

local function start_embedded_sim(opts_string)
  local sim = require "isc.sim"
  local simcli = require "isc.sim.cli"
  local conf, err = simcli.parse(split_words(opts_string or ""))
  if not conf then return nil, err end
  local s = sim.start(conf)
  sim.embedded = s
  config.process.settings = {
    base_url = s.url, client_id = s.client_id, client_secret = s.client_secret,
    source = "the embedded simulator (--sim)",
  }
  return s
end

-- Options that take a value (as "--opt VALUE" or "--opt=VALUE"): the plan
-- field each sets, and how its value is checked.
local function seconds(v)
  local n = tonumber(v)
  return n and n >= 0 and n < 1e9 and n or nil, "a number of seconds"
end
local function one_of(...)
  local allowed = table.pack(...)
  return function(v)
    for _, x in ipairs(allowed) do
      if v == x then return v end
    end
    return nil, "one of " .. table.concat(allowed, ", ")
  end
end
local function any_text(v) return v ~= "" and v or nil, "a file name" end
local valued = {
  ["--lock"] = { "lock", any_text },
  ["--lock-wait"] = { "lock_wait", seconds },
  ["--timeout"] = { "timeout", seconds },
  ["--log-level"] = { "log_level", one_of("debug", "info", "warn", "error") },
  ["--log-format"] = { "log_format", one_of("text", "json") },
  ["--log-file"] = { "log_file", any_text },
  ["--journal"] = { "journal", any_text },
}

-- Parses argv (lua(1)-style); returns the plan or nil, message.
local function parse(argv)
  local plan = { exec = {}, script_index = nil }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    local opt = valued[name or a]
    if opt then
      local v = inline
      if not v then
        i = i + 1
        v = argv[i]
      end
      if not v then return nil, "'" .. a .. "' needs a value" end
      local checked, expected = opt[2](v)
      if not checked then return nil, string.format("'%s' must be %s, got '%s'", name or a, expected, v) end
      plan[opt[1]] = checked
    elseif a == "--" then
      i = i + 1
      break
    elseif a == "-" or a:sub(1, 1) ~= "-" then
      break
    elseif a:match("^%-[el]") then
      -- the statement or library may follow in the same word, as with lua(1)
      local value = a:sub(3)
      if value == "" then
        value = argv[i + 1]
        if not value then return nil, "'" .. a .. "' needs an argument" end
        i = i + 1
      end
      plan.exec[#plan.exec + 1] = { a:sub(1, 2), value }
    elseif a == "-W" then
      plan.exec[#plan.exec + 1] = { a }
    elseif a == "-E" then
      plan.ignore_env = true
    elseif a == "-i" then
      plan.interactive = true
    elseif a == "-v" then
      plan.verbose = true
    elseif a == "--profile" then
      if not argv[i + 1] then return nil, "'--profile' needs a profile name" end
      plan.profile = argv[i + 1]
      i = i + 1
    elseif a == "--sim" then
      plan.sim = ""
    elseif a:match("^%-%-sim=") then
      plan.sim = a:sub(7)
    elseif a == "--dry-run" then
      plan.dry_run = true
    elseif a == "--help" or a == "-h" then
      plan.help = true
    elseif a == "--version" then
      plan.version = true
    else
      return nil, "unknown option '" .. a .. "'"
    end
    i = i + 1
  end
  if argv[i] then plan.script_index = i end
  if plan.lock_wait and not plan.lock then return nil, "'--lock-wait' needs '--lock FILE'" end
  if plan.timeout == 0 then return nil, "'--timeout' must be more than 0 seconds" end
  return plan
end

-- Builds the global `arg` table as lua(1) does: the script at 0 and its
-- arguments from 1, the interpreter and options at negative indices; with no
-- script, "isclua" at 0 and every argument from 1.
local function make_arg(argv, script_index)
  local base = script_index or 0
  local t = { [-base] = "isclua" }
  for k = 1, #argv do t[k - base] = argv[k] end
  return t
end

-- Runs what the command line asks for (-e, -l, the script, the REPL);
-- returns the exit code.
local function run_plan(plan, argv)
  if plan.sim then
    local ok, s, serr = M.protected(start_embedded_sim, plan.sim)
    if not ok then return s end
    if not s then return usage_error("--sim: " .. tostring(serr)) end
  end

  if not plan.ignore_env then
    local ok, code = run_lua_init()
    if not ok then return code end
  end
  for _, e in ipairs(plan.exec) do
    local ok, code = true, nil
    if e[1] == "-e" then
      ok, code = run_chunk(load(e[2], "=(command line)"))
    elseif e[1] == "-l" then
      ok, code = M.protected(require_into_global, e[2])
    else
      warn("@on")
    end
    if not ok then return code end
  end

  local script = plan.script_index and argv[plan.script_index]
  local from_stdin = not script and #plan.exec == 0 and not plan.interactive
    and not require("isc.core").isatty(0)
  if script or from_stdin then
    local ok, code = run_script(script, table.unpack(argv, (plan.script_index or #argv) + 1))
    if not ok then return code end
  end
  if plan.interactive or (not script and not from_stdin and #plan.exec == 0) then
    return require("isc.repl").run()
  end
  return 0
end

-- The commands `isclua NAME ...` runs instead of a script, and their modules.
local subcommands = { sim = "isc.sim.cli", journal = "isc.journal", undo = "isc.undo" }

--- Entry point: argv excludes the program name. Returns the exit code.
function M.main(argv)
  if subcommands[argv[1]] then
    return require(subcommands[argv[1]]).main(table.move(argv, 2, #argv, 1, {}))
  end
  local plan, err = parse(argv)
  if not plan then return usage_error(err) end
  if plan.help then
    io.stdout:write(usage)
    return 0
  end
  if plan.version then
    -- libcurl is loaded now; without it, --version still answers
    local found, curl = pcall(core.curl_version)
    io.stdout:write(string.format("isclua %s (%s, libcurl %s)\n%s\n",
      core.version, core.lua_release, found and curl or "not found", core.build))
    if not found then io.stderr:write("isclua: ", tostring(curl.message or curl), "\n") end
    return 0
  end
  if plan.ignore_env then require("isc.host").ignore_env() end
  config.process.verbose = plan.verbose or false
  config.process.profile = plan.profile
  config.process.dry_run = plan.dry_run or false
  config.process.journal = plan.journal
  log.configure { level = plan.log_level, format = plan.log_format, file = plan.log_file }
  _G.arg = make_arg(argv, plan.script_index)

  -- A signal or the deadline stops the whole run, not just the call it lands
  -- in: a script cannot catch it and carry on (the prompt lifts this).
  core.hold_stops({ [2] = M.exit_codes.interrupted, [15] = M.exit_codes.terminated,
    [cron.deadline_signal] = M.exit_codes.timeout }, M.stop_grace)
  -- Cron mode wraps the whole run: the deadline covers waiting for the lock,
  -- and is disarmed while still inside the protected call.
  local ok, run, rerr = M.protected(cron.begin, { lock = plan.lock, lock_wait = plan.lock_wait, timeout = plan.timeout })
  if not ok then return run end
  if not run then return M.report({ err = rerr }) end
  if plan.dry_run then log.info("dry run: mutating calls are logged, not sent") end
  local done, code = M.protected(function() return run:finish(run_plan(plan, argv), M.exit_codes.timeout) end)
  if not done then return run:finish(code, M.exit_codes.timeout) end
  return code
end

return M
