-- admit: KEYS live, new, agents; ARGV session, agent, resume, member, concurrent_sessions,
-- sessions_per_minute, agents_per_session, presence_ttl_ms, key_ttl_ms.
-- Returns {refused or '', retry_ms}. Nothing is written unless the connection is admitted, so a
-- refusal at the agent step does not spend the tenant's new-session budget.
local live, new, agents = KEYS[1], KEYS[2], KEYS[3]
local sid, agent, resume, member = ARGV[1], ARGV[2] == '1', ARGV[3] == '1', ARGV[4]
local cs, spm, aps = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ttl, key_ttl = tonumber(ARGV[8]), tonumber(ARGV[9])
local now = now_ms()

redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
local new_tat = nil
if not redis.call('ZSCORE', live, sid) and not resume then
  if cs > 0 and redis.call('ZCARD', live) >= cs then
    return {'session_limit', 30000}
  end
  if spm > 0 then
    -- GCRA: one session every `interval` ms, `burst` at once.
    local interval = 60000 / spm
    local burst = math.max(1, math.floor(spm / 60))
    local tat = tonumber(redis.call('GET', new)) or now
    if tat < now then tat = now end
    local early = tat - now - (burst - 1) * interval
    if early > 0 then
      return {'rate_limited', math.ceil(early)}
    end
    new_tat = tat + interval
  end
end
if agent then
  redis.call('ZREMRANGEBYSCORE', agents, '-inf', now)
  if aps > 0 and not redis.call('ZSCORE', agents, member)
      and redis.call('ZCARD', agents) >= aps then
    return {'agent_limit', 0}
  end
end

if new_tat then
  redis.call('SET', new, int(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
end
if agent then
  redis.call('ZADD', agents, int(now + ttl), member)
  redis.call('PEXPIRE', agents, key_ttl)
end
redis.call('ZADD', live, int(now + ttl), sid)
redis.call('PEXPIRE', live, key_ttl)
return {'', 0}
