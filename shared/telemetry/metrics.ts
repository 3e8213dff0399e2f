/**
 * Prometheus metrics (prom-client), one registry per server so several servers can share a
 * process (`leaderway dev`). Labels are bounded: route classes, methods, status codes, outcome
 * kinds — never raw paths, tokens or addresses.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { LwError } from '../errors';
import { sendError } from '../http/respond';

/** Latency buckets in seconds: sub-millisecond proxying up to multi-second failovers. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'LIST']);

/** Method label, bounded. */
export function methodLabel(m: string | undefined): string {
  const up = (m ?? '').toUpperCase();
  return METHODS.has(up) ? up : 'OTHER';
}

function httpMetrics(registry: Registry, prefix: string) {
  const requests = new Counter({
    name: `${prefix}_http_requests_total`,
    help: 'HTTP requests by route class, method and status.',
    labelNames: ['route', 'method', 'status', 'via'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${prefix}_http_request_duration_seconds`,
    help: 'HTTP request latency by route class.',
    labelNames: ['route', 'via'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  // The labelled children, made once per label set (all labels are bounded): prom-client would
  // otherwise validate and hash the label object on every request.
  const children = new Map<
    string,
    { count: ReturnType<typeof requests.labels>; latency: ReturnType<typeof duration.labels> }
  >();
  return {
    requests,
    duration,
    /** Counts one finished request and its latency. */
    record(route: string, method: string, status: number, via: string, seconds: number): void {
      const key = `${route} ${method} ${status} ${via}`;
      let c = children.get(key);
      if (!c) {
        c = {
          count: requests.labels(route, method, String(status), via),
          latency: duration.labels(route, via),
        };
        children.set(key, c);
      }
      c.count.inc();
      c.latency.observe(seconds);
    },
  };
}

/**
 * A counter with one (bounded) label, its children made once per value: for counters bumped on
 * every request, where prom-client would otherwise hash a label object each time.
 */
export function boundCounter(counter: Counter<string>): (value: string) => { inc(): void } {
  const children = new Map<string, { inc(): void }>();
  return (value) => {
    let child = children.get(value);
    if (!child) {
      child = counter.labels(value);
      children.set(value, child);
    }
    return child;
  };
}

/** An API listener's TLS and PROXY protocol metrics. */
function listenerMetrics(registry: Registry, prefix: string) {
  return {
    tlsReloads: new Counter({
      name: `${prefix}_tls_reloads_total`,
      help: 'Listener certificate reloads that found new files, by result (ok, failed: the old one stays).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    tlsNotAfter: new Gauge({
      name: `${prefix}_tls_certificate_not_after_seconds`,
      help: 'When the listener certificate in use expires (Unix seconds).',
      registers: [registry],
    }),
    connections: new Counter({
      name: `${prefix}_connections_total`,
      help: 'Client connections accepted by the API listener (many per request means keep-alive is not working).',
      registers: [registry],
    }),
    handshakesRefused: new Counter({
      name: `${prefix}_tls_handshakes_refused_total`,
      help: 'Connections closed at accept because MAX_PENDING_HANDSHAKES TLS handshakes were in progress (stalled handshakes: an attack, or clients far slower than the read-header timeout).',
      registers: [registry],
    }),
    proxyProtocol: new Counter({
      name: `${prefix}_proxy_protocol_connections_total`,
      help: 'Connections by what their PROXY header led to (used, ignored, absent, local, refused, malformed, timeout).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
  };
}

/** The hooks an ApiListener reports through: metrics and a log line per PROXY refusal. */
export function listenerHooks(m: ReturnType<typeof listenerMetrics>, log: Logger) {
  return {
    log,
    onTlsReload(ok: boolean, notAfter: Date | null) {
      m.tlsReloads.inc({ result: ok ? 'ok' : 'failed' });
      if (notAfter) m.tlsNotAfter.set(Math.floor(notAfter.getTime() / 1000));
    },
    onConnection() {
      m.connections.inc();
    },
    onHandshakeRefused() {
      m.handshakesRefused.inc();
    },
    onProxyProtocol(outcome: string) {
      m.proxyProtocol.inc({ outcome });
      if (outcome === 'refused')
        log.warn({ outcome }, 'PROXY protocol: connection from an unauthorized address closed');
      else if (outcome === 'malformed') log.warn({ outcome }, 'PROXY protocol: malformed header refused');
    },
  };
}

/** A registry with the default process metrics, and a counter factory bound to it. */
function newRegistry() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const c = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  return { registry, c };
}

/** The node's response budget (LEADERWAY_RESPONSE_BUDGET), read at each scrape. */
export interface ResponseBudgetState {
  readonly capacity: number;
  /** Bytes of stored secrets held by responses in progress (0 once they are over). */
  readonly held: number;
  /** Reads waiting for room. */
  readonly waiting: number;
}

const NO_RESPONSE_BUDGET: ResponseBudgetState = { capacity: 0, held: 0, waiting: 0 };

/** A node's metrics; `responses` is read at each scrape. */
export function createNodeMetrics(responses: () => ResponseBudgetState = () => NO_RESPONSE_BUDGET) {
  const { registry, c } = newRegistry();
  return {
    registry,
    responseBudgetBytes: new Gauge({
      name: 'leaderway_response_budget_bytes',
      help: 'The response budget (LEADERWAY_RESPONSE_BUDGET), by state: held (bytes of stored secrets whose responses are in progress, admitted before the read and held until flushed) and limit.',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        const r = responses();
        this.set({ state: 'held' }, r.held);
        this.set({ state: 'limit' }, r.capacity);
      },
    }),
    responseBudgetWaiting: new Gauge({
      name: 'leaderway_response_budget_waiting',
      help: 'Reads of secrets waiting for room in the response budget (refused with LW_ERR_OVERLOADED after LEADERWAY_RESPONSE_BUDGET_WAIT).',
      registers: [registry],
      collect() {
        this.set(responses().waiting);
      },
    }),
    http: httpMetrics(registry, 'leaderway'),
    listener: listenerMetrics(registry, 'leaderway'),
    clusterAddrReachable: new Gauge({
      name: 'leaderway_cluster_addr_reachable',
      help: 'While active: 1 if the advertised cluster_addr reaches this node’s cluster listener, 0 if not.',
      registers: [registry],
    }),
    clusterPeerRejected: c(
      'leaderway_cluster_peer_rejected_total',
      'Connections the active’s cluster listener refused, by reason: handshake (TLS: no certificate, or none the node trusts), or a certificate from the gateway CA that is not admitted: issuer (not signed by a certificate of the bundle), eku (no clientAuth), name (no allowed SAN), revoked, crl_missing (no CRL from its issuer).',
      ['reason'],
    ),
    forwarded: c(
      'leaderway_forwarded_requests_total',
      'Requests a standby forwarded to the active, by outcome.',
      ['outcome'],
    ),
    standbyReads: c(
      'leaderway_standby_reads_total',
      'Reads a standby with standby reads on (LEADERWAY_DISABLE_STANDBY_READS=false) was asked for, by outcome: served (here, from storage) or forwarded (to the active: the route, the token or a header needs it, or the read turned out to write).',
      ['outcome'],
    ),
    redirects: c('leaderway_redirects_total', 'Requests a standby answered with 307, by reason.', ['reason']),
    forwardFailures: c(
      'leaderway_forwarding_failures_total',
      'Forwarding attempts that failed (then redirected), by kind.',
      ['kind'],
    ),
    lockHeld: new Gauge({
      name: 'leaderway_lock_held',
      help: '1 while this node holds the HA lock.',
      registers: [registry],
    }),
    lockAcquisitions: c('leaderway_lock_acquisitions_total', 'Times this node took the HA lock.'),
    lockTakeovers: c(
      'leaderway_lock_takeovers_total',
      'Times this node took the lock over from a holder whose Redis connection was gone (a crashed active).',
    ),
    livenessEnabled: new Gauge({
      name: 'leaderway_holder_liveness_enabled',
      help: "1 while this node watches the lock holder's Redis connection (crash failover without waiting out the TTL).",
      registers: [registry],
    }),
    lockLosses: c('leaderway_lock_losses_total', 'Times this node lost or gave up the lock, by reason.', [
      'reason',
    ]),
    lockErrors: c(
      'leaderway_lock_errors_total',
      'Lock acquisition or renewal errors (store unreachable), by op.',
      ['op'],
    ),
    fencedWrites: c(
      'leaderway_fenced_writes_total',
      'Writes refused because the lock had changed ownership.',
    ),
    requestErrors: c(
      'leaderway_request_errors_total',
      'Requests answered with an error, by error code (docs/errors.md), e.g. LW_ERR_STORAGE_UNAVAILABLE, LW_ERR_OUTCOME_UNKNOWN.',
      ['code'],
    ),
    unreplicatedWrites: c(
      'leaderway_storage_unreplicated_writes_total',
      'Writes Redis WAIT did not confirm on LEADERWAY_REDIS_MIN_REPLICAS replicas in time (answered "outcome unknown").',
    ),
    noReplicasWrites: c(
      'leaderway_storage_noreplicas_writes_total',
      'Writes the Redis primary refused with NOREPLICAS: fewer replicas connected than its min-replicas-to-write (answered 503 "storage is unavailable", held and retried by gateways; nothing stored).',
    ),
    leaderChanges: c('leaderway_leader_changes_total', 'Leader changes observed by this node.'),
    advertisementsRejected: c(
      'leaderway_advertisements_rejected_total',
      'Advertisements refused, by reason.',
      ['reason'],
    ),
  };
}

/**
 * What a gateway holds for requests in progress, read at each scrape: every figure returns to 0
 * once its requests are over, however they ended (a gauge that stays up is a leak).
 */
export interface GatewayHoldings {
  /** Bytes of request bodies kept for a replay, by lane (replay-budget.ts). */
  replayBytes: { small: number; large: number };
  /** Requests whose body is being read before anything upstream is taken. */
  bodiesReceiving: number;
  /** Places of the upload lane (bodies streamed while they arrive) taken, and requests waiting. */
  uploads: { inUse: number; waiting: number };
  /** Places of the current leader's pool taken, and requests waiting for one. */
  leaderPool: { inUse: number; waiting: number };
}

const NO_HOLDINGS: GatewayHoldings = {
  replayBytes: { small: 0, large: 0 },
  bodiesReceiving: 0,
  uploads: { inUse: 0, waiting: 0 },
  leaderPool: { inUse: 0, waiting: 0 },
};

/** A gateway's metrics; `holdings` is read at each scrape. */
export function createGatewayMetrics(holdings: () => GatewayHoldings = () => NO_HOLDINGS) {
  const { registry, c } = newRegistry();
  return {
    registry,
    replayBytes: new Gauge({
      name: 'leaderway_gateway_replay_bytes',
      help: 'Bytes of request bodies held so a request can be replayed on the next leader, by lane (small: bodies of at most 64 KiB, which draw on a reserve of their own; large).',
      labelNames: ['lane'] as const,
      registers: [registry],
      collect() {
        const b = holdings().replayBytes;
        this.set({ lane: 'small' }, b.small);
        this.set({ lane: 'large' }, b.large);
      },
    }),
    bodiesReceiving: new Gauge({
      name: 'leaderway_gateway_bodies_receiving',
      help: 'Requests whose body is being read whole before a place in the leader pool is taken.',
      registers: [registry],
      collect() {
        this.set(holdings().bodiesReceiving);
      },
    }),
    uploadPlaces: new Gauge({
      name: 'leaderway_gateway_upload_places',
      help: 'Places of the upload lane (requests whose body streams to the leader as it arrives), by state (in_use, waiting).',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        const u = holdings().uploads;
        this.set({ state: 'in_use' }, u.inUse);
        this.set({ state: 'waiting' }, u.waiting);
      },
    }),
    leaderPoolPlaces: new Gauge({
      name: 'leaderway_gateway_leader_pool_places',
      help: 'Places in the current leader’s connection pool, by state (in_use, waiting).',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        const p = holdings().leaderPool;
        this.set({ state: 'in_use' }, p.inUse);
        this.set({ state: 'waiting' }, p.waiting);
      },
    }),
    http: httpMetrics(registry, 'leaderway_gateway'),
    listener: listenerMetrics(registry, 'leaderway_gateway'),
    leaderReachable: new Gauge({
      name: 'leaderway_gateway_leader_reachable',
      help: '1 if the advertised leader’s cluster_addr accepts this gateway’s TLS connection, 0 if not.',
      registers: [registry],
    }),
    leaderChanges: c('leaderway_gateway_leader_changes_total', 'Leader changes seen by this gateway.'),
    leaderKnown: new Gauge({
      name: 'leaderway_gateway_leader_known',
      help: '1 while a valid leader is known.',
      registers: [registry],
    }),
    leaderEpoch: new Gauge({
      name: 'leaderway_gateway_leader_epoch',
      help: 'Fencing epoch of the leader this gateway routes to (0 while none is known).',
      registers: [registry],
    }),
    leaderWait: new Histogram({
      name: 'leaderway_gateway_leader_wait_seconds',
      help: 'Time requests spent waiting for a leader.',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    attempts: c('leaderway_gateway_upstream_attempts_total', 'Attempts to the leader, by outcome kind.', [
      'outcome',
    ]),
    retries: c('leaderway_gateway_retries_total', 'Requests retried on a (new) leader, by reason.', [
      'reason',
    ]),
    unknownOutcome: c(
      'leaderway_gateway_unknown_outcome_total',
      'Requests failed because their outcome is unknown.',
    ),
    noLeader: c('leaderway_gateway_no_leader_total', 'Requests failed because no leader was found in time.'),
    shed: c(
      'leaderway_gateway_requests_shed_total',
      'Requests refused to protect the leader: overloaded (no place in the leader pool within the failover wait).',
      ['reason'],
    ),
    upstreamErrors: c(
      'leaderway_gateway_upstream_errors_total',
      'Connection-level errors talking to the leader, by kind.',
      ['kind'],
    ),
    advertisementsRejected: c(
      'leaderway_gateway_advertisements_rejected_total',
      'Advertisements refused, by reason.',
      ['reason'],
    ),
    readsServed: c(
      'leaderway_gateway_reads_served_total',
      'Reads served with spread routing (LEADERWAY_GATEWAY_READ_ROUTING=spread), by the kind of node that served them (active, standby).',
      ['target'],
    ),
    readFallbacks: c(
      'leaderway_gateway_read_fallbacks_total',
      'Reads a standby did not serve, sent on to the active (spread routing), by outcome (not-served, not-sent, maybe-sent, redirect).',
      ['outcome'],
    ),
    standbyMembers: new Gauge({
      name: 'leaderway_gateway_standby_members',
      help: 'Standbys listed in the current leader’s verified membership record (spread routing).',
      registers: [registry],
    }),
    membershipRejected: c(
      'leaderway_gateway_membership_rejected_total',
      'Membership records refused (not verified, another leader’s, older than one used), by reason.',
      ['reason'],
    ),
  };
}

export type NodeMetrics = ReturnType<typeof createNodeMetrics>;
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

/**
 * Refuses an anonymous scrape of an API listener, as OpenBao refuses sys/metrics without a token
 * unless the listener sets `unauthenticated_metrics_access`.
 */
const METRICS_NEED_ACCESS = new LwError(
  'LW_ERR_PERMISSION_DENIED',
  'metrics on this listener need unauthenticated_metrics_access (LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS); scrape the metrics listener (LEADERWAY_METRICS_ADDR) instead',
);

/**
 * `GET /metrics` on an API listener: the registry when the listener allows unauthenticated
 * metrics access, 403 otherwise.
 */
export function serveApiMetrics(registry: Registry, res: ServerResponse, unauthenticated: boolean): void {
  if (unauthenticated) serveMetrics(registry, res);
  else sendError(res, METRICS_NEED_ACCESS);
}

/** Serves a registry in the Prometheus text format. */
export function serveMetrics(registry: Registry, res: ServerResponse): void {
  registry.metrics().then(
    (text) => {
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
      res.end(text);
    },
    () => sendError(res, new LwError('LW_ERR_INTERNAL', 'metrics unavailable')),
  );
}
