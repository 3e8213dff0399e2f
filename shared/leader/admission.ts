/**
 * A gate in front of a connection pool: at most `limit` requests are inside the pool at once;
 * the rest wait here, in order. A request whose client leaves while it waits is simply dropped
 * from this queue. Without the gate it would wait in undici's own queue, and undici aborts such a
 * request only once it reaches a connection — by destroying that healthy connection, so a burst
 * of client disconnects turned into a burst of new mutual-TLS handshakes (measured: throughput
 * fell from ~2,900 to ~200 req/s for seconds).
 *
 * Waiting is bounded: a request not admitted within its `maxWaitMs` (the gateway's failover
 * wait) gives up with 'timeout', so a burst the leader cannot absorb is shed with a 503 instead
 * of queueing without end.
 */

/**
 * What a waiter can be cancelled by (see ClientGone): `aborted` now, or later through the one
 * callback `onAbort` holds (a request is only ever waiting in one place at a time).
 */
export interface Cancellation {
  readonly aborted: boolean;
  onAbort(fn: (() => void) | undefined): void;
}

/** How an `enter` ended: admitted (call `leave` later), the caller went away, or the wait ran out. */
export type Admitted = 'admitted' | 'aborted' | 'timeout';
const ADMITTED: Promise<Admitted> = Promise.resolve('admitted');
const ABORTED: Promise<Admitted> = Promise.resolve('aborted');

export class Admission {
  private inside = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  /** Requests waiting to be admitted. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Waits for a place, at most `maxWaitMs`, or until `cancel` aborts. */
  enter(cancel: Cancellation | undefined, maxWaitMs: number): Promise<Admitted> {
    if (cancel?.aborted) return ABORTED;
    if (this.inside < this.limit) {
      this.inside++;
      return ADMITTED;
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => done('timeout'), Math.max(0, maxWaitMs));
      const admit = () => {
        clearTimeout(timer);
        cancel?.onAbort(undefined);
        this.inside++;
        resolve('admitted');
      };
      const done = (how: Admitted) => {
        clearTimeout(timer);
        cancel?.onAbort(undefined);
        const i = this.waiting.indexOf(admit);
        if (i !== -1) this.waiting.splice(i, 1);
        resolve(how);
      };
      cancel?.onAbort(() => done('aborted'));
      this.waiting.push(admit);
    });
  }

  /** Leaves the pool, letting the next waiter in. */
  leave(): void {
    this.inside--;
    this.waiting.shift()?.();
  }
}
