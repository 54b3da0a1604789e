-- Deterministic random numbers for the simulator (splitmix64 on Lua's
-- wrapping 64-bit integers), so that a seed always gives the same tenant and
-- the same fault sequence, whatever else the Lua state does with math.random;
-- and, apart from those, unpredictable ones from the OS for secrets.
local M = {}

local Rng = {}
Rng.__index = Rng

-- One splitmix64 step: the state moves by the golden gamma, the output is mixed.
local function mix(z)
  z = (z ~ (z >> 30)) * -4658895280553007687 -- 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * -7723592293110705685 -- 0x94D049BB133111EB
  return z ~ (z >> 31)
end

local GAMMA = -7046029254386353131 -- 0x9E3779B97F4A7C15

---Makes a generator; several seeds (integers or strings) are combined, so
---`rng.new(seed, "role", 17)` is an independent stream for role 17.
---@param ... integer|string
---@return table
function M.new(...)
  local state = 0
  for i = 1, select("#", ...) do
    local part = select(i, ...)
    if type(part) == "string" then
      for j = 1, #part do state = mix(state + part:byte(j) * GAMMA) end
    else
      state = mix(state + math.tointeger(part // 1) * GAMMA + i)
    end
  end
  return setmetatable({ state = state }, Rng)
end

---Hex digits from the operating system's random source, for what must not be
---guessed (the control token, temporary file names): never from a seed.
---@param bytes integer
---@return string 2 * bytes lowercase hex digits
function M.unpredictable_hex(bytes)
  local f = assert(io.open("/dev/urandom", "rb"))
  local raw = f:read(bytes)
  f:close()
  assert(raw and #raw == bytes, "/dev/urandom gave too few bytes")
  return (raw:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

---@return integer a uniformly distributed 64-bit integer
function Rng:next()
  self.state = self.state + GAMMA
  return mix(self.state)
end

---@return number in [0, 1)
function Rng:float()
  return (self:next() >> 11) * 2.0 ^ -53
end

---@param n integer
---@return integer in 1..n
function Rng:int(n)
  return (self:next() >> 11) % n + 1
end

---@param lo integer
---@param hi integer
---@return integer in lo..hi
function Rng:range(lo, hi)
  return lo + self:int(hi - lo + 1) - 1
end

---@param p number probability
---@return boolean true with probability p
function Rng:chance(p)
  return self:float() < p
end

---@param list table a non-empty sequence
---@return any one element
function Rng:pick(list)
  return list[self:int(#list)]
end

---@param list table
---@param n integer
---@return table up to n distinct elements, in list order
function Rng:sample(list, n)
  local chosen, out = {}, {}
  n = math.min(n, #list)
  while n > 0 do
    local i = self:int(#list)
    if not chosen[i] then chosen[i], n = true, n - 1 end
  end
  for i = 1, #list do
    if chosen[i] then out[#out + 1] = list[i] end
  end
  return out
end

---@param digits integer number of hex digits (multiple of 16 or less)
---@return string lowercase hex
function Rng:hex(digits)
  local parts = {}
  for i = 1, math.ceil(digits / 16) do parts[i] = string.format("%016x", self:next()) end
  return table.concat(parts):sub(1, digits)
end

---@return string an id shaped like ISC's object ids (32 hex, "2c9180" prefix)
function Rng:isc_id()
  return "2c9180" .. self:hex(26)
end

---@return string a version-4 UUID
function Rng:uuid()
  local h = self:hex(32)
  local v = self:int(4)
  local variant = ("89ab"):sub(v, v)
  return string.format("%s-%s-4%s-%s%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16),
    variant, h:sub(18, 20), h:sub(21, 32))
end

return M
