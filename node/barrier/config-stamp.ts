/**
 * The config stamp: a random value the active rewrites, in the same atomic batch, with every
 * change to what nodes cache — the mount tables and the policies. A standby serving reads reads
 * the stamp first and uses its caches only if they were loaded under that same stamp: a change
 * acknowledged before the request began has replaced the stamp before the standby read it, so
 * no cache from before the change can answer (docs/GUARANTEES.md, G15).
 *
 * A random value, not a counter: the writer never reads it (no read-modify-write to race), and
 * readers only compare it for equality. It is stored through the barrier like everything else.
 */
import { randomUUID } from 'node:crypto';
import type { JsonWriteOp, SecureStorage } from './secure-storage';

export const CONFIG_STAMP_PATH = 'core/config-stamp';

/** The write that replaces the stamp: add it to the batch that changes a cached value. */
export function newStamp(): JsonWriteOp {
  return { op: 'put', path: CONFIG_STAMP_PATH, value: randomUUID() };
}

/** Entries to read with the stamp, and the HMACs computed to name them (`Prefetched.hmacs`). */
export interface Prefetch {
  paths: readonly string[];
  hmacs: ReadonlyMap<string, string>;
}

export const NO_PREFETCH: Prefetch = { paths: [], hmacs: new Map() };

/**
 * A standby's read-only view for one request (SecureStorage.readOnly): the stamp and the entries
 * at `prefetch.paths` (the caller's token entry) read in one round trip, at one instant — after
 * the request began, as reading them one after the other would be — with the view's caches keyed
 * by that stamp and each prefetched entry answering the view's first read of its path.
 */
export async function standbyView(s: SecureStorage, prefetch: Prefetch): Promise<SecureStorage> {
  const [stamp, ...entries] = await s.backend.getMany([CONFIG_STAMP_PATH, ...prefetch.paths]);
  return s.readOnly(stamp ? openStamp(s, stamp) : '', {
    entries: new Map(prefetch.paths.map((path, i) => [path, entries[i] ?? null])),
    hmacs: prefetch.hmacs,
  });
}

/**
 * The last stamp opened, by its stored bytes: the same bytes were already authenticated by the
 * barrier, so they are not decrypted again on every request (a new stamp is new bytes — each
 * write seals with a fresh nonce — and is opened, and so authenticated, before use).
 */
const lastOpened = new WeakMap<object, { raw: Buffer; stamp: string }>();

function openStamp(s: SecureStorage, raw: Buffer): string {
  const last = lastOpened.get(s.barrier);
  if (last?.raw.equals(raw)) return last.stamp;
  const stamp = s.open<string>(CONFIG_STAMP_PATH, raw);
  lastOpened.set(s.barrier, { raw, stamp });
  return stamp;
}
