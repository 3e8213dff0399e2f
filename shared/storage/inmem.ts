/**
 * In-process storage for `leaderway dev` and tests. Several nodes in one process share one
 * `InmemStore`, each with its own `InmemBackend` / `InmemHABackend` objects, exactly as several
 * processes share one Redis. Every mutation happens synchronously inside one call, so batches
 * and fenced writes are trivially atomic.
 */
import { EventEmitter } from 'node:events';
import type { Backend, FencingBackend, HABackend, HAEvent, LockHolder, WriteOp } from './backend';
import { type Clock, realClock } from './clock';
import { FencedView, type FenceTarget, fencedWriteError } from './fenced-view';
import { assertLockValue, immediateChildren, normalizeTtlMs, storageUnavailableError } from './semantics';
import { noteApplied } from './write-scope';

const HA_EVENT = 'ha';

interface InmemLock {
  value: string;
  /** On the monotonic clock, so wall-clock jumps cannot extend a lease. */
  expiresAt: number;
}

/** The state one in-memory "cluster" shares: data, the lock, the epoch and the event bus. */
export class InmemStore {
  private readonly data = new Map<string, Buffer>();
  private lock: InmemLock | null = null;
  private epoch = 0;
  private available = true;
  /** @internal Carries HA events between the backends of this store. */
  readonly events = new EventEmitter();

  /** `clock`: the lock's time source (tests inject a manual one). */
  constructor(private readonly clock: Clock = realClock) {
    // One listener per subscribed node object; dev clusters and tests may have many.
    this.events.setMaxListeners(0);
  }

  /**
   * Simulates an outage: while false, every call on every backend of this store rejects with
   * `LW_ERR_STORAGE_UNAVAILABLE` and published events are dropped.
   */
  setAvailable(available: boolean): void {
    this.available = available;
  }

  /** @internal */
  assertAvailable(): void {
    if (!this.available) throw storageUnavailableError();
  }

  /** @internal The lock, with expiry evaluated now (expiry is lazy: there is no timer). */
  currentLock(): InmemLock | null {
    if (this.lock && this.lock.expiresAt <= this.clock.now()) this.lock = null;
    return this.lock;
  }

  /** @internal */
  acquire(value: string, ttlMs: number): number | null {
    if (this.currentLock()) return null;
    this.lock = { value, expiresAt: this.clock.now() + ttlMs };
    this.epoch += 1;
    return this.epoch;
  }

  /** @internal */
  renew(value: string, ttlMs: number): boolean {
    const lock = this.currentLock();
    if (lock?.value !== value) return false;
    lock.expiresAt = this.clock.now() + ttlMs;
    return true;
  }

  /** @internal */
  release(value: string): boolean {
    if (this.currentLock()?.value !== value) return false;
    this.lock = null;
    return true;
  }

  /** @internal */
  holder(): LockHolder | null {
    const lock = this.currentLock();
    return lock ? { value: lock.value, epoch: this.epoch } : null;
  }

  /** @internal Returns a copy: callers must not be able to mutate stored bytes. */
  get(path: string): Buffer | null {
    const value = this.data.get(path);
    return value === undefined ? null : Buffer.from(value);
  }

  /** @internal The value's length, without copying it; null when absent. */
  size(path: string): number | null {
    return this.data.get(path)?.length ?? null;
  }

  /** @internal */
  paths(): IterableIterator<string> {
    return this.data.keys();
  }

  /**
   * @internal Applies `ops` in order, or nothing at all. With `fence`, the lock must hold it;
   * otherwise rejects with `LW_ERR_FENCED_WRITE`.
   */
  batch(ops: WriteOp[], ifAbsent: string | undefined, fence: string | undefined): boolean {
    // Copy (and type-check) every value before touching the map, so a bad op stores nothing.
    const copies = ops.map((op) => (op.op === 'put' ? copyValue(op.value) : null));
    if (fence !== undefined && this.currentLock()?.value !== fence) throw fencedWriteError();
    if (ifAbsent !== undefined && this.data.has(ifAbsent)) return false;
    ops.forEach((op, i) => {
      const copy = copies[i];
      if (op.op === 'put' && copy) this.data.set(op.path, copy);
      else this.data.delete(op.path);
    });
    // The "applied" contract (backend.ts): the request that made this write has stored something.
    noteApplied();
    return true;
  }
}

function copyValue(value: Buffer): Buffer {
  if (!Buffer.isBuffer(value)) throw new TypeError('storage values must be Buffers');
  return Buffer.from(value);
}

/** Shared by both backend classes: `close()` and the availability check. */
abstract class InmemHandle {
  protected closed = false;

  constructor(protected readonly store: InmemStore) {}

  /** Throws what a real backend would reject with when it cannot reach its store. */
  protected check(): void {
    if (this.closed) throw storageUnavailableError();
    this.store.assertAvailable();
  }
}

/** The data backend over an `InmemStore`. Offers fencing: the lock lives in the same store. */
export class InmemBackend extends InmemHandle implements FencingBackend, FenceTarget {
  readonly kind = 'inmem';

  constructor(store: InmemStore = new InmemStore()) {
    super(store);
  }

  async get(path: string): Promise<Buffer | null> {
    this.check();
    return this.store.get(path);
  }

  async getMany(paths: readonly string[]): Promise<(Buffer | null)[]> {
    this.check();
    return paths.map((p) => this.store.get(p));
  }

  async getWithin(path: string, maxBytes: number): Promise<Buffer | number | null> {
    this.check();
    const size = this.store.size(path);
    return size !== null && size > maxBytes ? size : this.store.get(path);
  }

  async put(path: string, value: Buffer): Promise<void> {
    await this.batch([{ op: 'put', path, value }]);
  }

  async delete(path: string): Promise<void> {
    await this.batch([{ op: 'delete', path }]);
  }

  async list(prefix: string): Promise<string[]> {
    this.check();
    return immediateChildren(prefix, this.store.paths());
  }

  async batch(ops: WriteOp[], opts: { ifAbsent?: string } = {}): Promise<boolean> {
    this.check();
    return this.store.batch(ops, opts.ifAbsent, undefined);
  }

  /** @internal Used by the fenced view. */
  async fencedBatch(ops: WriteOp[], opts: { ifAbsent?: string }, fence: string): Promise<boolean> {
    this.check();
    return this.store.batch(ops, opts.ifAbsent, fence);
  }

  fenced(lockValue: string, signal: AbortSignal): Backend {
    return new FencedView(this, lockValue, signal);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** The HA backend over an `InmemStore`: the lock, the epoch and an in-process event bus. */
export class InmemHABackend extends InmemHandle implements HABackend {
  readonly kind = 'inmem';
  private readonly unsubscribers = new Set<() => void>();
  /** Listener exceptions swallowed so one bad listener cannot starve the others. */
  listenerErrors = 0;

  constructor(store: InmemStore = new InmemStore()) {
    super(store);
  }

  async acquire(value: string, ttlMs: number): Promise<number | null> {
    assertLockValue(value);
    const ttl = normalizeTtlMs(ttlMs);
    this.check();
    return this.store.acquire(value, ttl);
  }

  async renew(value: string, ttlMs: number): Promise<boolean> {
    const ttl = normalizeTtlMs(ttlMs);
    this.check();
    return this.store.renew(value, ttl);
  }

  async release(value: string): Promise<boolean> {
    this.check();
    return this.store.release(value);
  }

  async holder(): Promise<LockHolder | null> {
    this.check();
    return this.store.holder();
  }

  /** Best effort, like Redis PUBLISH: resolves even when the event could not be delivered. */
  async publish(event: HAEvent): Promise<void> {
    try {
      this.check();
    } catch {
      return;
    }
    const copy = { ...event };
    // Asynchronous like a real channel, so no caller relies on synchronous delivery.
    setImmediate(() => this.store.events.emit(HA_EVENT, copy));
  }

  subscribe(listener: (event: HAEvent) => void): () => void {
    if (this.closed) return () => {};
    let active = true;
    const onEvent = (event: HAEvent): void => {
      if (!active) return;
      try {
        listener({ ...event });
      } catch {
        this.listenerErrors += 1;
      }
    };
    const unsubscribe = (): void => {
      active = false;
      this.store.events.off(HA_EVENT, onEvent);
      this.unsubscribers.delete(unsubscribe);
    };
    this.store.events.on(HA_EVENT, onEvent);
    this.unsubscribers.add(unsubscribe);
    return unsubscribe;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const unsubscribe of [...this.unsubscribers]) unsubscribe();
  }
}
