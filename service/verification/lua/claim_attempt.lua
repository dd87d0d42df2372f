-- Decides whether a check may go to the gateway now.  At most one check per verification
-- is in flight (the gateway approves ANY code once a token was verified, docs/gateway.md §7.2),
-- a locked phone answers the same whatever the code, and only a claimed check counts against
-- the phone's check limit.  A token whose check had no answer is never checked again (fail
-- closed): the verification waits for a resend, which brings a new token.  That is marked by
-- settle_check.lua, or here for a claim that was never settled (its answer was lost).
-- KEYS[1] the verification   KEYS[2] the phone's failure record
-- KEYS[3..#KEYS - 2] the moving windows (_moving_window.lua) of the phone's check limit, if
-- any   KEYS[#KEYS - 1] the slot's event stream (_event.lua)
-- KEYS[#KEYS] the verification's timeline (_history.lua)
-- ARGV[1] now (ms)   ARGV[2] client name   ARGV[3] how long a claim may be held (ms)
-- ARGV[4] the masked phone, written when the verification ends here
-- ARGV[5..8] the lockout (_spend_attempt.lua)   ARGV[9..] per window: amount, window (ms)
-- Answers {'claimed', the token reference to check}, {'not_found'}, {'closed', status}, {'locked', wait ms},
-- {'busy', wait ms}, {'resend_required'} or {'limited', window index, wait ms}.
local now = tonumber(ARGV[1])
local timeline, windows, stream = KEYS[#KEYS], #KEYS - 2, KEYS[#KEYS - 1]
local v = redis.call('HMGET', KEYS[1], 'client', 'status', 'expires', 'busy', 'ref', 'spent_ref')
if not v[1] or v[1] ~= ARGV[2] then
  return {'not_found'}
end
if v[2] ~= 'pending' then
  return {'closed', v[2]}
end
if tonumber(v[3]) <= now then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'ended', ARGV[1], 'phone', ARGV[4])
  remember(timeline, now, {'ended', 'expired'})
  emit(stream, 'verification.expired', KEYS[1], now)
  return {'closed', 'expired'}
end
local locked = tonumber(redis.call('HGET', KEYS[2], 'locked_until') or '0')
if locked > now then
  remember(timeline, now, {'refused', 'phone_locked'})
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
  local left, locked_now = spend_attempt(KEYS[1], KEYS[2], ARGV[1], ARGV[4], lockout)
  remember_spent(timeline, KEYS[2], now, 'unknown', left)
  spent_events(stream, KEYS[1], now, left, locked_now)
  if left <= 0 then
    return {'closed', 'max_attempts_reached'}
  end
  return {'resend_required'}
end
if v[6] == v[5] then
  remember(timeline, now, {'refused', 'resend_required'})
  return {'resend_required'}
end
for i = 3, windows do
  local at = 9 + (i - 3) * 2
  local wait = window_wait(KEYS[i], tonumber(ARGV[at]), tonumber(ARGV[at + 1]), now)
  if wait > 0 then
    remember(timeline, now, {'refused', 'rate_limited'})
    return {'limited', i - 2, string.format('%d', wait)}
  end
end
for i = 3, windows do
  local at = 9 + (i - 3) * 2
  window_count(KEYS[i], tonumber(ARGV[at]), tonumber(ARGV[at + 1]), now)
end
redis.call('HSET', KEYS[1], 'busy', string.format('%d', now + tonumber(ARGV[3])))
-- the token to ask about is the one current now, not the one a caller read before a resend
-- (that one may be the spent token, which the gateway would approve for any code)
return {'claimed', v[5]}
