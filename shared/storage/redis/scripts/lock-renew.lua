-- Extends the lock's TTL only if it still holds the caller's value, so a holder that lost the
-- lock can never extend someone else's lease; records the holder's current lock connection.
--
-- KEYS[1] lock key
-- KEYS[2] holder connection
-- ARGV[1] lock value
-- ARGV[2] TTL in ms (positive integer)
-- ARGV[3] connection record ('' when unknown)
--
-- Returns 1 when renewed, 0 when the lock is absent or held by another value.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
else
  redis.call('DEL', KEYS[2])
end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
