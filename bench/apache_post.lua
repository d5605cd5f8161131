-- wrk script: POSTs 256 KiB bodies of varied Apache common log lines, like lading's
-- apache_common generator in the Vector guide. Bodies are built once per thread at start-up.
local body_size = tonumber(os.getenv("BODY_BYTES") or "262144")
local bodies_n = tonumber(os.getenv("BODIES") or "16")
local users = { "frank", "lavon", "kaia-m", "ops", "j.doe", "r2d2", "-" }
local methods = { "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH" }
local paths = { "/", "/index.html", "/api/v1/orders", "/static/app.js", "/fortunate", "/a/b/c", "/search" }
local months = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }
local statuses = { 200, 200, 200, 201, 301, 304, 404, 500, 503 }

local bodies = {}
local index = 0

function init(args)
  math.randomseed(os.time() + (args[1] and #args[1] or 0))
  for b = 1, bodies_n do
    local parts, size = {}, 0
    while size < body_size do
      local line = string.format('%d.%d.%d.%d - %s [%02d/%s/20%02d:%02d:%02d:%02d +0000] "%s %s%d HTTP/1.%d" %d %d\n',
        math.random(1, 255), math.random(0, 255), math.random(0, 255), math.random(1, 254),
        users[math.random(#users)], math.random(1, 28), months[math.random(12)], math.random(10, 26),
        math.random(0, 23), math.random(0, 59), math.random(0, 59),
        methods[math.random(#methods)], paths[math.random(#paths)], math.random(0, 9999), math.random(0, 1),
        statuses[math.random(#statuses)], math.random(0, 200000))
      parts[#parts + 1] = line
      size = size + #line
    end
    bodies[b] = table.concat(parts)
  end
end

function request()
  index = index % #bodies + 1
  return wrk.format("POST", "/", { ["Content-Type"] = "text/plain" }, bodies[index])
end

local non200 = 0
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  io.stderr:write(string.format("wrk: %d requests, %d errors (connect %d, read %d, write %d, status %d, timeout %d)\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
