/**
 * Rules both storage implementations must apply identically, kept in one place so the
 * in-memory backend and the Redis backend cannot drift apart (the conformance suite checks
 * them against each other's behaviour, this module keeps them from disagreeing by accident).
 */
import { LwError, MESSAGES } from '../errors';

/** Seconds a client is told to wait before retrying when storage is unreachable. */
const STORAGE_RETRY_AFTER_S = 1;

/**
 * The error every storage call rejects with when the store cannot be reached. `cause` must
 * already be free of command arguments (values are secrets): see the Redis backend's sanitizer.
 */
export function storageUnavailableError(cause?: unknown): LwError {
  return new LwError('LW_ERR_STORAGE_UNAVAILABLE', MESSAGES.storageUnavailable, {
    cause,
    retryAfter: STORAGE_RETRY_AFTER_S,
  });
}

/**
 * Collapses full paths under `prefix` into its immediate children, Vault-style: a child with
 * descendants appears once, with a trailing `/`. The result is deduplicated and sorted.
 * Paths that do not start with `prefix` are ignored.
 */
export function immediateChildren(prefix: string, paths: Iterable<string>): string[] {
  const children = new Set<string>();
  for (const path of paths) {
    if (!path.startsWith(prefix) || path.length === prefix.length) continue;
    const rest = path.slice(prefix.length);
    const slash = rest.indexOf('/');
    children.add(slash === -1 ? rest : rest.slice(0, slash + 1));
  }
  return [...children].sort();
}

/**
 * Validates a lock TTL and rounds it up to whole milliseconds (Redis `PX` takes integers; a
 * TTL rounded down could expire before the holder's own deadline assumes it does).
 * A non-positive or non-finite TTL is a programming error, not a storage condition.
 */
export function normalizeTtlMs(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError('lock ttlMs must be a positive finite number');
  }
  return Math.ceil(ttlMs);
}

/**
 * Validates a lock value. An empty value is refused because it could never be told apart from
 * "no holder" by a caller comparing values.
 */
export function assertLockValue(value: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError('lock value must be a non-empty string');
  }
}
