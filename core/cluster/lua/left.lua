-- left: KEYS meta, agents; ARGV member ('' for the visitor), visitor_gen. Returns 0.
-- meta is never created here: claim alone starts a history (its epoch).
local meta, agents = KEYS[1], KEYS[2]
if ARGV[1] ~= '' then
  redis.call('ZREM', agents, ARGV[1])
elseif redis.call('HGET', meta, 'gen') == ARGV[2] then
  redis.call('HSET', meta, 'vexp', '0')
end
if redis.call('EXISTS', meta) == 1 then
  redis.call('HSET', meta, 'left', int(now_ms()))
end
return 0
