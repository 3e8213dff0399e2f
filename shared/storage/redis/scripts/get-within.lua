-- Reads a value only if it is small: a large one is measured, not sent, so the node can admit
-- it against its memory budget before it crosses the wire. Read-only.
--
-- KEYS[1] data key
-- ARGV[1] the largest value to return whole, in bytes (a non-negative integer)
--
-- Returns the value when it is at most ARGV[1] bytes long, its length (an integer) when it is
-- longer, and nil when the key does not exist.
local size = redis.call('STRLEN', KEYS[1])
if size > tonumber(ARGV[1]) then
  return size
end
return redis.call('GET', KEYS[1])
