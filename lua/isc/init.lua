--- require "isc": the SailPoint Identity Security Cloud module of isclua.
local core = require "isc.core"
local errors = require "isc.errors"

local M = {
  version = core.version,
  --- JSON null, as found in decoded responses (same value as cjson.null).
  null = core.null,
  errors = errors,
  --- JSON helpers: decode keeps [] and null, so values round-trip exactly.
  json = { encode = core.json_encode, decode = core.json_decode },
  --- Sleeps in C; Ctrl-C interrupts it with an "interrupted" error.
  sleep = core.sleep,
  --- Logging for scripts: isc.log.info("message", {field = value}); see isclua --help.
  log = require "isc.log",
}

-- isc.dry_run: whether this run rehearses (--dry-run), read when asked
-- since the command line sets it after the module may have been loaded.
setmetatable(M, { __index = function(_, k)
  if k == "dry_run" then return require("isc.config").process.dry_run end
end })

--- Creates a client (see isc.client module for options). With no options the
--- settings are read as the SailPoint SDKs read them, then isclua profiles.
---@param opts table|nil
function M.client(opts)
  return require("isc.client").new(opts)
end

--- Marks a table as a JSON array, so that an empty one is sent as [].
---@param t table|nil
---@return table
function M.array(t)
  return core.json_array(t)
end

--- True when v is an isc error (optionally of the given kind).
M.is_error = errors.is

return M
