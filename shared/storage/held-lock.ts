/**
 * The holder's side of the HA lock, written once over the `HABackend` primitives so every
 * backend gets the same timing guarantees.
 *
 * Safety rule: the holder must believe it is leader only while no peer can possibly hold the
 * lock. A peer can take it once the TTL has run out in the store, which is at the earliest
 * `ttl` after the last successful renew was *sent*. So the holder keeps a deadline on the
 * monotonic clock — `last successful renew sent + ttl − drift margin` — and declares the lock
 * lost by itself when it passes, whether or not it could reach the store.
 */
import type { HABackend, LockHolder } from './backend';
import { type Clock, realClock } from './clock';

/** Fraction of the TTL kept as a safety margin against clock-rate drift between us and Redis. */
const DRIFT_FRACTION = 0.1;
/** The margin is never under this, so short test TTLs keep a meaningful margin. */
const MIN_DRIFT_MS = 50;
/** The holder renews this many times per TTL, so two renews can fail before the deadline. */
const RENEWS_PER_TTL = 3;
/** After a failed renew (an error, not a refusal), retry this soon rather than a full period. */
const RENEW_RETRY_MS = 100;

/** A held lock. */
export interface HeldLock {
  readonly value: string;
  readonly epoch: number;
  /** Aborts once leadership is lost or released; `reason` says why. */
  readonly lost: AbortSignal;
  /** `released`, `renew-refused` or `deadline`, once `lost` has aborted. */
  readonly lostReason: string | undefined;
  /** True while the deadline has not passed and the lock was not lost. Synchronous and cheap. */
  isValid(): boolean;
  /** Stops renewing and deletes the lock if it still holds our value. Idempotent; never throws. */
  release(): Promise<void>;
}

/** Hooks for observing renew trouble (metrics, spans, logs). */
export interface HeldLockHooks {
  onRenewError?(err: unknown): void;
  onLost?(reason: string): void;
}

/** Tries once to take the lock; resolves the held lock or null when someone else holds it. */
export async function tryLock(
  ha: HABackend,
  value: string,
  ttlMs: number,
  hooks: HeldLockHooks = {},
  clock: Clock = realClock,
): Promise<HeldLock | null> {
  const sentAt = clock.now();
  const epoch = await ha.acquire(value, ttlMs);
  if (epoch === null) return null;
  return new RenewingLock(ha, value, epoch, ttlMs, sentAt, hooks, clock);
}

/**
 * Takes the lock over from `holder`, whose connection was seen gone (see HolderLiveness);
 * resolves the held lock, or null when the holder renewed or someone else got there first.
 */
export async function tryTakeOver(
  ha: HABackend,
  holder: LockHolder,
  record: string,
  value: string,
  ttlMs: number,
  hooks: HeldLockHooks = {},
  clock: Clock = realClock,
): Promise<HeldLock | null> {
  if (!ha.liveness) return null;
  const sentAt = clock.now();
  const epoch = await ha.liveness.takeOver(holder, record, value, ttlMs);
  if (epoch === null) return null;
  return new RenewingLock(ha, value, epoch, ttlMs, sentAt, hooks, clock);
}

class RenewingLock implements HeldLock {
  readonly lost: AbortSignal;
  lostReason: string | undefined;
  private readonly controller = new AbortController();
  private readonly driftMs: number;
  private deadline: number;
  private renewTimer: unknown;
  private deadlineTimer: unknown;
  private releasing: Promise<void> | undefined;

  constructor(
    private readonly ha: HABackend,
    readonly value: string,
    readonly epoch: number,
    private readonly ttlMs: number,
    sentAt: number,
    private readonly hooks: HeldLockHooks,
    private readonly clock: Clock,
  ) {
    this.lost = this.controller.signal;
    this.driftMs = Math.max(MIN_DRIFT_MS, ttlMs * DRIFT_FRACTION);
    this.deadline = sentAt + ttlMs - this.driftMs;
    this.armDeadline();
    this.scheduleRenew(ttlMs / RENEWS_PER_TTL);
  }

  isValid(): boolean {
    return !this.lost.aborted && this.clock.now() < this.deadline;
  }

  release(): Promise<void> {
    if (!this.releasing) {
      const wasHeld = this.isValid();
      this.lose('released');
      // Only delete when we may still hold it: after the deadline someone else may own it,
      // and the compare-and-delete would be a no-op anyway.
      this.releasing = wasHeld
        ? this.ha.release(this.value).then(
            () => undefined,
            () => undefined,
          )
        : Promise.resolve();
    }
    return this.releasing;
  }

  private lose(reason: string): void {
    if (this.lost.aborted) return;
    this.clock.clearTimeout(this.renewTimer);
    this.clock.clearTimeout(this.deadlineTimer);
    this.lostReason = reason;
    this.controller.abort(new Error(`lock lost: ${reason}`));
    this.hooks.onLost?.(reason);
  }

  private armDeadline(): void {
    this.clock.clearTimeout(this.deadlineTimer);
    const remaining = this.deadline - this.clock.now();
    if (remaining <= 0) {
      this.lose('deadline');
      return;
    }
    this.deadlineTimer = this.clock.setTimeout(() => {
      // A timer can fire early relative to a deadline that moved; re-check before giving up.
      if (this.clock.now() >= this.deadline) this.lose('deadline');
      else this.armDeadline();
    }, remaining);
  }

  private scheduleRenew(delayMs: number): void {
    if (this.lost.aborted) return;
    this.renewTimer = this.clock.setTimeout(() => void this.renew(), delayMs);
  }

  private async renew(): Promise<void> {
    if (this.lost.aborted) return;
    const sentAt = this.clock.now();
    // Renewing after the deadline could resurrect a lock a peer may already hold in our mind.
    if (sentAt >= this.deadline) {
      this.lose('deadline');
      return;
    }
    let ok: boolean;
    try {
      ok = await this.ha.renew(this.value, this.ttlMs);
    } catch (err) {
      this.hooks.onRenewError?.(err);
      this.scheduleRenew(Math.min(RENEW_RETRY_MS, this.ttlMs / RENEWS_PER_TTL));
      return;
    }
    if (this.lost.aborted) return;
    if (!ok) {
      this.lose('renew-refused');
      return;
    }
    this.deadline = Math.max(this.deadline, sentAt + this.ttlMs - this.driftMs);
    this.armDeadline();
    this.scheduleRenew(this.ttlMs / RENEWS_PER_TTL);
  }
}
