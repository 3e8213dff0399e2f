-- Takes the HA lock if nobody holds it and, in the same atomic step, advances the fencing epoch.
--
-- KEYS[1] lock key        ({p}/core/lock)
-- KEYS[2] epoch key       ({p}/core/lock-epoch)
-- ARGV[1] lock value      (the holder's UUID for this acquisition)
-- ARGV[2] TTL in ms       (positive integer)
--
-- Returns the new epoch (>= 1) on success, 0 when someone else holds the lock.
--
-- The epoch is the counter plus one, but never less than the server's clock in milliseconds.
-- A plain counter goes backwards when Redis loses its data or is restored from a backup, and
-- every gateway (which refuses an epoch older than one it has seen, to stop replayed
-- advertisements) would then refuse the new leader until restarted. With the clock as a floor
-- the epoch keeps rising across such a loss, while an old advertisement still carries an older
-- epoch. Redis 7 replicates script effects, so reading TIME here is allowed.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local epoch = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if nowMs > epoch then
  epoch = nowMs
  redis.call('SET', KEYS[2], string.format('%.0f', epoch))
end
return epoch
