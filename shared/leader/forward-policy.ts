/**
 * What a proxy of client requests to the leader may do after an attempt that did not serve the
 * request, decided in one place for the gateway and for standbys: retry it (nothing happened, or
 * it is idempotent), or tell the client its outcome is unknown (it may have run).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { LwError } from '../errors';
import type { Cancellation } from './admission';
import type { ProxyOutcome } from './proxy-request';

/**
 * Retrying a request the leader did not serve: wait this long (doubling up to the cap) for a new
 * leader before trying the same one again. A Redis failover keeps the leader, so the cap is how
 * late a held request may notice that storage is back.
 */
export const RETRY_BACKOFF_MS = 50;
export const RETRY_BACKOFF_MAX_MS = 250;

/** Methods whose repetition changes nothing (Vault's LIST included). */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'LIST']);

/** What one forwarding attempt achieved (proxy-request.ts), or why it was not made. */
export type ForwardOutcome =
  | ProxyOutcome
  /** No place in the leader's pool within the wait. */
  | { kind: 'busy' }
  /** The client went away while waiting for a place. */
  | { kind: 'aborted' };

/** Whether a request carries a body (which a retry must send again). */
export function hasBody(headers: IncomingHttpHeaders): boolean {
  const len = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/**
 * After an attempt: `done` (answered, broken mid-answer, client gone, or busy: the caller
 * answers), `retry` (nothing happened, or the request is idempotent), `unknown` (it may have run).
 */
export function afterAttempt(outcome: ForwardOutcome, method: string): 'done' | 'retry' | 'unknown' {
  switch (outcome.kind) {
    case 'served':
    case 'broken':
    case 'aborted':
    case 'busy':
      return 'done';
    case 'maybe-sent':
      return IDEMPOTENT.has(method) ? 'retry' : 'unknown';
    default:
      return 'retry';
  }
}

/**
 * Whether a request's client went away (its response closed before it was finished), and who to
 * tell: the one thing the request is waiting on right now (`onAbort`: its place in an admission
 * queue, then its upstream request) or, lazily, an AbortSignal for the leader wait. The hot path
 * allocates no AbortController and adds no listener beyond one 'close' on the response.
 */
export class ClientGone implements Cancellation {
  aborted = false;
  private controller: AbortController | undefined;
  private current: (() => void) | undefined;

  constructor(res: { on(event: 'close', fn: () => void): unknown; writableFinished: boolean }) {
    res.on('close', () => {
      if (!res.writableFinished) this.abort();
    });
  }

  /** An AbortSignal that fires when the client leaves (created on first use). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** While set, `fn` is called (once) if the client leaves; `undefined` clears it. */
  onAbort(fn: (() => void) | undefined): void {
    this.current = fn;
  }

  private abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.controller?.abort();
    const fn = this.current;
    this.current = undefined;
    fn?.();
  }
}

/** The answer for a request that may have run on a leader that then failed. */
export function outcomeUnknownError(): LwError {
  return new LwError(
    'LW_ERR_OUTCOME_UNKNOWN',
    'the leader failed while handling this request; its outcome is unknown: check before retrying',
    { retryAfter: 1 },
  );
}
