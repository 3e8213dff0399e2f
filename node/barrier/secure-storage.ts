/**
 * Storage seen through the barrier: JSON values in, ciphertext out. A SecureStorage is cheap
 * to create, so a request handler on the active node takes a fenced one and keeps it for the
 * whole request (a write that races a step-down is then fenced with the lock it started under).
 */
import { LwError } from '../../shared/errors';
import type { Backend, WriteOp } from '../../shared/storage/backend';
import type { Barrier } from './barrier';

/**
 * Entries up to this size are fetched in the same round trip that measures them (Backend.getWithin),
 * admitted beforehand as if they were this large; larger ones are measured first, admitted at their
 * size, then fetched. Most secrets are far smaller, so most reads take one round trip.
 */
export const SMALL_ENTRY_BYTES = 64 * 1024;

/**
 * A memory budget that reads of large entries are admitted against before they are fetched
 * (node/api/response-hold.ts). `admit` may wait; it rejects (LW_ERR_OVERLOADED) when the wait is
 * too long or the request is over.
 */
export interface EntryAdmission {
  /** Waits until `bytes` more may be held by this request. */
  admit(bytes: number): Promise<void>;
  /** Gives back bytes admitted but not needed. */
  giveBack(bytes: number): void;
}

/** A write of a JSON value (or a delete) in an atomic batch. */
export type JsonWriteOp = { op: 'put'; path: string; value: unknown } | { op: 'delete'; path: string };

/** What a standby read first for a request (config-stamp.ts `standbyView`). */
export interface Prefetched {
  /** Stored bytes by path (null: nothing stored); the view takes them, deleting each once read. */
  entries: Map<string, Buffer | null>;
  /** HMACs already computed for this request, by input. */
  hmacs: ReadonlyMap<string, string>;
}

/** Encrypted JSON storage over a Backend. */
export class SecureStorage {
  /** A request view's HMACs by input (`readOnly`); unset on long-lived views. */
  private hmacs: ReadonlyMap<string, string> | undefined;

  /**
   * What node caches are keyed by (term-cache.ts): the view itself on the active node (one per
   * term); on a standby's read-only views, the config stamp read for the request.
   */
  readonly cacheKey: unknown;

  constructor(
    readonly barrier: Barrier,
    readonly backend: Backend,
    cacheKey?: string,
  ) {
    this.cacheKey = cacheKey ?? this;
  }

  /** The same barrier over another backend view (e.g. a fenced one). */
  withBackend(backend: Backend): SecureStorage {
    return new SecureStorage(this.barrier, backend);
  }

  /**
   * A view for a standby serving a read: every write is refused before it reaches the store
   * (LW_ERR_NOT_ACTIVE, "not served": the request goes to the active instead), and caches are
   * keyed by `stamp`, the config stamp read at the start of the request (config-stamp.ts).
   * `prefetched`: entries read together with the stamp; each answers the view's first read of its
   * path (later reads go to the store), so what the request sees was read after it began; and the
   * HMACs computed to name them, so they are not computed twice.
   */
  readOnly(stamp: string, prefetched?: Prefetched): SecureStorage {
    const view = new SecureStorage(
      this.barrier,
      readOnlyBackend(this.backend, prefetched?.entries),
      `stamp:${stamp}`,
    );
    view.hmacs = prefetched?.hmacs;
    return view;
  }

  /** The barrier's HMAC of `data`, reusing one computed for this request's view (`readOnly`). */
  hmac(data: string): string {
    return this.hmacs?.get(data) ?? this.barrier.hmac(data);
  }

  async get<T>(path: string): Promise<T | null> {
    const raw = await this.backend.get(path);
    return raw ? this.decode<T>(path, raw) : null;
  }

  /** An entry's value from its stored bytes (read with `backend.getMany`, say). */
  open<T>(path: string, raw: Buffer): T {
    return this.decode<T>(path, raw);
  }

  /**
   * Like `get`, for an entry whose size a client chooses (a secret): its stored size is admitted
   * against `budget` before the value is fetched, so reads of large entries wait for room
   * instead of all being held in memory at once. The admitted bytes stay with the request (the
   * budget gives them back when its response is done).
   */
  async getAdmitted<T>(path: string, budget: EntryAdmission): Promise<T | null> {
    await budget.admit(SMALL_ENTRY_BYTES);
    const within = await this.backend.getWithin(path, SMALL_ENTRY_BYTES);
    let raw: Buffer | null;
    if (typeof within === 'number') {
      // Too large to have been fetched: hold its size (waiting, holding nothing), then fetch it.
      budget.giveBack(SMALL_ENTRY_BYTES);
      await budget.admit(within);
      raw = await this.backend.get(path);
      // Rewritten larger in between: hold the difference too (without waiting).
      if (raw && raw.length > within) await budget.admit(raw.length - within);
    } else {
      raw = within;
      budget.giveBack(SMALL_ENTRY_BYTES - (raw?.length ?? 0));
    }
    return raw ? this.decode<T>(path, raw) : null;
  }

  /** Whether anything is stored at `path`, without fetching it. */
  async exists(path: string): Promise<boolean> {
    return (await this.backend.getWithin(path, 0)) !== null;
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

  private decode<T>(path: string, raw: Buffer): T {
    const plain = this.barrier.open(path, raw);
    try {
      return JSON.parse(plain.toString('utf8')) as T;
    } catch {
      throw new LwError('LW_ERR_CORRUPT', 'storage entry is not valid JSON');
    }
  }

  private encode(path: string, value: unknown): Buffer {
    return this.barrier.sealText(path, JSON.stringify(value));
  }
}

/**
 * `b` with every write refused locally: what a standby may do is read. An entry in `unused`
 * answers the first read of its path once; every other read goes to `b`.
 */
function readOnlyBackend(b: Backend, unused: Map<string, Buffer | null> = new Map()): Backend {
  const refuse = () =>
    Promise.reject(new LwError('LW_ERR_NOT_ACTIVE', 'node is not active', { retryAfter: 1 }));
  const take = (path: string): { raw: Buffer | null } | undefined => {
    if (!unused.has(path)) return undefined;
    const raw = unused.get(path) ?? null;
    unused.delete(path);
    return { raw };
  };
  return {
    kind: b.kind,
    get: (path) => {
      const hit = take(path);
      return hit ? Promise.resolve(hit.raw) : b.get(path);
    },
    getWithin: (path, maxBytes) => {
      const hit = take(path);
      if (!hit) return b.getWithin(path, maxBytes);
      return Promise.resolve(hit.raw && hit.raw.length > maxBytes ? hit.raw.length : hit.raw);
    },
    getMany: async (paths) => {
      const hits = paths.map(take);
      const missing = paths.filter((_, i) => !hits[i]);
      const fetched = missing.length > 0 ? await b.getMany(missing) : [];
      let next = 0;
      return hits.map((hit) => (hit ? hit.raw : (fetched[next++] ?? null)));
    },
    list: (prefix) => b.list(prefix),
    put: refuse,
    delete: refuse,
    batch: refuse,
    close: () => Promise.resolve(),
  };
}
