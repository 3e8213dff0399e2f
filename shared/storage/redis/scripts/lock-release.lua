-- Deletes the lock (and its connection record) only if it still holds the caller's value, so a
-- late release can never free a lock a peer has taken since.
--
-- KEYS[1] lock key
-- KEYS[2] holder connection
-- ARGV[1] lock value
--
-- Returns 1 when deleted, 0 when the lock is absent or held by another value.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
