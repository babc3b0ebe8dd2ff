-- touch: KEYS live, meta, h, agents; ARGV session, visitor_gen, presence_ttl_ms, key_ttl_ms,
-- member... Returns 0.
local live, meta, h, agents = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ttl, key_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local until_ms = int(now_ms() + ttl)
redis.call('ZADD', live, until_ms, ARGV[1])
for i = 5, #ARGV do
  redis.call('ZADD', agents, until_ms, ARGV[i])
end
if ARGV[2] ~= '0' and redis.call('HGET', meta, 'gen') == ARGV[2] then
  redis.call('HSET', meta, 'vexp', until_ms)
end
for _, k in ipairs({live, meta, h, agents}) do
  redis.call('PEXPIRE', k, key_ttl)
end
return 0
