-- Takes the HA lock if nobody holds it and, in the same atomic step, bumps the fencing epoch.
--
-- KEYS[1] lock key        ({p}/core/lock)
-- KEYS[2] epoch key       ({p}/core/lock-epoch)
-- ARGV[1] lock value      (the holder's UUID for this acquisition)
-- ARGV[2] TTL in ms       (positive integer)
--
-- Returns the new epoch (>= 1) on success, 0 when someone else holds the lock.
-- The epoch key never expires, so an epoch is never handed out twice (as long as Redis keeps
-- its data).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
return redis.call('INCR', KEYS[2])
