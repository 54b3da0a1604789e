--- Runs isclua on a pseudo-terminal of its own for the REPL and cron specs
--- (see repl_pty.c). The C part is compiled into the build directory on
--- first use, with the flags the project itself builds with.
local M = {}

local root = os.getenv("ISCLUA_ROOT") or "."
local build = os.getenv("ISCLUA_BUILD") or (root .. "/build")
M.bin = os.getenv("ISCLUA_BIN") or (build .. "/isclua")

local function native()
  local src = root .. "/spec/support/repl_pty.c"
  local so = build .. "/spec-support/repl_pty.so"
  -- Not under the sanitizers' LD_PRELOAD: the compiler is not instrumented.
  local cmd = string.format("mkdir -p '%s/spec-support' && env -u LD_PRELOAD cc -std=c11 -D_GNU_SOURCE "
    .. "-Wall -Wextra -Werror -fPIC -shared $(pkg-config --cflags lua5.4) -o '%s' '%s'", build, so, src)
  assert(os.execute(cmd), "cannot compile " .. src)
  return assert(package.loadlib(so, "luaopen_repl_pty"))()
end

local pty = native()

--- The environment every spawned isclua gets: a real terminal type, and no
--- development override that would make it run other Lua sources.
M.env = { TERM = "xterm", ISCLUA_LUA_DIR = false, LD_PRELOAD = false, COLUMNS = false, LINES = false }

--- Starts isclua with the given arguments on a new terminal.
---@param args string[]
---@param env table|nil more environment settings (false unsets)
function M.isclua(args, env)
  local argv = { M.bin }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local e = {}
  for k, v in pairs(M.env) do e[k] = v end
  for k, v in pairs(env or {}) do e[k] = v end
  return pty.spawn(argv, e)
end

--- Starts any program on a new terminal.
M.spawn = pty.spawn

return M
