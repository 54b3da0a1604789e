-- The native pager: one page in memory, no item lost or repeated, and no
-- request past the end when the end is known.
local core = require "isc.core"

-- A fake list endpoint over n numbered items, recording every fetch.
local function endpoint(n, opts)
  opts = opts or {}
  local e = { calls = {} }
  function e.fetch(offset, limit, want_total)
    e.calls[#e.calls + 1] = { offset = offset, limit = limit, count = want_total }
    if opts.fail_at and offset >= opts.fail_at then
      error(setmetatable({ kind = "api", status = opts.fail_status or 400,
        message = opts.fail_message or "Specified offset is invalid." }, core.error_mt), 0)
    end
    local page = core.json_array()
    for i = offset + 1, math.min(n, offset + limit) do page[#page + 1] = { n = i } end
    return page, (opts.total ~= false and want_total) and n or nil
  end
  return e
end

local function walk(p)
  local seen = {}
  for item in p do seen[#seen + 1] = item.n end
  return seen
end

local function range(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

describe("the pager", function()
  it("walks every item once, in order, across pages", function()
    local e = endpoint(123)
    assert.same(range(1, 123), walk(core.pager { fetch = e.fetch, limit = 50 }))
    assert.same({ 0, 50, 100 }, { e.calls[1].offset, e.calls[2].offset, e.calls[3].offset })
    assert.equal(3, #e.calls)
  end)

  it("asks for the total on the first page only", function()
    local e = endpoint(120)
    walk(core.pager { fetch = e.fetch, limit = 50 })
    assert.is_true(e.calls[1].count)
    assert.is_false(e.calls[2].count)
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

  it("raises other errors mid-listing", function()
    local e = endpoint(100, { total = false, fail_at = 50, fail_status = 500 })
    local p = core.pager { fetch = e.fetch, limit = 50 }
    local ok, err = pcall(walk, p)
    assert.is_false(ok)
    assert.equal(500, err.status)
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
