-- Helpers shared by the specs: running the isclua binary, temporary files,
-- and clients wired to a simulator's clock.
local H = {}

H.root = os.getenv("ISCLUA_ROOT") or "."
H.bin = os.getenv("ISCLUA_BIN") or "build/isclua"

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
H.slurp = slurp

function H.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

function H.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs a shell command line; returns exit code, stdout, stderr.
---@param cmd string
---@param opts table|nil {stdin=string, env={NAME=value|false}, cwd=dir}
function H.sh(cmd, opts)
  opts = opts or {}
  local out, err, inp = os.tmpname(), os.tmpname(), os.tmpname()
  H.write(inp, opts.stdin or "")
  -- Under `make asan` the spec runner preloads the sanitizer runtimes for the
  -- stock interpreter; child programs (curl, sh, the instrumented isclua) must not inherit that.
  local prefix = "unset LD_PRELOAD; "
  for k, v in pairs(opts.env or {}) do
    prefix = prefix .. (v == false and ("unset " .. k .. "; ") or ("export " .. k .. "=" .. H.shell_quote(v) .. "; "))
  end
  if opts.cwd then prefix = prefix .. "cd " .. H.shell_quote(opts.cwd) .. " && " end
  local line = string.format("%s%s <%s >%s 2>%s", prefix, cmd, inp, out, err)
  local _, _, code = os.execute(line)
  local o, e = slurp(out), slurp(err)
  os.remove(out); os.remove(err); os.remove(inp)
  return code, o, e
end

--- The stock lua5.4 as a command line: under `make asan` it gets back the
--- sanitizer runtimes (which H.sh keeps from other programs) so that it can
--- load the instrumented core.so.
function H.stock_lua()
  local preload = os.getenv("LD_PRELOAD")
  return preload and ("LD_PRELOAD=" .. H.shell_quote(preload) .. " lua5.4") or "lua5.4"
end

--- Runs build/isclua with the given arguments (a list, each quoted).
function H.isclua(argv, opts)
  local words = { H.shell_quote(H.bin) }
  for _, a in ipairs(argv) do words[#words + 1] = H.shell_quote(a) end
  return H.sh(table.concat(words, " "), opts)
end

--- A fresh temporary directory.
function H.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. H.shell_quote(p)))
  return p
end

--- A client of the simulator whose clock is the simulator's and whose sleeps
--- move that clock instead of waiting, recording each one.
function H.sim_client(sim, opts)
  local isc = require "isc"
  local o = { base_url = sim.url, client_id = sim.client_id, client_secret = sim.client_secret }
  local slept = {}
  o.sleep = function(s)
    slept[#slept + 1] = s
    sim:advance(s)
  end
  o.clock = function() return sim:now() end
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = isc.client(o)
  return c, slept
end

--- One simulated tenant for the specs of the describe block this is called
--- in: started with settings cfg before them, stopped after them, and given to
--- started(sim) once it is up. opts (each optional): lazy, start it only when
--- one of the block's specs runs (busted's lazy_setup); reset, put it back to
--- its seeded state before each spec; freeze, then stop its clock; clock, then
--- set that clock to this epoch time.
---@param cfg table settings for require("isc.sim").start
---@param started fun(sim: table)
---@param opts? {lazy: boolean, reset: boolean, freeze: boolean, clock: integer}
function H.shared_sim(cfg, started, opts)
  local busted = require "busted"
  opts = opts or {}
  local setup, teardown = busted.setup, busted.teardown
  if opts.lazy then setup, teardown = busted.lazy_setup, busted.lazy_teardown end
  local sim
  setup(function()
    sim = require("isc.sim").start(cfg)
    started(sim)
  end)
  teardown(function() sim:stop() end)
  if opts.reset then
    busted.before_each(function()
      sim:reset()
      if opts.freeze then sim:freeze(true) end
      if opts.clock then sim:admin("POST", "clock", { set = opts.clock }) end
    end)
  end
end

--- Calls f(...) expecting it to raise; returns the error.
function H.catch(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return err
end

--- Asserts that f(...) raises an argument error matching pattern without
--- sending sim a request.
---@param sim table
---@param pattern string
---@param f function
function H.refused(sim, pattern, f, ...)
  local assert = require "luassert"
  local before = sim:stats().requests
  local err = H.catch(f, ...)
  assert.is_true(require("isc").is_error(err, "argument"), "expected an argument error, got " .. tostring(err))
  assert.matches(pattern, err.message)
  assert.equal(before, sim:stats().requests)
end

--- A value's JSON with sorted keys, to compare two documents.
function H.canon(v)
  return require("isc.core").json_encode(v, { sort_keys = true })
end

--- Requests the simulator answered on one route ("GET /v2024/roles").
function H.hits(sim, route)
  return sim:stats().by_route[route] or 0
end

--- The ids of a list of objects.
function H.ids_of(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = x.id end
  return out
end

return H
