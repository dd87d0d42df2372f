-- Counts one request against several moving-window limits at once, all or nothing, behind
-- the circuit breakers of the budgets among them.  One round trip however many limits and
-- items ("5 per hour;10 per day" is two): a request refused by one limit is counted by none.
-- KEYS[1..B]  breakers: a string holding the time (ms) until which its scope is refused
-- KEYS[B+1..] one list per limit item: the times (ms) of the requests it counted, newest
--             first, at most `amount` of them (the moving window of the `limits` library)
-- ARGV[1] now (ms)   ARGV[2] B   then per limit item: amount, window (ms), its breaker's
--         index in KEYS (0: none)
-- Answers {'ok'}, {'tripped', breaker index, wait ms} when a breaker was already open, or
-- {'refused', item index, wait ms, 1 if this refusal opened the item's breaker else 0}.
local now = tonumber(ARGV[1])
local breakers = tonumber(ARGV[2])
for b = 1, breakers do
  local until_ms = tonumber(redis.call('GET', KEYS[b]) or '0')
  if until_ms > now then
    return {'tripped', b, string.format('%d', until_ms - now)}
  end
end
local items = {}
for i = 1, #KEYS - breakers do
  local at = 2 + (i - 1) * 3
  local key = KEYS[breakers + i]
  local amount, window = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local breaker = tonumber(ARGV[at + 3])
  -- the window is full when its amount-th newest entry is still inside it
  local oldest = amount > 0 and tonumber(redis.call('LINDEX', key, amount - 1) or '-1') or now
  if oldest > now - window then
    if breaker > 0 then
      -- a spent budget refuses every send in its scope for one whole window
      local opened = redis.call('SET', KEYS[breaker], string.format('%d', now + window),
                                'PX', window, 'NX')
      return {'refused', i, string.format('%d', window), opened and 1 or 0}
    end
    return {'refused', i, string.format('%d', oldest + window - now), 0}
  end
  items[i] = {key, amount, window}
end
for _, item in ipairs(items) do
  redis.call('LPUSH', item[1], ARGV[1])
  redis.call('LTRIM', item[1], 0, item[2] - 1)
  redis.call('PEXPIRE', item[1], item[3])
end
return {'ok'}
