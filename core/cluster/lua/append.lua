-- append: KEYS meta, h, channel; ARGV gen, seq, snapshot, frame, key_ttl_ms.
-- Returns {result, last}: 0 ok, 1 duplicate, 2 gap, 3 fenced, 4 lost (the C enum's order).
local meta, h, channel = KEYS[1], KEYS[2], KEYS[3]
local seq_s, frame, key_ttl = ARGV[2], ARGV[4], tonumber(ARGV[5])
local m = redis.call('HMGET', meta, 'gen', 'last')
if not m[1] then
  return {4, 0}
end
local last = tonumber(m[2]) or 0
if m[1] ~= ARGV[1] then
  return {3, last}
end
local seq = tonumber(seq_s)
if seq <= last then
  return {1, last}
end
local snapshot = ARGV[3] == '1'
if seq > last + 1 and not snapshot then
  return {2, last}
end
redis.call('XADD', h, '0-' .. seq_s, 'f', frame)
if snapshot then
  redis.call('XTRIM', h, 'MINID', '0-' .. seq_s)
  redis.call('HSET', meta, 'snap', seq_s, 'last', seq_s)
else
  redis.call('HSET', meta, 'last', seq_s)
end
redis.call('PUBLISH', channel, 'F' .. frame)
redis.call('PEXPIRE', meta, key_ttl)
redis.call('PEXPIRE', h, key_ttl)
return {0, seq}
