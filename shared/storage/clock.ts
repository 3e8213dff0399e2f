/**
 * The monotonic clock and timers the lock logic runs on, injectable so unit tests can drive
 * renewals, deadlines and expiries deterministically (test/unit/lock.test.ts).
 */

/** A monotonic clock (ms) with timers. */
export interface Clock {
  now(): number;
  /** Schedules `fn`; the timer never keeps the process alive. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

/** `performance.now()` and Node's timers (unref'd). */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};
