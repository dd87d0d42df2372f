-- Takes one send's count (count_limits.lua) back when the gateway surely did not carry the
-- send out: removes the entry that run pushed, its time, from each window it counted.
-- KEYS[1..]  the windows it counted the send in, all in its slot (a key twice: twice)
-- ARGV[1]    the time (ms) it counted them at, as it pushed it
-- Answers how many entries it removed: fewer when later sends have trimmed one away (then
-- the window holds only newer entries, and is right as it is).
local removed = 0
for _, key in ipairs(KEYS) do
  removed = removed + redis.call('LREM', key, 1, ARGV[1])
end
return removed
