-- Reverts a reservation made by reserve_send.lua after the gateway failed, so a failed send
-- leaves no pending verification and spends no cooldown.
-- KEYS[1] the client's pointer for this phone   KEYS[2] the verification
-- KEYS[3] the slot's sends awaiting delivery (reserve_send.lua)
-- ARGV[1] 'created' or 'resend'   ARGV[2] the verification id   ARGV[3] pointer value before
-- ARGV[4] the verification's TRN less its 'x<send>' ('' if the send was not tracked)
-- ARGV[5] the number of the send that failed (1 for a creation)
-- Only the latest send is taken back. Once a concurrent start has reserved a later send
-- (possible when the cooldown is shorter than a slow gateway call), that send's expiry,
-- cooldown and delivery state are the verification's, its SMS carries a valid code, and its
-- number is taken: the failed send still counts toward the send budget, nothing else stays.
local undone = tonumber(ARGV[5])
local sends = tonumber(redis.call('HGET', KEYS[2], 'sends') or '0')
if ARGV[4] ~= '' and sends > 0 then
  -- the send that never went out awaits no status
  redis.call('ZREM', KEYS[3], ARGV[4] .. 'x' .. undone)
end
if sends > undone then
  return 'superseded'
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
if sends < undone then
  return 'gone'  -- expired or ended and removed meanwhile
end
local prev = redis.call('HMGET', KEYS[2], 'prev_next_resend', 'prev_expires', 'prev_delivery',
  'prev_delivery_send', 'prev_delivery_reason', 'prev_delivery_reason_text', 'prev_delivery_at')
if not prev[1] then
  return 'gone'
end
redis.call('HSET', KEYS[2], 'sends', undone - 1, 'next_resend', prev[1], 'expires', prev[2],
  'delivery', prev[3] or 'submitted', 'delivery_send', prev[4] or (undone - 1),
  'delivery_reason', prev[5] or '', 'delivery_reason_text', prev[6] or '',
  'delivery_at', prev[7] or '')
return 'reverted'
