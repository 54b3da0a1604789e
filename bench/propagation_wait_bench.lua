-- CPU cost of a ten-minute wait for a role propagation, compressed in time:
-- a real wait (core.sleep between polls, real clock, a simulated tenant on a
-- thread of this process whose CPU counts too) whose propagation and poll
-- spacing are the default ones scaled down to a few seconds. It makes the
-- same polls and the same sleeps as ten real minutes would; only each sleep
-- is shorter, and a sleep costs no CPU however long it lasts.
local bench = require "benchlib"
local core = require "isc.core"
local isc = require "isc"

local REAL = 600 -- the wait being modelled, in seconds
local scale = math.max(bench.seconds, 3) / REAL
local sim = require("isc.sim").start { roles = 10, identities = 10, propagation_stage_seconds = REAL / 3 * scale }
local c = isc.client { base_url = sim.url, client_id = sim.client_id, client_secret = sim.client_secret }
c.propagation:ongoing() -- fetches the token outside the measurement

local cpu0, t0 = os.clock(), core.monotonic()
local status = c.propagation:run { interval = 5 * scale, max_interval = 60 * scale } -- the default spacing, scaled
local wall, cpu = core.monotonic() - t0, os.clock() - cpu0
assert(status.executionStage == "SUCCEEDED", "the propagation ended " .. tostring(status.executionStage))
local polls = sim:stats().by_route["GET /v2026/role-propagation/{rolePropagationId}/status"]
sim:stop()

io.stderr:write(string.format("propagation_wait: %d polls in %.1f s standing for %d s\n", polls, wall, REAL))
bench.report("propagation_wait_10min_cpu", cpu, "s", "<=", 1)
bench.exit()
