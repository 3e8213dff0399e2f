#!/bin/sh
# Starts this pod's Sentinel, watching the primary the other Sentinels name (pod 0 on the very
# first start). Sentinels find each other and the replicas through the primary; they rewrite
# this file as they learn, so it lives on a writable volume.
set -eu
self="$(hostname).leaderway-redis"
primary=$(sh /scripts/find-primary.sh)
cat >/sentinel/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $self
requirepass $SENTINEL_PASSWORD
sentinel sentinel-pass $SENTINEL_PASSWORD
sentinel monitor mymaster $primary 6379 2
sentinel auth-user mymaster leaderway-internal
sentinel auth-pass mymaster $INTERNAL_PASSWORD
sentinel down-after-milliseconds mymaster ${DOWN_AFTER_MS}
sentinel failover-timeout mymaster 60000
sentinel parallel-syncs mymaster 1
CONF
exec redis-server /sentinel/sentinel.conf --sentinel
