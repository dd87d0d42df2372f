-- Spends one attempt of a pending verification on a check that did not approve, and counts
-- one consecutive failure for its phone, locking it with a growing wait past the limit.
-- Prepended to settle_check.lua and claim_attempt.lua (store.PRELUDES).
-- lockout: {failures before lock, first lock (ms), longest lock (ms), record lifetime (ms)}
-- Answers the attempts left (the verification ended as max_attempts_reached at 0), and
-- whether this failure locked the phone.
local function spend_attempt(verification, failure, now, masked_phone, lockout)
  local left = redis.call('HINCRBY', verification, 'attempts', -1)
  if left <= 0 then
    redis.call('HSET', verification, 'status', 'max_attempts_reached', 'ended', now,
      'phone', masked_phone)
  end
  local failures = redis.call('HINCRBY', failure, 'count', 1)
  local limit = tonumber(lockout[1])
  local locked = failures >= limit
  if locked then
    local wait = math.min(tonumber(lockout[2]) * (2 ^ (failures - limit)), tonumber(lockout[3]))
    redis.call('HSET', failure, 'locked_until', string.format('%d', tonumber(now) + wait))
  end
  redis.call('PEXPIRE', failure, lockout[4])
  return left, locked
end

-- The events of a spent attempt (_event.lua): the verification ended, the phone locked.
local function spent_events(stream, verification, now, left, locked)
  if left <= 0 then
    emit(stream, 'verification.max_attempts_reached', verification, now)
  end
  if locked then
    emit(stream, 'phone.locked', verification, now)
  end
end
