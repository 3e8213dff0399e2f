#!/usr/bin/env bash
# Creates the Secrets leaderway's pods reference, if they do not exist yet:
#
#   leaderway-seal           seal-key   the static seal key (base64 of 32 random bytes) — nodes only
#   leaderway-advertisement  keys       the advertisement key(s) (same format) — nodes and gateways
#   leaderway-redis          url        LEADERWAY_REDIS_URL (may carry a password) — nodes and gateways
#
# An existing Secret is never replaced: a new seal key would leave the cluster unable to unseal
# its data. Values are written to a private temporary directory (never to the command line, the
# terminal or the repository) and removed on exit.
#
# Usage: k8s/scripts/make-secrets.sh [--namespace NS] [--context CTX] [--redis-url URL|-]
#   --namespace  default: leaderway (created if missing)
#   --redis-url  default: redis://leaderway-redis:6379 (the dev overlay's Redis); `-` reads it
#                from stdin, which keeps a password out of your shell history and `ps`
set -euo pipefail

namespace=leaderway
redis_url=redis://leaderway-redis:6379
kubectl_args=()

# The header comment above is the help text.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --namespace|-n) namespace="${2:?--namespace needs a value}"; shift 2 ;;
    --context) kubectl_args+=(--context "${2:?--context needs a value}"); shift 2 ;;
    --redis-url) redis_url="${2:?--redis-url needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "make-secrets: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [ "$redis_url" = "-" ]; then
  IFS= read -r redis_url || true
fi

case "$redis_url" in
  redis://*|rediss://*|redis+sentinel://*) ;;
  *) echo "make-secrets: --redis-url must start with redis://, rediss:// or redis+sentinel://" >&2; exit 2 ;;
esac

# (The ${a[@]+...} form keeps bash 3.2, as shipped with macOS, happy with an empty array.)
kc() { kubectl ${kubectl_args[@]+"${kubectl_args[@]}"} "$@"; }

# 32 random bytes, base64 (44 characters), no trailing newline.
random_key() {
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -base64 32 | tr -d '\n'
  else
    node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("base64"))'
  fi
}

umask 077
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

if ! kc get namespace "$namespace" >/dev/null 2>&1; then
  kc create namespace "$namespace" >/dev/null
  echo "namespace/$namespace created"
fi

# create_secret NAME KEY VALUE-PRODUCER...
create_secret() {
  local name="$1" key="$2"
  shift 2
  if kc -n "$namespace" get secret "$name" >/dev/null 2>&1; then
    echo "secret/$name exists: kept (never replaced by this script)"
    return
  fi
  "$@" >"$workdir/$key"
  kc -n "$namespace" create secret generic "$name" --from-file="$key=$workdir/$key" >/dev/null
  kc -n "$namespace" label secret "$name" app.kubernetes.io/part-of=leaderway >/dev/null
  rm -f "$workdir/$key"
  echo "secret/$name created"
}

print_redis_url() { printf '%s' "$redis_url"; }

create_secret leaderway-seal seal-key random_key
create_secret leaderway-advertisement keys random_key
create_secret leaderway-redis url print_redis_url

cat <<MSG

Back up the seal key now, somewhere outside this cluster: without it the data in Redis can
never be read again.
  kubectl -n $namespace get secret leaderway-seal -o jsonpath='{.data.seal-key}' | base64 -d
MSG
