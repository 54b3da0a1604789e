--- require "isc": the SailPoint Identity Security Cloud module of isclua.
local core = require "isc.core"
local errors = require "isc.errors"
local loop = require "isc.loop"

local M = {
  version = core.version,
  --- JSON null (same value as cjson.null): what a script sends for an explicit
  --- null; in responses, null members read as absent unless keep_nulls.
  null = core.null,
  errors = errors,
  --- JSON helpers: decode keeps [] and null, so values round-trip exactly.
  json = { encode = core.json_encode, decode = core.json_decode, equal = require("isc.patch").equal },
  --- Sleeps on the event loop (requests in flight go on); Ctrl-C interrupts it.
  sleep = loop.sleep,
  --- Tasks: isc.spawn(fn, ...) -> task (task:join()); isc.each(items, fn, {concurrency=}).
  spawn = loop.spawn,
  each = loop.each,
  --- Logging for scripts: isc.log.info("message", {field = value}); see isclua --help.
  log = require "isc.log",
}

--- One line per field of the module, for the REPL's help(isc).
M.help = {
  client = "isc.client{base_url=, client_id=, client_secret=, profile=, token=, ...} -> client (no options: the SDKs' settings, then profiles)",
  array = "isc.array(t) -> t marked as a JSON array, so that an empty one is sent as []",
  is_error = "isc.is_error(v, [kind]) -> whether v is an isc error (of that kind: api, network, timeout, ...)",
  sleep = "isc.sleep(seconds): sleeps while requests in flight go on; Ctrl-C interrupts it",
  spawn = "isc.spawn(fn, ...) -> task: runs fn as a task, its requests in flight beside others'; task:join() -> what fn returned",
  each = "isc.each(items, fn(item, i), {concurrency=8}) -> results, failures: fn for every item, N at a time",
  null = "isc.null: JSON null, to send one; answers' null members read as absent (unless keep_nulls)",
  json = "isc.json.encode(v, {sort_keys=, indent=}) -> text; isc.json.decode(text, {drop_nulls=}) -> value (keeps [] and, by default, null); isc.json.equal(a, b)",
  errors = "isc.errors: new, raise, is and the kinds of isc errors (err.kind, err.message, err.status, ...)",
  log = "isc.log.info(message, {field=value}) (and debug, warn, error): help(isc.log)",
  dry_run = "isc.dry_run: true when the run rehearses (--dry-run): changes are logged, not sent",
  version = "isc.version: isclua's version",
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
