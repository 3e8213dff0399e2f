/**
 * The gateway: a stateless reverse proxy in front of the cluster. It follows the leader through
 * the LeaderWatcher and sends every request straight to it (GatewayProxy); it answers the load
 * balancer's probes itself (`/-/live`, `/-/ready`) and drains gracefully.
 *
 * Shutdown order (close()): report not-ready at once; keep serving for `drainDelayMs` so the
 * load balancer moves away; stop accepting; let in-flight requests finish (bounded); stop
 * following the leader; close storage; close the metrics listener last, so the drain can still
 * be scraped.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { HostPort } from '../shared/config/formats';
import { LwError } from '../shared/errors';
import { rawErrorResponse, sendError, sendJson } from '../shared/http/respond';
import { routeClass } from '../shared/http/route-class';
import { ApiListener } from '../shared/http/server';
import { TlsCertificates } from '../shared/http/tls-reload';
import type { ClientIdentity } from '../shared/leader/leader-client';
import { ADVERTISEMENT_REJECTIONS, type Leader, LeaderWatcher } from '../shared/leader/leader-watcher';
import { MEMBERSHIP_REJECTIONS, MembershipWatcher } from '../shared/leader/membership-watcher';
import { type ProbeResult, probeClusterAddr } from '../shared/leader/probe';
import type { Backend, HABackend } from '../shared/storage/backend';
import {
  boundCounter,
  createGatewayMetrics,
  type GatewayHoldings,
  type GatewayMetrics,
  listenerHooks,
  methodLabel,
  serveApiMetrics,
} from '../shared/telemetry/metrics';
import { MetricsListener } from '../shared/telemetry/metrics-listener';
import {
  addEvent,
  endServerSpan,
  requestSpan,
  traceFields,
  urlAttributes,
} from '../shared/telemetry/tracing';
import { GatewayProxy } from './proxy';
import { ReadRouter } from './read-router';
import type { GatewaySettings } from './settings';
import { proxyUpgrade } from './upgrade';

export interface GatewayDeps {
  data: Backend;
  ha: HABackend;
  log: Logger;
}

export type GatewayStatus = 'new' | 'running' | 'draining' | 'closed';

/** While the leader is unreachable, how often to probe it again. */
const REPROBE_MS = 2_000;

/** After the listener closed, how long requests it cut may take to give their places back. */
const DRAIN_SETTLE_MS = 1_000;
/** How often, meanwhile, to look again (each look is a few counters: cheap). */
const DRAIN_POLL_MS = 10;

/** Whether requests hold nothing: no replay bytes, bodies, upload or pool places. */
function nothingHeld(h: GatewayHoldings): boolean {
  return (
    h.replayBytes.small + h.replayBytes.large + h.bodiesReceiving === 0 &&
    h.uploads.inUse + h.uploads.waiting + h.leaderPool.inUse + h.leaderPool.waiting === 0
  );
}

/** Only the Vault API (and the operator endpoints) are served. */
const NOT_FOUND = new LwError('LW_ERR_NOT_FOUND', 'not found');

export class GatewayServer {
  private status: GatewayStatus = 'new';
  private readonly listener: ApiListener;
  private readonly metricsListener: MetricsListener | null;
  private readonly identity: TlsCertificates;
  private started = false;
  private inFlight = 0;
  /** Whether the current leader's cluster_addr accepts our TLS connection (null: not probed yet). */
  private reach: { uuid: string; result: ProbeResult | null } | null = null;
  private reprobe: NodeJS.Timeout | undefined;
  readonly watcher: LeaderWatcher;
  /** The standbys reads may go to (spread routing only). */
  private readonly members: MembershipWatcher | null;
  private readonly proxy: GatewayProxy;
  /** This gateway's Prometheus metrics (the metrics listener; /metrics with unauthenticated access). */
  readonly metrics: GatewayMetrics = createGatewayMetrics(() => this.holdings());
  private closing: Promise<void> | undefined;

  constructor(
    readonly settings: GatewaySettings,
    private readonly deps: GatewayDeps,
  ) {
    // The certificate this gateway presents to the active node (its own, never the leader's).
    this.identity = new TlsCertificates(
      settings.identity,
      {
        log: deps.log,
        onReload: (ok) => {
          if (!ok) return;
          void this.watcher.reconnect();
          void this.members?.reconnect();
        },
      },
      'gateway identity (LEADERWAY_GATEWAY_CERT_FILE, LEADERWAY_GATEWAY_KEY_FILE)',
    );
    for (const reason of ADVERTISEMENT_REJECTIONS) this.metrics.advertisementsRejected.inc({ reason }, 0);
    this.watcher = new LeaderWatcher({
      data: deps.data,
      ha: deps.ha,
      keys: settings.advertisementKeys,
      verifyKeys: settings.verifyKeys,
      identity: async () => this.presented(),
      connect: true,
      connections: settings.upstreamConnections,
      hooks: {
        onChange: (l) => {
          this.metrics.leaderKnown.set(l ? 1 : 0);
          this.metrics.leaderEpoch.set(l ? l.ad.epoch : 0);
          this.probe(l);
          if (l) this.metrics.leaderChanges.inc();
          addEvent('leader.change', { 'lw.leader.epoch': l?.ad.epoch ?? 0 });
          deps.log.info(
            { leader: l?.ad.node_id ?? null, epoch: l?.ad.epoch ?? null },
            'leader change observed',
          );
        },
        onReject: (reason) => {
          this.metrics.advertisementsRejected.inc({ reason });
          deps.log.warn({ reason }, 'leader advertisement rejected; not routing to it');
        },
        onReadError: (err) => deps.log.debug({ err: (err as Error).message }, 'leader read failed'),
      },
    });
    this.members = settings.readRouting === 'spread' ? this.membershipWatcher() : null;
    this.listener = new ApiListener(
      settings.listener,
      (req, res) => this.onRequest(req, res),
      listenerHooks(this.metrics.listener, deps.log),
    );
    const notAfter = this.listener.certificateNotAfter();
    if (notAfter) this.metrics.listener.tlsNotAfter.set(Math.floor(notAfter.getTime() / 1000));
    this.metricsListener = settings.metricsListen
      ? new MetricsListener(settings.metricsListen, this.metrics.registry, deps.log)
      : null;
    const attempts = boundCounter(this.metrics.attempts);
    this.proxy = new GatewayProxy({
      watcher: this.watcher,
      trustedProxies: settings.trustedProxies,
      tls: settings.listener.tls !== null,
      failoverWaitMs: settings.failoverWaitMs,
      upstreamConnections: settings.upstreamConnections,
      reads: this.members ? new ReadRouter(this.watcher, this.members) : null,
      hooks: {
        onAttempt: (kind, uuid, error) => {
          attempts(kind).inc();
          this.onAttempt(kind, uuid, error);
          if (kind === 'not-sent' || kind === 'maybe-sent' || kind === 'broken')
            this.metrics.upstreamErrors.inc({ kind });
        },
        onRetry: (reason) => this.metrics.retries.inc({ reason }),
        onLeaderWait: (ms) => this.metrics.leaderWait.observe(ms / 1000),
        onUnknownOutcome: (error, span) => {
          this.metrics.unknownOutcome.inc();
          deps.log.warn(
            { error, ...traceFields(span) },
            'leader connection failed mid-request; answered outcome unknown',
          );
        },
        onNoLeader: () => this.metrics.noLeader.inc(),
        onShed: (reason) => this.metrics.shed.inc({ reason }),
        onReadServed: (target) => this.metrics.readsServed.inc({ target }),
        onReadFallback: (outcome) => this.metrics.readFallbacks.inc({ outcome }),
      },
    });
  }

  /** The certificate and key this gateway presents to nodes (its own, never a node's). */
  private presented(): ClientIdentity {
    const pair = this.identity.pair();
    return { certPem: pair.cert.toString(), keyPem: pair.key.toString() };
  }

  /** Follows the leader's signed membership record; its pools present this gateway's identity. */
  private membershipWatcher(): MembershipWatcher {
    const { settings, deps } = this;
    for (const reason of MEMBERSHIP_REJECTIONS) this.metrics.membershipRejected.inc({ reason }, 0);
    return new MembershipWatcher({
      data: deps.data,
      leaders: this.watcher,
      keys: settings.advertisementKeys,
      verifyKeys: settings.verifyKeys,
      identity: async () => this.presented(),
      connections: settings.upstreamConnections,
      hooks: {
        onChange: (count) => this.metrics.standbyMembers.set(count),
        onReject: (reason) => {
          this.metrics.membershipRejected.inc({ reason });
          deps.log.warn({ reason }, 'membership record rejected; reads go to the active only');
        },
        onReadError: (err) => deps.log.debug({ err: (err as Error).message }, 'membership read failed'),
      },
    });
  }

  /** What requests in progress hold right now (the metrics' gauges). */
  private holdings(): GatewayHoldings {
    const pool = this.watcher.current()?.client?.admission;
    return {
      ...this.proxy.holdings(),
      leaderPool: { inUse: pool?.inUse ?? 0, waiting: pool?.queued ?? 0 },
    };
  }

  /**
   * Once the listener is closed every request has ended, so everything they held must be back:
   * logs what is (all zero), or warns naming what is still held — a leak.
   */
  private async logDrained(): Promise<void> {
    // Requests cut by the close give their places back as their sockets' errors and upstream
    // aborts are delivered, a few event-loop turns later.
    const until = performance.now() + DRAIN_SETTLE_MS;
    let h = this.holdings();
    while (!nothingHeld(h) && performance.now() < until) {
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
      h = this.holdings();
    }
    const fields = {
      replay_bytes: h.replayBytes.small + h.replayBytes.large,
      bodies_receiving: h.bodiesReceiving,
      upload_places: h.uploads.inUse + h.uploads.waiting,
      leader_pool_places: h.leaderPool.inUse + h.leaderPool.waiting,
    };
    if (nothingHeld(h)) this.deps.log.info(fields, 'requests drained: nothing held');
    else this.deps.log.warn(fields, 'requests drained, but places or replay bytes are still held');
  }

  /** Probes a new leader's cluster_addr; while it fails, again every REPROBE_MS. */
  private probe(l: Leader | null): void {
    clearTimeout(this.reprobe);
    if (!l?.client) {
      this.reach = null;
      return;
    }
    const { ad, client } = l;
    this.reach = { uuid: ad.uuid, result: null };
    const run = async () => {
      const result = await probeClusterAddr(
        ad.cluster_addr,
        client.context,
        `fw-${ad.uuid}`,
        Buffer.from(ad.cert, 'base64'),
      );
      if (this.reach?.uuid !== ad.uuid || this.status === 'closed') return;
      this.setReach(ad.uuid, result, ad.node_id, ad.cluster_addr);
      if (!result.ok) {
        this.reprobe = setTimeout(() => void run(), REPROBE_MS);
        this.reprobe.unref();
      }
    };
    void run();
  }

  private setReach(uuid: string, result: ProbeResult, node: string, addr: string): void {
    const was = this.reach?.result;
    this.reach = { uuid, result };
    this.metrics.leaderReachable.set(result.ok ? 1 : 0);
    if (!result.ok && (was === null || was?.ok !== false)) {
      this.deps.log.error(
        { leader: node, cluster_addr: addr, error: result.error },
        'cannot connect to the advertised leader: check its cluster_addr (BAO_CLUSTER_ADDR) and that this gateway can reach it',
      );
    } else if (result.ok && was?.ok === false) {
      this.deps.log.info({ leader: node, cluster_addr: addr }, 'advertised leader reachable again');
    }
  }

  /** Requests tell us too: a connection refused means unreachable, an answer means reachable. */
  private onAttempt(kind: string, uuid: string, error: string | undefined): void {
    const leader = this.watcher.current();
    if (!leader || leader.ad.uuid !== uuid || this.reach?.uuid !== uuid) return;
    if (kind === 'served' && this.reach.result?.ok === false) this.probe(leader);
    else if (kind === 'not-sent' && this.reach.result?.ok !== false && error) {
      this.setReach(uuid, { ok: false, error }, leader.ad.node_id, leader.ad.cluster_addr);
      this.probe(leader);
    }
  }

  private setStatus(s: GatewayStatus): void {
    if (this.status === s) return;
    this.deps.log.info({ from: this.status, to: s }, 'gateway status');
    this.status = s;
  }

  /** The listening address (useful with port 0). */
  address(): { host: string; port: number } {
    return this.listener.address();
  }

  /** The listening metrics address, or null without a metrics listener. */
  metricsAddress(): HostPort | null {
    return this.metricsListener?.address() ?? null;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.watcher.start();
    await this.members?.start();
    this.listener.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    await this.listener.listen();
    await this.metricsListener?.listen();
    this.identity.watch(() => undefined);
    this.setStatus('running');
  }

  /** SIGHUP: reload the listener's TLS certificate and this gateway's client certificate. */
  reload(): void {
    this.listener.reloadTls();
    this.identity.reload('sighup');
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    if (url.startsWith('/-/') || url === '/metrics') {
      this.operatorEndpoint(url, req, res);
      return;
    }
    // Only the Vault API is proxied: the leader's cluster listener also serves internal paths
    // (standby heartbeats) that no client may reach through us.
    if (!url.startsWith('/v1/')) {
      sendError(res, NOT_FOUND);
      return;
    }
    this.inFlight++;
    const started = performance.now();
    requestSpan(
      req,
      'lw.gateway.request',
      () => ({
        'http.request.method': req.method ?? '',
        'http.route': routeClass(url),
        ...urlAttributes(url),
      }),
      (span) => {
        res.on('close', () => {
          this.inFlight--;
          this.metrics.http.record(
            routeClass(url),
            methodLabel(req.method),
            res.statusCode,
            'gateway',
            (performance.now() - started) / 1000,
          );
          endServerSpan(span, res.statusCode);
        });
        if (this.status === 'draining') res.setHeader('connection', 'close');
        this.proxy.handle(req, res, span).catch((err) => {
          this.deps.log.error({ err: (err as Error).message, ...traceFields(span) }, 'proxy failed');
          if (!res.headersSent) sendError(res, new LwError('LW_ERR_UPSTREAM', 'gateway error'));
          else res.destroy();
        });
      },
    );
  }

  private operatorEndpoint(url: string, req: IncomingMessage, res: ServerResponse): void {
    const path = url.split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, new LwError('LW_ERR_METHOD_NOT_ALLOWED', 'unsupported operation'));
      return;
    }
    const head = req.method === 'HEAD';
    if (path === '/-/live') {
      sendJson(res, 200, { status: 'live' }, {}, head);
    } else if (path === '/-/ready') {
      const leader = this.watcher.current();
      const reach = this.reach?.uuid === leader?.ad.uuid ? this.reach?.result : null;
      if (this.status === 'running' && leader?.client && reach?.ok !== false) {
        sendJson(res, 200, { status: 'ready', leader: leader.ad.node_id, epoch: leader.ad.epoch }, {}, head);
      } else {
        const err =
          this.status !== 'running'
            ? new LwError('LW_ERR_DRAINING', 'draining', { retryAfter: 1 })
            : new LwError(
                'LW_ERR_NO_LEADER',
                !leader?.client
                  ? 'no valid leader known'
                  : `leader ${leader.ad.node_id} is not reachable at its cluster_addr ${leader.ad.cluster_addr}: ${reach && !reach.ok ? reach.error : ''}`,
                { retryAfter: 1 },
              );
        sendError(res, err, {}, head);
      }
    } else if (path === '/metrics') {
      serveApiMetrics(this.metrics.registry, res, this.settings.listener.unauthenticatedMetrics);
    } else {
      sendError(res, NOT_FOUND);
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!(req.url ?? '').startsWith('/v1/')) {
      socket.end(rawErrorResponse(NOT_FOUND));
      return;
    }
    const leader = this.watcher.current();
    // proxyUpgrade is async (it may wait for a place in the leader pool): its failures reject.
    proxyUpgrade(req, socket, head, leader, this.proxy.forwardedHeaders(req)).catch((err: unknown) => {
      this.deps.log.warn({ err: (err as Error).message }, 'upgrade failed');
      socket.destroy();
    });
  }

  /** Drains and stops. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.status === 'running') {
      this.setStatus('draining');
      this.deps.log.info({ drain_delay_ms: this.settings.drainDelayMs }, 'draining: /-/ready now 503');
      await new Promise((r) => setTimeout(r, this.settings.drainDelayMs));
    }
    if (this.started) {
      await this.listener.closeGracefully(() => this.inFlight, this.settings.shutdownTimeoutMs);
      await this.logDrained();
    }
    clearTimeout(this.reprobe);
    this.identity.close();
    await this.members?.close();
    await this.watcher.close();
    await Promise.allSettled([this.deps.data.close(), this.deps.ha.close()]);
    await this.metricsListener?.close();
    this.setStatus('closed');
  }
}
