/**
 * The cluster listener: open only while this node is active. Mutual TLS 1.2 where the advertised
 * certificate is the only trusted CA, on both sides; ALPN h2 and http/1.1. Forwarded requests
 * (from standbys and gateways) go through the same API handler as the API listener; standby
 * heartbeats arrive on the internal `/lw-cluster/` paths, which no forwarder ever sends on.
 */
import { once } from 'node:events';
import http2, { type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { HostPort } from '../../shared/config/formats';
import { sendJson } from '../../shared/http/respond';
import type { ClusterIdentity } from './cluster-cert';

/** After ending connections, how long a peer has to close its side before we cut it. */
const SOCKET_END_GRACE_MS = 1_000;

/** Internal paths served only on the cluster channel. */
export const CLUSTER_PATH_PREFIX = '/lw-cluster/';

export interface ClusterListenerOptions {
  address: HostPort;
  identity: ClusterIdentity;
  log: Logger;
  /** Serves a forwarded API request. */
  handle(req: Http2ServerRequest, res: Http2ServerResponse): void;
  /** Serves an internal request (heartbeat). */
  internal(req: Http2ServerRequest, res: Http2ServerResponse, path: string): void;
}

/** One listening term. `start()` / `close()` are idempotent. */
export class ClusterListener {
  private server: Http2SecureServer | undefined;
  private readonly sockets = new Set<Socket>();
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: ClusterListenerOptions) {}

  async start(): Promise<void> {
    if (this.server) return;
    const { identity } = this.opts;
    const server = http2.createSecureServer({
      allowHTTP1: true,
      cert: identity.certPem,
      key: identity.keyPem,
      ca: [identity.certPem],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
    });
    this.server = server;
    server.on('secureConnection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    // Handshake failures (no cert, wrong cert) are expected from strangers; log at debug only.
    server.on('tlsClientError', (err) =>
      this.opts.log.debug({ err: err.message }, 'cluster TLS handshake refused'),
    );
    server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => this.onRequest(req, res));
    server.listen(this.opts.address.port, this.opts.address.host);
    await once(server, 'listening');
  }

  private onRequest(req: Http2ServerRequest, res: Http2ServerResponse): void {
    this.inFlight++;
    res.once('close', () => {
      this.inFlight--;
      if (this.inFlight === 0) this.idle?.();
    });
    const url = req.url ?? '/';
    if (url.startsWith(CLUSTER_PATH_PREFIX)) {
      this.opts.internal(req, res, url.slice(CLUSTER_PATH_PREFIX.length));
      return;
    }
    if (this.closing) {
      // Nothing is served once we stop being active; the caller retries on the next leader.
      sendJson(res, 503, { errors: ['node is not active'] }, { 'x-leaderway-not-served': 'LW_ERR_DRAINING' });
      return;
    }
    this.opts.handle(req, res);
  }

  /**
   * Stops accepting connections and waits up to `graceMs` for in-flight requests, then cuts every
   * remaining connection.
   */
  close(graceMs: number): Promise<void> {
    if (!this.server) return Promise.resolve();
    if (!this.closing) this.closing = this.doClose(this.server, graceMs);
    return this.closing;
  }

  private async doClose(server: Http2SecureServer, graceMs: number): Promise<void> {
    const closed = new Promise<void>((r) => server.close(() => r()));
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.idle = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    // end() lets responses already written reach the client before FIN; destroy() would drop
    // them (a step-down's own 204 would be lost). Stragglers are destroyed after a short bound.
    for (const s of this.sockets) s.end();
    const stragglers = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, SOCKET_END_GRACE_MS);
    await closed;
    clearTimeout(stragglers);
  }
}
