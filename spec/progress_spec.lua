-- The progress line of long listings (isc.progress): drawn in place on a
-- terminal, never when stderr is not one, and gone when the listing ends.
local core = require "isc.core"
local progress = require "isc.progress"

describe("isc.progress", function()
  local drawn

  before_each(function()
    drawn = {}
    progress.write = function(s) drawn[#drawn + 1] = s end
    progress.enabled = true
    progress.delay = 0
  end)

  after_each(function()
    progress.clear()
    progress.write = function(s) io.stderr:write(s) end
    progress.enabled = nil
    progress.delay = 0.5
  end)

  -- A pager over `total` numbered items, fetched `limit` at a time.
  local function listing(total, limit, on_page)
    return core.pager {
      limit = limit,
      on_page = on_page,
      fetch = function(offset, n, want_total)
        local items = {}
        for i = offset + 1, math.min(offset + n, total) do items[#items + 1] = i end
        return items, want_total and total or nil
      end,
    }
  end

  it("shows items so far and the total while a listing runs, and erases itself at the end", function()
    local items = listing(600, 250, progress.listing("GET /v2024/roles")):collect()
    assert.equal(600, #items)
    assert.same({
      "\r\27[KGET /v2024/roles: 250 of 600 (41%)",
      "\r\27[KGET /v2024/roles: 500 of 600 (83%)",
      "\r\27[K",
    }, drawn)
  end)

  it("counts without a total when the endpoint gives none", function()
    local on_page = progress.listing("POST /v2024/roles/filter")
    on_page { offset = 0, count = 250, read = 250 }
    on_page { offset = 250, count = 250, read = 500 }
    assert.same({ "\r\27[KPOST /v2024/roles/filter: 250 so far", "\r\27[KPOST /v2024/roles/filter: 500 so far" },
      drawn)
  end)

  it("stays quiet for a listing that ends before the delay", function()
    progress.delay = 3600
    listing(600, 250, progress.listing("GET /v2024/roles")):collect()
    assert.same({}, drawn)
  end)

  it("draws nothing, and gives no callback, when stderr is not a terminal", function()
    progress.enabled = false
    assert.is_nil(progress.listing("GET /v2024/roles"))
    progress.line("anything")
    progress.clear()
    assert.same({}, drawn)
  end)

  it("clear() erases a line left by a listing given up early, once", function()
    local p = listing(600, 250, progress.listing("GET /v2024/roles"))
    p:next()
    progress.clear()
    progress.clear()
    assert.same({ "\r\27[KGET /v2024/roles: 250 of 600 (41%)", "\r\27[K" }, drawn)
  end)
end)
