-- Prepended to the scripts that count moving-window limits (count_limits, claim_attempt).
-- A window is a list of the times (ms) of the requests it counted, newest first, at most
-- `amount` long (the moving window of the `limits` library): it is full while its
-- amount-th newest entry is younger than the window.
local function window_wait(key, amount, window, now)
  -- how long (ms) until the window has room: 0 if it has room now
  if amount < 1 then
    return window
  end
  local oldest = tonumber(redis.call('LINDEX', key, amount - 1) or '-1')
  if oldest > now - window then
    return oldest + window - now
  end
  return 0
end
local function window_count(key, amount, window, now)
  redis.call('LPUSH', key, string.format('%d', now))
  redis.call('LTRIM', key, 0, amount - 1)
  redis.call('PEXPIRE', key, window)
end
