-- Prepended to every script (core/cluster/cluster_scripts.c). Redis's clock, so that the nodes'
-- clocks never disagree; Redis 7 replicates a script's effects, so TIME is allowed.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Integers as Redis wants them: tostring() of a Lua number turns 1e15 into '1e+15'.
local function int(x)
  return string.format('%.0f', x)
end
