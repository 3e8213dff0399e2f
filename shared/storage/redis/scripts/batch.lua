-- Applies a batch of writes atomically, optionally fenced by the HA lock and/or guarded by
-- "only if nothing is stored at this path". A refused batch stores nothing.
--
-- KEYS[1]  index key ({p}/index): sorted set of all stored paths, score 0
-- KEYS[2]  lock key  ({p}/core/lock)
-- KEYS[3]  guard data key, present only when ARGV[3] == '1'
-- KEYS[g+1 .. g+n]  the data key of each op, in op order (g = 3 with a guard, else 2)
--
-- ARGV[1]  '1' when the batch is fenced, '0' otherwise
-- ARGV[2]  fence value: the lock must hold exactly this (ignored, send '', when unfenced)
-- ARGV[3]  '1' when KEYS[3] is the ifAbsent guard, '0' when there is no guard
-- ARGV[4 + 3(i-1)]  op i code: 'P' (put) or 'D' (delete)
-- ARGV[5 + 3(i-1)]  op i path (the index member)
-- ARGV[6 + 3(i-1)]  op i value for a put (binary safe); '' for a delete
--
-- Returns  1  applied
--          0  the guard key exists: nothing stored
--         -1  fenced: the lock does not hold the fence value: nothing stored
-- Malformed arguments raise an error before anything is written.
local first_data_key = 3
if ARGV[3] == '1' then first_data_key = 4 end
local n = #KEYS - first_data_key + 1
if n < 0 or #ARGV ~= 3 + 3 * n then
  return redis.error_reply('ERR leaderway batch: malformed arguments')
end
for i = 1, n do
  local code = ARGV[4 + 3 * (i - 1)]
  if code ~= 'P' and code ~= 'D' then
    return redis.error_reply('ERR leaderway batch: unknown op code')
  end
end

if ARGV[1] == '1' and redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return -1
end
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end

for i = 1, n do
  local base = 4 + 3 * (i - 1)
  local key = KEYS[first_data_key + i - 1]
  if ARGV[base] == 'P' then
    redis.call('SET', key, ARGV[base + 2])
    redis.call('ZADD', KEYS[1], 0, ARGV[base + 1])
  else
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], ARGV[base + 1])
  end
end
return 1
