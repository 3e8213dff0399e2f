/**
 * The cubbyhole: private storage of one token, as OpenBao's `cubbyhole/` engine. Each token sees
 * only its own entries (no token, root included, can read another's), and they are deleted with
 * the token (TokenStore.revoke). Entries live through the barrier at
 * `cubbyhole/<token HMAC>/<path>`: keyed by the token's HMAC, never the token. The routes are
 * KV v1's over that prefix (node/api/routes/kv1.ts).
 */
import type { JsonWriteOp, SecureStorage } from '../barrier/secure-storage';

/** Where every cubbyhole lives in storage. */
export const CUBBYHOLE_ROOT = 'cubbyhole/';

/** The storage prefix of one token's cubbyhole. */
export function cubbyholeOf(tokenHash: string): string {
  return `${CUBBYHOLE_ROOT}${tokenHash}/`;
}

/** The deepest folder nesting walked when deleting a cubbyhole (paths are bounded anyway). */
const MAX_DEPTH = 64;

/** Every entry of a token's cubbyhole (full storage paths), for deleting it with the token. */
export async function cubbyholeEntries(s: SecureStorage, tokenHash: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (prefix: string, depth: number): Promise<void> => {
    for (const key of await s.list(prefix)) {
      if (!key.endsWith('/')) out.push(prefix + key);
      else if (depth < MAX_DEPTH) await walk(prefix + key, depth + 1);
    }
  };
  await walk(cubbyholeOf(tokenHash), 0);
  return out;
}

/** Deletes of a token's whole cubbyhole, to go in the batch that deletes the token. */
export async function cubbyholeDeletes(s: SecureStorage, tokenHash: string): Promise<JsonWriteOp[]> {
  return (await cubbyholeEntries(s, tokenHash)).map((path) => ({ op: 'delete', path }));
}
