-- end: KEYS meta, h, agents, live; ARGV session. Returns 0. Idempotent.
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return 0
