-- Spends one attempt of a pending verification on a check that did not approve, and counts
-- one consecutive failure for its phone, locking it with a growing wait past the limit.
-- Prepended to settle_check.lua and claim_attempt.lua (store.PRELUDES).
-- lockout: {failures before lock, first lock (ms), longest lock (ms), record lifetime (ms)}
-- Answers the attempts left (the verification ended as max_attempts_reached at 0).
local function spend_attempt(verification, failure, now, masked_phone, lockout)
  local left = redis.call('HINCRBY', verification, 'attempts', -1)
  if left <= 0 then
    redis.call('HSET', verification, 'status', 'max_attempts_reached', 'ended', now,
      'phone', masked_phone)
  end
  local failures = redis.call('HINCRBY', failure, 'count', 1)
  local limit = tonumber(lockout[1])
  if failures >= limit then
    local wait = math.min(tonumber(lockout[2]) * (2 ^ (failures - limit)), tonumber(lockout[3]))
    redis.call('HSET', failure, 'locked_until', string.format('%d', tonumber(now) + wait))
  end
  redis.call('PEXPIRE', failure, lockout[4])
  return left
end
