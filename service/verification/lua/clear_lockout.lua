-- Forgets a phone's consecutive wrong codes, and tells whether that lifted a lock in force
-- (a count below the threshold, or a lock whose time is up, is no lock).
-- KEYS[1] the phone's failure record   ARGV[1] now (ms)
-- Answers 1 when a lock was lifted, else 0.
local locked_until = tonumber(redis.call('HGET', KEYS[1], 'locked_until') or '0')
redis.call('DEL', KEYS[1])
if locked_until > tonumber(ARGV[1]) then
  return 1
end
return 0
