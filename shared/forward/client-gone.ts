/**
 * Whether a request's client went away while the request is held or forwarded.
 */
import type { Cancellation } from '../leader/admission';

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
