-- Records the holder's (new) lock connection after a reconnect, without extending the lock, so
-- standbys watching that record do not take a reconnected holder for a dead one.
--
-- KEYS[1] lock key
-- KEYS[2] holder connection
-- ARGV[1] lock value
-- ARGV[2] connection record
--
-- Returns 1 when recorded, 0 when the lock is absent or held by another value.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
return 1
