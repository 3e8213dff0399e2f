/**
 * The cluster listener: open only while this node is active. Mutual TLS 1.2 with two kinds of
 * peer: standbys present this term's advertised certificate (read through the barrier, so only
 * unsealed nodes have its key); gateways present a certificate of their own, issued by the CA
 * in LEADERWAY_GATEWAY_CA_FILE. Nothing else is accepted. ALPN h2 and http/1.1. Forwarded
 * requests from both go through the same API handler as the API listener, labelled with the
 * peer's kind; the internal `/lw-cluster/` paths (standby heartbeats) are for standbys only.
 */
import { once } from 'node:events';
import http2, { type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { HostPort } from '../../shared/config/formats';
import { LwError } from '../../shared/errors';
import { NOT_SERVED_HEADER } from '../../shared/http/internal-headers';
import { acceptListMethod, ListAwareIncomingMessage } from '../../shared/http/list-method';
import { sendError } from '../../shared/http/respond';
import { answerClientError } from '../../shared/http/server';
import type { ClusterIdentity } from './cluster-cert';

/** After ending connections, how long a peer has to close its side before we cut it. */
const SOCKET_END_GRACE_MS = 1_000;

/** While lingering, how often to check whether peers have closed their connections. */
const LINGER_POLL_MS = 20;

/**
 * HTTP/1.1 connections idle this long are closed (Node sets no idle timeout on an HTTP/2 server's
 * HTTP/1.1 side). Longer than the gateways' and standbys' pool keep-alive (60 s), so they close first.
 */
const CLUSTER_IDLE_TIMEOUT_MS = 70_000;

const PEER = Symbol('lw.clusterPeer');

/** The kind of peer a request came from (HTTP/1.1: its socket; HTTP/2: its session's). */
function peerOf(req: Http2ServerRequest): PeerKind {
  const socket = (req.stream?.session?.socket ?? req.socket) as TLSSocket & { [PEER]?: PeerKind };
  return socket?.[PEER] ?? 'gateway';
}

/** Internal paths served only on the cluster channel. */
export const CLUSTER_PATH_PREFIX = '/lw-cluster/';

/** Who is on the other end of a cluster connection. */
export type PeerKind = 'standby' | 'gateway';

export interface ClusterListenerOptions {
  address: HostPort;
  identity: ClusterIdentity;
  /** PEM CA bundle for gateways' client certificates (null: only standbys can connect). */
  gatewayCa: string | null;
  log: Logger;
  /** Serves a forwarded API request. */
  handle(req: Http2ServerRequest, res: Http2ServerResponse, peer: PeerKind): void;
  /** Serves an internal request (heartbeat). */
  internal(req: Http2ServerRequest, res: Http2ServerResponse, path: string): void;
}

/** One listening term. `start()` / `close()` are idempotent. */
export class ClusterListener {
  private server: Http2SecureServer | undefined;
  private readonly sockets = new Set<Socket>();
  private stopped = false;
  private closed = false;

  constructor(private readonly opts: ClusterListenerOptions) {}

  async start(): Promise<void> {
    if (this.server) return;
    const { identity } = this.opts;
    const server = http2.createSecureServer({
      allowHTTP1: true,
      // Raw LIST over HTTP/1.1 (HTTP/2 carries any method natively).
      Http1IncomingMessage: ListAwareIncomingMessage,
      cert: identity.certPem,
      key: identity.keyPem,
      ca: [identity.certPem, ...(this.opts.gatewayCa ? [this.opts.gatewayCa] : [])],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
    });
    this.server = server;
    (server as unknown as { keepAliveTimeout: number }).keepAliveTimeout = CLUSTER_IDLE_TIMEOUT_MS;
    acceptListMethod(server, 'secureConnection');
    // A malformed HTTP/1.1 request gets a JSON error, not Node's bare 400 (which a gateway would relay).
    server.on('clientError', answerClientError);
    const own = Buffer.from(identity.certDer, 'base64');
    server.on('secureConnection', (s: TLSSocket) => {
      // The certificate the handshake verified: this term's own (a standby) or a gateway's.
      const peer = s.getPeerCertificate();
      (s as TLSSocket & { [PEER]?: PeerKind })[PEER] = peer?.raw?.equals(own) ? 'standby' : 'gateway';
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
    const url = req.url ?? '/';
    const peer = peerOf(req);
    if (url.startsWith(CLUSTER_PATH_PREFIX)) {
      if (peer !== 'standby') {
        sendError(res, new LwError('LW_ERR_NOT_FOUND', ''));
        return;
      }
      this.opts.internal(req, res, url.slice(CLUSTER_PATH_PREFIX.length));
      return;
    }
    if (this.stopped) {
      // Nothing is served once we stop being active; the caller retries on the next leader.
      sendError(res, new LwError('LW_ERR_DRAINING', 'node is not active'), {
        [NOT_SERVED_HEADER]: 'LW_ERR_DRAINING',
      });
      return;
    }
    this.opts.handle(req, res, peer);
  }

  /**
   * Stops serving: from now on every request is answered "not served" (503), so a peer retries
   * it on the next leader. Connections stay open — closing them now would race peers sending on
   * them (a reset whose outcome they cannot know) — until close().
   */
  stopServing(): void {
    this.stopped = true;
  }

  /**
   * Closes the listener: waits up to `lingerMs` for peers to close their connections (they do as
   * soon as they see the next leader), then stops listening and ends what is left.
   */
  async close(lingerMs: number): Promise<void> {
    const server = this.server;
    if (!server || this.closed) return;
    this.closed = true;
    this.stopServing();
    const deadline = Date.now() + lingerMs;
    while (this.sockets.size > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, LINGER_POLL_MS));
    server.close();
    // end() lets responses already written reach the peer before FIN; stragglers are destroyed.
    for (const s of this.sockets) s.end();
    const stragglers = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, SOCKET_END_GRACE_MS);
    stragglers.unref();
  }
}
