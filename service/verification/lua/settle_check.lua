-- Records what the gateway said about a claimed check: approve once, or spend one attempt
-- and count one consecutive failure for the phone (locking it with a growing wait).  A
-- check whose answer never arrived ('unknown': the gateway may have verified the token,
-- and a verified token answers OK for any code) is spent like a wrong one, and its token
-- is marked spent: claim_attempt.lua refuses every further check until a resend brings a
-- new token reference.  Only a check that surely never reached the gateway ('error')
-- releases the claim with nothing spent.
-- KEYS[1] the verification   KEYS[2] the phone's failure record   KEYS[3] its timeline
-- KEYS[4] the slot's event stream (_event.lua)
-- ARGV[1] now (ms)  ARGV[2] 'valid' | 'wrong' | 'unknown' | 'error'  ARGV[3] masked phone
-- ARGV[4..7] the lockout (_spend_attempt.lua)
-- ARGV[8] the token reference the check asked about
-- Answers the decision followed by the verification's fields (HGETALL order).
local now = ARGV[1]
local outcome = ARGV[2]
local function answer(decision)
  local state = redis.call('HGETALL', KEYS[1])
  table.insert(state, 1, decision)
  return state
end
redis.call('HDEL', KEYS[1], 'busy')
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' or outcome == 'error' then
  if status == 'pending' then
    remember(KEYS[3], now, {'check', 'error'})
  end
  return answer('unchanged')
end
if outcome == 'valid' and redis.call('HGET', KEYS[1], 'spent_ref') == ARGV[8] then
  outcome = 'unknown'  -- a spent token answers OK for any code: never an approval
end
if outcome == 'valid' then
  redis.call('HSET', KEYS[1], 'status', 'approved', 'ended', now, 'phone', ARGV[3])
  redis.call('DEL', KEYS[2])
  remember(KEYS[3], now, {'check', 'right'}, {'ended', 'approved'})
  emit(KEYS[4], 'verification.approved', KEYS[1], now)
  return answer('approved')
end
if outcome == 'unknown' then
  redis.call('HSET', KEYS[1], 'spent_ref', ARGV[8])
end
local left, locked = spend_attempt(KEYS[1], KEYS[2], now, ARGV[3],
  {ARGV[4], ARGV[5], ARGV[6], ARGV[7]})
remember_spent(KEYS[3], KEYS[2], now, outcome, left)
spent_events(KEYS[4], KEYS[1], now, left, locked)
return answer(outcome)
