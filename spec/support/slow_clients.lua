--- Slow clients for the server's limit specs (see slow_clients.c), compiled
--- into the build directory on first use.
local M = {}

local root = os.getenv("ISCLUA_ROOT") or "."
local build = os.getenv("ISCLUA_BUILD") or (root .. "/build")
local bin = build .. "/spec-support/slow_clients"

local function compile()
  local src = root .. "/spec/support/slow_clients.c"
  -- Not under the sanitizers' LD_PRELOAD: the compiler is not instrumented.
  local cmd = string.format("mkdir -p '%s/spec-support' && env -u LD_PRELOAD cc -std=c11 -D_GNU_SOURCE "
    .. "-Wall -Wextra -Werror -o '%s' '%s'", build, bin, src)
  assert(os.execute(cmd), "cannot compile " .. src)
end

local Clients = {}
Clients.__index = Clients

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

---Opens count connections to the loopback port; connection i sends
---texts[(i % #texts) + 1] at once, then a byte "x" every interval seconds
---(0: never) if its text is not empty; all are closed after at most seconds.
---Returns once every connection is made.
---@return table clients with n (connections made), closed() and stop()
function M.start(port, count, interval, seconds, texts)
  if not M.compiled then
    compile()
    M.compiled = true
  end
  local words = { "env -u LD_PRELOAD", quote(bin), port, count, interval, seconds }
  for _, t in ipairs(texts) do words[#words + 1] = quote(t) end
  local p = assert(io.popen(table.concat(words, " ")))
  local n, pid = assert(p:read("l"), "the slow clients did not start"):match("^open (%d+) (%d+)$")
  return setmetatable({ p = p, n = tonumber(n), pid = pid }, Clients)
end

---Waits for the server to close one of the connections (at most the
---helper's run time); returns its index (from 0), the seconds since all were
---open, and the status of the response it got first (0: none).
function Clients:closed()
  local i, t, status = assert(self.p:read("l"), "the slow clients ended first"):match("^closed (%d+) ([%d.]+) (%d+)$")
  return tonumber(i), tonumber(t), tonumber(status)
end

---Closes every connection and ends the helper.
function Clients:stop()
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  self.p:read("a")
  self.p:close()
end

return M
