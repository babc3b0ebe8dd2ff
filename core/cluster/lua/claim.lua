-- claim: KEYS meta, h, agents, channel; ARGV have, epoch, node, presence_ttl_ms, key_ttl_ms.
-- Returns {gen, last, snap, epoch, {agents...}}.
local meta, h, agents, channel = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local have, epoch, node = ARGV[1], ARGV[2], ARGV[3]
local ttl, key_ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()

if redis.call('EXISTS', meta) == 0 then
  -- A new history: whatever stream outlived its meta belongs to an older epoch.
  redis.call('DEL', h)
  redis.call('HSET', meta, 'epoch', epoch, 'last', have, 'snap', '0', 'gen', '0')
elseif tonumber(redis.call('HGET', meta, 'last') or '0') < tonumber(have) then
  -- Frames the claiming node applied while Redis was down: the followers see the hole.
  redis.call('HSET', meta, 'last', have)
end
local gen = redis.call('HINCRBY', meta, 'gen', 1)
redis.call('HSET', meta, 'vnode', node, 'vexp', int(now + ttl))
redis.call('PUBLISH', channel,
  'C' .. node .. ' {"t":"visitor","state":"connected","gen":' .. gen .. '}')
redis.call('ZREMRANGEBYSCORE', agents, '-inf', now)
local members = redis.call('ZRANGE', agents, 0, -1)
local m = redis.call('HMGET', meta, 'last', 'snap', 'epoch')
redis.call('PEXPIRE', meta, key_ttl)
redis.call('PEXPIRE', h, key_ttl)
return {gen, tonumber(m[1]), tonumber(m[2]), m[3], members}
