-- Decides whether a check may go to the gateway now.  At most one check per verification
-- is in flight (the gateway approves ANY code once a token was verified, docs/gateway.md §7.2),
-- a locked phone answers the same whatever the code, and only a claimed check counts against
-- the phone's check limit.  A token whose check had no answer is never checked again (fail
-- closed): the verification waits for a resend, which brings a new token.  That is marked by
-- settle_check.lua, or here for a claim that was never settled (its answer was lost).
-- KEYS[1] the verification   KEYS[2] the phone's failure record
-- KEYS[3..n-1] the moving windows (_moving_window.lua) of the phone's check limit, if any
-- KEYS[n] the slot's event stream (_event.lua)
-- ARGV[1] now (ms)   ARGV[2] client name   ARGV[3] how long a claim may be held (ms)
-- ARGV[4] the masked phone, written when the verification ends here
-- ARGV[5..8] the lockout (_spend_attempt.lua)   ARGV[9..] per window: amount, window (ms)
-- Answers {'claimed', the token reference to check}, {'not_found'}, {'closed', status}, {'locked', wait ms},
-- {'busy', wait ms}, {'resend_required'} or {'limited', window index, wait ms}.
local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 'client', 'status', 'expires', 'busy', 'ref', 'spent_ref')
if not v[1] or v[1] ~= ARGV[2] then
  return {'not_found'}
end
if v[2] ~= 'pending' then
  return {'closed', v[2]}
end
if tonumber(v[3]) <= now then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'ended', ARGV[1], 'phone', ARGV[4])
  emit(KEYS[#KEYS], 'verification.expired', KEYS[1], now)
  return {'closed', 'expired'}
end
local locked = tonumber(redis.call('HGET', KEYS[2], 'locked_until') or '0')
if locked > now then
  return {'locked', string.format('%d', locked - now)}
end
local busy = tonumber(v[4] or '0')
if busy > now then
  return {'busy', string.format('%d', busy - now)}
end
if busy > 0 then
  -- a claim never settled: its code reached the gateway and the answer was lost (a crash,
  -- or a failover that forgot the settlement).  If it was right, the token is verified and
  -- the gateway would now approve any code: settled as settle_check.lua settles 'unknown'.
  redis.call('HDEL', KEYS[1], 'busy')
  redis.call('HSET', KEYS[1], 'spent_ref', v[5])
  local lockout = {ARGV[5], ARGV[6], ARGV[7], ARGV[8]}
  local left, locked = spend_attempt(KEYS[1], KEYS[2], ARGV[1], ARGV[4], lockout)
  spent_events(KEYS[#KEYS], KEYS[1], now, left, locked)
  if left <= 0 then
    return {'closed', 'max_attempts_reached'}
  end
  return {'resend_required'}
end
if v[6] == v[5] then
  return {'resend_required'}
end
for i = 3, #KEYS - 1 do
  local at = 9 + (i - 3) * 2
  local wait = window_wait(KEYS[i], tonumber(ARGV[at]), tonumber(ARGV[at + 1]), now)
  if wait > 0 then
    return {'limited', i - 2, string.format('%d', wait)}
  end
end
for i = 3, #KEYS - 1 do
  local at = 9 + (i - 3) * 2
  window_count(KEYS[i], tonumber(ARGV[at]), tonumber(ARGV[at + 1]), now)
end
redis.call('HSET', KEYS[1], 'busy', string.format('%d', now + tonumber(ARGV[3])))
-- the token to ask about is the one current now, not the one a caller read before a resend
-- (that one may be the spent token, which the gateway would approve for any code)
return {'claimed', v[5]}
