-- wrk script of bench/selector_benchmark.py: every request a new session key, cycling markets and
-- scenarios. MARKETS and SCENARIOS are replaced with the environment's codes before the run.
local markets = {MARKETS}
local scenarios = {SCENARIOS}
local n = 0

request = function()
  n = n + 1
  local path = "/v1/select?market=" .. markets[(n % #markets) + 1]
    .. "&scenario=" .. scenarios[(n % #scenarios) + 1] .. "&session=s" .. n
  return wrk.format("GET", path)
end
