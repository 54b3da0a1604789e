--- The isclua command line: what to run, how, and the exit code it ends with.
--- The C host only creates the Lua state and calls main(argv).
local config = require "isc.config"
local errors = require "isc.errors"

local M = {}

--- Exit codes, stable for cron jobs and scripts that call isclua.
M.exit_codes = {
  ok = 0, script_error = 1, usage = 2, api = 3, network = 4, timeout = 5, already_running = 6,
  interrupted = 130, terminated = 143,
}

local usage = [==[
usage: isclua [options] [script [args...]]
       isclua sim [simulator options]     (isclua sim --help)

Runs a Lua 5.4 script with require "isc" ready; with no script, an interactive
prompt on a terminal (or a script read from stdin otherwise).

options:
  -e STAT         execute the Lua statement STAT
  -i              enter interactive mode after running the script
  -l NAME         require library NAME into global NAME
  -v              trace every HTTP request on stderr (secrets masked)
  -               read the script from stdin
  --              stop handling options
  --profile NAME  use the named profile of the isclua config file
  --sim[=OPTS]    run against an embedded simulated tenant (OPTS as for
                  'isclua sim', e.g. --sim='--roles 500 --seed 7')
  --help          show this help
  --version       show the version

exit codes: 0 ok, 1 script error, 2 usage, 3 ISC API error, 4 network error,
5 timeout, 6 already running, 130 interrupted (SIGINT), 143 terminated (SIGTERM)
]==]

local function usage_error(msg)
  io.stderr:write("isclua: ", msg, "\n", "Try 'isclua --help'.\n")
  return M.exit_codes.usage
end

--- Exit code for an error that ended a run.
function M.exit_code_for(err)
  if errors.is(err) then
    if err.kind == "interrupted" then
      return err.signal == 15 and M.exit_codes.terminated or M.exit_codes.interrupted
    end
    if err.kind == "bad_response" then return M.exit_codes.api end
    return M.exit_codes[err.kind] or M.exit_codes.script_error
  end
  return M.exit_codes.script_error
end

-- Message handler: keeps the error value, adding a traceback for the report.
-- The frames below the script's own (this module's xpcall) are cut off.
local function handler(err)
  local trace = debug.traceback("", 2):gsub("^\n", ""):gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
  return { err = err, traceback = trace }
end

--- Reports an error that ended a run on stderr; returns its exit code.
function M.report(caught)
  local err = caught.err
  local text = errors.is(err) and tostring(err) or tostring(err)
  if errors.is(err, "interrupted") then
    io.stderr:write("isclua: ", text, "\n")
  else
    io.stderr:write("isclua: ", text, "\n", caught.traceback, "\n")
  end
  return M.exit_code_for(err)
end

--- Runs fn(...) protected; returns true, results or false, exit code.
function M.protected(fn, ...)
  local res = table.pack(xpcall(fn, handler, ...))
  if res[1] then return table.unpack(res, 1, res.n) end
  return false, M.report(res[2])
end

-- Loads and runs a script file ("-" or nil: stdin) with its arguments;
-- returns true or false, exit code.
local function run_script(path, ...)
  local chunk, err
  if path == nil or path == "-" then
    chunk, err = load(io.stdin:read("a"), "=stdin")
  else
    chunk, err = loadfile(path)
  end
  if not chunk then
    io.stderr:write("isclua: ", err, "\n")
    return false, M.exit_codes.script_error
  end
  return M.protected(chunk, ...)
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

-- Parses argv (lua(1)-style); returns the plan or nil, message.
local function parse(argv)
  local plan = { exec = {}, script_index = nil }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      i = i + 1
      break
    elseif a == "-" or a:sub(1, 1) ~= "-" then
      break
    elseif a == "-e" or a == "-l" then
      if not argv[i + 1] then return nil, "'" .. a .. "' needs an argument" end
      plan.exec[#plan.exec + 1] = { a, argv[i + 1] }
      i = i + 1
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

--- Entry point: argv excludes the program name. Returns the exit code.
function M.main(argv)
  if argv[1] == "sim" then
    return require("isc.sim.cli").main(table.move(argv, 2, #argv, 1, {}))
  end
  local plan, err = parse(argv)
  if not plan then return usage_error(err) end
  if plan.help then
    io.stdout:write(usage)
    return 0
  end
  if plan.version then
    io.stdout:write("isclua ", require("isc").version, " (", _VERSION, ")\n")
    return 0
  end
  config.process.verbose = plan.verbose or false
  config.process.profile = plan.profile
  _G.arg = make_arg(argv, plan.script_index)

  if plan.sim then
    local ok, s, serr = M.protected(start_embedded_sim, plan.sim)
    if not ok then return s end
    if not s then return usage_error("--sim: " .. tostring(serr)) end
  end

  for _, e in ipairs(plan.exec) do
    local ok, code
    if e[1] == "-e" then
      local chunk, cerr = load(e[2], "=(command line)")
      if not chunk then
        io.stderr:write("isclua: ", cerr, "\n")
        return M.exit_codes.script_error
      end
      ok, code = M.protected(chunk)
    else
      ok, code = M.protected(function() _G[e[2]] = require(e[2]) end)
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

return M
