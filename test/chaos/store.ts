/**
 * The Redis a chaos run uses: one append-only redis-server (`single`, the default), or a Sentinel
 * topology (`sentinel`: a primary, two replicas and three Sentinels, append-only persistence and
 * `min-replicas-to-write 1`, as docs/runbook.md recommends). Faults, the fencing monitors and the
 * leak scan reach the data servers through this.
 */
import type { RedisServer } from '../helpers/redis';
import { startRedis } from '../helpers/redis';
import { type SentinelTopology, startSentinel } from '../helpers/sentinel';

export type StoreKind = 'single' | 'sentinel';
/** Replicas of the Sentinel topology's primary. */
export const SENTINEL_REPLICAS = 2;

export interface ChaosStore {
  readonly kind: StoreKind;
  /** The URL nodes and gateways are given. */
  readonly url: string;
  /** Every data server (one for `single`). */
  readonly servers: RedisServer[];
  /** The Sentinel topology (`sentinel` only). */
  readonly sentinel?: SentinelTopology;
  /** The data server that takes writes now. */
  primary(): Promise<RedisServer>;
  /** True when every data server is up and (Sentinel) every replica in sync with the primary. */
  healthy(): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startStore(kind: StoreKind): Promise<ChaosStore> {
  if (kind === 'single') {
    const redis = await startRedis({ appendonly: true });
    return {
      kind,
      url: redis.url,
      servers: [redis],
      primary: async () => redis,
      healthy: async () => true,
      stop: () => redis.stop(),
    };
  }
  const sentinel = await startSentinel({ appendonly: true, replicas: SENTINEL_REPLICAS });
  return {
    kind,
    url: sentinel.url,
    servers: sentinel.servers,
    sentinel,
    primary: () => sentinel.primary(),
    healthy: () => sentinel.inSync(),
    stop: () => sentinel.stop(),
  };
}
