/**
 * Storage contracts. `node/` and `gateway/` only ever see these interfaces; the Redis and
 * in-memory implementations live beside this file and pass one conformance suite
 * (`test/integration/storage-conformance.test.ts`).
 *
 * Paths are `/`-separated strings such as `core/keyring` or `logical/kv/secret/meta/app`.
 * Values are opaque bytes: the node encrypts everything before it reaches a Backend.
 */

/** One write in an atomic batch. */
export type WriteOp = { op: 'put'; path: string; value: Buffer } | { op: 'delete'; path: string };

/**
 * The data storage. Every method rejects with `LwError('LW_ERR_STORAGE_UNAVAILABLE')` when the
 * store cannot be reached, so callers can answer 503 and retry later; a rejected write stored
 * nothing (batches are all-or-nothing).
 *
 * "Applied": every write that stores something (put, delete, a batch that resolves true, on the
 * backend or a fenced view) calls `noteApplied()` (write-scope.ts) once the store has applied it,
 * before anything that follows can fail (Redis: before its WAIT). A node answers a failed request
 * "not served" — which a gateway may send again — only when its scope saw no applied write; a
 * write that may or may not have been applied rejects with `LW_ERR_OUTCOME_UNKNOWN` instead. A
 * refused write (a false `ifAbsent`, a fenced-out write) notes nothing. The conformance suite
 * checks this on every backend.
 */
export interface Backend {
  /** A human-readable kind for the startup banner: `redis`, `inmem`. */
  readonly kind: string;
  get(path: string): Promise<Buffer | null>;
  /**
   * The value at `path` if it is at most `maxBytes` long, else its length (a number), in one
   * round trip; null when nothing is stored. Lets the node admit a large read against its memory
   * budget before the value crosses the wire (a number costs nothing to receive), while small
   * values, most of them, still take one round trip.
   */
  getWithin(path: string, maxBytes: number): Promise<Buffer | number | null>;
  /**
   * The values at `paths` (null where nothing is stored), in order, read in one round trip at one
   * instant: no write lands between two of them. For small entries a request needs together (a
   * standby's config stamp and the caller's token entry); client-chosen sizes go through
   * `getWithin`.
   */
  getMany(paths: readonly string[]): Promise<(Buffer | null)[]>;
  put(path: string, value: Buffer): Promise<void>;
  delete(path: string): Promise<void>;
  /**
   * The immediate children of `prefix` (which ends in `/` or is empty), sorted. A child with
   * descendants is returned once, with a trailing `/` (Vault's physical List semantics).
   */
  list(prefix: string): Promise<string[]>;
  /**
   * Applies `ops` atomically. With `ifAbsent`, applies them only if nothing is stored at that
   * path and resolves false otherwise (used by init, so two racing nodes cannot both init).
   */
  batch(ops: WriteOp[], opts?: { ifAbsent?: string }): Promise<boolean>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Optional ability: writes that are refused unless a lock still holds a given value. Only a
 * backend that stores the lock itself can offer this (the check and the write must be one
 * atomic step); split storage cannot, which is why fencing is weaker there.
 */
export interface FencingBackend extends Backend {
  /**
   * A view of this backend whose every write (put, delete, batch) first checks, atomically
   * with the write, that `core/lock` still holds `lockValue`. A failed check stores nothing
   * and rejects with `LwError('LW_ERR_FENCED_WRITE')`. Reads are not fenced. Once `signal`
   * aborts, every write on the view is refused locally without reaching the store.
   */
  fenced(lockValue: string, signal: AbortSignal): Backend;
}

/** True when `b` offers fencing. */
export function isFencingBackend(b: Backend): b is FencingBackend {
  return typeof (b as Partial<FencingBackend>).fenced === 'function';
}

/** Who holds the lock right now. */
export interface LockHolder {
  /** The holder's lock value: a UUID chosen for that acquisition. */
  value: string;
  /** The fencing epoch: incremented by every successful acquisition, never reused. */
  epoch: number;
}

/**
 * Holder liveness (Redis): whether the lock holder's own connection to the store is still open.
 * A crashed process's connection closes at once, so a standby can take over in well under a
 * TTL. Safe only where every write is fenced atomically against the lock (one store).
 */
export interface HolderLiveness {
  /**
   * The connection `holder` recorded (`record`, '' when none) and its state: `gone` (closed),
   * `alive` (open) or `unknown` (cannot be told now: no record, another server, our own
   * connection just reconnected, or the store refuses the commands).
   */
  check(holder: LockHolder): Promise<{ state: 'alive' | 'gone' | 'unknown'; record: string }>;
  /**
   * Takes the lock with `value` in one atomic compare-and-replace that advances the epoch —
   * only while it still holds `holder`'s value and connection `record`. The new epoch, or null.
   */
  takeOver(holder: LockHolder, record: string, value: string, ttlMs: number): Promise<number | null>;
}

/** Events on the HA channel. None carries a secret. */
export type HAEvent = { type: 'released'; epoch: number } | { type: 'advertised'; epoch: number };

/**
 * The HA storage: one lock (`core/lock`) with a TTL and a fencing epoch, plus a notification
 * channel. These are the atomic primitives; the renew loop and the holder's own deadline are
 * implemented once, over them, in `held-lock.ts`.
 */
export interface HABackend {
  readonly kind: string;
  /**
   * Takes the lock with `value` for `ttlMs` if nobody holds it, and in the same atomic step
   * increments the fencing epoch. Resolves the new epoch, or null when someone else holds it.
   */
  acquire(value: string, ttlMs: number): Promise<number | null>;
  /** Extends the TTL to `ttlMs` only if the lock still holds `value`. False when it does not. */
  renew(value: string, ttlMs: number): Promise<boolean>;
  /** Deletes the lock only if it still holds `value`. False when it did not. */
  release(value: string): Promise<boolean>;
  /** The current holder, or null when nobody holds the lock. */
  holder(): Promise<LockHolder | null>;
  /** Publishes an event to every subscriber (other processes included). Best effort. */
  publish(event: HAEvent): Promise<void>;
  /** Calls `listener` for each event until the returned function is called. */
  subscribe(listener: (event: HAEvent) => void): () => void;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
  /** Present where the store can tell whether the holder's connection is open. */
  readonly liveness?: HolderLiveness;
}

/** True when `b` can hold the HA lock. */
export function isHABackend(b: unknown): b is HABackend {
  return typeof (b as Partial<HABackend> | null)?.acquire === 'function';
}

/** The storage path of the lock, as upstream names it. */
export const LOCK_PATH = 'core/lock';
/** Where the active node writes its advertisement: `core/leader/<uuid>`. */
export const LEADER_PREFIX = 'core/leader/';
