-- idle: KEYS meta, agents; ARGV idle_ms. Returns {idle, wait_ms}.
local meta, agents = KEYS[1], KEYS[2]
local idle_ms = tonumber(ARGV[1])
if redis.call('EXISTS', meta) == 0 then
  return {1, 0}
end
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', agents, '-inf', now)
local m = redis.call('HMGET', meta, 'vexp', 'left')
local vexp, left = tonumber(m[1]) or 0, tonumber(m[2]) or 0
-- Someone present: ask again when the last presence would run out without a touch.
local present_until = 0
if vexp > now then present_until = vexp end
local top = redis.call('ZRANGE', agents, -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) > present_until then present_until = tonumber(top[2]) end
if present_until > 0 then
  return {0, math.max(1000, math.ceil(present_until - now))}
end
if now - left >= idle_ms then
  return {1, 0}
end
return {0, math.max(1000, math.ceil(left + idle_ms - now))}
