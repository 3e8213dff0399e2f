# syntax=docker/dockerfile:1
# The leaderway image: one CLI for both roles (`leaderway server`, `leaderway gateway`).
#
#   docker build -t leaderway:dev .
#   docker run --rm leaderway:dev --help
#
# No secret is baked in: keys and the Redis URL come from the environment at run time
# (k8s/scripts/make-secrets.sh creates them as Kubernetes Secrets).

# Pinned by tag (Node 20 LTS on Debian 12 slim); override with --build-arg NODE_IMAGE=...@sha256:...
# to pin by digest in release builds.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- build: compile TypeScript to dist/ -------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY node ./node
COPY gateway ./gateway
COPY cli ./cli
RUN npm run build

# ---- deps: production dependencies only -------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# ---- runtime ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# jemalloc instead of glibc's malloc, returning freed memory within a second: OpenSSL's
# per-connection allocations fragment glibc's heap, which then keeps its peak (bench/
# handshake-memory.ts: four rounds of 2,000 stalled TLS handshakes on a bare Node https server,
# all closed, took RSS from 84 to 323 MiB with glibc, 94 to 108 MiB with this jemalloc setting).
# The link gives one path on every architecture.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(find /usr/lib -name libjemalloc.so.2 | head -n 1)" /usr/local/lib/libjemalloc.so.2
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0
# A fixed numeric user, so Kubernetes can verify runAsNonRoot. Everything below stays owned by
# root and read-only to it: the process cannot change its own code.
RUN groupadd --system --gid 10001 leaderway \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin leaderway
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
# The Redis Lua scripts are read from the source tree at run time (tsc does not copy them).
COPY shared/storage/redis/scripts ./shared/storage/redis/scripts
RUN chmod 0755 /app/bin/leaderway && ln -s /app/bin/leaderway /usr/local/bin/leaderway
USER 10001:10001
# 8200 node API, 8201 node cluster channel (only while active), 8300 gateway.
EXPOSE 8200 8201 8300
ENTRYPOINT ["leaderway"]
CMD ["--help"]
