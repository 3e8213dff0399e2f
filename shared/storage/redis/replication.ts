/**
 * "Acknowledged means replicated": after a write, Redis `WAIT n timeout` blocks until `n`
 * replicas confirmed every write this connection sent, or the timeout passes, and returns how
 * many did. Below `n`, the write may be lost to a failover, so it is not acknowledged. Redis
 * documents that WAIT does not make it strongly consistent (docs/GUARANTEES.md says which
 * failure sequences still lose a write); with Sentinel promoting the most up-to-date replica it
 * closes the common one: a primary that dies right after acknowledging.
 */
import { LwError } from '../../errors';
import type { ScriptedRedis } from './scripts';

/** How many replicas must confirm a write, and for how long to wait. */
export interface ReplicationSettings {
  /** `auto`: 1 for a `redis+sentinel://` URL (a replicated Redis), 0 otherwise. */
  minReplicas: number | 'auto';
  waitTimeoutMs: number;
}

/** No WAIT at all: a single Redis. */
export const NO_REPLICATION: ReplicationSettings = { minReplicas: 0, waitTimeoutMs: 0 };

/** The number of replicas `url` needs under `s`. */
export function replicasFor(s: ReplicationSettings, url: string): number {
  if (s.minReplicas !== 'auto') return s.minReplicas;
  return /^rediss?\+sentinel:\/\//i.test(url) ? 1 : 0;
}

/** Parses the `min_replicas` setting (`auto` or a count). */
export function parseMinReplicas(v: string): number | 'auto' {
  return v === 'auto' ? 'auto' : Number(v);
}

/**
 * Waits until `n` replicas have every write sent on `c` so far; true when they do. `n` = 0:
 * true at once, and nothing is sent.
 */
export async function replicated(c: ScriptedRedis, n: number, timeoutMs: number): Promise<boolean> {
  if (n === 0) return true;
  const acked = await c.wait(n, timeoutMs);
  return acked >= n;
}

/** The error for a write whose replication was not confirmed. */
export function notReplicatedError(n: number): LwError {
  return new LwError(
    'LW_ERR_OUTCOME_UNKNOWN',
    `storage did not confirm the write reached ${n} replica${n === 1 ? '' : 's'}; its outcome is unknown: check before retrying`,
    { retryAfter: 1 },
  );
}
