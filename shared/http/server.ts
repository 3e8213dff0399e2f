/**
 * The API-facing HTTP server used by the node and the gateway: plain HTTP or HTTPS, bounded
 * header and request times (slow senders are cut off), and malformed requests — bad request
 * lines, oversized or invalid headers — answered with Vault-shaped JSON rather than Node's bare
 * default, and never a crash. The raw `LIST` verb is accepted (list-method.ts).
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { LwError } from '../errors';
import { acceptListMethod, ListAwareIncomingMessage } from './list-method';
import { sendError } from './respond';

/** A client must send its headers within this (slowloris guard). */
const HEADERS_TIMEOUT_MS = 10_000;
/** A whole request (headers and body) must arrive within this. */
const REQUEST_TIMEOUT_MS = 120_000;
/** Idle keep-alive connections are closed after this. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Creates the server (not yet listening). */
export function createApiServer(
  tls: { certFile: string; keyFile: string } | null,
  onRequest: RequestListener,
): Server {
  const options = {
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
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
    onRequest(req, res);
  };
  const server = tls
    ? https.createServer(
        { ...options, cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
        handler,
      )
    : http.createServer(options, handler);
  acceptListMethod(server, tls ? 'secureConnection' : 'connection');
  server.on('clientError', answerClientError);
  // Remember each connection's current response, so a parse error after it was sent is not answered twice.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    (req.socket as Duplex & { [CURRENT]?: ServerResponse })[CURRENT] = res;
  });
  return server;
}

const CURRENT = Symbol('current response');

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

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
  let status = 400;
  let message = 'malformed request';
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    message = 'request headers are too large';
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT') {
    status = 408;
    message = 'request timed out';
  }
  const body = JSON.stringify({ errors: [message] });
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Listens and resolves once bound (rejects on EADDRINUSE etc.). */
export function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts what is left.
 * `inFlight` reports how many requests are still running.
 */
export async function closeGracefully(
  server: Server,
  inFlight: () => number,
  graceMs: number,
): Promise<void> {
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
