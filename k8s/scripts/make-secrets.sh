#!/usr/bin/env bash
# Creates the Secrets leaderway's pods reference, if they do not exist yet:
#
#   leaderway-seal              seal-key          the static seal key — nodes only
#   leaderway-signing           signing-key       Ed25519 seed that signs advertisements — nodes only
#   leaderway-verify            verify-key        its public key — gateways
#   leaderway-advertisement     keys              the advertisement key — nodes and gateways
#   leaderway-gateway-ca        ca.crt            the CA nodes trust for gateway identities
#   leaderway-gateway-identity  tls.crt tls.key   the gateways' client certificate (from that CA)
#   leaderway-redis-node        url               LEADERWAY_REDIS_URL as Redis user leaderway-node
#   leaderway-redis-gateway     url               LEADERWAY_REDIS_URL as Redis user leaderway-gateway
#   leaderway-redis-passwords   node-password gateway-password internal-password sentinel-password
#                               admin-password    only for a Redis in the cluster: the dev overlay's,
#                                                 or the Sentinel one (components/redis-sentinel);
#                                                 admin-password is the operators' leaderway-admin
#                                                 user (docs/runbook.md), never given to a pod
#   leaderway-postgresql-node     url             instead of the Redis ones, with --postgresql-*:
#   leaderway-postgresql-gateway  url             LEADERWAY_POSTGRESQL_URL of each role, and
#   leaderway-postgresql-ca       ca.crt          the server's CA (k8s/overlays/production-postgresql)
#
# Keys are 32 random bytes, base64. Secrets that belong together (signing + verify, CA +
# identity, the Redis ones) are created together or not at all. An existing Secret is never
# replaced: a new seal key would leave the cluster unable to unseal its data. Values are written
# to a private temporary directory (never to the command line, the terminal or the repository)
# and removed on exit. Needs openssl.
#
# Usage: k8s/scripts/make-secrets.sh [--namespace NS] [--context CTX]
#                                    [--redis-node-url URL|- --redis-gateway-url URL|-]
#                                    [--redis-sentinel]
#                                    [--postgresql-node-url URL|- --postgresql-gateway-url URL|-]
#                                    [--postgresql-ca FILE]
#   --namespace          default: leaderway (created if missing)
#   --redis-node-url     your Redis as the leaderway-node user (see `leaderway redis-acl`), and
#   --redis-gateway-url  as the leaderway-gateway user. `-` reads it from stdin (node URL on the
#                        first line, gateway URL on the next), which keeps passwords out of your
#                        shell history and `ps`. Without both: the dev overlay's Redis, with fresh
#                        passwords (leaderway-redis-passwords).
#   --redis-sentinel     instead of the dev Redis, the production-sentinel overlay's: the same
#                        fresh passwords, and redis+sentinel:// URLs to its three Sentinels.
#   --postgresql-node-url     instead of Redis, your PostgreSQL as the nodes' role (it owns the
#   --postgresql-gateway-url  tables) and as the gateways' read-only role (`leaderway
#                        postgres-grants`). `-` reads them from stdin as above. Each must carry
#                        sslmode=verify-full&sslrootcert=/etc/leaderway/postgresql-ca/ca.crt
#                        (where the pods mount the CA). The roles and their passwords are yours:
#                        this script cannot create them in a database it does not administer.
#   --postgresql-ca      a PEM file with the CA(s) that issued the database server's certificate
#                        (the provider's bundle, or your Patroni cluster's CA).
set -euo pipefail

namespace=leaderway
node_url=
gateway_url=
sentinel=
pg_node_url=
pg_gateway_url=
pg_ca=
kubectl_args=()
# Where components/external-postgresql mounts the CA; the URLs' sslrootcert must name it.
pg_ca_path=/etc/leaderway/postgresql-ca/ca.crt

# The header comment above is the help text.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --namespace|-n) namespace="${2:?--namespace needs a value}"; shift 2 ;;
    --context) kubectl_args+=(--context "${2:?--context needs a value}"); shift 2 ;;
    --redis-node-url) node_url="${2:?--redis-node-url needs a value}"; shift 2 ;;
    --redis-gateway-url) gateway_url="${2:?--redis-gateway-url needs a value}"; shift 2 ;;
    --redis-sentinel) sentinel=1; shift ;;
    --postgresql-node-url) pg_node_url="${2:?--postgresql-node-url needs a value}"; shift 2 ;;
    --postgresql-gateway-url) pg_gateway_url="${2:?--postgresql-gateway-url needs a value}"; shift 2 ;;
    --postgresql-ca) pg_ca="${2:?--postgresql-ca needs a file}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "make-secrets: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [ -n "$node_url$gateway_url" ] && { [ -z "$node_url" ] || [ -z "$gateway_url" ]; }; then
  echo "make-secrets: give both --redis-node-url and --redis-gateway-url (or neither, for the dev Redis)" >&2
  exit 2
fi
if [ -n "$sentinel" ] && [ -n "$node_url$gateway_url" ]; then
  echo "make-secrets: --redis-sentinel makes the Redis URLs itself: give no --redis-*-url" >&2
  exit 2
fi
if [ -n "$pg_node_url$pg_gateway_url" ] && { [ -z "$pg_node_url" ] || [ -z "$pg_gateway_url" ]; }; then
  echo "make-secrets: give both --postgresql-node-url and --postgresql-gateway-url" >&2
  exit 2
fi
postgresql="$pg_node_url$pg_gateway_url$pg_ca"
if [ -n "$postgresql" ] && [ -n "$node_url$gateway_url$sentinel" ]; then
  echo "make-secrets: PostgreSQL or Redis, not both: give no --redis-* with --postgresql-*" >&2
  exit 2
fi
if [ -n "$pg_ca" ] && ! grep -q -- '-----BEGIN CERTIFICATE-----' "$pg_ca" 2>/dev/null; then
  echo "make-secrets: --postgresql-ca $pg_ca is not a readable PEM certificate file" >&2
  exit 2
fi
if [ "$node_url" = "-" ]; then IFS= read -r node_url || true; fi
if [ "$gateway_url" = "-" ]; then IFS= read -r gateway_url || true; fi
for url in ${node_url:+"$node_url"} ${gateway_url:+"$gateway_url"}; do
  case "$url" in
    redis://*|rediss://*|redis+sentinel://*|rediss+sentinel://*) ;;
    *) echo "make-secrets: Redis URLs must start with redis://, rediss://, redis+sentinel:// or rediss+sentinel://" >&2; exit 2 ;;
  esac
done
if [ -n "$node_url" ] && [ "$node_url" = "$gateway_url" ]; then
  echo "make-secrets: the node and gateway Redis URLs must differ (two users, two passwords)" >&2
  exit 2
fi
if [ "$pg_node_url" = "-" ]; then IFS= read -r pg_node_url || true; fi
if [ "$pg_gateway_url" = "-" ]; then IFS= read -r pg_gateway_url || true; fi
# has_param URL NAME VALUE: the URL's query has NAME=VALUE.
has_param() {
  local query="${1#*\?}"
  [ "$query" != "$1" ] || return 1
  case "&$query&" in *"&$2=$3&"*) return 0 ;; esac
  return 1
}
for url in ${pg_node_url:+"$pg_node_url"} ${pg_gateway_url:+"$pg_gateway_url"}; do
  case "$url" in
    postgres://*|postgresql://*) ;;
    *) echo "make-secrets: PostgreSQL URLs must start with postgres:// or postgresql://" >&2; exit 2 ;;
  esac
  # Anything weaker than verify-full lets whoever answers on the database's address read the
  # seal-encrypted data and, worse, decide who holds the lock.
  if ! has_param "$url" sslmode verify-full || ! has_param "$url" sslrootcert "$pg_ca_path"; then
    echo "make-secrets: each PostgreSQL URL needs sslmode=verify-full&sslrootcert=$pg_ca_path" >&2
    exit 2
  fi
done
if [ -n "$pg_node_url" ] && [ "$pg_node_url" = "$pg_gateway_url" ]; then
  echo "make-secrets: the node and gateway PostgreSQL URLs must differ (the gateways' role is read-only)" >&2
  exit 2
fi
command -v openssl >/dev/null 2>&1 || { echo "make-secrets: openssl is required" >&2; exit 2; }

# (The ${a[@]+...} form keeps bash 3.2, as shipped with macOS, happy with an empty array.)
kc() { kubectl ${kubectl_args[@]+"${kubectl_args[@]}"} "$@"; }

umask 077
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

if ! kc get namespace "$namespace" >/dev/null 2>&1; then
  kc create namespace "$namespace" >/dev/null
  echo "namespace/$namespace created"
fi

exists() { kc -n "$namespace" get secret "$1" >/dev/null 2>&1; }

# create NAME KEY... : a Secret from the files $workdir/NAME/KEY.
create() {
  local name="$1" args=() key
  shift
  for key in "$@"; do args+=(--from-file="$key=$workdir/$name/$key"); done
  kc -n "$namespace" create secret generic "$name" "${args[@]}" >/dev/null
  kc -n "$namespace" label secret "$name" app.kubernetes.io/part-of=leaderway >/dev/null
  echo "secret/$name created"
}

# group NAME... : true (and a work directory per Secret) when none exists; kept when all do.
group() {
  local name found=() missing=()
  for name in "$@"; do
    if exists "$name"; then found+=("$name"); else missing+=("$name"); fi
  done
  if [ ${#found[@]} -gt 0 ]; then
    for name in "${found[@]}"; do echo "secret/$name exists: kept (never replaced by this script)"; done
    if [ ${#missing[@]} -gt 0 ]; then
      echo "make-secrets: ${missing[*]} must be created together with ${found[*]}; delete those or create these by hand" >&2
      exit 1
    fi
    return 1
  fi
  for name in "$@"; do mkdir -p "$workdir/$name"; done
}

# 32 random bytes, base64 (44 characters), no trailing newline.
random_key() { openssl rand -base64 32 | tr -d '\n'; }

if group leaderway-seal; then
  random_key >"$workdir/leaderway-seal/seal-key"
  create leaderway-seal seal-key
fi

if group leaderway-advertisement; then
  random_key >"$workdir/leaderway-advertisement/keys"
  create leaderway-advertisement keys
fi

# Ed25519: the PKCS#8 and SPKI DER forms end with the 32-byte seed and public key.
if group leaderway-signing leaderway-verify; then
  openssl genpkey -algorithm ed25519 -outform DER -out "$workdir/ed25519.der" 2>/dev/null
  tail -c 32 "$workdir/ed25519.der" | openssl base64 -A | tr -d "\n" >"$workdir/leaderway-signing/signing-key"
  openssl pkey -inform DER -in "$workdir/ed25519.der" -pubout -outform DER 2>/dev/null |
    tail -c 32 | openssl base64 -A | tr -d "\n" >"$workdir/leaderway-verify/verify-key"
  create leaderway-signing signing-key
  create leaderway-verify verify-key
fi

# A CA that only issues gateway client certificates, and one certificate from it (one year; with
# cert-manager, let it issue and renew instead: docs/kubernetes.md). The CA's key is not kept.
if group leaderway-gateway-ca leaderway-gateway-identity; then
  ca="$workdir/leaderway-gateway-ca" id="$workdir/leaderway-gateway-identity"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
    -subj "/CN=leaderway gateway CA" -keyout "$workdir/ca.key" -out "$ca/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -subj "/CN=leaderway-gateway" -keyout "$id/tls.key" -out "$workdir/gateway.csr" 2>/dev/null
  # clientAuth and the DNS name nodes allow by default (LEADERWAY_GATEWAY_ALLOWED_NAMES).
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:leaderway-gateway\n' \
    >"$workdir/gateway.ext"
  openssl x509 -req -in "$workdir/gateway.csr" -CA "$ca/ca.crt" -CAkey "$workdir/ca.key" \
    -CAcreateserial -CAserial "$workdir/ca.srl" -sha256 -days 365 -extfile "$workdir/gateway.ext" \
    -out "$id/tls.crt" 2>/dev/null
  create leaderway-gateway-ca ca.crt
  create leaderway-gateway-identity tls.crt tls.key
fi

if [ -n "$postgresql" ]; then
  # PostgreSQL instead of Redis: no Redis Secret at all.
  if [ -n "$pg_node_url" ] && group leaderway-postgresql-node leaderway-postgresql-gateway; then
    printf '%s' "$pg_node_url" >"$workdir/leaderway-postgresql-node/url"
    printf '%s' "$pg_gateway_url" >"$workdir/leaderway-postgresql-gateway/url"
    create leaderway-postgresql-node url
    create leaderway-postgresql-gateway url
  fi
  if [ -n "$pg_ca" ] && group leaderway-postgresql-ca; then
    cp "$pg_ca" "$workdir/leaderway-postgresql-ca/ca.crt"
    create leaderway-postgresql-ca ca.crt
  fi
elif [ -n "$node_url" ]; then
  if group leaderway-redis-node leaderway-redis-gateway; then
    printf '%s' "$node_url" >"$workdir/leaderway-redis-node/url"
    printf '%s' "$gateway_url" >"$workdir/leaderway-redis-gateway/url"
    create leaderway-redis-node url
    create leaderway-redis-gateway url
  fi
elif group leaderway-redis-passwords leaderway-redis-node leaderway-redis-gateway; then
  # A Redis in the cluster: its aclfile (and, with Sentinel, replication and the Sentinels'
  # own auth) is made from these passwords at start.
  p="$workdir/leaderway-redis-passwords"
  for k in node-password gateway-password internal-password sentinel-password admin-password; do
    openssl rand -hex 24 | tr -d '\n' >"$p/$k"
  done
  if [ -n "$sentinel" ]; then
    hosts="leaderway-redis-0.leaderway-redis:26379,leaderway-redis-1.leaderway-redis:26379,leaderway-redis-2.leaderway-redis:26379"
    where="@$hosts/mymaster?sentinel_password=$(cat "$p/sentinel-password")"
    scheme='redis+sentinel'
  else
    where='@leaderway-redis:6379'
    scheme='redis'
  fi
  printf '%s://leaderway-node:%s%s' "$scheme" "$(cat "$p/node-password")" "$where" \
    >"$workdir/leaderway-redis-node/url"
  printf '%s://leaderway-gateway:%s%s' "$scheme" "$(cat "$p/gateway-password")" "$where" \
    >"$workdir/leaderway-redis-gateway/url"
  create leaderway-redis-passwords node-password gateway-password internal-password sentinel-password \
    admin-password
  create leaderway-redis-node url
  create leaderway-redis-gateway url
fi

cat <<MSG

Back up the seal key now, somewhere outside this cluster: without it the data in storage can
never be read again.
  kubectl -n $namespace get secret leaderway-seal -o jsonpath='{.data.seal-key}' | base64 -d
MSG
