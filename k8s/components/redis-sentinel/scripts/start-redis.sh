#!/bin/sh
# Starts this pod's Redis data server: the primary if it is the one the Sentinels name (or, on the
# very first start, pod 0), otherwise a replica of that primary. Its arguments (persistence,
# min-replicas-to-write) come from the StatefulSet. The aclfile is leaderway's users plus
# leaderway-internal for replication and the Sentinels (its password stored hashed).
set -eu
self="$(hostname).leaderway-redis"
primary=$(sh /scripts/find-primary.sh)
hash=$(printf '%s' "$INTERNAL_PASSWORD" | sha256sum | cut -d ' ' -f 1)
cp /acl/users.acl /conf/users.acl
echo "user leaderway-internal on #$hash resetchannels &__sentinel__:hello -@all +psync +replconf +ping +auth +hello +info +role +multi +exec +publish +subscribe +slaveof +replicaof +config|rewrite +client|setname +client|kill +client|getname +script|kill" >>/conf/users.acl
cat >/conf/redis.conf <<CONF
port 6379
dir /data
aclfile /conf/users.acl
masteruser leaderway-internal
masterauth $INTERNAL_PASSWORD
replica-announce-ip $self
CONF
if [ "$primary" != "$self" ]; then
  echo "replicaof $primary 6379" >>/conf/redis.conf
fi
exec redis-server /conf/redis.conf "$@"
