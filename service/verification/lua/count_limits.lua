-- Counts one request against several moving-window limits at once, all or nothing, behind
-- the circuit breakers of the budgets among them.  One round trip however many limits and
-- items ("5 per hour;10 per day" is two): a request refused by one limit is counted by none.
-- KEYS[1..B]  breakers: a string holding the time (ms) until which its scope is refused
-- KEYS[B+1..n-1] one moving window (_moving_window.lua) per limit item
-- KEYS[n] the event stream of the breakers' slot (_event.lua)
-- ARGV[1] now (ms)   ARGV[2] B   then per limit item: amount, window (ms), its breaker's
--         index in KEYS (0: none); last, the service id (for budget.breaker_tripped)
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
for i = 1, #KEYS - breakers - 1 do
  local at = 2 + (i - 1) * 3
  local item = {KEYS[breakers + i], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])}
  local breaker = tonumber(ARGV[at + 3])
  local wait = window_wait(item[1], item[2], item[3], now)
  if wait > 0 then
    if breaker > 0 then
      -- a spent budget refuses every send in its scope for one whole window
      local opened = redis.call('SET', KEYS[breaker], string.format('%d', now + item[3]),
                                'PX', item[3], 'NX')
      if opened then
        emit(KEYS[#KEYS], 'budget.breaker_tripped', false, now,
          {'svc', ARGV[#ARGV], 'breaker', KEYS[breaker], 'until', string.format('%d', now + item[3])})
      end
      return {'refused', i, string.format('%d', item[3]), opened and 1 or 0}
    end
    return {'refused', i, string.format('%d', wait), 0}
  end
  items[i] = item
end
for _, item in ipairs(items) do
  window_count(item[1], item[2], item[3], now)
end
return {'ok'}
