-- CPU cost of a ten-minute wait for a role propagation, compressed in time:
-- a real wait (core.sleep between polls, real clock, a simulated tenant on a
-- thread of this process whose CPU counts too) whose propagation and poll
-- spacing are the default ones scaled down to a few seconds. It makes the
-- same polls and the same sleeps as ten real minutes would; only each sleep
-- is shorter. Its baseline is the same number of status polls made one after
-- the other: the sleeps between them must cost next to nothing.
local bench = require "benchlib"
local core = require "isc.core"
local isc = require "isc"

local REAL = 600 -- the wait being modelled, in seconds
local scale = math.max(bench.seconds, 3) / REAL
local sim = require("isc.sim").start { roles = 10, identities = 10, propagation_stage_seconds = REAL / 3 * scale,
  rate_limit = false }
local c = isc.client { base_url = sim.url, client_id = sim.client_id, client_secret = sim.client_secret }
c.propagation:ongoing() -- fetches the token outside the measurement

-- the wait's own cost, without the stage lines it logs when stderr is no terminal
require("isc.progress").enabled = false
local cpu0, t0 = os.clock(), core.monotonic()
local status = c.propagation:run { interval = 5 * scale, max_interval = 60 * scale } -- the default spacing, scaled
local wall, cpu = core.monotonic() - t0, os.clock() - cpu0
assert(status.executionStage == "SUCCEEDED", "the propagation ended " .. tostring(status.executionStage))
local polls = sim:stats().by_route["GET /v2026/role-propagation/{rolePropagationId}/status"]

-- ten rounds, so that a few milliseconds of CPU are measured well
local ROUNDS = 10
cpu0 = os.clock()
for _ = 1, polls * ROUNDS do c.propagation:status(status.id) end
local busy = (os.clock() - cpu0) / ROUNDS
sim:stop()

io.stderr:write(string.format("propagation_wait: %d polls in %.1f s standing for %d s\n", polls, wall, REAL))
bench.report("propagation_wait_10min_cpu", cpu, "s", { name = polls .. " polls back to back", value = busy, unit = "s" },
  "<=", 10)
bench.exit()
