/**
 * What one attempt to forward a client request to the leader achieved, in terms a retry
 * decision can use (see policy.ts), and the one place that turns a transport error into such an
 * outcome (`classify`).
 */

/** What one attempt that reached the leader's pool achieved (see proxy-request.ts). */
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

/** What one forwarding attempt achieved, or why it was not made (see LeaderClient.forward). */
export type ForwardOutcome =
  | ProxyOutcome
  /** No place in the leader's pool within the admission wait. */
  | { kind: 'busy' }
  /** The client went away while waiting for a place. */
  | { kind: 'aborted' };

/**
 * The error a retired leader pool fails its in-flight requests with (LeaderClient.destroy):
 * those requests may have reached the leader, so it must classify as `maybe-sent` — undici's own
 * UND_ERR_DESTROYED would say "never sent".
 */
export const LEADER_RETIRED = 'LW_ERR_LEADER_RETIRED';

/** Error codes that mean the request bytes never left this process. */
const NOT_SENT_CODES: ReadonlySet<string> = new Set([
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

/** The string code naming an error (its cause's first), else its name, else 'UNKNOWN'. */
export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  // DOMException (an abort) has a numeric code; only string codes name a system/undici error.
  const code = typeof e?.cause?.code === 'string' ? e.cause.code : e?.code;
  return typeof code === 'string' ? code : (e as Error | null)?.name || 'UNKNOWN';
}

/** True for TLS handshake failures: the request was never sent over a failed handshake. */
function isTlsError(code: string): boolean {
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|UNABLE_TO|DEPTH_ZERO/.test(code);
}

/**
 * A transport error on an attempt before any response byte reached the client: `not-sent` when
 * the request cannot have left this process (connect refused or timed out, TLS handshake
 * failed, pool closed), else `maybe-sent` — the leader may have received and run it (a reset
 * after sending, a retired pool: LEADER_RETIRED, anything unknown).
 */
export function classify(err: unknown): { kind: 'not-sent' | 'maybe-sent'; error: string } {
  const code = errorCode(err);
  if (NOT_SENT_CODES.has(code) || isTlsError(code)) return { kind: 'not-sent', error: code };
  return { kind: 'maybe-sent', error: code };
}
