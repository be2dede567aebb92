-- wrk script for bench/run: spreads requests over a range of ids.
--
--   BENCH_PATH    the path, with {id} where the id goes (e.g. /api/v1/rectifications/{id})
--   BENCH_LO      the first id of the range
--   BENCH_HI      the last id of the range (each request takes one uniformly at random)
--   BENCH_METHOD  GET (default) or POST
--   BENCH_BODY    the body of a POST, with {percent} replaced by a random 0-100 each time
--
-- Headers given to wrk with -H (Authorization, Content-Type) are sent with every request.

local path = os.getenv("BENCH_PATH") or "/"
local lo = tonumber(os.getenv("BENCH_LO") or "1")
local hi = tonumber(os.getenv("BENCH_HI") or "1")
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  local id = math.random(lo, hi)
  local p = path:gsub("{id}", tostring(id))
  local b = nil
  if body then
    b = body:gsub("{percent}", tostring(math.random(0, 100)))
  end
  return wrk.format(method, p, nil, b)
end
