#!/bin/sh
# Prints the host the Sentinels name as primary, or, when no Sentinel answers (the very first
# start), leaderway-redis-0's. A pod never decides on its own that it is the primary once
# Sentinels know one: a data server back on an empty volume must not replace the real primary.
for i in 0 1 2; do
  primary=$(REDISCLI_AUTH="$SENTINEL_PASSWORD" timeout 3 redis-cli --no-auth-warning \
    -h "leaderway-redis-$i.leaderway-redis" -p 26379 \
    sentinel get-master-addr-by-name mymaster 2>/dev/null | head -n 1)
  case "$primary" in
    "" | *ERR* | *NOAUTH* | *IDONTKNOW*) ;;
    *) echo "$primary"; exit 0 ;;
  esac
done
echo "leaderway-redis-0.leaderway-redis"
