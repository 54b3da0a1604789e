--- Logging for scripts and cron jobs: isc.log.info("message", {field = value}).
--- Lines go to stderr (or to --log-file), never to stdout, so a script's data
--- can be piped. Text lines carry a timestamp unless stderr is a terminal;
--- JSON lines (--log-format json) are one object each, with timestamp,
--- level, message and fields. Fields whose name looks secret are masked.
local core = require "isc.core"
local time = require "isc.time"
local args = require "isc.args"

local M = {}

--- One line per public function, for the REPL's help(isc.log).
M.help = {
  debug = "isc.log.debug(message, {field=value}): a line at level debug (shown with --log-level debug)",
  info = "isc.log.info(message, {field=value}): a line on stderr (or --log-file); fields that look secret are masked",
  warn = "isc.log.warn(message, {field=value}): a line at level warn",
  error = "isc.log.error(message, {field=value}): a line at level error",
  log = "isc.log.log(level, message, {field=value}): a line at that level",
  configure = "isc.log.configure{level=, format='text'|'json', file=, timestamps=}: what --log-level, --log-format, --log-file set",
  settings = "isc.log.settings() -> the level, format, file and timestamps in use",
  enabled = "isc.log.enabled(level) -> whether lines at that level are written",
  looks_secret = "isc.log.looks_secret(name) -> whether a field of that name is masked",
}

--- Levels, least severe first.
M.levels = { debug = 1, info = 2, warn = 3, error = 4 }

local settings = {}

--- Sets where and how lines are written. Unset options return to defaults:
--- level "info", format "text", stderr, timestamps unless stderr is a terminal.
---@param opts table {level=, format="text"|"json", file=path, timestamps=boolean}
function M.configure(opts)
  opts = args.check("isc.log.configure", opts,
    { level = "string", format = "string", file = "string", timestamps = "boolean" })
  local level = opts.level or "info"
  local format = opts.format or "text"
  if not M.levels[level] then
    args.fail("isc.log.configure", "unknown level '%s' (debug, info, warn, error)", level)
  end
  if format ~= "text" and format ~= "json" then
    args.fail("isc.log.configure", "unknown format '%s' (text, json)", format)
  end
  local timestamps = opts.timestamps
  if timestamps == nil then timestamps = opts.file ~= nil or not core.isatty(2) end
  settings = { level = level, format = format, file = opts.file, timestamps = timestamps }
end

--- The current settings: {level=, format=, file=, timestamps=}.
function M.settings()
  return { level = settings.level, format = settings.format, file = settings.file,
    timestamps = settings.timestamps }
end

--- True when lines at this level are written.
---@param level string
function M.enabled(level)
  return (M.levels[level] or 0) >= M.levels[settings.level]
end

local array_mt = getmetatable(core.json_array({}))

-- The words of a field name that say it holds a secret.
local secret_words = { secret = true, password = true, passwd = true, token = true, authorization = true,
  apikey = true, credential = true, credentials = true }

--- Whether a field of that name may hold a secret (its value is masked):
--- one of its words (client_secret, accessToken, X-Api-Key) is a secret's,
--- so that a role's reauthorizationRequired is not taken for one.
---@param name any
---@return boolean
local function looks_secret(name)
  local words = {}
  for w in tostring(name):gsub("(%l)(%u)", "%1 %2"):lower():gmatch("%w+") do words[#words + 1] = w end
  for i, w in ipairs(words) do
    if secret_words[w] or (w == "api" and words[i + 1] == "key") then return true end
  end
  return false
end
M.looks_secret = looks_secret

-- A copy of a field value that JSON can hold: secrets masked; functions,
-- userdata, NaN and infinities as their text; keys of anything but a list
-- as text; cycles and deep nesting cut.
local function plain(v, depth, seen)
  local tv = type(v)
  if tv == "number" and (v ~= v or v == math.huge or v == -math.huge) then return tostring(v) end
  if tv == "string" or tv == "number" or tv == "boolean" or v == core.null then return v end
  local mt = getmetatable(v)
  if tv ~= "table" or (type(mt) == "table" and mt.__tostring) then return tostring(v) end
  if seen[v] or depth > 8 then return "..." end
  seen[v] = true
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  local is_list = count == #v
  local out = {}
  for k, x in pairs(v) do
    local key = is_list and k or tostring(k)
    out[key] = looks_secret(key) and "***" or plain(x, depth + 1, seen)
  end
  seen[v] = nil
  if mt == array_mt then core.json_array(out) end
  return out
end


-- key=value for a text line: bare words stay bare, other text is quoted.
local function text_value(v)
  if type(v) == "table" then return core.json_encode(v, { sort_keys = true }) end
  if type(v) == "string" and not v:match("^[%w%._/:@%-]+$") then return core.json_encode(v) end
  return tostring(v)
end

local function format_line(level, message, fields, now)
  if settings.format == "json" then
    return string.format('{"timestamp":%s,"level":%s,"message":%s,"fields":%s}',
      core.json_encode(time.iso(now, true)), core.json_encode(level), core.json_encode(message),
      core.json_encode(fields, { sort_keys = true }))
  end
  local parts = {}
  if settings.timestamps then parts[1] = time.iso(now, true) end
  parts[#parts + 1] = level .. ":"
  parts[#parts + 1] = message
  local keys = {}
  for k in pairs(fields) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. text_value(fields[k]) end
  return table.concat(parts, " ")
end

local file_warned = false

-- Appends a line to the log file, opened per line so that logrotate needs
-- no signal; falls back to stderr if the file cannot be written.
local function write(line)
  if settings.file then
    local f, err = io.open(settings.file, "a")
    if f then
      f:write(line, "\n")
      f:close()
      return
    end
    if not file_warned then
      file_warned = true
      io.stderr:write("isclua: cannot write the log file, logging to stderr: ", err, "\n")
    end
  end
  io.stderr:write(line, "\n")
end

--- Writes one line at a level.
---@param level string debug|info|warn|error
---@param message string
---@param fields table|nil
function M.log(level, message, fields)
  if not M.levels[level] then args.fail("isc.log.log", "unknown level '%s'", tostring(level)) end
  if not M.enabled(level) then return end
  local f = plain(fields or {}, 0, {})
  if type(f) ~= "table" then f = { value = f } end
  write(format_line(level, tostring(message), f, core.time()))
end

for name in pairs(M.levels) do
  M[name] = function(message, fields) M.log(name, message, fields) end
end

M.configure()

return M
