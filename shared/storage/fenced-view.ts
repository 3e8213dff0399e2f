/**
 * The `fenced(lockValue, signal)` view shared by every FencingBackend: reads pass through,
 * writes carry the fence value down to the backend's atomic check-and-write, and an aborted
 * signal refuses writes locally so a deposed leader stops writing without a round trip.
 */
import { LwError, MESSAGES } from '../errors';
import type { Backend, WriteOp } from './backend';

/** What a backend exposes so a FencedView can delegate to it. */
export interface FenceTarget {
  readonly kind: string;
  get(path: string): Promise<Buffer | null>;
  getWithin(path: string, maxBytes: number): Promise<Buffer | number | null>;
  getMany(paths: readonly string[]): Promise<(Buffer | null)[]>;
  list(prefix: string): Promise<string[]>;
  /**
   * Applies `ops` atomically only if the lock holds `fence` at that instant; otherwise stores
   * nothing and rejects with `LW_ERR_FENCED_WRITE`.
   */
  fencedBatch(ops: WriteOp[], opts: { ifAbsent?: string }, fence: string): Promise<boolean>;
}

/** The error every refused fenced write rejects with. */
export function fencedWriteError(): LwError {
  return new LwError('LW_ERR_FENCED_WRITE', MESSAGES.fencedWrite);
}

/**
 * A lightweight Backend view: no connection of its own, so creating one per leadership term is
 * free. `close()` is a no-op because the view owns nothing; close the underlying backend.
 */
export class FencedView implements Backend {
  readonly kind: string;

  constructor(
    private readonly target: FenceTarget,
    private readonly lockValue: string,
    private readonly signal: AbortSignal,
  ) {
    if (typeof lockValue !== 'string' || lockValue.length === 0) {
      throw new TypeError('fence lock value must be a non-empty string');
    }
    this.kind = target.kind;
  }

  get(path: string): Promise<Buffer | null> {
    return this.target.get(path);
  }

  getWithin(path: string, maxBytes: number): Promise<Buffer | number | null> {
    return this.target.getWithin(path, maxBytes);
  }

  getMany(paths: readonly string[]): Promise<(Buffer | null)[]> {
    return this.target.getMany(paths);
  }

  list(prefix: string): Promise<string[]> {
    return this.target.list(prefix);
  }

  async put(path: string, value: Buffer): Promise<void> {
    await this.batch([{ op: 'put', path, value }]);
  }

  async delete(path: string): Promise<void> {
    await this.batch([{ op: 'delete', path }]);
  }

  async batch(ops: WriteOp[], opts: { ifAbsent?: string } = {}): Promise<boolean> {
    // Leadership is already known to be lost: do not even ask the store.
    if (this.signal.aborted) throw fencedWriteError();
    return this.target.fencedBatch(ops, opts, this.lockValue);
  }

  async close(): Promise<void> {}
}
