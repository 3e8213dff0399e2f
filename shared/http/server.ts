/**
 * The API-facing listener of the node and the gateway: plain HTTP or HTTPS (certificate
 * reloaded without a restart, tls-reload.ts), optional PROXY protocol (proxy-protocol.ts), the
 * raw LIST verb (list-method.ts), OpenBao's HTTP timeouts, and malformed requests — bad request
 * lines, oversized or invalid headers — answered with Vault-shaped JSON rather than Node's bare
 * default, and never a crash.
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ListenerSettings } from '../config/listener';
import { LwError } from '../errors';
import { hasBody } from '../forward/policy';
import { acceptListMethod, ListAwareIncomingMessage, listResumed } from './list-method';
import { acceptProxyProtocol, type ProxyOutcome } from './proxy-protocol';
import { rawErrorResponse, sendError } from './respond';
import { TlsCertificates } from './tls-reload';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export interface ApiListenerHooks {
  log: Logger;
  /** A certificate reload found new files: taken or refused. */
  onTlsReload?(ok: boolean, notAfter: Date | null): void;
  /** What each connection's PROXY header (or its absence) led to. */
  onProxyProtocol?(outcome: ProxyOutcome): void;
  /** A client connection was accepted (connection churn shows keep-alive trouble). */
  onConnection?(): void;
  /** A connection was closed at accept: MAX_PENDING_HANDSHAKES were in progress. */
  onHandshakeRefused?(): void;
}

/** How often timed-out requests are looked for. */
const CONNECTIONS_CHECK_MS = 1_000;
/**
 * The most TLS handshakes in progress at once; a connection over it is closed at accept. Each
 * costs OpenSSL about 50 KiB, and glibc keeps the peak (measured: 2,000 stalled handshakes took a
 * gateway from 85 to 190 MiB, still held after they were destroyed), so the peak must be bounded
 * where it is made: 1,024 is ~50 MiB, while real clients finish a handshake in milliseconds.
 */
export const MAX_PENDING_HANDSHAKES = 1_024;
const SECURED = Symbol('handshake done');

/** An HTTP/1.1 upgrade request, as llhttp tells one: an Upgrade header and `Connection: upgrade`. */
function asksUpgrade(req: http.IncomingMessage): boolean {
  return (
    req.headers.upgrade !== undefined && /(^|,)\s*upgrade\s*(,|$)/i.test(String(req.headers.connection ?? ''))
  );
}

/** One API listener. `listen()` binds it; `closeGracefully()` drains it; `reloadTls()` on SIGHUP. */
export class ApiListener {
  readonly server: Server;
  private readonly certs: TlsCertificates | null;
  private readonly sockets = new Set<Socket>();
  private pendingHandshakes = 0;

  /**
   * `listShim`: `lazy` (the gateway) reads connections natively until one sends a raw LIST;
   * `eager` (nodes) reads every connection through the LIST shim, in JavaScript, from its start —
   * how a node's memory under large write bodies was measured and bounded (list-method.ts).
   */
  constructor(
    private readonly settings: ListenerSettings,
    onRequest: RequestListener,
    hooks: ApiListenerHooks,
    listShim: 'lazy' | 'eager' = 'lazy',
  ) {
    const t = settings.timeouts;
    const options = {
      keepAliveTimeout: t.idleMs,
      headersTimeout: t.readMs > 0 ? Math.min(t.readHeaderMs, t.readMs) : t.readHeaderMs,
      requestTimeout: t.readMs,
      // Node checks the two timeouts above only this often (30 s by default, which would let a
      // slow sender hold its request that much past the read timeout).
      connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
      // Node would answer a missing Host with a bare 400 (no JSON, no Cache-Control): we do it.
      requireHostHeader: false,
      // Reports LIST for requests the raw-LIST shim rewrote (see list-method.ts).
      IncomingMessage: ListAwareIncomingMessage,
    };
    const handler: RequestListener = (req, res) => {
      if (req.httpVersion === '1.1' && req.headers.host === undefined) {
        res.shouldKeepAlive = false;
        sendError(res, new LwError('LW_ERR_BAD_REQUEST', 'missing required Host header'));
        req.resume();
        return;
      }
      // With no 'upgrade' listener (nodes), Node hands an upgrade request over as an ordinary one
      // but stops parsing at its head: a body that does not parse (a bad chunk) then never ends
      // nor errors, and a standby forwarding it would wait out the read timeout. Nothing here
      // upgrades, so such a request may carry no body.
      if (asksUpgrade(req) && hasBody(req.headers)) {
        res.shouldKeepAlive = false;
        sendError(res, new LwError('LW_ERR_BAD_REQUEST', 'a protocol upgrade request cannot carry a body'));
        return;
      }
      if (t.writeMs > 0) {
        const timer = setTimeout(() => res.destroy(), t.writeMs);
        res.once('close', () => clearTimeout(timer));
      }
      onRequest(req, res);
    };
    this.certs = settings.tls
      ? new TlsCertificates(settings.tls, { log: hooks.log, onReload: hooks.onTlsReload })
      : null;
    // A TLS handshake gets the read-header timeout, as OpenBao's (Go's ReadHeaderTimeout covers
    // it) and HAProxy's `timeout client-hs`; Node's default is 120 s. It ends in 'clientError',
    // which destroys the socket (answerClientError).
    const server = this.certs
      ? https.createServer({ ...options, ...this.certs.options(), handshakeTimeout: t.readHeaderMs }, handler)
      : http.createServer(options, handler);
    this.server = server;
    acceptListMethod(
      server,
      listShim === 'eager' ? (this.certs ? 'secureConnection' : 'connection') : undefined,
    );
    guardSockets(server);
    server.on('clientError', answerClientError);
    if (hooks.onConnection) server.on('connection', () => hooks.onConnection?.());
    // Remember each connection's current response, so a parse error after it was sent is not answered twice.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      (req.socket as Duplex & { [CURRENT]?: ServerResponse })[CURRENT] = res;
    });
    // PROXY protocol takes over every 'connection' listener installed above (the gate below
    // wraps it in turn).
    if (settings.proxyProtocol) {
      acceptProxyProtocol(
        server,
        settings.proxyProtocol,
        { tls: this.certs !== null, headerTimeoutMs: t.readHeaderMs },
        hooks.onProxyProtocol,
      );
    }
    // Every raw connection from accept (before a PROXY header or a TLS handshake) to close, so a
    // shutdown can cut the ones Node's HTTP server does not know yet; on TLS, handshakes in
    // progress are bounded. This wraps every 'connection' listener above, PROXY protocol's too,
    // so a connection refused here reaches none of them.
    const tls = this.certs !== null;
    const accept = server.listeners('connection') as Array<(s: Socket) => void>;
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket & { [SECURED]?: boolean }) => {
      if (tls && this.pendingHandshakes >= MAX_PENDING_HANDSHAKES) {
        hooks.onHandshakeRefused?.();
        socket.on('error', () => undefined);
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      if (tls) this.pendingHandshakes++;
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (tls && !socket[SECURED]) this.pendingHandshakes--;
      });
      for (const listener of accept) listener.call(server, socket);
    });
    if (tls) {
      server.on('secureConnection', (s: Socket & { _parent?: Socket & { [SECURED]?: boolean } }) => {
        const raw = s._parent;
        if (raw && !raw[SECURED]) {
          raw[SECURED] = true;
          this.pendingHandshakes--;
        }
      });
    }
  }

  /** Binds the listener; resolves once bound (rejects on EADDRINUSE etc.). */
  listen(): Promise<void> {
    const { host, port } = this.settings.listen;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        if (this.certs) this.certs.attach(this.server as https.Server);
        resolve();
      });
    });
  }

  /** The bound address (useful with port 0). */
  address(): { host: string; port: number } {
    const a = this.server.address();
    return typeof a === 'object' && a ? { host: a.address, port: a.port } : this.settings.listen;
  }

  /** When the served certificate expires (null without TLS). */
  certificateNotAfter(): Date | null {
    return this.certs?.notAfter() ?? null;
  }

  /** Reloads the TLS certificate (SIGHUP). False when the new files were refused; true without TLS. */
  reloadTls(): boolean {
    return this.certs?.reload('sighup') ?? true;
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts what is left.
   * `inFlight` reports how many requests are still running.
   */
  async closeGracefully(inFlight: () => number, graceMs: number): Promise<void> {
    this.certs?.close();
    const server = this.server;
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (inFlight() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      server.closeIdleConnections();
    }
    server.closeAllConnections();
    // Connections still in a TLS handshake or before their PROXY header: Node's HTTP server has
    // no parser for them yet, so closeAllConnections does not see them.
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

const CURRENT = Symbol('current response');

/** Destroys a socket that failed; its one job is to be a listener that is never removed. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * Gives every connection of `server` an 'error' listener from accept to close — the raw socket
 * and, on TLS, the TLS socket. Node's HTTP server removes its own listener when it hands a socket
 * to an 'upgrade' handler, so a client that resets an upgrade before the handler is done would
 * otherwise raise an unhandled 'error' and end the process.
 */
export function guardSockets(server: NetServer): void {
  const guard = (socket: Duplex) => {
    if (!socket.listeners('error').includes(destroyOnError)) socket.on('error', destroyOnError);
  };
  server.on('connection', guard);
  server.on('secureConnection', guard);
}

/**
 * Answers a request Node could not parse with a JSON error, then closes the connection
 * (a server's 'clientError' listener; the cluster listener's HTTP/1.1 side uses it too).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A LIST request line llhttp refused, and list-method.ts resumed: nothing to answer.
  if (listResumed(err)) return;
  // The current request was already answered (early, before its body turned out malformed):
  // another response would be read as the answer to the client's next request. Just close.
  const answered = (socket as Duplex & { [CURRENT]?: ServerResponse })[CURRENT]?.headersSent;
  // A TLS handshake that failed or timed out has no HTTP to answer in; nor has a dead socket.
  if (err.code === 'ECONNRESET' || !socket.writable || answered || tlsLevel(err, socket)) {
    socket.destroy();
    return;
  }
  let e = new LwError('LW_ERR_BAD_REQUEST', 'malformed request');
  if (err.code === 'HPE_HEADER_OVERFLOW')
    e = new LwError('LW_ERR_HEADERS_TOO_LARGE', 'request headers are too large');
  else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT')
    e = new LwError('LW_ERR_REQUEST_TIMEOUT', 'request timed out');
  socket.end(rawErrorResponse(e));
  // The answer is a courtesy: a peer that does not read it (or never finishes closing) is cut.
  setTimeout(() => socket.destroy(), ERROR_LINGER_MS).unref();
}

/** How long a connection answered with an error may take to close before it is destroyed. */
const ERROR_LINGER_MS = 2_000;

/** Whether a client error happened below HTTP: a TLS socket whose handshake never completed. */
function tlsLevel(err: NodeJS.ErrnoException, socket: Duplex): boolean {
  if (err.code?.startsWith('ERR_TLS') || err.code?.startsWith('ERR_SSL')) return true;
  const tls = socket as Duplex & { encrypted?: boolean; _secureEstablished?: boolean };
  return tls.encrypted === true && tls._secureEstablished !== true;
}
