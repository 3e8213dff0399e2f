/**
 * `X-Vault-Index`, as Vault Enterprise's clients expect it (the Go client's ReadYourWrites and
 * RequireState echo it back): base64 of `v1:<cluster id>:<local index>:<replicated index>:<hmac>`.
 *
 * leaderway's storage is shared, not replicated per node: every node reads the one store the
 * active writes to, so read-your-writes needs no index. The index still carries one fact a
 * standby can check: the term (the fencing epoch) the client has seen. A standby whose view of
 * the leader is older than that — only possible when its store is behind, e.g. still connected
 * to a Redis primary that was replaced — does not serve the read but forwards it to the active.
 * The HMAC (under the barrier's key, nodes only) means a client cannot make up an index.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AnyRequest } from './request';

export const INDEX_HEADER = 'x-vault-index';

/** What a node needs to write and check indexes. */
export interface IndexKey {
  clusterId: string;
  hmac(data: string): string;
}

/** The index to answer with: the cluster and the term (epoch) the answering node knows. */
export function vaultIndex(key: IndexKey, epoch: number): string {
  const state = `v1:${key.clusterId}:${epoch}:0`;
  return Buffer.from(`${state}:${key.hmac(`x-vault-index:${state}`)}`, 'utf8').toString('base64');
}

/**
 * The term each index the request carries names (the highest), 0 when it carries none, or null
 * when one is not an index this cluster wrote (made up, altered, another cluster's).
 */
export function requiredEpoch(raw: AnyRequest, key: IndexKey): number | null {
  const header = raw.headers[INDEX_HEADER];
  if (header === undefined) return 0;
  // Clients may send several (the Go client keeps up to two states), as repeated headers or a list.
  const values = (Array.isArray(header) ? header : [header]).flatMap((h) => h.split(','));
  let epoch = 0;
  for (const value of values) {
    const e = epochOf(value.trim(), key);
    if (e === null) return null;
    epoch = Math.max(epoch, e);
  }
  return epoch;
}

function epochOf(value: string, key: IndexKey): number | null {
  if (value === '' || value.length > 1024) return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const cut = decoded.lastIndexOf(':');
  if (cut === -1) return null;
  const state = decoded.slice(0, cut);
  const mac = Buffer.from(decoded.slice(cut + 1), 'utf8');
  const want = Buffer.from(key.hmac(`x-vault-index:${state}`), 'utf8');
  if (mac.length !== want.length || !timingSafeEqual(mac, want)) return null;
  const [version, cluster, local] = state.split(':');
  if (version !== 'v1' || cluster !== key.clusterId || !/^\d{1,15}$/.test(local ?? '')) return null;
  return Number(local);
}
