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
 * of queueing without end. With a per-key limit (the gateway's upload lane, keyed by client
 * address) one key holds at most that many places, and waiting keys are served in turn.
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

export interface AdmissionOptions {
  /**
   * At most this many places per key (the gateway's upload lane: a client address), so one key
   * cannot take every place; default: no limit per key.
   */
  perKey?: number;
}

export class Admission {
  private inside = 0;
  private waiters = 0;
  /**
   * Waiters by key, each key's in order of arrival; the keys in the order they are served next
   * (round robin: a key that was served moves to the back), so a key with many waiters does not
   * make the others wait behind all of them. Without per-key limits there is one key: FIFO.
   */
  private readonly waiting = new Map<string, Array<() => void>>();
  /** Places taken per key (only counted with a per-key limit). */
  private readonly byKey = new Map<string, number>();
  private readonly perKey: number;

  constructor(
    private readonly limit: number,
    o: AdmissionOptions = {},
  ) {
    this.perKey = o.perKey ?? Number.POSITIVE_INFINITY;
  }

  /** Requests waiting to be admitted. */
  get queued(): number {
    return this.waiters;
  }

  /** Places taken (admitted and not yet left). */
  get inUse(): number {
    return this.inside;
  }

  /** Places `key` holds (0 without a per-key limit). */
  heldBy(key: string): number {
    return this.byKey.get(key) ?? 0;
  }

  /**
   * Waits for a place, at most `maxWaitMs`, or until `cancel` aborts. `key` (a client address)
   * counts against the per-key limit; `leave` must be given the same key.
   */
  enter(cancel: Cancellation | undefined, maxWaitMs: number, key = ''): Promise<Admitted> {
    if (cancel?.aborted) return ABORTED;
    // A waiter exists only while the pool is full or its key is at its limit, and each `leave`
    // admits the next one that may enter: a newcomer with room jumps no one.
    if (this.hasRoom(key)) {
      this.take(key);
      return ADMITTED;
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => done('timeout'), Math.max(0, maxWaitMs));
      const admit = () => {
        clearTimeout(timer);
        cancel?.onAbort(undefined);
        this.take(key);
        resolve('admitted');
      };
      const done = (how: Admitted) => {
        clearTimeout(timer);
        cancel?.onAbort(undefined);
        this.drop(key, admit);
        resolve(how);
      };
      cancel?.onAbort(() => done('aborted'));
      const line = this.waiting.get(key);
      if (line) line.push(admit);
      else this.waiting.set(key, [admit]);
      this.waiters++;
    });
  }

  /** Leaves the pool, letting the next waiter that may enter in. */
  leave(key = ''): void {
    this.inside--;
    if (this.perKey !== Number.POSITIVE_INFINITY) {
      const left = (this.byKey.get(key) ?? 0) - 1;
      if (left > 0) this.byKey.set(key, left);
      else this.byKey.delete(key);
    }
    if (this.waiters > 0) this.admitNext();
  }

  private hasRoom(key: string): boolean {
    if (this.inside >= this.limit) return false;
    return this.perKey === Number.POSITIVE_INFINITY || (this.byKey.get(key) ?? 0) < this.perKey;
  }

  private take(key: string): void {
    this.inside++;
    if (this.perKey !== Number.POSITIVE_INFINITY) this.byKey.set(key, (this.byKey.get(key) ?? 0) + 1);
  }

  /** Admits the first waiter, in round-robin order of keys, whose key has room. */
  private admitNext(): void {
    for (const [key, line] of this.waiting) {
      if (!this.hasRoom(key)) {
        if (this.inside >= this.limit) return;
        continue;
      }
      const admit = line.shift() as () => void;
      this.waiters--;
      this.waiting.delete(key);
      if (line.length > 0) this.waiting.set(key, line);
      admit();
      return;
    }
  }

  /** Removes a waiter that gave up. */
  private drop(key: string, admit: () => void): void {
    const line = this.waiting.get(key);
    const i = line ? line.indexOf(admit) : -1;
    if (!line || i === -1) return;
    line.splice(i, 1);
    this.waiters--;
    if (line.length === 0) this.waiting.delete(key);
  }
}
