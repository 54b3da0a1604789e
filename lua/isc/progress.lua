--- The progress line of long listings: items so far and the total when
--- known, redrawn in place on stderr. Drawn only when stderr is a terminal,
--- and only once a listing has run for a moment, so short listings and
--- piped or cron runs show nothing of it.
local core = require "isc.core"

local M = {}

--- Seconds a listing runs before its progress is shown.
M.delay = 0.5
--- Whether to draw at all; nil: when stderr is a terminal.
M.enabled = nil
--- Where the line goes (specs replace it).
M.write = function(s) io.stderr:write(s) end

local shown = false

local function enabled()
  if M.enabled == nil then M.enabled = core.isatty(2) end
  return M.enabled
end

--- Draws text as the progress line, replacing the one shown.
---@param text string
function M.line(text)
  if not enabled() then return end
  M.write("\r\27[K" .. text)
  shown = true
end

--- Erases the progress line, if one is shown.
function M.clear()
  if shown then
    M.write("\r\27[K")
    shown = false
  end
end

--- An on_page callback for client:paginate that shows a listing's
--- progress, e.g. "GET /v2024/roles: 1500 of 4210 (35%)"; nil when
--- nothing is to be drawn (stderr is no terminal).
---@param label string what is being listed
---@return function|nil on_page(info) taking {offset=, count=, read=, total=}
function M.listing(label)
  if not enabled() then return nil end
  local started = core.monotonic()
  return function(info)
    if info.total and info.read >= info.total then return M.clear() end
    if core.monotonic() - started < M.delay then return end
    if info.total and info.total > 0 then
      M.line(string.format("%s: %d of %d (%d%%)", label, info.read, info.total,
        math.floor(info.read * 100 / info.total)))
    else
      M.line(string.format("%s: %d so far", label, info.read))
    end
  end
end

return M
