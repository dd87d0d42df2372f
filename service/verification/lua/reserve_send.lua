-- Decides whether a start sends an SMS: a new verification, a resend on the pending one
-- (inside the cooldown and send budget), or a refusal.  Sending happens after this script
-- answers; undo_send.lua reverts the reservation when the gateway fails.  A send it
-- reserves also enters its slot's set of sends awaiting a final delivery status, under
-- the TRN it goes out with (delivery.py: the inquiry fallback reads these sets).
-- KEYS[1] the client's pointer to its latest verification for this phone
-- KEYS[2] the verification the caller found behind that pointer (same slot; may not exist)
-- KEYS[3] the key for a new verification
-- KEYS[4] the slot's sends awaiting delivery: a sorted set of TRNs scored by send time (ms)
-- KEYS[5] the phone's index, KEYS[6], KEYS[7] the timelines of KEYS[2], KEYS[3] (_history.lua)
-- KEYS[8] the slot's event stream (_event.lua)
-- ARGV[1] now (ms)  ARGV[2] pointer value the caller read ('' for none; '?' not read: the
--         caller guesses there is none, saving a round trip for a phone seen for the first
--         time, and KEYS[2] is unused)  ARGV[3] new id
-- ARGV[4] retention (ms)  ARGV[5] cooldown (ms)  ARGV[6] max sends
-- ARGV[7] new verification's expiry (ms)
-- ARGV[8], ARGV[9] the TRN, less its 'x<send>', of the verification behind the pointer and
--         of a new one ('': the send is not tracked, e.g. a test number)
-- ARGV[10] how long (ms) a send may await its status
-- ARGV[11] a new token reference: each send goes out under its own, so a resend never
--         meets a token the gateway may have verified already (settle_check.lua)
-- ARGV[12..] the new verification's fields as name, value pairs
-- Answers the decision, and for a send the verification's fields (HGETALL order); 'retry'
-- with the pointer's value when the caller's differs (call again with that verification).
local function with_state(answer, key)
  for _, item in ipairs(redis.call('HGETALL', key)) do
    table.insert(answer, item)
  end
  return answer
end
local now = tonumber(ARGV[1])
local function track(trn)
  local horizon = tonumber(ARGV[10])
  redis.call('ZADD', KEYS[4], ARGV[1], trn)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('(%d', now - horizon))
  redis.call('PEXPIRE', KEYS[4], horizon)
end
local pointer = redis.call('GET', KEYS[1]) or ''
if pointer ~= ARGV[2] and not (ARGV[2] == '?' and pointer == '') then
  return {'retry', pointer}
end
if pointer ~= '' then
  local v = redis.call('HMGET', KEYS[2], 'status', 'expires', 'sends', 'next_resend', 'validity')
  if v[1] == 'pending' and tonumber(v[2]) > now then
    local sends = tonumber(v[3])
    if sends >= tonumber(ARGV[6]) then
      return {'max_sends', tostring(tonumber(v[2]) - now)}
    end
    -- 250 ms of grace: instances' clocks and concurrent requests' "now" differ slightly
    if now + 250 < tonumber(v[4]) then
      return {'cooldown', tostring(tonumber(v[4]) - now)}
    end
    -- each further resend waits twice as long as the one before
    local next_resend = now + tonumber(ARGV[5]) * (2 ^ sends)
    local expires = now + tonumber(v[5]) * 60000
    -- what this send replaces, kept for undo_send.lua (_kept_send.lua)
    local old = redis.call('HMGET', KEYS[2], unpack(KEPT))
    -- the fields written at creation describe the first send
    local defaults = {'', '', 'submitted', tostring(sends), '', '', '', ''}
    for i = 1, #KEPT do old[i] = old[i] or defaults[i] end
    redis.call('HSET', KEYS[2], unpack(paired(kept_names(sends + 1), old)))
    redis.call('HSET', KEYS[2], 'sends', sends + 1, 'next_resend', string.format('%d', next_resend),
      'expires', string.format('%d', expires),
      -- a new send's delivery starts over (record_delivery.lua orders reports by send)
      'delivery', 'submitted', 'delivery_send', sends + 1, 'delivery_reason', '',
      'delivery_reason_text', '', 'delivery_at', '', 'ref', ARGV[11])
    local until_ms = string.format('%d', expires + tonumber(ARGV[4]))
    redis.call('PEXPIREAT', KEYS[2], until_ms)
    redis.call('PEXPIREAT', KEYS[1], until_ms)
    if ARGV[8] ~= '' then
      track(ARGV[8] .. 'x' .. (sends + 1))
    end
    remember(KEYS[6], now, {'sent', sends + 1, string.format('%d', expires)})
    emit_send(KEYS[8], 'verification.resent', KEYS[2], now, sends + 1)
    return with_state({'resend', pointer}, KEYS[2])
  end
end
redis.call('HSET', KEYS[3], unpack(ARGV, 12, #ARGV))
local until_ms = string.format('%d', tonumber(ARGV[7]) + tonumber(ARGV[4]))
redis.call('PEXPIREAT', KEYS[3], until_ms)
redis.call('SET', KEYS[1], ARGV[3], 'PXAT', until_ms)
if ARGV[9] ~= '' then
  track(ARGV[9] .. 'x1')
end
remember_created(KEYS[5], KEYS[7], ARGV[3], now, {unpack(ARGV, 12, #ARGV)})
emit_send(KEYS[8], 'verification.started', KEYS[3], now, 1)
expiry_due(KEYS[8], ARGV[3], ARGV[7])
return with_state({'created', ARGV[3]}, KEYS[3])
