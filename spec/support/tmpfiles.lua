-- Run by busted before any spec (scripts/run-specs --helper): every
-- temporary file a spec makes with os.tmpname goes under the build
-- directory's spec-tmp, which scripts/run-specs empties before the run and
-- removes after it. Nothing a spec writes, simulator credentials included,
-- is left in /tmp.
local dir = os.getenv("ISCLUA_SPEC_TMP")
if dir then
  local pid, made = require("isc.core").getpid(), 0
  function os.tmpname()
    made = made + 1
    local path = string.format("%s/lua_%d_%d", dir, pid, made)
    assert(io.open(path, "w")):close()
    return path
  end
end
