/**
 * The metrics listener (`metrics_address`, LEADERWAY_METRICS_ADDR) of a node or a gateway: plain
 * HTTP on a port of its own serving only `GET /metrics`, without a token, for Prometheus on the
 * cluster network. The API listener refuses anonymous scrapes unless
 * `unauthenticated_metrics_access` is set (OpenBao's sys/metrics needs a token too), so this port
 * is where scrapers go; it is never put behind the load balancer or in a Service.
 *
 * Nothing authenticates its peers, so it is kept small and bounded: an error listener on every
 * socket from accept to close, requests that must arrive whole within seconds, and deadlines that
 * destroy the connection rather than answer it.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { HostPort } from '../config/formats';
import { LwError } from '../errors';
import { sendError } from '../http/respond';
import { serveMetrics } from './metrics';

/** A scrape is one small GET: its headers must arrive within this (a slow sender is cut). */
const HEADERS_TIMEOUT_MS = 5_000;
/** The whole request, likewise. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Node checks the two timeouts above only this often (30 s by default). */
const CONNECTIONS_CHECK_MS = 1_000;
/**
 * Idle keep-alive connections are closed after this: scrapes come every 15-60 s, and a fresh
 * connection per scrape costs Prometheus nothing, while idle ones held open would cost us sockets.
 */
const KEEP_ALIVE_MS = 5_000;
/** A connection with no traffic either way for this long (a peer that stopped reading) is destroyed. */
const SOCKET_IDLE_MS = 15_000;

const NOT_FOUND = new LwError('LW_ERR_NOT_FOUND', 'not found: this listener serves only GET /metrics');
const METHOD_NOT_ALLOWED = new LwError('LW_ERR_METHOD_NOT_ALLOWED', 'unsupported operation');

/** One metrics listener. `listen()` binds it; `close()` cuts it (idempotent). */
export class MetricsListener {
  private readonly server: http.Server;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly listenOn: HostPort,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.server = http.createServer(
      {
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
        keepAliveTimeout: KEEP_ALIVE_MS,
      },
      (req, res) => serve(registry, req, res),
    );
    this.server.on('connection', (socket: Socket) => {
      socket.on('error', () => socket.destroy());
      socket.setTimeout(SOCKET_IDLE_MS, () => socket.destroy());
    });
    // A request that is malformed or timed out gets no answer: a scraper never sends one.
    this.server.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
  }

  /** Binds the listener; resolves once bound (rejects on EADDRINUSE etc.). */
  listen(): Promise<void> {
    const { host, port } = this.listenOn;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        // Accept failures after binding (EMFILE) are logged; unhandled they would end the process.
        this.server.on('error', (err) => this.log.error({ err: err.message }, 'metrics listener error'));
        resolve();
      });
    });
  }

  /** The bound address (useful with port 0). */
  address(): HostPort {
    const a = this.server.address();
    return typeof a === 'object' && a ? { host: a.address, port: a.port } : this.listenOn;
  }

  /** Stops accepting and cuts open connections: a scrape is short, and is simply retried. */
  close(): Promise<void> {
    if (!this.closing) {
      const server = this.server;
      this.closing = server.listening
        ? new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          })
        : Promise.resolve();
    }
    return this.closing;
  }
}

function serve(registry: Registry, req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  if ((req.url ?? '').split('?')[0] !== '/metrics') sendError(res, NOT_FOUND);
  else if (req.method !== 'GET') sendError(res, METHOD_NOT_ALLOWED);
  else serveMetrics(registry, res);
}
