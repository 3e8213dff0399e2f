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

/** The stamp in storage now ('' before any change was made). */
export async function readStamp(s: SecureStorage): Promise<string> {
  return (await s.get<string>(CONFIG_STAMP_PATH)) ?? '';
}
