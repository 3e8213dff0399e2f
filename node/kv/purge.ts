/**
 * Deletes every entry under a storage prefix (a disabled mount's data), walking the tree with
 * list() and deleting in bounded batches so one huge mount does not make one huge Redis script.
 */
import type { JsonWriteOp, SecureStorage } from '../barrier/secure-storage';

/** Entries deleted per batch. */
const BATCH = 128;

/** Deletes everything under `prefix` (which ends in `/`). Resolves how many entries went. */
export async function purge(s: SecureStorage, prefix: string): Promise<number> {
  let deleted = 0;
  let ops: JsonWriteOp[] = [];
  const flush = async () => {
    if (ops.length === 0) return;
    await s.batch(ops);
    deleted += ops.length;
    ops = [];
  };
  const walk = async (dir: string): Promise<void> => {
    for (const key of await s.list(dir)) {
      if (key.endsWith('/')) await walk(dir + key);
      else {
        ops.push({ op: 'delete', path: dir + key });
        if (ops.length >= BATCH) await flush();
      }
    }
  };
  await walk(prefix);
  await flush();
  return deleted;
}
