-- The native pager: one page in memory, no item lost or repeated, and no
-- request past the end when the end is known.
local core = require "isc.core"

local function range(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

-- A fake list endpoint over the numbered items e.items (1..n to begin with,
-- which a spec may change between pages), recording every fetch. Options:
-- total = false (no X-Total-Count), clamp = k (a gateway that returns at most
-- k items whatever limit was asked), fail_at = offset (every request from
-- there raises a 400, by default ISC's "Specified offset is invalid.").
-- e.fail_once(offset, err) makes the next request at that offset raise err.
local function endpoint(n, opts)
  opts = opts or {}
  local e = { calls = {}, items = range(1, n), failures = {} }
  function e.fail_once(offset, err) e.failures[offset] = err end
  function e.fetch(offset, limit, want_total, probe)
    e.calls[#e.calls + 1] = { offset = offset, limit = limit, count = want_total, probe = probe }
    if opts.fail_at and offset >= opts.fail_at then
      error(setmetatable({ kind = "api", status = 400,
        message = opts.fail_message or "Specified offset is invalid." }, core.error_mt), 0)
    end
    local failure = e.failures[offset]
    if failure then
      e.failures[offset] = nil
      error(failure, 0)
    end
    local page = core.json_array()
    local last = math.min(#e.items, offset + math.min(limit, opts.clamp or limit))
    for i = offset + 1, last do page[#page + 1] = { n = e.items[i] } end
    return page, (opts.total ~= false and want_total) and #e.items or nil
  end
  return e
end

-- The offsets asked for, in order.
local function offsets(e)
  local t = {}
  for i, call in ipairs(e.calls) do t[i] = call.offset end
  return t
end

-- The numbers a listing hands out; after item `at`, change() runs once
-- (the tenant changing under the listing).
local function walk(p, at, change)
  local seen = {}
  for item in p do
    seen[#seen + 1] = item.n
    if item.n == at then change() end
  end
  return seen
end

-- The numbers of a list of items.
local function numbers(items)
  local t = {}
  for i, item in ipairs(items) do t[i] = item.n end
  return t
end

describe("the pager", function()
  it("tells its fetcher which calls are count's and peek's looks, not its own reading", function()
    local e = endpoint(120)
    local p = core.pager { fetch = e.fetch, limit = 50 }
    p:peek(3)
    p:count()
    p()
    local probes = {}
    for i, call in ipairs(e.calls) do probes[i] = call.probe end
    assert.same({ true, true, false }, probes)
  end)

  it("leaves the total unasked on the first page with count_first = false, and ends at a short page", function()
    local e = endpoint(120)
    assert.same(range(1, 120), walk(core.pager { fetch = e.fetch, limit = 50, count_first = false }))
    assert.same({ false, false, false }, { e.calls[1].count, e.calls[2].count, e.calls[3].count })
  end)

  it("calls on_close once, when the listing is closed", function()
    local e, closed = endpoint(120), 0
    local p = core.pager { fetch = e.fetch, limit = 50, on_close = function() closed = closed + 1 end }
    for item in p, nil, nil, p do -- as c:paginate returns it: the pager closes the for
      if item.n == 10 then break end
    end
    assert.equal(1, closed)
    p:close()
    assert.equal(1, closed)
  end)

  it("walks every item once, in order, across pages", function()
    local e = endpoint(123)
    assert.same(range(1, 123), walk(core.pager { fetch = e.fetch, limit = 50 }))
    assert.same({ 0, 50, 100 }, { e.calls[1].offset, e.calls[2].offset, e.calls[3].offset })
    assert.equal(3, #e.calls)
  end)

  it("asks for the total on the first page, and again only on the page the total says is the last", function()
    local e = endpoint(120)
    walk(core.pager { fetch = e.fetch, limit = 50 })
    assert.same({ true, false, true }, { e.calls[1].count, e.calls[2].count, e.calls[3].count })
  end)

  it("makes no request past the end when the total is known and the last page is full", function()
    local e = endpoint(100)
    assert.same(range(1, 100), walk(core.pager { fetch = e.fetch, limit = 50 }))
    assert.equal(2, #e.calls)
  end)

  it("stops on a short page when the endpoint gives no total", function()
    local e = endpoint(70, { total = false })
    assert.same(range(1, 70), walk(core.pager { fetch = e.fetch, limit = 50 }))
    assert.equal(2, #e.calls)
  end)

  it("stops on an empty page after a full one when there is no total", function()
    local e = endpoint(100, { total = false })
    assert.same(range(1, 100), walk(core.pager { fetch = e.fetch, limit = 50 }))
    assert.equal(3, #e.calls)
  end)

  it("treats ISC's 400 'offset is invalid' after a full last page as the end", function()
    local e = endpoint(100, { total = false, fail_at = 100 })
    assert.same(range(1, 100), walk(core.pager { fetch = e.fetch, limit = 50 }))
  end)

  it("raises a 400 on the first page: that is a real error, not the end", function()
    local e = endpoint(100, { fail_at = 0 })
    local ok, err = pcall(walk, core.pager { fetch = e.fetch, limit = 50 })
    assert.is_false(ok)
    assert.equal(400, err.status)
  end)

  it("raises a 400 mid-listing that is not about the offset", function()
    local e = endpoint(100, { total = false, fail_at = 50, fail_message = "The filter is invalid." })
    local ok, err = pcall(walk, core.pager { fetch = e.fetch, limit = 50 })
    assert.is_false(ok)
    assert.equal("The filter is invalid.", err.message)
  end)

  it("honours max in the middle of a page, asking no more than needed", function()
    local e = endpoint(500)
    assert.same(range(1, 73), walk(core.pager { fetch = e.fetch, limit = 50, max = 73 }))
    assert.same({ 50, 23 }, { e.calls[1].limit, e.calls[2].limit })
    assert.equal(2, #e.calls)
  end)

  it("starts at an offset", function()
    local e = endpoint(60)
    assert.same(range(41, 60), walk(core.pager { fetch = e.fetch, limit = 50, offset = 40 }))
  end)

  it("yields nothing for an empty listing after one request", function()
    local e = endpoint(0)
    assert.same({}, walk(core.pager { fetch = e.fetch, limit = 50 }))
    assert.equal(1, #e.calls)
  end)

  it("yields nothing and asks nothing with max = 0", function()
    local e = endpoint(10)
    assert.same({}, walk(core.pager { fetch = e.fetch, max = 0 }))
    assert.equal(0, #e.calls)
  end)

  it("collects the remaining items into a JSON array", function()
    local e = endpoint(120)
    local p = core.pager { fetch = e.fetch, limit = 50 }
    assert.equal(1, p:next().n)
    local rest = p:collect()
    assert.equal(119, #rest)
    assert.equal(2, rest[1].n)
    assert.equal(core.array_mt, getmetatable(rest))
    assert.is_nil(p:next())
  end)

  it("counts from X-Total-Count with a one-item request, without moving", function()
    local e = endpoint(1234)
    local p = core.pager { fetch = e.fetch, limit = 50 }
    assert.equal(1234, p:count())
    assert.equal(1, #e.calls)
    assert.equal(1, e.calls[1].limit)
    assert.equal(1, p:next().n)
  end)

  it("counts within max and from the offset", function()
    assert.equal(10, core.pager { fetch = endpoint(1234).fetch, max = 10 }:count())
    assert.equal(34, core.pager { fetch = endpoint(1234).fetch, offset = 1200 }:count())
  end)

  it("counts by walking when the endpoint gives no total", function()
    local e = endpoint(120, { total = false })
    assert.equal(120, core.pager { fetch = e.fetch, limit = 50 }:count())
  end)

  it("counts by walking up to ISC's 400 'offset is invalid' after a full last page", function()
    local e = endpoint(100, { total = false, fail_at = 100 })
    assert.equal(100, core.pager { fetch = e.fetch, limit = 50 }:count())
  end)

  it("hands out pages with their offset and total", function()
    local e = endpoint(120)
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local seen = {}
    for page in p:pages() do
      seen[#seen + 1] = { page.offset, #page.items, page.total }
    end
    assert.same({ { 0, 50, 120 }, { 50, 50, 120 }, { 100, 20, 120 } }, seen)
  end)

  it("continues pages where item-by-item reading stopped, repeating nothing", function()
    local p = core.pager { fetch = endpoint(60).fetch, limit = 50 }
    p:next(); p:next()
    local page = p:next_page()
    assert.equal(3, page.items[1].n)
    assert.equal(48, #page.items)
    assert.equal(51, p:next().n)
  end)

  it("reports each page to on_page", function()
    local infos = {}
    local p = core.pager { fetch = endpoint(75).fetch, limit = 50, on_page = function(i) infos[#infos + 1] = i end }
    walk(p)
    assert.same({ { offset = 0, count = 50, read = 50, total = 75 }, { offset = 50, count = 25, read = 75, total = 75 } }, infos)
  end)

  it("is closed by a generic for's break, and then refuses to go on", function()
    local p = core.pager { fetch = endpoint(100).fetch, limit = 50 }
    for item in p, nil, nil, p do
      if item.n == 3 then break end
    end
    assert.matches("closed", tostring(p))
    assert.has_error(function() p:next() end, "isc.pager: the listing is closed")
    p:close() -- idempotent
  end)

  it("describes itself", function()
    local p = core.pager { fetch = endpoint(100).fetch, limit = 50, label = "GET /v2024/roles" }
    assert.equal("isc.pager(GET /v2024/roles: not started, 0 read)", tostring(p))
    p:next()
    assert.equal("isc.pager(GET /v2024/roles: reading, 1 of 100 read)", tostring(p))
  end)

  it("rejects bad options", function()
    assert.has_error(function() core.pager { limit = 5 } end)
    assert.has_error(function() core.pager { fetch = print, limit = 0 } end, "isc.pager: limit must be an integer >= 1")
    assert.has_error(function() core.pager { fetch = print, max = -1 } end, "isc.pager: max must be an integer >= 0")
  end)

  it("rejects a fetch that returns no list", function()
    local p = core.pager { fetch = function() return "nope" end }
    assert.has_error(function() p:next() end, "isc.pager: fetch must return a list of items, got string")
  end)

  it("holds one page at a time: memory does not grow with the length of the listing", function()
    local function fetch(offset, limit) -- keeps no log of its calls, unlike endpoint()
      local page = core.json_array()
      for i = offset + 1, math.min(20000, offset + limit) do page[#page + 1] = { n = i } end
      return page
    end
    local p = core.pager { fetch = fetch, limit = 50 }
    local n, at_2000 = 0, nil
    for _ in p do
      n = n + 1
      if n == 2000 or n == 20000 then
        collectgarbage()
        collectgarbage()
        if n == 2000 then at_2000 = collectgarbage("count") end
      end
    end
    assert.equal(20000, n)
    local growth = collectgarbage("count") - at_2000
    assert.is_true(growth < 16, "memory grew by " .. growth .. " KB between item 2,000 and item 20,000")
  end)
end)

describe("a listing whose pages come back short", function()
  it("walks every page a gateway clamps to 20 items when the total says more remain", function()
    local e = endpoint(123, { clamp = 20 })
    local p = core.pager { fetch = e.fetch, limit = 50 }
    assert.same(range(1, 123), walk(p))
    assert.same({ 0, 20, 40, 60, 80, 100, 120 }, offsets(e))
    assert.equal("isc.pager(listing: finished, 123 of 123 read)", tostring(p))
  end)

  it("ends on a short page when there is no total: it cannot be told from a clamped one (ISC's rule)", function()
    local e = endpoint(123, { clamp = 20, total = false })
    assert.same(range(1, 20), walk(core.pager { fetch = e.fetch, limit = 50 }))
    assert.equal(1, #e.calls)
  end)

  it("ends on an empty page although the total said more: the rest was deleted meanwhile", function()
    local e = endpoint(100, { clamp = 20 })
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local seen = walk(p, 40, function() for _ = 41, 100 do table.remove(e.items) end end)
    assert.same(range(1, 40), seen)
    assert.same({ 0, 20, 40 }, offsets(e))
    assert.equal("isc.pager(listing: finished, 40 of 100 read)", tostring(p))
  end)

  it("goes by the latest total: one that shrank ends the listing sooner", function()
    local e = endpoint(100)
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local seen = walk(p, 10, function() for _ = 61, 100 do table.remove(e.items) end end)
    assert.same(range(1, 60), seen)
    assert.same({ 0, 50 }, offsets(e))
    assert.equal(60, p:total())
  end)

  it("goes by the latest total: one that grew lists the items added at the end", function()
    local e = endpoint(100)
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local seen = walk(p, 10, function() for n = 101, 110 do e.items[#e.items + 1] = n end end)
    assert.same(range(1, 110), seen)
    assert.same({ 0, 50, 100 }, offsets(e))
    assert.equal(110, p:total())
  end)

  it("stops at max across clamped pages, and reports progress within max", function()
    local e = endpoint(500, { clamp = 20 })
    local infos = {}
    local p = core.pager { fetch = e.fetch, limit = 50, max = 73, on_page = function(i) infos[#infos + 1] = i end }
    assert.same(range(1, 73), walk(p))
    assert.same({ 50, 50, 33, 13 }, { e.calls[1].limit, e.calls[2].limit, e.calls[3].limit, e.calls[4].limit })
    assert.equal(4, #e.calls)
    assert.same({
      { offset = 0, count = 20, read = 20, total = 73 },
      { offset = 20, count = 20, read = 40, total = 73 },
      { offset = 40, count = 20, read = 60, total = 73 },
      { offset = 60, count = 13, read = 73, total = 73 },
    }, infos)
    assert.equal(73, p:count())
  end)
end)

describe("a listing whose page could not be fetched", function()
  -- What the client raises once its retries have run out.
  local function unavailable()
    return setmetatable({ kind = "api", status = 503, message = "Service Unavailable" }, core.error_mt)
  end

  it("raises the same isc error, adding the offset of the page that failed and the items read", function()
    local e = endpoint(120)
    local raised = unavailable()
    e.fail_once(50, raised)
    local p = core.pager { fetch = e.fetch, limit = 50, label = "GET /v2024/roles" }
    local ok, err = pcall(walk, p)
    assert.is_false(ok)
    assert.equal(raised, err)
    assert.equal(core.error_mt, getmetatable(err))
    assert.same({ "api", 503, "Service Unavailable", 50, 50 }, { err.kind, err.status, err.message, err.offset, err.read })
    assert.equal("isc.pager(GET /v2024/roles: failed at offset 50, 50 of 120 read)", tostring(p))
  end)

  it("is read on by iterating it again: the failed page is fetched again, no item lost or repeated", function()
    local e = endpoint(120)
    e.fail_once(50, unavailable())
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local seen = {}
    local ok, err = pcall(function()
      for item in p do seen[#seen + 1] = item.n end
    end)
    assert.is_false(ok)
    assert.same({ 50, #seen }, { err.offset, err.read })
    for item in p do seen[#seen + 1] = item.n end
    assert.same(range(1, 120), seen)
    assert.same({ 0, 50, 50, 100 }, offsets(e))
  end)

  it("stays open when a generic for with the listing as closing value ends on the error", function()
    local e = endpoint(120)
    e.fail_once(50, unavailable())
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local seen = {}
    local function read_all()
      for item in p, nil, nil, p do seen[#seen + 1] = item.n end
    end
    assert.is_false(pcall(read_all))
    read_all()
    assert.same(range(1, 120), seen)
  end)

  it("keeps its place when the loop's own body fails, letting go of the page held", function()
    local e = endpoint(120)
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local ok = pcall(function()
      for item in p, nil, nil, p do
        if item.n == 30 then error("the script's own bug") end
      end
    end)
    assert.is_false(ok)
    assert.equal(31, p:next().n)
    assert.same({ 0, 30 }, offsets(e))
  end)

  it("goes on page by page with pages(), starting with the page that failed", function()
    local e = endpoint(120)
    e.fail_once(50, unavailable())
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local firsts = {}
    local ok, err = pcall(function()
      for page in p:pages() do firsts[#firsts + 1] = page.items[1].n end
    end)
    assert.is_false(ok)
    assert.equal(50, err.offset)
    for page in p:pages() do firsts[#firsts + 1] = page.items[1].n end
    assert.same({ 1, 51, 101 }, firsts)
  end)

  it("collects all or nothing: after a failure the listing is back where collect began", function()
    local e = endpoint(120)
    e.fail_once(50, unavailable())
    local p = core.pager { fetch = e.fetch, limit = 50 }
    assert.equal(1, p:next().n)
    local ok, err = pcall(p.collect, p)
    assert.is_false(ok)
    assert.same({ 1, 1 }, { err.offset, err.read })
    assert.equal("isc.pager(listing: failed at offset 1, 1 of 120 read)", tostring(p))
    assert.same(range(2, 120), numbers(p:collect()))
  end)

  it("raises a plain Lua error from fetch as it was, and still reads on", function()
    local e = endpoint(120)
    e.fail_once(50, "connection lost")
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local ok, err = pcall(walk, p)
    assert.is_false(ok)
    assert.equal("connection lost", err)
    assert.equal(50, p:read())
    assert.same(range(51, 120), walk(p))
  end)

  it("asks for no more than max allows when it fetches the failed page again", function()
    local e = endpoint(500)
    e.fail_once(50, unavailable())
    local p = core.pager { fetch = e.fetch, limit = 50, max = 73 }
    assert.is_false(pcall(walk, p))
    assert.same(range(51, 73), walk(p))
    assert.same({ 50, 23, 23 }, { e.calls[1].limit, e.calls[2].limit, e.calls[3].limit })
  end)

  it("peeks at the listing's first items from its start, without moving it or touching its page", function()
    local e = endpoint(120)
    local p = core.pager { fetch = e.fetch, limit = 50, offset = 10 }
    assert.equal(11, p:next().n)
    local first, total = p:peek(3)
    assert.same({ 11, 12, 13 }, { first[1].n, first[2].n, first[3].n })
    assert.equal(3, #first)
    assert.equal(110, total, "counted from the listing's start")
    assert.equal(12, p:next().n, "the listing goes on where it was")
    assert.same({ 10, 10 }, offsets(e))
    assert.has_error(function() p:peek(0) end)
  end)
end)
