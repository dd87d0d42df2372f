-- What a resend replaces, kept per send in the verification's hash as u<send>:<field>, so
-- that undo_send.lua can put it back if that send fails, in whatever order concurrent
-- sends fail, and record_delivery.lua can keep reports on the send before it meanwhile.
-- Prepended to reserve_send.lua, undo_send.lua and record_delivery.lua (store.PRELUDES).
local KEPT = {'next_resend', 'expires', 'delivery', 'delivery_send', 'delivery_reason',
  'delivery_reason_text', 'delivery_at', 'ref'}

-- the field names of send number `send`'s kept state, in KEPT's order
local function kept_names(send)
  local names = {}
  for i, field in ipairs(KEPT) do names[i] = 'u' .. send .. ':' .. field end
  return names
end

-- HSET arguments: `names` paired with `values` (KEPT's order)
local function paired(names, values)
  local flat = {}
  for i, name in ipairs(names) do
    table.insert(flat, name)
    table.insert(flat, values[i])
  end
  return flat
end
