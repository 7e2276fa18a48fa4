-- wrk script for the soak: every connection cycles through the EST operations and three
-- kinds of bad request, and each thread counts the answers by status. Expected: 200 (cacerts,
-- simpleenroll), 204 (csrattrs of a label without requirements), 400 (a body that is not
-- base64 DER), 405 (GET on simpleenroll), 415 (wrong media type). /serverkeygen and
-- /simplereenroll come from curl clients beside it (tests/soak/run.sh).
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local csr = slurp(os.getenv("SOAK_CSR"))
local auth = "Basic " .. slurp(os.getenv("SOAK_AUTH_FILE")):gsub("%s", "")
local base = "/.well-known/est"
local pkcs10 = { ["Content-Type"] = "application/pkcs10", ["Authorization"] = auth }
local requests = {
  wrk.format("GET", base .. "/cacerts"),
  wrk.format("GET", base .. "/csrattrs"),
  wrk.format("POST", base .. "/simpleenroll", pkcs10, csr),
  wrk.format("POST", base .. "/simpleenroll", pkcs10, "this is not base64 DER!"),
  wrk.format("GET", base .. "/simpleenroll"),
  wrk.format("POST", base .. "/simpleenroll", { ["Content-Type"] = "text/plain", ["Authorization"] = auth }, csr),
}

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  s200, s204, s400, s405, s415, other = 0, 0, 0, 0, 0, 0
end

function request()
  n = n + 1
  return requests[(n % #requests) + 1]
end

function response(status, headers, body)
  if status == 200 then s200 = s200 + 1
  elseif status == 204 then s204 = s204 + 1
  elseif status == 400 then s400 = s400 + 1
  elseif status == 405 then s405 = s405 + 1
  elseif status == 415 then s415 = s415 + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t = { s200 = 0, s204 = 0, s400 = 0, s405 = 0, s415 = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format(
    "mixed: requests=%d 200=%d 204=%d 400=%d 405=%d 415=%d unexpected=%d socket_errors=%d p99_ms=%.1f\n",
    summary.requests, t.s200, t.s204, t.s400, t.s405, t.s415, t.other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(99) / 1000))
end
