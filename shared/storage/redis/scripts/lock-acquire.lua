-- Takes the HA lock and, in the same atomic step, advances the fencing epoch and records the
-- holder's lock connection (for standbys' liveness watch). Two modes:
--  - acquire (ARGV[4] = ''): only if nobody holds the lock (SET NX);
--  - take over (ARGV[4] = the holder's value): only while the lock still holds that value and the
--    connection record ARGV[5] the caller saw to be gone (a crashed holder). A holder that renewed
--    or recorded a new connection in the meantime keeps its lock. Every write of the old holder
--    is fenced against the lock value, so none lands after this.
--
-- KEYS[1] lock key            ({p}/core/lock)
-- KEYS[2] epoch key           ({p}/core/lock-epoch)
-- KEYS[3] holder connection   ({p}/core/lock-conn)
-- ARGV[1] lock value          (the holder's UUID for this acquisition)
-- ARGV[2] TTL in ms           (positive integer)
-- ARGV[3] connection record   ('<lock value>|<run id>|<client id>', or '' when unknown)
-- ARGV[4] expected holder value (take over), or ''
-- ARGV[5] expected holder connection record (take over)
--
-- Returns the new epoch (>= 1) on success, 0 when someone else holds the lock (or, taking over,
-- when the lock or its record changed).
--
-- The epoch is the counter plus one, but never less than the server's clock in milliseconds.
-- A plain counter goes backwards when Redis loses its data or is restored from a backup, and
-- every gateway (which refuses an epoch older than one it has seen, to stop replayed
-- advertisements) would then refuse the new leader until restarted. With the clock as a floor
-- the epoch keeps rising across such a loss, while an old advertisement still carries an older
-- epoch. Redis 7 replicates script effects, so reading TIME here is allowed.
if ARGV[4] == '' then
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 0
  end
else
  if redis.call('GET', KEYS[1]) ~= ARGV[4] or redis.call('GET', KEYS[3]) ~= ARGV[5] then
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
else
  redis.call('DEL', KEYS[3])
end
local epoch = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if nowMs > epoch then
  epoch = nowMs
  redis.call('SET', KEYS[2], string.format('%.0f', epoch))
end
return epoch
