-- A deliberately odd API for the client's error specs: answers that a real
-- gateway or a broken proxy may give. Served by isc.sim.server's serve_thread.
local M = {}

local routes = {
  ["/oauth/token"] = function()
    return { status = 200, headers = { ["Content-Type"] = "application/json" },
      body = '{"access_token":"fake-token","token_type":"bearer","expires_in":749}' }
  end,
  ["/html"] = function()
    return { status = 200, headers = { ["Content-Type"] = "text/html" },
      body = "<html><body>Gateway maintenance</body></html>" }
  end,
  ["/html-error"] = function()
    return { status = 502, headers = { ["Content-Type"] = "text/html" }, body = "<html>Bad gateway</html>" }
  end,
  ["/no-content"] = function() return { status = 204, headers = {} } end,
  ["/detail-message"] = function()
    return { status = 400, headers = { ["Content-Type"] = "application/json" },
      body = '{"detailMessage":"Specified offset is invalid.","stackTrace":[],"suppressedExceptions":[]}' }
  end,
  ["/echo"] = function(req)
    return { status = 200, headers = { ["Content-Type"] = "application/json" },
      body = string.format('{"authorization":%q,"query":%q}', req.headers.authorization or "", req.query) }
  end,
  ["/reset"] = function() return { fault = "reset" } end,
  ["/redirect"] = function()
    return { status = 302, headers = { Location = "https://elsewhere.example/v2024/roles" }, body = "" }
  end,
  -- A tenant that answers the bulk-update status only at the spec's literal path.
  ["/v2024/roles/access-model-metadata/bulk-update/job-7"] = function()
    return { status = 404, headers = { ["Content-Type"] = "application/json" }, body = '{"error":"no route"}' }
  end,
  ["/v2024/roles/access-model-metadata/bulk-update/id"] = function()
    return { status = 202, headers = { ["Content-Type"] = "application/json" },
      body = '{"id":"job-7","type":"ROLE","status":"COMPLETED","created":"2026-01-01T00:00:00Z"}' }
  end,
  ["/big-headers"] = function()
    return { status = 200, headers = { ["X-Padding"] = ("x"):rep(8000) }, body = "[]" }
  end,
  ["/big"] = function()
    return { status = 200, headers = { ["Content-Type"] = "application/json" }, body = "[" .. ("0,"):rep(5000) .. "0]" }
  end,
}

function M.handler()
  return function(req)
    local route = routes[req.path]
    if route then return route(req) end
    return { status = 404, headers = { ["Content-Type"] = "application/json" }, body = '{"error":"no route"}' }
  end
end

return M
