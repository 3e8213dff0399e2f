/**
 * The gateway: a stateless reverse proxy in front of the cluster. It follows the leader through
 * the LeaderWatcher and sends every request straight to it (GatewayProxy); it answers the load
 * balancer's probes itself (`/-/live`, `/-/ready`) and drains gracefully.
 *
 * Shutdown order (close()): report not-ready at once; keep serving for `drainDelayMs` so the
 * load balancer moves away; stop accepting; let in-flight requests finish (bounded); stop
 * following the leader; close storage.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { sendJson } from '../shared/http/respond';
import { routeClass } from '../shared/http/route-class';
import { closeGracefully, createApiServer, listen } from '../shared/http/server';
import { LeaderWatcher } from '../shared/leader/leader-watcher';
import type { Backend, HABackend } from '../shared/storage/backend';
import {
  createGatewayMetrics,
  type GatewayMetrics,
  methodLabel,
  serveMetrics,
} from '../shared/telemetry/metrics';
import { addEvent } from '../shared/telemetry/tracing';
import { GatewayProxy } from './proxy';
import type { GatewaySettings } from './settings';
import { proxyUpgrade } from './upgrade';

export interface GatewayDeps {
  data: Backend;
  ha: HABackend;
  log: Logger;
}

export type GatewayStatus = 'new' | 'running' | 'draining' | 'closed';

export class GatewayServer {
  private status: GatewayStatus = 'new';
  private server: Server | undefined;
  private inFlight = 0;
  readonly watcher: LeaderWatcher;
  private readonly proxy: GatewayProxy;
  /** This gateway's Prometheus metrics (served at /metrics). */
  readonly metrics: GatewayMetrics = createGatewayMetrics();
  private closing: Promise<void> | undefined;

  constructor(
    readonly settings: GatewaySettings,
    private readonly deps: GatewayDeps,
  ) {
    this.watcher = new LeaderWatcher({
      data: deps.data,
      ha: deps.ha,
      keys: settings.advertisementKeys,
      connect: true,
      connections: settings.upstreamConnections,
      hooks: {
        onChange: (l) => {
          this.metrics.leaderKnown.set(l ? 1 : 0);
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
    this.proxy = new GatewayProxy({
      watcher: this.watcher,
      trustedProxies: settings.trustedProxies,
      tls: settings.tls !== null,
      failoverWaitMs: settings.failoverWaitMs,
      hooks: {
        onAttempt: (kind) => {
          this.metrics.attempts.inc({ outcome: kind });
          if (kind === 'not-sent' || kind === 'maybe-sent' || kind === 'broken')
            this.metrics.upstreamErrors.inc({ kind });
        },
        onRetry: (reason) => this.metrics.retries.inc({ reason }),
        onLeaderWait: (ms) => this.metrics.leaderWait.observe(ms / 1000),
        onUnknownOutcome: (error) => {
          this.metrics.unknownOutcome.inc();
          deps.log.warn({ error }, 'leader connection failed mid-request; answered outcome unknown');
        },
        onNoLeader: () => this.metrics.noLeader.inc(),
      },
    });
  }

  private setStatus(s: GatewayStatus): void {
    if (this.status === s) return;
    this.deps.log.info({ from: this.status, to: s }, 'gateway status');
    this.status = s;
  }

  /** The listening address (useful with port 0). */
  address(): { host: string; port: number } {
    const a = this.server?.address();
    return typeof a === 'object' && a ? { host: a.address, port: a.port } : this.settings.listen;
  }

  async start(): Promise<void> {
    if (this.server) return;
    await this.watcher.start();
    this.server = createApiServer(this.settings.tls, (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    await listen(this.server, this.settings.listen.host, this.settings.listen.port);
    this.setStatus('running');
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
      sendJson(res, 404, { errors: ['not found'] });
      return;
    }
    this.inFlight++;
    const started = performance.now();
    res.once('close', () => {
      this.inFlight--;
      const route = routeClass(url);
      this.metrics.http.requests.inc({
        route,
        method: methodLabel(req.method),
        status: String(res.statusCode),
        via: 'gateway',
      });
      this.metrics.http.duration.observe({ route, via: 'gateway' }, (performance.now() - started) / 1000);
    });
    if (this.status === 'draining') res.setHeader('connection', 'close');
    this.proxy.handle(req, res).catch((err) => {
      this.deps.log.error({ err: (err as Error).message }, 'proxy failed');
      if (!res.headersSent) sendJson(res, 502, { errors: ['gateway error'] });
      else res.destroy();
    });
  }

  private operatorEndpoint(url: string, req: IncomingMessage, res: ServerResponse): void {
    const path = url.split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { errors: ['unsupported operation'] });
      return;
    }
    const head = req.method === 'HEAD';
    if (path === '/-/live') {
      sendJson(res, 200, { status: 'live' }, {}, head);
    } else if (path === '/-/ready') {
      const leader = this.watcher.current();
      if (this.status === 'running' && leader?.client) {
        sendJson(res, 200, { status: 'ready', leader: leader.ad.node_id, epoch: leader.ad.epoch }, {}, head);
      } else {
        const why = this.status !== 'running' ? 'draining' : 'no valid leader known';
        sendJson(res, 503, { errors: [why] }, { 'retry-after': '1' }, head);
      }
    } else if (path === '/metrics') {
      serveMetrics(this.metrics.registry, res);
    } else {
      sendJson(res, 404, { errors: ['not found'] });
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!(req.url ?? '').startsWith('/v1/')) {
      socket.end(
        'HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: 24\r\nconnection: close\r\n\r\n{"errors":["not found"]}',
      );
      return;
    }
    const leader = this.watcher.current();
    proxyUpgrade(req, socket, head, leader, this.proxy.forwardedHeaders(req)).catch((err) => {
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
    if (this.server) await closeGracefully(this.server, () => this.inFlight, this.settings.shutdownTimeoutMs);
    await this.watcher.close();
    await Promise.allSettled([this.deps.data.close(), this.deps.ha.close()]);
    this.setStatus('closed');
  }
}
