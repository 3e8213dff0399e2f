-- Extends the lock's TTL only if it still holds the caller's value, so a holder that lost the
-- lock can never extend someone else's lease.
--
-- KEYS[1] lock key
-- ARGV[1] lock value
-- ARGV[2] TTL in ms (positive integer)
--
-- Returns 1 when renewed, 0 when the lock is absent or held by another value.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
