/**
 * Sends one client request to the leader over its pool and streams the answer back, without
 * buffering. Reports what happened in terms a retry policy can use: whether the leader served
 * the request, refused it unserved (nothing stored), could not have received it, or may have.
 */
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { downstreamHeaders } from '../http/headers';
import { NOT_SERVED_HEADER } from '../http/internal-headers';
import type { AnyResponse } from '../http/respond';

/** What one attempt achieved. */
export type ProxyOutcome =
  /** A response was sent to the client (any status). */
  | { kind: 'served'; status: number }
  /** The leader answered that it did not serve the request; nothing was stored, nothing sent to the client. */
  | { kind: 'not-served'; status: number; code: string }
  /** A 307 came back; nothing was sent to the client. */
  | { kind: 'redirect'; location: string }
  /** The request never reached the leader (connect refused, TLS failure, pool closed). */
  | { kind: 'not-sent'; error: string }
  /** The connection failed after the request may have reached the leader. */
  | { kind: 'maybe-sent'; error: string }
  /** Failed after response bytes were sent to the client; the client connection was reset. */
  | { kind: 'broken'; error: string };

/** Error codes that mean the request bytes never left this process. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_DESTROYED',
  'UND_ERR_CLOSED',
]);

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  // DOMException (an abort) has a numeric code; only string codes name a system/undici error.
  const code = typeof e?.cause?.code === 'string' ? e.cause.code : e?.code;
  return typeof code === 'string' ? code : (e as Error | null)?.name || 'UNKNOWN';
}

/** True for TLS handshake failures: the request was never sent over a failed handshake. */
function isTlsError(code: string): boolean {
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|UNABLE_TO|DEPTH_ZERO/.test(code);
}

/** Discards a response body we decided not to pass on. */
function sink(): Writable {
  return new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });
}

/** Options for one attempt. */
export interface ProxyAttempt {
  method: string;
  path: string;
  headers: string[];
  body: Readable | null;
  res: AnyResponse;
  /** Pass 307s to the client (standby forwarding) or intercept them (gateway). */
  interceptRedirects: boolean;
  /** Aborts the upstream request (the client went away). */
  signal?: AbortSignal;
}

/** Runs one attempt. Never throws. */
export async function proxyOnce(dispatcher: Dispatcher, a: ProxyAttempt): Promise<ProxyOutcome> {
  let intercepted: ProxyOutcome | undefined;
  let started = false;
  let status = 0;
  try {
    await dispatcher.stream(
      {
        method: a.method as Dispatcher.HttpMethod,
        path: a.path,
        headers: a.headers,
        body: a.body,
        signal: a.signal,
      },
      ({ statusCode, headers }) => {
        const h = headers as Record<string, string | string[] | undefined>;
        const notServed = h[NOT_SERVED_HEADER];
        if (statusCode === 503 && notServed) {
          intercepted = { kind: 'not-served', status: statusCode, code: String(notServed) };
          return sink();
        }
        if (statusCode === 307 && a.interceptRedirects) {
          intercepted = { kind: 'redirect', location: String(h.location ?? '') };
          return sink();
        }
        started = true;
        status = statusCode;
        a.res.writeHead(statusCode, downstreamHeaders(h));
        return a.res as unknown as Writable;
      },
    );
  } catch (err) {
    const code = errorCode(err);
    if (intercepted) return intercepted;
    // The client went away: nothing to answer, nothing to retry.
    if (a.signal?.aborted) return { kind: 'broken', error: 'client-aborted' };
    if (started) return { kind: 'broken', error: code };
    if (NOT_SENT_CODES.has(code) || isTlsError(code)) return { kind: 'not-sent', error: code };
    return { kind: 'maybe-sent', error: code };
  }
  return intercepted ?? { kind: 'served', status };
}
