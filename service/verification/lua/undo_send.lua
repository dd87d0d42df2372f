-- Reverts a reservation made by reserve_send.lua after the gateway failed, so a failed send
-- leaves no pending verification and spends no cooldown.
-- KEYS[1] the client's pointer for this phone   KEYS[2] the verification
-- KEYS[3] the slot's sends awaiting delivery (reserve_send.lua)   KEYS[4] its timeline
-- KEYS[5] the slot's event stream (_event.lua)   KEYS[6] its retries' attempts (`:try`)
-- ARGV[1] 'created' or 'resend'   ARGV[2] the verification id   ARGV[3] pointer value before
-- ARGV[4] the verification's TRN less its 'x<send>' ('' if the send was not tracked)
-- ARGV[5] the number of the send that failed (1 for a creation), or 0 when the caller does
--         not know it (reserve_send.lua's answer was lost): then the send is the one that
--         went out under the token reference ARGV[6], if any
-- A resend is taken back from the state reserve_send.lua kept for it (_kept_send.lua), in
-- whatever order concurrent sends fail. Once a later send was reserved (a cooldown shorter
-- than a slow gateway call), that send stands: its SMS carries a valid code and its number
-- is taken, so the failed one still counts toward the send budget; the later send's kept
-- state becomes the failed one's, so that taking the later one back too leaves neither.
local sends = tonumber(redis.call('HGET', KEYS[2], 'sends') or '0')
local undone = tonumber(ARGV[5])
if undone == 0 then
  -- send n's token reference is 'ref' while it is the latest, else kept by send n + 1
  if redis.call('HGET', KEYS[2], 'ref') == ARGV[6] then
    undone = sends
  end
  for n = sends - 1, 2, -1 do
    if undone == 0 and redis.call('HGET', KEYS[2], 'u' .. (n + 1) .. ':ref') == ARGV[6] then
      undone = n
    end
  end
  if undone < 2 then
    return 'gone'  -- no send went out under it: the reservation never happened
  end
end
if ARGV[4] ~= '' then
  -- the send that never went out awaits no status
  redis.call('ZREM', KEYS[3], ARGV[4] .. 'x' .. undone)
end
if ARGV[1] == 'created' then
  if sends > 1 then
    return 'superseded'
  end
  if redis.call('EXISTS', KEYS[2]) == 1 then
    -- its verification.started is taken back, or followed by verification.canceled
    redis.call('HSET', KEYS[2], 'status', 'canceled')
    take_back_send(KEYS[5], KEYS[6], KEYS[2], 1, 'verification.canceled')
  end
  if redis.call('DEL', KEYS[2]) == 1 then
    remember(KEYS[4], nil, {'undone', 1})
  end
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    if ARGV[3] ~= '' then
      redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
    else
      redis.call('DEL', KEYS[1])
    end
  end
  return 'removed'
end
local names = kept_names(undone)
local before = redis.call('HMGET', KEYS[2], unpack(names))
if not before[1] then
  return 'gone'  -- ended and removed meanwhile, or already taken back
end
redis.call('HDEL', KEYS[2], unpack(names))
remember(KEYS[4], nil, {'undone', undone})
if sends > undone then
  redis.call('HSET', KEYS[2], unpack(paired(kept_names(undone + 1), before)))
  return 'superseded'
end
redis.call('HSET', KEYS[2], 'sends', undone - 1, unpack(paired(KEPT, before)))
-- its verification.resent is taken back, or followed by delivery.failed
take_back_send(KEYS[5], KEYS[6], KEYS[2], undone, 'delivery.failed')
return 'reverted'
