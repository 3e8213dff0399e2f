/**
 * Request plumbing for both of a node's listeners: `/metrics` (API listener; only with
 * `unauthenticated_metrics_access`, else 403), per-request metrics, the debug
 * request log, the cluster listener's server span, counting requests in flight (so shutdown and
 * step-down can drain them), then the ApiHandler.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AnyResponse } from '../../shared/http/respond';
import { routeClass } from '../../shared/http/route-class';
import { methodLabel, type NodeMetrics, serveApiMetrics } from '../../shared/telemetry/metrics';
import { endServerSpan, withIncomingContext } from '../../shared/telemetry/tracing';
import { type ApiHandler, clientAddress } from './dispatch';
import type { AnyRequest } from './request';

export interface ApiEntryOptions {
  handler: ApiHandler;
  metrics: NodeMetrics;
  /** `GET /metrics` on the API listener is served without a token (else 403). */
  unauthenticatedMetrics: boolean;
  log: Logger;
  /** While the node is closing, responses ask keep-alive clients to reconnect elsewhere. */
  closing(): boolean;
  /** Counts a request in the current active term (drained on step-down); null when not active. */
  trackActive(): (() => void) | null;
}

export class ApiEntry {
  private apiInFlight = 0;

  constructor(private readonly o: ApiEntryOptions) {}

  /** Requests still running on the API listener. */
  inFlight(): number {
    return this.apiInFlight;
  }

  /** The API listener's request listener. */
  readonly onApiRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === '/metrics' && req.method === 'GET') {
      serveApiMetrics(this.o.metrics.registry, res, this.o.unauthenticatedMetrics);
      return;
    }
    this.apiInFlight++;
    res.once('close', () => this.apiInFlight--);
    if (this.o.closing()) res.setHeader('connection', 'close');
    this.serve(req, res, 'api');
  };

  /**
   * Serves one request from either listener: `api` (a client), or over the cluster channel from
   * a `standby` or a `gateway` (metrics, logs and traces tell them apart).
   */
  serve(req: AnyRequest, res: AnyResponse, via: 'api' | 'standby' | 'gateway'): void {
    const viaCluster = via !== 'api';
    const done = this.o.trackActive();
    if (done) res.once('close', done);
    const started = performance.now();
    const route = routeClass(req.url);
    const { metrics, log } = this.o;
    const run = (span: Parameters<typeof endServerSpan>[0]) => {
      res.once('close', () => {
        const status = res.statusCode;
        metrics.http.record(
          route,
          methodLabel(req.method),
          status,
          via,
          (performance.now() - started) / 1000,
        );
        endServerSpan(span, status);
        if (log.isLevelEnabled('debug')) {
          log.debug(
            { method: req.method, route, status, via, remote_addr: clientAddress(req, viaCluster) },
            'request',
          );
        }
      });
      this.o.handler.handle(req, res, viaCluster);
    };
    // The API listener's server spans come from the http instrumentation; the cluster listener
    // (HTTP/2 server) continues the forwarder's trace here.
    if (viaCluster) withIncomingContext(req.headers, 'lw.cluster.request', run, { 'lw.peer': via });
    else run(undefined);
  }
}
