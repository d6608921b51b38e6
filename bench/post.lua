-- wrk script: POST one image file as multipart/form-data (field "image") on every request,
-- or, given a content type, a prepared body file as it is (JSON for the protocols); count
-- responses by status, and print a JSON summary line (prefix "JSON ") when done.
--   wrk -s bench/post.lua URL -- IMAGE_PATH
--   wrk -s bench/post.lua URL -- BODY_PATH application/json
--   wrk -s bench/post.lua URL -- BODY_PATH application/octet-stream "Header: value"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  local path = args[1]
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  wrk.method = "POST"
  if args[2] then
    wrk.headers["Content-Type"] = args[2]
    if args[3] then
      local name, value = args[3]:match("^([^:]+):%s*(.*)$")
      wrk.headers[name] = value
    end
    wrk.body = data
    return
  end
  local boundary = "----h5servebench7d4a1b"
  local ctype = path:match("%.jpe?g$") and "image/jpeg" or "image/png"
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
  wrk.body = "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="image"; filename="' .. path:match("[^/]+$") .. '"\r\n'
    .. "Content-Type: " .. ctype .. "\r\n\r\n"
    .. data .. "\r\n--" .. boundary .. "--\r\n"
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d}, "latency_us": {"p50": %d, "p90": %d, '
      .. '"p99": %d, "max": %d, "mean": %.1f}, "statuses": {%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, table.concat(parts, ", ")))
end
