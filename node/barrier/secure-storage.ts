/**
 * Storage seen through the barrier: JSON values in, ciphertext out. A SecureStorage is cheap
 * to create, so a request handler on the active node takes a fenced one and keeps it for the
 * whole request (a write that races a step-down is then fenced with the lock it started under).
 */
import { LwError } from '../../shared/errors';
import type { Backend, WriteOp } from '../../shared/storage/backend';
import type { Barrier } from './barrier';

/** A write of a JSON value (or a delete) in an atomic batch. */
export type JsonWriteOp = { op: 'put'; path: string; value: unknown } | { op: 'delete'; path: string };

/** Encrypted JSON storage over a Backend. */
export class SecureStorage {
  constructor(
    readonly barrier: Barrier,
    readonly backend: Backend,
  ) {}

  /** The same barrier over another backend view (e.g. a fenced one). */
  withBackend(backend: Backend): SecureStorage {
    return new SecureStorage(this.barrier, backend);
  }

  async get<T>(path: string): Promise<T | null> {
    const raw = await this.backend.get(path);
    if (!raw) return null;
    const plain = this.barrier.open(path, raw);
    try {
      return JSON.parse(plain.toString('utf8')) as T;
    } catch {
      throw new LwError('LW_ERR_CORRUPT', 'storage entry is not valid JSON');
    }
  }

  put(path: string, value: unknown): Promise<void> {
    return this.backend.put(path, this.encode(path, value));
  }

  delete(path: string): Promise<void> {
    return this.backend.delete(path);
  }

  list(prefix: string): Promise<string[]> {
    return this.backend.list(prefix);
  }

  /** Applies all ops atomically (see Backend.batch). */
  batch(ops: JsonWriteOp[], opts?: { ifAbsent?: string }): Promise<boolean> {
    const raw: WriteOp[] = ops.map((o) =>
      o.op === 'put' ? { op: 'put', path: o.path, value: this.encode(o.path, o.value) } : o,
    );
    return this.backend.batch(raw, opts);
  }

  private encode(path: string, value: unknown): Buffer {
    return this.barrier.seal(path, Buffer.from(JSON.stringify(value), 'utf8'));
  }
}
