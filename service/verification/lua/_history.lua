-- The support lookup's record (lookup.py), written by the scripts that decide, in the round
-- trip they already make: the verification's hash is deleted a day after it ends, this is
-- kept HISTORY_MS after the verification's creation. Per phone an index (a sorted set of
-- its verifications' ids by creation time, at most HISTORY_PER_PHONE: the newest); per
-- verification a timeline (a list of entries '<ms> <what> <details...>', the creation
-- first, then at most HISTORY_PER_VERIFICATION - 1 of the newest). Neither holds a phone
-- number or a code. scripts.py prepends the three constants (keys.py) to this file.

-- An entry: the moment (ms; the server's clock when none is given), then its words ('-' for
-- an empty one).
local function history_entry(now, words)
  local at = tonumber(now)
  if not at then
    local clock = redis.call('TIME')
    at = clock[1] * 1000 + math.floor(clock[2] / 1000)
  end
  local entry = {string.format('%d', at)}
  for i, word in ipairs(words) do
    word = tostring(word)
    entry[i + 1] = word == '' and '-' or word
  end
  return table.concat(entry, ' ')
end

-- Appends entries (each a list of words) to the timeline of a verification that has one
-- (one created before the lookup existed has none, and gets none): one command, RPUSHX,
-- unless the timeline is full, when the oldest entries after the creation make room.
local function remember(timeline, now, ...)
  local entries = {}
  for i, words in ipairs({...}) do entries[i] = history_entry(now, words) end
  local length = redis.call('RPUSHX', timeline, unpack(entries))
  for _ = 1, length - HISTORY_PER_VERIFICATION do
    redis.call('LSET', timeline, 1, '-')
    redis.call('LREM', timeline, 1, '-')
  end
end

-- A new verification (its first send; `fields` its hash's, as name, value pairs): its
-- timeline begins and the phone's index names it. An id pushed out of the index takes its
-- timeline along (the same slot: one tag per phone).
local function remember_created(index, timeline, id, now, fields)
  local v = {}
  for i = 1, #fields, 2 do v[fields[i]] = fields[i + 1] end
  redis.call('RPUSH', timeline, history_entry(now, {'created', v.expires, v.svc or 'default',
    v.country or 'ZZ', v.test or '0', v.client}))
  redis.call('PEXPIRE', timeline, HISTORY_MS)
  redis.call('ZADD', index, now, id)
  local excess = redis.call('ZCARD', index) - HISTORY_PER_PHONE
  if excess > 0 then
    local prefix = timeline:sub(1, #timeline - #id)
    for _, old in ipairs(redis.call('ZRANGE', index, 0, excess - 1)) do
      redis.call('DEL', prefix .. old)
    end
    redis.call('ZREMRANGEBYRANK', index, 0, excess - 1)
  end
  redis.call('PEXPIRE', index, HISTORY_MS)
end

-- A check that spent an attempt ('wrong' or 'unknown', _spend_attempt.lua), with the lock it
-- set (a claim is refused while one is in force, so a lock in force now is this check's)
-- and the end it brought.
local function remember_spent(timeline, failure, now, result, left)
  local entries = {{'check', result}}
  local locked = redis.call('HGET', failure, 'locked_until')
  if locked and tonumber(locked) > tonumber(now) then
    table.insert(entries, {'lockout', locked})
  end
  if left <= 0 then
    table.insert(entries, {'ended', 'max_attempts_reached'})
  end
  remember(timeline, now, unpack(entries))
end
