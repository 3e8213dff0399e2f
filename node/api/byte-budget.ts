/**
 * A semaphore of bytes: what the active node's responses may hold in memory at once (see
 * `response-hold.ts` for how a request uses it). Bytes are handed out in strict arrival order —
 * a large request at the head of the queue is not overtaken by small ones behind it, so it
 * cannot starve — and a wait is bounded: a request not served within its `maxWaitMs` gives up
 * with 'timeout' (the caller answers 503), one whose client left gives up with 'aborted'.
 *
 * Bytes given back are garbage until V8 collects them, and V8 collects late after large
 * allocations read natively: three 30 MiB writes admitted one after the other piled onto each
 * other's garbage (RSS +411 MiB where one alone costs ~320). With a `collector`, each time a
 * budget-full of bytes has been given back by large holds (an eighth of the budget or more;
 * small requests' garbage is the young generation's) the budget runs it (a full collection) before it lets
 * the next waiter in, so what requests leave behind is bounded by the budget, not V8's heuristics.
 */

/** How a wait for bytes ended: granted (give them back with `release`), cancelled, or too long. */
export type Granted = 'granted' | 'aborted' | 'timeout';
const GRANTED: Promise<Granted> = Promise.resolve('granted');
const ABORTED: Promise<Granted> = Promise.resolve('aborted');

interface Waiter {
  bytes: number;
  grant(): void;
}

/** A hold of at least capacity / this counts towards a collection (3 MiB of the default 24). */
const LARGE_HOLD_FRACTION = 8;

/** Run once per `capacity` bytes of large holds given back, before waiters are let in. */
export type Collector = () => void;

export class ByteBudget {
  private taken = 0;
  /** Bytes given back since the collector last ran. */
  private givenBack = 0;
  private readonly queue: Waiter[] = [];

  /** `capacity`: the most bytes handed out at once by `acquire` (a positive number). */
  constructor(
    readonly capacity: number,
    private readonly collector?: Collector,
  ) {
    if (!(capacity > 0)) throw new RangeError('a byte budget needs a positive capacity');
  }

  /** Bytes held now (may exceed the capacity by what `add` forced in). */
  get held(): number {
    return this.taken;
  }

  /** Requests waiting for bytes. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Waits until `bytes` (at most the capacity) fit beside what is held and every earlier waiter
   * has been served, at most `maxWaitMs`, or until `signal` aborts. Zero bytes are granted at once.
   */
  acquire(bytes: number, signal: AbortSignal | undefined, maxWaitMs: number): Promise<Granted> {
    if (!(bytes >= 0 && bytes <= this.capacity)) throw new RangeError('bytes must be within the capacity');
    if (signal?.aborted) return ABORTED;
    if (bytes === 0 || this.tryTake(bytes)) return GRANTED;
    return new Promise((resolve) => {
      const end = (how: Granted): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.queue.indexOf(waiter);
        if (i !== -1) this.queue.splice(i, 1);
        // A large waiter leaving the head may let smaller ones behind it in.
        if (i === 0) this.drain();
        resolve(how);
      };
      const onAbort = (): void => end('aborted');
      const waiter: Waiter = {
        bytes,
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve('granted');
        },
      };
      const timer = setTimeout(() => end('timeout'), Math.max(0, maxWaitMs));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /**
   * Takes `bytes` (at most the capacity) now if they fit and nobody waits; false otherwise (then
   * `acquire` queues). Lets the common case skip what a wait needs (a signal, a timer).
   */
  tryTake(bytes: number): boolean {
    if (!(bytes >= 0) || this.queue.length > 0 || this.taken + bytes > this.capacity) return false;
    this.taken += bytes;
    return true;
  }

  /**
   * Takes `bytes` without waiting, even past the capacity: for a holder that must not wait while
   * it holds bytes (waiting then could deadlock with the requests it keeps out).
   */
  add(bytes: number): void {
    if (bytes > 0) this.taken += bytes;
  }

  /** Gives back `bytes` taken by `acquire` or `add`, letting waiters in, in order. */
  release(bytes: number): void {
    if (bytes <= 0) return;
    this.taken = Math.max(0, this.taken - bytes);
    // Only large holds count: small requests' garbage is what V8's young generation collects
    // cheaply, and counting it would block the loop for a full collection under plain load.
    if (bytes >= this.capacity / LARGE_HOLD_FRACTION) this.givenBack += bytes;
    if (this.collector && this.givenBack >= this.capacity) {
      this.givenBack = 0;
      this.collector();
    }
    this.drain();
  }

  private drain(): void {
    for (let head = this.queue[0]; head && this.taken + head.bytes <= this.capacity; head = this.queue[0]) {
      this.queue.shift();
      this.taken += head.bytes;
      head.grant();
    }
  }
}
