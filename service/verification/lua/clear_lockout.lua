-- Forgets a phone's consecutive wrong codes, in every service given (each service's lockout
-- is its own; all of one phone's share its slot), and tells whether that lifted a lock in
-- force (a count below the threshold, or a lock whose time is up, is no lock).
-- KEYS[1..] the phone's failure records   ARGV[1] now (ms)
-- Answers 1 when a lock was lifted, else 0.
local lifted = 0
for _, key in ipairs(KEYS) do
  local locked_until = tonumber(redis.call('HGET', key, 'locked_until') or '0')
  redis.call('DEL', key)
  if locked_until > tonumber(ARGV[1]) then
    lifted = 1
  end
end
return lifted
