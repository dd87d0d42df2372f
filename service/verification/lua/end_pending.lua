-- Ends a pending verification: 'canceled' by its client, or 'expired' once its time is up.
-- KEYS[1] the verification   KEYS[2] its timeline (_history.lua)   KEYS[3] the event stream
-- ARGV[1] now (ms)  ARGV[2] client name  ARGV[3] 'canceled' | 'expired'  ARGV[4] masked phone
local v = redis.call('HMGET', KEYS[1], 'client', 'status', 'expires')
if not v[1] or v[1] ~= ARGV[2] then
  return {'not_found'}
end
if v[2] ~= 'pending' then
  return {'closed', v[2]}
end
if ARGV[3] == 'expired' and tonumber(v[3]) > tonumber(ARGV[1]) then
  return {'unchanged', v[2]}
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'ended', ARGV[1], 'phone', ARGV[4])
remember(KEYS[2], ARGV[1], {'ended', ARGV[3]})
emit(KEYS[3], 'verification.' .. ARGV[3], KEYS[1], ARGV[1])
return {'ended', ARGV[3]}
