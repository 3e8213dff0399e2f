/**
 * The cluster listener: open only while this node is active. Mutual TLS 1.2 with two kinds of
 * peer: standbys present this term's advertised certificate (read through the barrier, so only
 * unsealed nodes have its key); gateways present a certificate of their own, issued by the CA
 * in LEADERWAY_GATEWAY_CA_FILE, with the clientAuth usage, an allowed name and not revoked
 * (./gateway-trust.ts). Nothing else is accepted: TLS refuses a chain to no trusted anchor, and a
 * connection whose certificate passed TLS but not the gateway checks is destroyed as soon as the
 * handshake ends, before any request on it is parsed, and no request on an unadmitted connection
 * is served — so only admitted peers are believed when they say who the client is (the
 * client-address header). Open gateway connections are checked again when the revocation list
 * changes. ALPN h2 and http/1.1. Forwarded requests from both kinds go through the same API
 * handler as the API listener, labelled with the peer's kind; the internal `/lw-cluster/` paths
 * (standby heartbeats) are for standbys only.
 */
import type { X509Certificate } from 'node:crypto';
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
import { answerClientError, guardSockets } from '../../shared/http/server';
import type { ClusterIdentity } from './cluster-cert';
import type { GatewayRefusal, TermGateways } from './gateway-trust';

/** After ending connections, how long a peer has to close its side before we cut it. */
const SOCKET_END_GRACE_MS = 1_000;

/** A TLS handshake on the cluster port must finish within this (Node's default is 120 s). */
const CLUSTER_HANDSHAKE_TIMEOUT_MS = 10_000;

/** While lingering, how often to check whether peers have closed their connections. */
const LINGER_POLL_MS = 20;

/**
 * HTTP/1.1 connections idle this long are closed (Node sets no idle timeout on an HTTP/2 server's
 * HTTP/1.1 side). Longer than the gateways' and standbys' pool keep-alive (60 s), so they close first.
 */
const CLUSTER_IDLE_TIMEOUT_MS = 70_000;

/**
 * A refused certificate is logged at most this often (every refusal is counted): a revoked gateway
 * retries many times a second while it holds its clients' requests.
 */
const REFUSAL_LOG_INTERVAL_MS = 60_000;
/** Refused certificates remembered for that, per term; past this the memory is dropped. */
const REFUSAL_LOG_KEYS = 1_000;

const PEER = Symbol('lw.clusterPeer');

/** A cluster connection with what its admission found. */
type PeerSocket = TLSSocket & { [PEER]?: PeerKind };

/** The kind of peer a request came from (HTTP/1.1: its socket; HTTP/2: its session's), if admitted. */
function peerOf(req: Http2ServerRequest): PeerKind | undefined {
  const socket = (req.stream?.session?.socket ?? req.socket) as PeerSocket | undefined;
  return socket?.[PEER];
}

/** Why a peer was refused: a TLS handshake failure, or a gateway check. */
export type PeerRejection = 'handshake' | GatewayRefusal;

/** Internal paths served only on the cluster channel. */
export const CLUSTER_PATH_PREFIX = '/lw-cluster/';

/** Who is on the other end of a cluster connection. */
export type PeerKind = 'standby' | 'gateway';

export interface ClusterListenerOptions {
  address: HostPort;
  identity: ClusterIdentity;
  /** The gateway CA bundle and checks for this term (null: only standbys can connect). */
  gateways: TermGateways | null;
  log: Logger;
  /** Counts a refused peer. */
  onPeerRejected(reason: PeerRejection): void;
  /** Serves a forwarded API request. */
  handle(req: Http2ServerRequest, res: Http2ServerResponse, peer: PeerKind): void;
  /** Serves an internal request (heartbeat). */
  internal(req: Http2ServerRequest, res: Http2ServerResponse, path: string): void;
}

/** One listening term. `start()` / `close()` are idempotent. */
export class ClusterListener {
  private server: Http2SecureServer | undefined;
  private readonly sockets = new Set<Socket>();
  /** Admitted gateway connections and their certificates, checked again when revocations change. */
  private readonly gatewaySockets = new Map<TLSSocket, X509Certificate>();
  private unsubscribe: (() => void) | undefined;
  /** When each refused certificate (by reason) was last logged, and refusals not logged since. */
  private readonly refusalsLogged = new Map<string, { at: number; suppressed: number }>();
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
      ca: [identity.certPem, ...(this.opts.gateways ? [this.opts.gateways.caPem] : [])],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      // Peers are our own processes on the cluster network: a handshake that takes longer is not one.
      handshakeTimeout: CLUSTER_HANDSHAKE_TIMEOUT_MS,
    });
    this.server = server;
    guardSockets(server);
    (server as unknown as { keepAliveTimeout: number }).keepAliveTimeout = CLUSTER_IDLE_TIMEOUT_MS;
    // Eagerly: every HTTP/1.1 connection read in JavaScript through the LIST shim, as before the
    // lazy shim (list-method.ts) — for memory, not for LIST. Read that way, each chunk of a body
    // is allocated twice (the socket's buffer, llhttp's copy of the body part), and that
    // ArrayBuffer volume is what makes V8 (its external-memory trigger) collect during a large
    // body's read the buffers and strings the previous large write left dead. Read natively by
    // llhttp, a body allocates half, no collection comes before the next write is admitted, and
    // it piles onto that garbage: three concurrent 30 MiB writes through the gateway took the
    // active 285–491 MiB above idle, 10 runs in 15 over the limit of 400; read eagerly, 285–358
    // and none (test/security/memory-budget.test.ts, BENCHMARKS.md; either way no body is read
    // ahead of its budget admission). The gateway, whose CPU the lazy shim is for, keeps it.
    acceptListMethod(server, 'secureConnection');
    // A malformed HTTP/1.1 request gets a JSON error, not Node's bare 400 (which a gateway would relay).
    server.on('clientError', answerClientError);
    const own = Buffer.from(identity.certDer, 'base64');
    // Runs after the HTTP/2 server's own listener has set the connection up, but in the same
    // turn, before a request on it is parsed; a resumed TLS session carries its certificate, so
    // it is checked again too.
    server.on('secureConnection', (s: PeerSocket) => {
      this.sockets.add(s);
      s.once('close', () => {
        this.sockets.delete(s);
        this.gatewaySockets.delete(s);
      });
      this.admit(s, own);
    });
    // Handshake failures (no cert, wrong cert) are expected from strangers; log at debug only.
    server.on('tlsClientError', (err) => {
      this.opts.onPeerRejected('handshake');
      this.opts.log.debug({ err: err.message }, 'cluster TLS handshake refused');
    });
    this.unsubscribe = this.opts.gateways?.onRevocationsChanged(() => this.recheckGateways());
    server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => this.onRequest(req, res));
    server.listen(this.opts.address.port, this.opts.address.host);
    await once(server, 'listening');
  }

  /**
   * Marks a connection with its kind, or destroys it: the certificate the handshake verified is
   * this term's own (a standby) or must pass the gateway checks.
   */
  private admit(s: PeerSocket, own: Buffer): void {
    const cert = s.getPeerX509Certificate();
    if (cert?.raw.equals(own)) {
      s[PEER] = 'standby';
      return;
    }
    // No gateway CA: whatever chained to this term's certificate without being it is nobody.
    const gateways = this.opts.gateways;
    const refusal = cert && gateways ? gateways.refusal(cert) : 'issuer';
    if (refusal) {
      this.refuse(s, refusal, cert);
      return;
    }
    s[PEER] = 'gateway';
    this.gatewaySockets.set(s, cert as X509Certificate);
  }

  /**
   * Destroys a refused connection (no HTTP answer: it is not a peer), counts it, and logs it with
   * the certificate's subject and serial only (at most once a minute per certificate and reason).
   */
  private refuse(s: TLSSocket, reason: GatewayRefusal, cert: X509Certificate | undefined): void {
    const remote = s.remoteAddress;
    s.destroy();
    this.opts.onPeerRejected(reason);
    const key = `${reason} ${cert?.fingerprint256 ?? remote}`;
    const now = Date.now();
    const last = this.refusalsLogged.get(key);
    if (last && now - last.at < REFUSAL_LOG_INTERVAL_MS) {
      last.suppressed++;
      return;
    }
    if (this.refusalsLogged.size >= REFUSAL_LOG_KEYS) this.refusalsLogged.clear();
    this.refusalsLogged.set(key, { at: now, suppressed: 0 });
    this.opts.log.warn(
      {
        reason,
        subject: cert?.subject ?? null,
        serial: cert?.serialNumber ?? null,
        remote,
        not_logged_since: last?.suppressed ?? 0,
      },
      'cluster connection refused: not an admitted gateway',
    );
  }

  /** After the revocation list changed: cuts open gateway connections whose certificate is now refused. */
  private recheckGateways(): void {
    for (const [s, cert] of this.gatewaySockets) {
      const refusal = this.opts.gateways?.refusal(cert);
      if (!refusal) continue;
      this.gatewaySockets.delete(s);
      this.refuse(s, refusal, cert);
    }
  }

  private onRequest(req: Http2ServerRequest, res: Http2ServerResponse): void {
    const url = req.url ?? '/';
    const peer = peerOf(req);
    if (peer === undefined) {
      // Not admitted: such connections are destroyed before a request is parsed; should one get
      // here anyway, it is not answered either. (An HTTP/2 session's socket may not be destroyed
      // directly: end the session.)
      if (req.stream?.session) req.stream.session.destroy();
      else req.socket?.destroy();
      return;
    }
    if (url.startsWith(CLUSTER_PATH_PREFIX)) {
      if (peer !== 'standby') {
        sendError(res, new LwError('LW_ERR_NOT_FOUND', ''));
        return;
      }
      this.opts.internal(req, res, url.slice(CLUSTER_PATH_PREFIX.length));
      return;
    }
    if (this.stopped) {
      // Nothing is served once we stop being active; the caller retries on the next leader
      // (LW_ERR_DRAINING is "not served" in shared/errors.ts).
      const draining = new LwError('LW_ERR_DRAINING', 'node is not active');
      sendError(res, draining, draining.notServed ? { [NOT_SERVED_HEADER]: draining.code } : {});
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
    this.unsubscribe?.();
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
