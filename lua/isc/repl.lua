--- The interactive prompt (`isclua` on a terminal, or `isclua -i`).
---
--- A session (M.session) is the line-level part: it takes typed lines, runs
--- each complete chunk and prints its values with isc.pretty; specs drive it
--- directly. M.run puts it on a terminal: line editing, history and
--- completion through isc.lineedit (in isclua only), Ctrl-C, Ctrl-D.
local cli = require "isc.cli"
local core = require "isc.core"
local errors = require "isc.errors"
local listing = require "isc.listing"
local pretty = require "isc.pretty"
local progress = require "isc.progress"

local M = {}

M.prompt, M.continuation = "> ", ">> "
--- Items a printed listing shows of itself.
M.preview_items = 5
--- Lines of history kept.
M.history_limit = 1000
--- Characters that end a word for completion: "." and ":" do not, so that
--- c.roles:li<TAB> completes as one word.
M.word_breaks = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]}"

local keywords = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}

-- Compiles a chunk as an expression first (so "1+1" prints 2), then as a
-- statement. Returns the function, or nil, message, and whether the chunk
-- is only incomplete (more lines may finish it).
local function compile(src, env)
  local fn = load("return " .. src, "=stdin", "t", env)
  if fn then return fn end
  local err
  fn, err = load(src, "=stdin", "t", env)
  if fn then return fn end
  return nil, err, err:find("<eof>$") ~= nil
end

-- Message handler: isc errors speak for themselves; other errors get the
-- traceback down to the chunk typed (the REPL's own frames cut off).
local function handler(err)
  if errors.is(err) then return { err = err } end
  local trace = debug.traceback("", 2):gsub("^\n", ""):gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
  return { err = err, traceback = trace }
end

local Session = {}
Session.__index = Session

--- A session over an environment. out(text) receives results, err(text)
--- error messages; both default to stdout and stderr.
---@param opts table|nil {env=, out=, err=}
function M.session(opts)
  opts = opts or {}
  return setmetatable({
    env = opts.env or _G,
    out = opts.out or function(s) io.stdout:write(s) io.stdout:flush() end,
    err = opts.err or function(s) io.stderr:write(s) end,
    lines = nil,
  }, Session)
end

--- The prompt for the next line: M.continuation while a chunk is incomplete.
function Session:prompt()
  return self.lines and M.continuation or M.prompt
end

--- Takes one typed line. Returns "more" while the chunk is incomplete;
--- otherwise runs it (or reports its syntax error) and returns "done" and
--- the chunk's text as typed, for the history.
---@param line string
---@return string status, string|nil chunk
function Session:feed(line)
  local lines = self.lines or {}
  lines[#lines + 1] = line
  local typed = table.concat(lines, "\n")
  local src = typed:gsub("^%s*=", "return ", 1)
  local fn, err, incomplete = compile(src, self.env)
  if incomplete then
    self.lines = lines
    return "more"
  end
  self.lines = nil
  if fn then
    self:run(fn)
  else
    self.err(err .. "\n")
  end
  return "done", typed
end

--- Abandons the chunk being continued (Ctrl-C at the continuation prompt).
function Session:cancel()
  self.lines = nil
end

--- Reports an error caught while running a chunk; an error that is a
--- plain value (error{code = 1}) is printed as a result would be.
function Session:report(caught)
  local err = caught.err
  if errors.is(err, "interrupted") then
    -- Ctrl-C stops the tasks the statement started, wherever it landed
    require("isc.loop").cancel_all()
    self.err("interrupted\n")
  else
    self.err(pretty.format(err) .. "\n" .. (caught.traceback and caught.traceback .. "\n" or ""))
  end
end

-- Whether v is a listing (an isc.pager, made in C).
local function is_listing(v)
  local mt = type(v) == "userdata" and getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__name") == "isc.pager"
end

-- A listing as the prompt prints it: what it is, how many items it holds
-- when the server says, and its first items, fetched apart (listing:peek)
-- so that the listing keeps its place and is not walked.
local function preview(p)
  local ok, items, total = pcall(p.peek, p, M.preview_items)
  if not ok then
    if errors.is(items, "interrupted") then error(items, 0) end
    return string.format("%s\n  (no preview: %s)", tostring(p), pretty.format(items))
  end
  local shown = math.min(#items, M.preview_items)
  local head
  if shown == 0 then
    head = "no items"
  elseif total and total > shown then
    head = string.format("%d items, the first %d:", total, shown)
  elseif total or shown < M.preview_items then
    head = string.format("%d %s:", shown, shown == 1 and "item" or "items")
  else
    head = string.format("the first %d items:", shown)
  end
  local lines = { tostring(p) .. ": " .. head }
  for i = 1, shown do lines[#lines + 1] = "  " .. pretty.summary(items[i]) end
  return table.concat(lines, "\n")
end

--- Runs a compiled chunk and prints its values.
function Session:run(fn)
  local res = table.pack(xpcall(fn, handler))
  progress.clear() -- a listing left early leaves its line
  if not res[1] then return self:report(res[2]) end
  -- An iterator returned as a generic-for quadruple (pager, nil, nil, pager)
  -- is shown once.
  if res.n == 5 and res[5] == res[2] and res[3] == nil and res[4] == nil then res.n = 2 end
  if res.n < 2 then return end
  -- A listing printed shows its first items (text, so shown as it is).
  local ok, text = xpcall(function()
    for i = 2, res.n do
      if is_listing(res[i]) then res[i] = preview(res[i]) end
    end
    return pretty.format_all(table.unpack(res, 2, res.n))
  end, handler)
  if not ok then return self:report(text) end
  self.out(text .. "\n")
end

-- Calls fn(key, value) for the fields of v and of what its metatables'
-- __index lead to; for an __index function, the metatable's own fields
-- (where isc.client keeps its methods).
local function each_field(v, fn)
  local seen = {}
  for _ = 1, 10 do
    if v == nil or seen[v] then return end
    seen[v] = true
    if type(v) == "table" then
      for k, x in next, v do fn(k, x) end
    end
    local mt = getmetatable(v)
    if type(mt) ~= "table" then return end
    local index = rawget(mt, "__index")
    if type(index) == "function" then
      for k, x in next, mt do
        if type(k) == "string" and not k:find("^__") then fn(k, x) end
      end
      return
    end
    v = index
  end
end

-- Resolves a dotted name ("c.roles") in env without calling anything
-- but __index; nil if any part is missing or raises.
local function resolve(env, path)
  local v = env
  for name in path:gmatch("[^.]+") do
    if v == nil then return nil end
    local ok, x = pcall(function() return v[name] end)
    if not ok then return nil end
    v = x
  end
  return v
end

local function callable(x)
  if type(x) == "function" then return true end
  local mt = getmetatable(x)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

--- Completion candidates for the word before the cursor: globals and
--- keywords, then fields after "." and methods after ":", as the full
--- replacement text ("c.roles:list"). Names starting with "_" are offered
--- only when asked for.
---@param word string
---@return string[]
function Session:complete(word)
  local base, sep, partial = word:match("^([%a_][%w_.]*)([.:])([%a_]?[%w_]*)$")
  local found, out = {}, {}
  local function offer(name, value)
    if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then return end
    if name:sub(1, #partial) ~= partial or found[name] then return end
    if name:sub(1, 1) == "_" and partial:sub(1, 1) ~= "_" then return end
    if sep == ":" and not callable(value) then return end
    found[name] = true
    out[#out + 1] = (base and (base .. sep) or "") .. name
  end
  if base then
    local v = resolve(self.env, base)
    if v == nil then return out end
    each_field(v, offer)
    local client = package.loaded["isc.client"]
    if sep == "." and client and getmetatable(v) == client.Client then
      for name in pairs(client.services) do offer(name, true) end
    end
  else
    partial = word:match("^[%a_][%w_]*$") or (word == "" and "") or nil
    if not partial then return out end
    each_field(self.env, offer)
    for _, k in ipairs(keywords) do offer(k, true) end
  end
  table.sort(out)
  return out
end

-- Words that make a name secret-sounding wherever they occur in it
-- (client_secret, db_password); short ones only as a whole part of the name
-- (pw, my_key, apiKey), since as substrings they are everywhere (keys, upward).
local secret_words = { "secret", "passw", "token", "api_key", "apikey", "bearer", "authorization", "credential", "jwt" }
local secret_parts = { pw = true, pwd = true, pass = true, passwd = true, key = true }

-- Whether a name assigned to is a secret-sounding short name.
local function secret_name(name)
  for part in name:gsub("(%l)(%u)", "%1_%2"):lower():gmatch("[^_]+") do
    if secret_parts[part] then return true end
  end
  return false
end

--- Whether a chunk looks like it sets or shows a secret, so it must not be
--- written to the history file: a secret-sounding name with an assignment or
--- a string; a string assigned to a name like pw, pass or key; a JWT
--- (eyJ..., three base64url parts); or a string literal as long as a client
--- secret (ids, at 32 characters, are shorter).
---@param chunk string
function M.looks_secret(chunk)
  local lower = chunk:lower()
  for _, word in ipairs(secret_words) do
    if lower:find(word, 1, true) and (chunk:find("=", 1, true) or chunk:find("[\"'%[]")) then return true end
  end
  for name in chunk:gmatch("([%a_][%w_]*)%s*=%s*[\"'%[]") do
    if secret_name(name) then return true end
  end
  if chunk:find("eyJ[%w_%-]+%.[%w_%-]+%.") then return true end
  for s in chunk:gmatch("[\"']([%w+/=_%-]+)[\"']") do
    if #s >= 40 and s:find("%d") and s:find("%a") then return true end
  end
  return false
end

--- The history file: $XDG_STATE_HOME/isclua/history, by default
--- ~/.local/state/isclua/history.
function M.history_file()
  local base = os.getenv("XDG_STATE_HOME")
  if not base or base == "" then base = (os.getenv("HOME") or ".") .. "/.local/state" end
  return base .. "/isclua/history"
end

-- The help table of the module an object comes from: the loaded module
-- whose `help` names the most functions the object has.
local function help_table(x)
  local best, best_score = nil, 0
  for _, mod in pairs(package.loaded) do
    if type(mod) == "table" and type(rawget(mod, "help")) == "table" then
      local score = 0
      for name in pairs(mod.help) do
        local ok, f = pcall(function() return x[name] end)
        if ok and callable(f) then score = score + 1 end
      end
      if score > best_score then best, best_score = mod.help, score end
    end
  end
  return best
end

-- What help "topic" prints.
local topics = { filters = listing.filters }

local general_help = [[
Type Lua; an expression prints its value (also "=expr"). An incomplete
statement continues on the next line (">>").
  c                  the client, when settings were found (c = isc.client{...} otherwise)
  help(c.roles)      the functions of the roles API; help(c.propagation), help(c), help(isc)
  help(listing)      what a listing offers (listing = c.roles:list()); help "filters"
  for r in c.roles:list() do print(r.name) end
  c.roles:list():collect()   every role, as a list
Tab completes names, fields and methods (c.roles:li<TAB>). Ctrl-C stops the
running statement or clears the line; Ctrl-D exits. History: %s]]

--- The text help(x) prints: the functions of x with one line each, from its
--- module's `help` table; a topic's text for a string (help "filters");
--- general help for no argument.
---@param x any
---@param given boolean whether an argument was given (help(nil) vs help())
function M.help_text(x, given)
  if not given then return string.format(general_help, M.history_file()) end
  local t = type(x)
  if t == "string" then
    local names = {}
    for name in pairs(topics) do names[#names + 1] = string.format("%q", name) end
    table.sort(names)
    return topics[x] or string.format("no help on %q; topics: %s", x, table.concat(names, ", "))
  end
  if t ~= "table" and t ~= "userdata" then
    return string.format("%s: no help; try help(c), help(c.roles) or help()", pretty.format(x))
  end
  local title = tostring(x)
  for name, mod in pairs(package.loaded) do
    if mod == x and t == "table" then title = "module " .. name end
  end
  local lines = { title }
  local described = {}
  for k, line in pairs(help_table(x) or {}) do described[k] = line end
  local names = {}
  each_field(x, function(k, v)
    if type(k) == "string" and not k:find("^_") and callable(v) and not names[k] then
      names[k] = true
      names[#names + 1] = k
    end
  end)
  -- What the help table describes besides x's functions (fields, options,
  -- behaviour) comes after them.
  local notes = {}
  for k in pairs(described) do
    if not names[k] then notes[#notes + 1] = k end
  end
  table.sort(names)
  table.sort(notes)
  table.move(notes, 1, #notes, #names + 1, names)
  local client = package.loaded["isc.client"]
  if client and getmetatable(x) == client.Client then
    for name in pairs(client.services) do
      names[#names + 1] = name
      described[name] = string.format("c.%s: help(c.%s) lists its functions", name, name)
    end
  end
  if #names == 0 then return lines[1] .. ": no functions" end
  for _, k in ipairs(names) do
    local line = described[k]
    if not line then
      line = k .. "(...)"
    elseif not line:find(k, 1, true) then
      line = k .. ": " .. line
    end
    lines[#lines + 1] = "  " .. line
  end
  return table.concat(lines, "\n")
end

--- Makes the REPL's globals in env: isc, help, and c when a tenant is
--- configured. Returns the banner (one or two lines).
---@param env table
---@return string
function M.setup(env)
  local isc = require "isc"
  env.isc = env.isc or isc
  env.help = env.help or function(...) print(M.help_text((...), select("#", ...) > 0)) end
  local first = string.format("isclua %s (%s) - help() for help, Ctrl-D to exit", isc.version, _VERSION)
  if env.c ~= nil then return first end
  local ok, c = pcall(isc.client)
  if ok then
    env.c = c
    return string.format("%s\nc: %s (settings from %s)", first, c.base_url, c.source or "?")
  end
  if errors.is(c, "config") and c.looked_at and c.message:find("^no ISC tenant configured") then
    return first .. "\nNo tenant configured: set SAIL_BASE_URL, SAIL_CLIENT_ID and SAIL_CLIENT_SECRET, or add a "
      .. "profile to " .. require("isc.config").config_file() .. "; then c = isc.client()"
  end
  return first .. "\nNo client: " .. tostring(c):match("^[^\n]*")
end

-- Reads lines from a terminal through isc.lineedit, with history and
-- completion; nil when stdin is no terminal or lineedit is unavailable
-- (said on stderr: isclua loads libedit only now, and it may be missing).
local function terminal_reader(session)
  if not core.isatty(0) then return nil end
  local ok, le = pcall(require, "isc.lineedit")
  if not ok then
    if package.preload["isc.lineedit"] then -- isclua's, not a stock lua5.4
      io.stderr:write("isclua: ", tostring(le):match("^[^\n]*"), "\n")
    end
    return nil
  end
  local path = M.history_file()
  le.history_limit(M.history_limit)
  le.load_history(path)
  le.set_completer(function(word) return session:complete(word) end, M.word_breaks)
  local warned = false
  return {
    read = le.read,
    remember = function(chunk)
      if chunk:find("%S") and not M.looks_secret(chunk) then
        le.add_history(chunk)
        local saved, err = le.save_history(path)
        if not saved and not warned then
          warned = true
          io.stderr:write("isclua: history not saved: ", tostring(err), "\n")
        end
      end
    end,
  }
end

-- Reads plain lines (stdin is no terminal, or no lineedit).
local function plain_reader()
  return {
    read = function(prompt)
      io.stdout:write(prompt)
      io.stdout:flush()
      return io.stdin:read("l")
    end,
    remember = function() end,
  }
end

-- Reads and runs lines until the input ends; returns the exit code.
local function interact(session, reader)
  while true do
    local line, sig = reader.read(session:prompt())
    if line == nil then
      io.stdout:write("\n")
      return 0
    elseif line == false then
      if sig ~= 2 then return cli.exit_code_for(errors.new("interrupted", "signal", { signal = sig })) end
      session:cancel()
      io.stdout:write("^C\n")
    else
      local status, chunk = session:feed(line)
      if status == "done" then reader.remember(chunk) end
    end
  end
end

--- Runs the prompt until end of input; returns the exit code.
function M.run()
  -- At the prompt a signal is not held: it stops the call it lands in, and
  -- the next statement runs normally.
  core.hold_stops(nil)
  local session = M.session()
  io.stdout:write(M.setup(session.env), "\n")
  local reader = terminal_reader(session) or plain_reader()
  -- A Ctrl-C landing between statements, in the REPL's own code, only
  -- brings a fresh prompt; no error of the REPL's own ends the session.
  while true do
    local ok, code = pcall(interact, session, reader)
    if ok then return code end
    session:cancel()
    if not errors.is(code, "interrupted") then session:report({ err = code }) end
  end
end

return M
