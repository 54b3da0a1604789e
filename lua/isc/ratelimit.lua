--- Pacing under the tenant's rate limit (ISC: 100 requests per 10 s per
--- client and API). A sliding window, stricter than a token bucket: no span
--- of `per` seconds holds more than `requests` sends, so the gateway's
--- window, fixed or sliding, is never overrun while the client is alone.
--- When 429s come anyway (another process uses the same client id), the key
--- pauses for the Retry-After and its allowance halves, then grows back by a
--- tenth per quiet window.
local M = {}

local Limiter = {}
Limiter.__index = Limiter

-- Sends reach the gateway a little later and less evenly than they leave:
-- the window is kept this much wider.
local MARGIN = 0.05

---@param opts table {requests=, per=, clock=fn() -> s, sleep=fn(s)}
function M.new(opts)
  return setmetatable({ requests = opts.requests, per = opts.per * (1 + MARGIN), clock = opts.clock,
    sleep = opts.sleep, keys = {} }, Limiter)
end

local function state(self, key)
  local k = self.keys[key]
  if not k then
    -- sent[first..last]: booked send times; allowed: this key's allowance
    -- now, changed at `changed_at` (a 429 halves it, quiet windows restore it)
    k = { sent = {}, first = 1, last = 0, allowed = self.requests, blocked_until = -math.huge, changed_at = 0 }
    self.keys[key] = k
  end
  return k
end

--- Takes a slot for one request to `key`, waiting until there is one. The
--- slot is booked before the wait, so tasks waiting together never overrun.
function Limiter:take(key)
  local k = state(self, key)
  local now = self.clock()
  if k.allowed < self.requests and now - k.changed_at >= self.per then
    k.allowed = math.min(self.requests, k.allowed + math.ceil(self.requests / 10))
    k.changed_at = now
  end
  local at = math.max(now, k.blocked_until, k.sent[k.last] or now)
  if k.last - k.first + 1 >= k.allowed then
    at = math.max(at, k.sent[k.last - k.allowed + 1] + self.per)
  end
  k.last = k.last + 1
  k.sent[k.last] = at
  -- only the last `requests` sends can hold a later one back
  while k.last - k.first + 1 > self.requests do
    k.sent[k.first] = nil
    k.first = k.first + 1
  end
  if at > now then self.sleep(at - now) end
end

--- Says the tenant refused a request to `key` (429) asking to wait `wait` s.
function Limiter:refused(key, wait)
  local k = state(self, key)
  local now = self.clock()
  k.blocked_until = math.max(k.blocked_until, now + wait)
  k.allowed = math.max(1, k.allowed // 2)
  k.changed_at = now
end

return M
