/**
 * Sends one client request to the leader over its pool and streams the answer back, without
 * buffering. Reports what happened as a ProxyOutcome (shared/forward/outcome.ts): whether the
 * leader served the request, refused it unserved (nothing stored), could not have received it,
 * or may have.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ClientGone } from '../forward/client-gone';
import { classify, type ProxyOutcome } from '../forward/outcome';
import { rawResponseHeaders } from '../http/headers';
import type { AnyResponse } from '../http/respond';

/** Options for one attempt. */
export interface ProxyAttempt {
  method: string;
  path: string;
  headers: string[];
  /** The body: a whole one in memory (one Buffer or its chunks), a stream, or none. */
  body: Buffer | Iterable<Buffer> | Readable | null;
  res: AnyResponse;
  /** Pass 307s to the client (standby forwarding) or intercept them (gateway). */
  interceptRedirects: boolean;
  /** The client went away: abort the upstream request. */
  gone?: ClientGone;
}

const CLIENT_GONE = 'client-aborted';

/**
 * An undici dispatch handler that writes the leader's answer straight into the client's response
 * (backpressure: a full response pauses the upstream socket until 'drain'), or swallows an answer
 * the caller intercepts (a "not served" 503, a 307 for the gateway). Using `dispatch` rather than
 * `stream` spares, per request, an AbortController and its listeners, a parsed header object, a
 * stream wrapper and its `finished` watcher. It implements the callback interface undici 7's core
 * calls directly (the newer controller interface goes through an adapter object per request).
 * An exception thrown here (e.g. `writeHead` refusing a header value) makes undici abort the
 * request, which arrives in `onError`.
 */
class ProxyHandler implements Dispatcher.DispatchHandler {
  private intercepted: ProxyOutcome | undefined;
  private started = false;
  private status = 0;
  private resume: (() => void) | undefined;
  private settled = false;

  constructor(
    private readonly a: ProxyAttempt,
    private readonly done: (outcome: ProxyOutcome) => void,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    const gone = this.a.gone;
    if (gone?.aborted) abort(new Error(CLIENT_GONE));
    else gone?.onAbort(() => abort(new Error(CLIENT_GONE)));
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    // 1xx interim answers: Node's server already answered `100 Continue` itself.
    if (statusCode < 200) return true;
    const h = rawResponseHeaders(raw);
    if (statusCode === 503 && h.notServed) {
      this.intercepted = { kind: 'not-served', status: statusCode, code: h.notServed };
      return true;
    }
    if (statusCode === 307 && this.a.interceptRedirects) {
      this.intercepted = { kind: 'redirect', location: h.location ?? '' };
      return true;
    }
    this.started = true;
    this.status = statusCode;
    this.resume = resume;
    this.a.res.writeHead(statusCode, h.pass as unknown as OutgoingHttpHeaders);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.intercepted) return true;
    const res = this.a.res as ServerResponse;
    if (res.destroyed) return true;
    if (res.write(chunk)) return true;
    res.once('drain', this.resume as () => void);
    return false;
  }

  onComplete(): void {
    if (!this.intercepted) this.a.res.end();
    this.settle(this.intercepted ?? { kind: 'served', status: this.status });
  }

  onError(err: Error): void {
    this.settle(this.outcomeOf(err));
  }

  private outcomeOf(err: Error): ProxyOutcome {
    if (this.intercepted) return this.intercepted;
    // The client went away: nothing to answer, nothing to retry.
    if (this.a.gone?.aborted) return { kind: 'broken', error: CLIENT_GONE };
    const sent = classify(err);
    if (this.started) {
      // Part of the answer is out: the client's connection is all that can tell it.
      this.a.res.destroy();
      return { kind: 'broken', error: sent.error };
    }
    return sent;
  }

  private settle(outcome: ProxyOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.a.gone?.onAbort(undefined);
    this.done(outcome);
  }
}

/** Runs one attempt. Never throws. */
export function proxyOnce(dispatcher: Dispatcher, a: ProxyAttempt): Promise<ProxyOutcome> {
  return new Promise((resolve) => {
    dispatcher.dispatch(
      {
        method: a.method as Dispatcher.HttpMethod,
        path: a.path,
        headers: a.headers,
        // undici sends an iterable of chunks as it comes (its types leave iterables out).
        body: a.body as Dispatcher.DispatchOptions['body'],
      },
      new ProxyHandler(a, resolve),
    );
  });
}
