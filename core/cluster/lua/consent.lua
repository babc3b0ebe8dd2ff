-- consent: KEYS meta; ARGV state. Returns 0. Never creates meta (claim starts a history).
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'consent', ARGV[1])
end
return 0
