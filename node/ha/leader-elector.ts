/**
 * Contends for the HA lock, for as long as the node runs. Wins → `onActive(lock, identity)`;
 * the term lasts until the lock is lost or `stepDown()`/`close()` ends it, then
 * `onStandby()` runs (it drains and releases) and contention resumes — after a cooldown when
 * the node stepped down by request, so another node wins.
 *
 * Standbys hear a release at once through the HA channel and try immediately; otherwise they
 * retry every `retryMs` with jitter. Store errors back off exponentially.
 */
import type { Logger } from 'pino';
import type { HABackend, LockHolder } from '../../shared/storage/backend';
import { type HeldLock, type HeldLockHooks, tryLock, tryTakeOver } from '../../shared/storage/held-lock';
import type { NodeMetrics } from '../../shared/telemetry/metrics';
import { recordSpan } from '../../shared/telemetry/tracing';
import { type ClusterIdentity, newClusterIdentity } from './cluster-cert';
import { HolderWatch, type Liveness } from './holder-watch';

/** Retry period while someone else holds the lock (upstream: 1 s). */
const RETRY_MS = 1_000;
/** How often a standby checks the holder's connection (issue 14: 100–200 ms). */
const LIVENESS_POLL_MS = 100;
/** ± this fraction of jitter, so standbys do not retry in lockstep. */
const JITTER = 0.2;
/** Backoff after store errors: from 15 ms (upstream's start) doubling up to 2 s (upstream: 10 s;
 * we cap lower so the cluster recovers within a couple of seconds of Redis returning). */
const BACKOFF_MIN_MS = 15;
const BACKOFF_MAX_MS = 2_000;

export type ElectorStatus = 'idle' | 'contending' | 'active' | 'cooldown' | 'closed';

export interface ElectorOptions {
  ha: HABackend;
  ttlMs: number;
  /**
   * Take the lock over once the holder's Redis connection has been gone this long (0: never,
   * wait out the TTL). Only where writes are fenced in the same store.
   */
  livenessGraceMs: number;
  log: Logger;
  /** Called on winning; when it rejects, the term is ended at once. */
  onActive(lock: HeldLock, identity: ClusterIdentity): Promise<void>;
  /** Called when the term ends (lost, stepped down or closing); must release the lock. */
  onStandby(reason: string): Promise<void>;
  onStatus?(status: ElectorStatus): void;
  metrics?: NodeMetrics;
}

export class LeaderElector {
  private status: ElectorStatus = 'idle';
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private endTerm: ((reason: string) => void) | undefined;
  private cooldownMs = 0;
  private unsubscribe: (() => void) | undefined;
  private watch: HolderWatch | undefined;

  constructor(private readonly o: ElectorOptions) {}

  start(): void {
    if (this.loop) return;
    this.unsubscribe = this.o.ha.subscribe((e) => {
      if (e.type === 'released') this.wake?.();
    });
    this.loop = this.run();
  }

  /** Ends the current term (if any) and waits `cooldownMs` before contending again. */
  stepDown(cooldownMs: number): void {
    if (this.status !== 'active') return;
    this.cooldownMs = cooldownMs;
    this.endTerm?.('step-down');
  }

  /** Ends the term (releasing the lock) and stops contending. Idempotent. */
  async close(): Promise<void> {
    this.abort.abort();
    this.unsubscribe?.();
    this.endTerm?.('shutdown');
    this.wake?.();
    await this.loop;
    this.setStatus('closed');
  }

  private setStatus(s: ElectorStatus): void {
    if (this.status === s) return;
    this.status = s;
    this.o.log.debug({ status: s }, 'elector status');
    this.o.onStatus?.(s);
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let backoff = 0;
    let identity: ClusterIdentity | undefined;
    while (!signal.aborted) {
      this.setStatus('contending');
      // A candidate identity is made before trying and kept until it wins: a failed SET NX leaves
      // no trace, so the uuid is still unused by anyone (and standbys don't burn CPU each retry).
      identity ??= await newClusterIdentity();
      let lock: HeldLock | null;
      const metrics = this.o.metrics;
      const attemptAt = Date.now();
      const hooks: HeldLockHooks = {
        onRenewError: (err) => {
          metrics?.lockErrors.inc({ op: 'renew' });
          recordSpan(
            'lw.lock.renew',
            Date.now(),
            { 'lw.error': (err as { code?: string }).code ?? 'error' },
            true,
          );
          this.o.log.warn({ err: (err as Error).message }, 'lock renew failed');
        },
        onLost: (reason) => {
          metrics?.lockHeld.set(0);
          metrics?.lockLosses.inc({ reason });
          if (reason !== 'released') this.o.log.warn({ reason }, 'leadership lost');
        },
      };
      try {
        lock = await tryLock(this.o.ha, identity.uuid, this.o.ttlMs, hooks);
        backoff = 0;
      } catch (err) {
        metrics?.lockErrors.inc({ op: 'acquire' });
        recordSpan('lw.lock.acquire', attemptAt, { 'lw.outcome': 'error' }, true);
        backoff = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, backoff * 2));
        this.o.log.warn({ err: (err as Error).message, retry_ms: backoff }, 'lock acquisition failed');
        await this.sleep(backoff);
        continue;
      }
      if (!lock) {
        lock = await this.waitForTurn(
          RETRY_MS * (1 - JITTER + Math.random() * 2 * JITTER),
          identity.uuid,
          hooks,
        );
        if (!lock) continue;
        metrics?.lockTakeovers.inc();
        this.o.log.warn(
          { epoch: lock.epoch },
          'the lock holder’s Redis connection is gone: took the lock over',
        );
      }
      const won = identity;
      identity = undefined;
      // Only acquisitions are traced: a standby's unsuccessful attempt every second is noise.
      recordSpan('lw.lock.acquire', attemptAt, { 'lw.outcome': 'acquired', 'lw.epoch': lock.epoch });
      metrics?.lockAcquisitions.inc();
      metrics?.lockHeld.set(1);
      await this.term(lock, won);
      if (this.cooldownMs > 0 && !signal.aborted) {
        this.setStatus('cooldown');
        const ms = this.cooldownMs;
        this.cooldownMs = 0;
        await this.sleep(ms, false);
      }
    }
  }

  /** Runs one active term until it ends, then hands over to `onStandby`. */
  private async term(lock: HeldLock, identity: ClusterIdentity): Promise<void> {
    this.setStatus('active');
    this.o.log.info({ epoch: lock.epoch }, 'lock acquired; becoming active');
    const ended = new Promise<string>((resolve) => {
      this.endTerm = resolve;
      lock.lost.addEventListener('abort', () => resolve(lock.lostReason ?? 'lost'), { once: true });
      if (this.abort.signal.aborted) resolve('shutdown');
    });
    try {
      await this.o.onActive(lock, identity);
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'becoming active failed; stepping down');
      this.endTerm?.('activation-failed');
    }
    const reason = await ended;
    this.endTerm = undefined;
    await this.o.onStandby(reason);
    await lock.release();
  }

  /**
   * Waits about `ms` before the next attempt. With holder liveness on, polls meanwhile whether
   * the holder's Redis connection is open, and takes the lock over once it has been gone for
   * the grace (the same record seen gone throughout). Returns early when the lock is free.
   */
  private async waitForTurn(ms: number, candidate: string, hooks: HeldLockHooks): Promise<HeldLock | null> {
    const { ha, livenessGraceMs } = this.o;
    const liveness = ha.liveness;
    if (!liveness || livenessGraceMs <= 0) {
      await this.sleep(ms);
      return null;
    }
    const end = performance.now() + ms;
    // Kept across waits, so a holder seen gone at the end of one wait counts in the next.
    this.watch ??= new HolderWatch(livenessGraceMs);
    const watch = this.watch;
    while (!this.abort.signal.aborted && performance.now() < end) {
      await this.sleep(LIVENESS_POLL_MS);
      let holder: LockHolder | null;
      let seen: { state: Liveness; record: string };
      try {
        holder = await ha.holder();
        if (!holder) return null; // free (or released): contend at once
        seen = await liveness.check(holder);
      } catch {
        return null; // the store is in trouble: back to the normal path and its backoff
      }
      if (!watch.observe(`${holder.value}|${seen.record}`, seen.state, performance.now())) continue;
      try {
        const lock = await tryTakeOver(ha, holder, seen.record, candidate, this.o.ttlMs, hooks);
        if (lock) return lock;
      } catch {
        return null;
      }
      watch.reset();
    }
    return null;
  }

  /** Sleeps `ms`, or until a release is announced (when `wakeable`) or the elector closes. */
  private sleep(ms: number, wakeable = true): Promise<void> {
    // Closed already: an 'abort' listener added now would never fire, and close() would wait ms.
    if (this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wake = undefined;
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      if (wakeable) this.wake = done;
      this.abort.signal.addEventListener('abort', done, { once: true });
    });
  }
}
