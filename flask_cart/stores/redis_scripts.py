"""The Lua scripts of the Redis store (layout of the cart hash: see stores/redis.py).

Each script is one atomic step on one key (one Redis Cluster slot) and one round trip.
Integers are written with ``string.format('%d', n)``: Lua prints a number of 1e14 or
more as ``1e+14``, which would leave the cart unreadable.
"""

from __future__ import annotations

from .base import KEY_SECONDS

#: The cart's hash as one string, fields and values separated by NUL (no value holds
#: one: identifiers and product ids are printable, JSON escapes control characters),
#: leaving out ``_o`` (change ids kept there by earlier versions): one bulk reply is far
#: cheaper to read than a list.
_PACK = """
local function packed(k)
  local flat = redis.call('HGETALL', k)
  local out = {}
  for j = 1, #flat, 2 do
    if flat[j] ~= '_o' then
      out[#out + 1] = flat[j]
      out[#out + 1] = flat[j + 1]
    end
  end
  return table.concat(out, '\\0')
end
"""

#: A change id's record in the cart's ops hash (``<cart key>:ops``): ``field -> "<expiry in
#: ms>|<fingerprint>"``; the hash's own TTL is kept at least that of its newest record, and
#: each write that records one prunes expired records met by one HSCAN step (its cursor in
#: the field ``_c``). KEYS[2]: the ops hash. Uses `now` (ms, a string).
_REMEMBER = """
local function remember(ops, field, value)
  local expiry = tonumber(string.match(value, '^(%d+)|'))
  local left = expiry - tonumber(now)
  if left <= 0 then return end
  redis.call('HSET', ops, field, value)
  if redis.call('PTTL', ops) < left then redis.call('PEXPIRE', ops, left) end
  local page = redis.call('HSCAN', ops, redis.call('HGET', ops, '_c') or '0', 'COUNT', 8)
  for j = 1, #page[2], 2 do
    local e = tonumber(string.match(page[2][j + 1], '^(%d+)|'))
    if e and e <= tonumber(now) then redis.call('HDEL', ops, page[2][j]) end
  end
  redis.call('HSET', ops, '_c', page[1])
end
"""

#: KEYS: the cart, its ops hash. ARGV: op id, now (ms), ttl, customer id, the change's
#: fingerprint, then the change's own arguments from ARGV[6]. Answers {status, the packed
#: cart, extra}; status "repeat" for an op id recorded with the same fingerprint, "reused"
#: for one recorded with another. An op id "~..." (a change sent without one) is not
#: recorded, and the ops hash is not touched.
_COMMON = (
    _PACK
    + """
local key = KEYS[1]
local op, now, ttl, customer, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local keyed = string.sub(op, 1, 1) ~= '~'
local function int(n) return string.format('%d', n) end
local function answer(status, extra)
  return {status, packed(key), extra or ''}
end
"""
    + _REMEMBER
    + """
local function line_count()
  local n = 0
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 2) == 'l:' then n = n + 1 end
  end
  return n
end
local function commit()
  redis.call('HINCRBY', key, '_v', 1)
  redis.call('HSETNX', key, '_c', now)
  redis.call('HSETNX', key, '_i', op)
  redis.call('HSET', key, '_u', now, '_k', customer)
  redis.call('EXPIRE', key, ttl)
  if keyed then remember(KEYS[2], op, int(tonumber(now) + KEY_MS) .. '|' .. fp) end
end
if redis.call('HGET', key, '_s') == '1' then return answer('sealed') end
if keyed then
  local record = redis.call('HGET', KEYS[2], op)
  if record then
    local expiry, was = string.match(record, '^(%d+)|(.*)$')
    if tonumber(expiry) > tonumber(now) then
      if was == fp then return answer('repeat') end
      return answer('reused')
    end
  end
end
""".replace("KEY_MS", str(KEY_SECONDS * 1000))
)

ADD = (
    _COMMON
    + """
local field, qty, cost, extra = 'l:' .. ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9]
local max_qty, max_lines = tonumber(ARGV[10]), tonumber(ARGV[11])
local current = redis.call('HGET', key, field)
local seq
if current then
  local q, s, _, old_extra = string.match(current, '^(%d+)|(%d+)|([^|]*)|(.*)$')
  qty = qty + tonumber(q)
  seq = s
  if extra == '{}' then extra = old_extra end
  if qty > max_qty then return answer('quantity_limit', q) end
else
  if line_count() >= max_lines then return answer('line_limit') end
  if qty > max_qty then return answer('quantity_limit', '0') end
  seq = redis.call('HINCRBY', key, '_n', 1)
end
redis.call('HSET', key, field, int(qty) .. '|' .. int(seq) .. '|' .. cost .. '|' .. extra)
commit()
return answer('ok')
"""
)

SET = (
    _COMMON
    + """
local field, qty = 'l:' .. ARGV[6], tonumber(ARGV[7])
local current = redis.call('HGET', key, field)
if not current then return answer('missing') end
if qty == 0 then
  redis.call('HDEL', key, field)
else
  local rest = string.match(current, '^%d+(|.*)$')
  redis.call('HSET', key, field, int(qty) .. rest)
end
commit()
return answer('ok')
"""
)

REMOVE = (
    _COMMON
    + """
if redis.call('HDEL', key, 'l:' .. ARGV[6]) == 0 then return answer('missing') end
commit()
return answer('ok')
"""
)

CLEAR = (
    _COMMON
    + """
if redis.call('EXISTS', key) == 0 then return answer('ok') end
for _, f in ipairs(redis.call('HKEYS', key)) do
  if string.sub(f, 1, 2) == 'l:' then redis.call('HDEL', key, f) end
end
commit()
return answer('ok')
"""
)

#: A sealed cart (a merge in progress) is not taken: its lines belong to the merge.
TAKE = (
    _PACK
    + """
local all = packed(KEYS[1])
if redis.call('HGET', KEYS[1], '_s') == '1' then return {'sealed', all, ''} end
if ARGV[1] ~= '' and ((redis.call('HGET', KEYS[1], '_v') or '0') ~= ARGV[1]
    or (redis.call('HGET', KEYS[1], '_i') or '') ~= ARGV[2]) then
  return {'changed', all, ''}
end
redis.call('DEL', KEYS[1])
return {'ok', all, ''}
"""
)

SEAL = (
    _PACK
    + """
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 and redis.call('HGET', key, '_s') ~= '1' then
  redis.call('HSET', key, '_s', '1', '_u', ARGV[1])
  redis.call('HINCRBY', key, '_v', 1)
end
return {'ok', packed(key), ''}
"""
)

#: Compare-and-set of a merge computed by the client (lines.apply_merge) from one read.
#: The rule only looks at the target's lines for the source's products and, when it adds
#: lines, at how many there are: the write happens only if those lines are still as read
#: and the new ones still fit
#: ('changed' otherwise, with the cart as it is now), so changes to other lines do not
#: make the merge start over. The marker is added, and the oldest markers past the limit
#: dropped, in the same write.
#: Signed-link markers (``m:link:...``) are not among those dropped.
#: KEYS: the cart, its ops hash.
#: ARGV: the marker's field, now (ms), ttl, customer id, markers to keep, uid for a new
#: cart, the most lines the cart may hold before the write (less the new ones, plus the
#: deleted ones; '' when none are added),
#: then counted groups: checks (field, value read or '' when absent), fields to delete,
#: (field, value) to set, new lines (field, head, tail: the value is head .. the next
#: line sequence .. tail), markers carried from the source cart, and change-id records
#: carried from the source's ops hash (field, value).
MERGE = (
    _PACK
    + """
local key = KEYS[1]
local marker, now = ARGV[1], ARGV[2]
local function answer(status)
  return {status, packed(key), ''}
end
"""
    + _REMEMBER
    + """
if redis.call('HGET', key, '_s') == '1' then return answer('sealed') end
if redis.call('HEXISTS', key, marker) == 1 then return answer('merged') end
local i = 8
local function group(width)
  local n = tonumber(ARGV[i])
  local first = i + 1
  i = first + n * width
  return first, i - 1
end
local first, last = group(2)
for j = first, last, 2 do
  if (redis.call('HGET', key, ARGV[j]) or '') ~= ARGV[j + 1] then return answer('changed') end
end
if ARGV[7] ~= '' then
  local n = 0
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 2) == 'l:' then n = n + 1 end
  end
  if n > tonumber(ARGV[7]) then return answer('changed') end
end
first, last = group(1)
for j = first, last do redis.call('HDEL', key, ARGV[j]) end
first, last = group(2)
for j = first, last, 2 do redis.call('HSET', key, ARGV[j], ARGV[j + 1]) end
first, last = group(3)
for j = first, last, 3 do
  local seq = redis.call('HINCRBY', key, '_n', 1)
  redis.call('HSET', key, ARGV[j], ARGV[j + 1] .. string.format('%d', seq) .. ARGV[j + 2])
end
first, last = group(1)
for j = first, last do redis.call('HSETNX', key, 'm:' .. ARGV[j], now) end
first, last = group(2)
for j = first, last, 2 do
  if redis.call('HEXISTS', KEYS[2], ARGV[j]) == 0 then remember(KEYS[2], ARGV[j], ARGV[j + 1]) end
end
local older = {}
local all = redis.call('HGETALL', key)
for j = 1, #all, 2 do
  local f = all[j]
  if string.sub(f, 1, 2) == 'm:' and f ~= marker and string.sub(f, 1, 7) ~= 'm:link:' then
    older[#older + 1] = {f, tonumber(all[j + 1]) or 0}
  end
end
local keep = tonumber(ARGV[5]) - 1
if #older > keep then
  table.sort(older, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  for j = 1, #older - keep do redis.call('HDEL', key, older[j][1]) end
end
redis.call('HINCRBY', key, '_v', 1)
redis.call('HSETNX', key, '_c', now)
redis.call('HSETNX', key, '_i', ARGV[6])
redis.call('HSET', key, '_u', now, '_k', ARGV[4], marker, now)
redis.call('EXPIRE', key, ARGV[3])
return answer('ok')
"""
)

#: A merged cart becomes a tombstone for a short time: no cart (version 0, no lines) that
#: is sealed, with the marker naming where its lines went. ARGV: the marker's field, now
#: (ms), seconds to keep it.
BURY = """
local key = KEYS[1]
redis.call('DEL', key)
redis.call('HSET', key, '_s', '1', '_u', ARGV[2], '_k', '', ARGV[1], ARGV[2])
redis.call('EXPIRE', key, ARGV[3])
return {'ok', '', ''}
"""

SCRIPTS = {
    "add": ADD,
    "set": SET,
    "remove": REMOVE,
    "clear": CLEAR,
    "take": TAKE,
    "seal": SEAL,
    "merge": MERGE,
    "bury": BURY,
}
