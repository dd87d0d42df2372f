-- Applies one delivery report to a verification, ordered so that replays and late or
-- out-of-order reports are harmless: a report about an earlier send is stale; within one
-- send the status only moves forward (submitted < buffered < delivered | failed) and the
-- first final status stays.  It never creates a verification and never touches its status
-- or phone, so reports still land after the verification has ended, while it is retained.
-- Answers updated | unchanged | stale | kept (recorded for the previous send, see below) |
-- not_found, and the verification's delivery status.
-- KEYS[1] the verification   KEYS[2] its timeline (_history.lua)   KEYS[3] the event stream
-- ARGV[1] send number  ARGV[2] status  ARGV[3] reason code ('' for none)
-- ARGV[4] the reason's meaning  ARGV[5] when it happened (ms; '' for a new send)
local RANK = {submitted = 0, buffered = 1, delivered = 2, failed = 2}
local rank = RANK[ARGV[2]]
if not rank then
  return redis.error_reply('unknown delivery status')
end
if redis.call('HEXISTS', KEYS[1], 'client') == 0 then
  return {'not_found'}
end
local v = redis.call('HMGET', KEYS[1], 'delivery', 'delivery_send')
local current = v[1] or 'submitted'
-- the fields written at creation describe the first send
local known = tonumber(v[2] or '1')
local send = tonumber(ARGV[1])
if send < known then
  -- While a later send's reservation stands, reserve_send.lua kept the delivery state of
  -- the send before it (_kept_send.lua): a report on that send goes there, so it is not
  -- lost if the later send fails and is taken back (undo_send.lua).
  local names = kept_names(known)  -- KEPT: 3 delivery, 4 delivery_send, 5..7 reason, at
  local kept = redis.call('HMGET', KEYS[1], names[3], names[4])
  if kept[1] and tonumber(kept[2]) == send and rank > (RANK[kept[1]] or 0) then
    redis.call('HSET', KEYS[1], names[3], ARGV[2], names[5], ARGV[3], names[6], ARGV[4],
      names[7], ARGV[5])
    remember(KEYS[2], ARGV[5], {'delivery', ARGV[1], ARGV[2], ARGV[3]})
    return {'kept', current}
  end
  return {'stale', current}
end
if send == known and rank <= (RANK[current] or 0) then
  return {'unchanged', current}
end
redis.call('HSET', KEYS[1], 'delivery', ARGV[2], 'delivery_send', ARGV[1],
  'delivery_reason', ARGV[3], 'delivery_reason_text', ARGV[4], 'delivery_at', ARGV[5])
remember(KEYS[2], ARGV[5], {'delivery', ARGV[1], ARGV[2], ARGV[3]})
if ARGV[2] ~= 'submitted' then
  emit(KEYS[3], 'delivery.' .. ARGV[2], KEYS[1], ARGV[5] ~= '' and ARGV[5] or nil)
end
return {'updated', ARGV[2]}
