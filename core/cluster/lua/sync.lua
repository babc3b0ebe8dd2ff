-- sync: KEYS meta, h; ARGV after.
-- Returns {0} when meta does not exist, else {1, epoch, gen, last, snap, visitor, consent,
-- frame...} with the frames from max(after + 1, snap) on.
local meta, h = KEYS[1], KEYS[2]
local m = redis.call('HMGET', meta, 'epoch', 'gen', 'last', 'snap', 'vexp', 'consent')
if not m[1] then
  return {0}
end
local snap = tonumber(m[4]) or 0
local from = tonumber(ARGV[1]) + 1
if from < snap then from = snap end
local out = {1, m[1], tonumber(m[2]) or 0, tonumber(m[3]) or 0, snap,
  ((tonumber(m[5]) or 0) > now_ms()) and 1 or 0, m[6] or ''}
for _, e in ipairs(redis.call('XRANGE', h, '0-' .. int(from), '+')) do
  out[#out + 1] = e[2][2]
end
return out
