-- Reverts a reservation made by reserve_send.lua after the gateway failed, so a failed send
-- leaves no pending verification and spends no cooldown.
-- KEYS[1] the client's pointer for this phone   KEYS[2] the verification
-- KEYS[3] the slot's sends awaiting delivery (reserve_send.lua)
-- ARGV[1] 'created' or 'resend'   ARGV[2] the verification id   ARGV[3] pointer value before
-- ARGV[4] the verification's TRN less its 'x<send>' ('' if the send was not tracked)
-- A created verification on which concurrent starts already resent keeps living: those
-- SMS carry valid codes for it; only the first send, which never went out, is taken back.
local sends = tonumber(redis.call('HGET', KEYS[2], 'sends') or '0')
if ARGV[4] ~= '' and sends > 0 then
  -- the send that never went out awaits no status: a creation's is the first
  local undone = ARGV[1] == 'created' and 1 or sends
  redis.call('ZREM', KEYS[3], ARGV[4] .. 'x' .. undone)
end
if ARGV[1] == 'created' and sends > 1 then
  redis.call('HINCRBY', KEYS[2], 'sends', -1)
  return 'kept'
end
if ARGV[1] == 'created' then
  redis.call('DEL', KEYS[2])
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    if ARGV[3] ~= '' then
      redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
    else
      redis.call('DEL', KEYS[1])
    end
  end
  return 'removed'
end
local prev = redis.call('HMGET', KEYS[2], 'prev_next_resend', 'prev_expires')
if prev[1] then
  redis.call('HINCRBY', KEYS[2], 'sends', -1)
  redis.call('HSET', KEYS[2], 'next_resend', prev[1], 'expires', prev[2])
end
return 'reverted'
