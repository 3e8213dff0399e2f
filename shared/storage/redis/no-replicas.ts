/**
 * Redis' `min-replicas-to-write` (docs/runbook.md recommends 1 on every data server behind
 * Sentinel): a primary with fewer connected replicas than that, each heard from within
 * `min-replicas-max-lag`, refuses every write with a `NOREPLICAS` reply — before the script runs
 * any write, so nothing was stored. It happens for a moment in failovers (a primary back on its
 * own data before the Sentinels announce its replacement, a promoted replica before the other
 * replica re-attaches), and for as long as replicas are missing otherwise.
 *
 * leaderway reports it as storage unavailable ("not served": gateways and standbys hold the
 * request and retry it, as for any failover), with a message that names the cause, instead of a
 * generic one — an operator reading a node's answer or log sees at once that Redis refused the
 * write for want of replicas, not that Redis is down.
 */
import { LwError } from '../../errors';

/** The client-safe message (it names the Redis setting, never a key or value). */
export const NO_REPLICAS_MESSAGE =
  'storage is unavailable: the Redis primary refused the write because fewer replicas than its min-replicas-to-write are connected (NOREPLICAS); nothing was stored';

/** True for Redis' NOREPLICAS reply (and ioredis' wrapping of it inside a script error). */
export function refusedForMissingReplicas(err: unknown): boolean {
  return err instanceof Error && /(^|\W)NOREPLICAS\b/.test(err.message);
}

/** The error for a write Redis refused with NOREPLICAS: not done, retry after a second. */
export function noReplicasError(cause: Error): LwError {
  return new LwError('LW_ERR_STORAGE_UNAVAILABLE', NO_REPLICAS_MESSAGE, { cause, retryAfter: 1 });
}
