-- A handler module for the server benchmarks: every request gets the same
-- page of realistic Role objects (list-roles shape, ~1.5 KB each), encoded
-- once, so that what is measured is the server and not the tenant.
local core = require "isc.core"

local M = {}

local function hex_id(seed)
  return string.format("%08x%08x%08x%08x", seed * 2654435761 & 0xffffffff, seed * 40503 & 0xffffffff,
    seed * 2246822519 & 0xffffffff, seed * 3266489917 & 0xffffffff)
end

local function ref(kind, seed, name)
  return { type = kind, id = hex_id(seed), name = name }
end

local function role(i)
  local day = string.format("2025-%02d-%02dT%02d:%02d:%02d.%03dZ", i % 12 + 1, i % 28 + 1, i % 24, i % 60, (i * 7) % 60, i % 1000)
  return {
    id = hex_id(i), name = "Role " .. i, created = day, modified = day,
    description = "Access for the members of team " .. i .. " in the engineering organisation",
    owner = ref("IDENTITY", i + 1000000, "owner." .. i),
    additionalOwners = core.json_array { ref("GOVERNANCE_GROUP", i + 2000000, "Approvers " .. i) },
    accessProfiles = core.json_array { ref("ACCESS_PROFILE", i + 3000000, "Access Profile " .. i) },
    entitlements = core.json_array { ref("ENTITLEMENT", i + 4000000, "CN=Team " .. i .. ",OU=Groups,DC=example,DC=com") },
    membership = {
      type = "STANDARD", identities = core.null,
      criteria = { operation = "OR", key = core.null, stringValue = core.null, children = core.json_array {
        { operation = "EQUALS", stringValue = "Team " .. i, children = core.null,
          key = { type = "IDENTITY", property = "attribute.department", sourceId = core.null } },
        { operation = "EQUALS", stringValue = "Team " .. i, children = core.null,
          key = { type = "ENTITLEMENT", property = "attribute.memberOf", sourceId = hex_id(i + 6000000) } },
      } },
    },
    legacyMembershipInfo = core.null, enabled = true, requestable = i % 2 == 0,
    accessRequestConfig = { commentsRequired = true, denialCommentsRequired = false,
      reauthorizationRequired = false, requireEndDate = false, formDefinitionId = core.null,
      maxPermittedAccessDuration = { value = 6, timeUnit = "MONTHS" },
      approvalSchemes = core.json_array { { approverType = "OWNER", approverId = core.null } } },
    revocationRequestConfig = { commentsRequired = false, denialCommentsRequired = false,
      approvalSchemes = core.json_array {} },
    segments = core.json_array { hex_id(i + 7000000) }, dimensional = false, dimensionRefs = core.null,
    accessModelMetadata = { attributes = core.json_array {} }, privilegeLevel = core.null,
  }
end

---n realistic roles, as a JSON array (also the start-up benchmark's baseline work).
---@param n integer
---@return table
function M.roles(n)
  local page = core.json_array {}
  for i = 1, n do page[i] = role(i) end
  return page
end

---@param config table {items = integer (default 50)}
---@return fun(req: table): table
function M.handler(config)
  local response = {
    status = 200,
    headers = { ["Content-Type"] = "application/json;charset=UTF-8" },
    body = core.json_encode(M.roles(config.items or 50)),
  }
  return function() return response end
end

return M
