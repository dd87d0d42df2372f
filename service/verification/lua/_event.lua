-- Events to the services' webhooks (service/webhooks), appended by the very script that
-- makes the decision they report, so no decision is ever without its event (issue 18).
-- Prepended to every script that decides one (scripts.PRELUDES).
-- `stream`: a stream key in the script's own slot (service/verification/event_log.py); a
-- name that does not end in ':ev' says no service takes webhooks, and nothing is written.
-- `verification`: the key of the verification the event is about (its fields as they are
-- after the decision go with it, so the event shows what the decision made) or false.
-- `extra`: more field, value pairs. A new stream is created with the workers' group.
local EVENT_GROUP = 'webhooks'
local EVENT_FIELDS = {'client', 'status', 'phone', 'ph', 'country', 'created', 'expires',
  'attempts', 'sends', 'next_resend', 'ref', 'mask', 'cs', 'locale', 'validity', 'reference',
  'test', 'delivery', 'delivery_reason', 'delivery_reason_text', 'delivery_at', 'svc'}

local function events_on(stream)
  return string.sub(stream, -3) == ':ev'
end

local function emit(stream, kind, verification, now, extra)
  if not events_on(stream) then
    return false
  end
  if not now then
    local time = redis.call('TIME')
    now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  end
  local entry = {'type', kind, 'at', string.format('%d', tonumber(now))}
  if verification then
    table.insert(entry, 'vid')
    table.insert(entry, string.match(verification, ':v:(.+)$'))
    local values = redis.call('HMGET', verification, unpack(EVENT_FIELDS))
    for i, name in ipairs(EVENT_FIELDS) do
      if values[i] then
        table.insert(entry, 'f:' .. name)
        table.insert(entry, values[i])
      end
    end
  end
  for _, item in ipairs(extra or {}) do
    table.insert(entry, item)
  end
  local fresh = redis.call('EXISTS', stream) == 0
  local id = redis.call('XADD', stream, '*', unpack(entry))
  if fresh then
    redis.call('XGROUP', 'CREATE', stream, EVENT_GROUP, '0')
  end
  return id
end

-- A send's event (started, resent), remembered in its verification as 'ev' = '<send>/<id>'
-- so that undo_send.lua can take it back.
local function emit_send(stream, kind, verification, now, send)
  local id = emit(stream, kind, verification, now)
  if id then
    redis.call('HSET', verification, 'ev', send .. '/' .. id)
  end
end

-- A send taken back (undo_send.lua): its event is removed while no worker has read it;
-- once one has, `instead` follows it, about the verification as it is now. Read is
-- pending (a worker holds it) or waiting for a retry: a failed first attempt is
-- acknowledged with its attempts in `tries` (service/webhooks/queue.py's `<stream>:try`),
-- and the receiver may well have processed it before it answered 5xx or timed out.
local function take_back_send(stream, tries, verification, send, instead)
  local ev = redis.call('HGET', verification, 'ev')
  if not ev or not events_on(stream) or redis.call('EXISTS', stream) == 0 then
    return
  end
  local slash = string.find(ev, '/', 1, true)
  if tonumber(string.sub(ev, 1, slash - 1)) ~= tonumber(send) then
    return
  end
  local id = string.sub(ev, slash + 1)
  if #redis.call('XPENDING', stream, EVENT_GROUP, id, id, 1) == 0
      and redis.call('HEXISTS', tries, id) == 0
      and redis.call('XDEL', stream, id) == 1 then
    return
  end
  emit(stream, instead, verification)
end

-- A new verification's expiry, for the workers' sweep (verification.expired within a
-- minute of it, service/webhooks/sweep.py): `stream`:exp, scored by the expiry (ms).
local function expiry_due(stream, verification_id, expires)
  if events_on(stream) then
    redis.call('ZADD', stream .. ':exp', expires, verification_id)
  end
end
