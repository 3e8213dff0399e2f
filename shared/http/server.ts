/**
 * The API-facing listener of the node and the gateway: plain HTTP or HTTPS (certificate
 * reloaded without a restart, tls-reload.ts), optional PROXY protocol (proxy-protocol.ts), the
 * raw LIST verb (list-method.ts), OpenBao's HTTP timeouts, and malformed requests — bad request
 * lines, oversized or invalid headers — answered with Vault-shaped JSON rather than Node's bare
 * default, and never a crash.
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ListenerSettings } from '../config/listener';
import { LwError } from '../errors';
import { acceptListMethod, ListAwareIncomingMessage } from './list-method';
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
}

/** How often timed-out requests are looked for. */
const CONNECTIONS_CHECK_MS = 1_000;

/** One API listener. `listen()` binds it; `closeGracefully()` drains it; `reloadTls()` on SIGHUP. */
export class ApiListener {
  readonly server: Server;
  private readonly certs: TlsCertificates | null;

  constructor(
    private readonly settings: ListenerSettings,
    onRequest: RequestListener,
    hooks: ApiListenerHooks,
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
      if (t.writeMs > 0) {
        const timer = setTimeout(() => res.destroy(), t.writeMs);
        res.once('close', () => clearTimeout(timer));
      }
      onRequest(req, res);
    };
    this.certs = settings.tls
      ? new TlsCertificates(settings.tls, { log: hooks.log, onReload: hooks.onTlsReload })
      : null;
    const server = this.certs
      ? https.createServer({ ...options, ...this.certs.options() }, handler)
      : http.createServer(options, handler);
    this.server = server;
    acceptListMethod(server, this.certs ? 'secureConnection' : 'connection');
    guardSockets(server);
    server.on('clientError', answerClientError);
    if (hooks.onConnection) server.on('connection', () => hooks.onConnection?.());
    // Remember each connection's current response, so a parse error after it was sent is not answered twice.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      (req.socket as Duplex & { [CURRENT]?: ServerResponse })[CURRENT] = res;
    });
    // Last: it takes over every 'connection' listener installed above.
    if (settings.proxyProtocol) {
      acceptProxyProtocol(server, settings.proxyProtocol, this.certs !== null, hooks.onProxyProtocol);
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
export function guardSockets(server: Server): void {
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
  // The current request was already answered (early, before its body turned out malformed):
  // another response would be read as the answer to the client's next request. Just close.
  const answered = (socket as Duplex & { [CURRENT]?: ServerResponse })[CURRENT]?.headersSent;
  if (err.code === 'ECONNRESET' || !socket.writable || answered) {
    socket.destroy();
    return;
  }
  let e = new LwError('LW_ERR_BAD_REQUEST', 'malformed request');
  if (err.code === 'HPE_HEADER_OVERFLOW')
    e = new LwError('LW_ERR_HEADERS_TOO_LARGE', 'request headers are too large');
  else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT')
    e = new LwError('LW_ERR_REQUEST_TIMEOUT', 'request timed out');
  socket.end(rawErrorResponse(e));
}
