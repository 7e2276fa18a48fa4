-- wrk script: POST one fixed CSR to /simpleenroll with HTTP Basic, and count every answer
-- that is not 200 (wrk's own "Non-2xx" line would let a 202 pass).
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

wrk.method = "POST"
wrk.body = slurp(os.getenv("BENCH_CSR"))
wrk.headers["Content-Type"] = "application/pkcs10"
wrk.headers["Authorization"] = "Basic " .. slurp(os.getenv("BENCH_AUTH_FILE")):gsub("%s", "")

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  not200 = 0
end
function response(status, headers, body)
  if status ~= 200 then
    not200 = not200 + 1
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("not200")
  end
  io.write(string.format("bench: requests=%d not200=%d socket_errors=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, total,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
