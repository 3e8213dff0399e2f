/**
 * The storage a chaos run uses: one append-only redis-server (`single`, the default), a Sentinel
 * topology (`sentinel`: a primary, two replicas and three Sentinels, append-only persistence and
 * `min-replicas-to-write 1`, as docs/runbook.md recommends), or PostgreSQL (`postgres`: a primary
 * and a synchronous hot standby, nodes and gateways given both hosts in one URL; nodes as a role
 * owning their tables, gateways as the least-privilege role `leaderway postgres-grants` prints).
 * Faults, the fencing evidence and the leak scan reach the data servers through this.
 */
import { execFileSync } from 'node:child_process';
import {
  createNodeRole,
  type PostgresPair,
  type PostgresServer,
  startPostgresPair,
} from '../helpers/postgres';
import { BIN } from '../helpers/procs';
import type { RedisServer } from '../helpers/redis';
import { startRedis } from '../helpers/redis';
import { type SentinelTopology, startSentinel } from '../helpers/sentinel';

export type StoreKind = 'single' | 'sentinel' | 'postgres';
/** Replicas of the Sentinel topology's primary. */
export const SENTINEL_REPLICAS = 2;

const NODE_ROLE = 'leaderway_node';
const NODE_PASSWORD = 'chaos-node-password-0123456789';
const GATEWAY_ROLE = 'leaderway_gateway';
const GATEWAY_PASSWORD = 'chaos-gateway-password-0123456789';
/** Unused by processes on PostgreSQL, but the spawn helpers want a Redis URL. */
const NO_REDIS = 'redis://127.0.0.1:1';

export interface ChaosStore {
  readonly kind: StoreKind;
  /** The Redis URL nodes and gateways are given (unused on PostgreSQL). */
  readonly url: string;
  /** Every Redis data server (one for `single`, none for `postgres`). */
  readonly servers: RedisServer[];
  /** The Sentinel topology (`sentinel` only). */
  readonly sentinel?: SentinelTopology;
  /** The PostgreSQL primary and standby (`postgres` only; `pg.primary` changes on failover). */
  readonly pg?: PostgresPair;
  /** More environment for every node. */
  readonly nodeEnv: Record<string, string>;
  /** More environment for every gateway; asked once the nodes are initialized (their tables exist). */
  gatewayEnv(): Promise<Record<string, string>>;
  /** The Redis data server that takes writes now (rejects on PostgreSQL). */
  primary(): Promise<RedisServer>;
  /**
   * True when every data server is up and (Sentinel) every replica in sync with the primary, or
   * (PostgreSQL) the primary takes writes and a synchronous standby streams from it.
   */
  healthy(): Promise<boolean>;
  stop(): Promise<void>;
}

/** How a summary names the store: `single Redis`, `sentinel Redis`, `PostgreSQL`. */
export function storeLabel(kind: StoreKind): string {
  return kind === 'postgres' ? 'PostgreSQL' : `${kind} Redis`;
}

export async function startStore(kind: StoreKind): Promise<ChaosStore> {
  if (kind === 'postgres') return startPostgresStore();
  const common = { nodeEnv: {}, gatewayEnv: async () => ({}) };
  if (kind === 'single') {
    const redis = await startRedis({ appendonly: true });
    return {
      kind,
      url: redis.url,
      servers: [redis],
      ...common,
      primary: async () => redis,
      healthy: async () => true,
      stop: () => redis.stop(),
    };
  }
  const sentinel = await startSentinel({
    appendonly: true,
    replicas: SENTINEL_REPLICAS,
    infoPeriodMs: 1_000,
  });
  return {
    kind,
    url: sentinel.url,
    servers: sentinel.servers,
    sentinel,
    ...common,
    primary: () => sentinel.primary(),
    healthy: () => sentinel.inSync(),
    stop: () => sentinel.stop(),
  };
}

/** `postgres://role:password@h1:p1,h2:p2/postgres`: both servers of the pair, for one role. */
function pairUrl(pair: PostgresPair, role: string, password: string): string {
  const hosts = [pair.primary, pair.standby].map((s) => `127.0.0.1:${s.port}`).join(',');
  return `postgres://${role}:${encodeURIComponent(password)}@${hosts}/postgres`;
}

/** True when `s` takes writes and has a synchronous standby streaming from it. */
async function writableWithSyncStandby(s: PostgresServer): Promise<boolean> {
  try {
    const [row] = await s.sql(
      `SELECT NOT pg_is_in_recovery() AS writable,
              EXISTS (SELECT 1 FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync') AS synced`,
    );
    return row?.['writable'] === true && row['synced'] === true;
  } catch {
    return false;
  }
}

async function startPostgresStore(): Promise<ChaosStore> {
  const pair = await startPostgresPair({ synchronous: true, passwordAuth: true });
  try {
    // Created on the primary, replicated to the standby (roles are cluster-wide).
    await createNodeRole(pair.primary, NODE_ROLE, NODE_PASSWORD);
  } catch (err) {
    await pair.stop();
    throw err;
  }
  // Where `pg` is installed outside node_modules (a worktree sharing another's).
  const nodePath: Record<string, string> = process.env['NODE_PATH']
    ? { NODE_PATH: process.env['NODE_PATH'] }
    : {};
  // Once, however many gateways ask at the same time.
  let granted: Promise<void> | undefined;
  const grant = async (): Promise<void> => {
    // As an operator does: the SQL `leaderway postgres-grants` prints, run as the admin.
    const sql = execFileSync(process.execPath, [BIN, 'postgres-grants'], {
      env: { PATH: process.env.PATH ?? '', LEADERWAY_POSTGRESQL_GATEWAY_PASSWORD: GATEWAY_PASSWORD },
      encoding: 'utf8',
    });
    await pair.primary.sql(sql);
  };
  return {
    kind: 'postgres',
    url: NO_REDIS,
    servers: [],
    pg: pair,
    nodeEnv: {
      LEADERWAY_STORAGE: 'postgresql',
      LEADERWAY_POSTGRESQL_URL: pairUrl(pair, NODE_ROLE, NODE_PASSWORD),
      ...nodePath,
    },
    async gatewayEnv() {
      granted ??= grant();
      await granted;
      return {
        LEADERWAY_STORAGE: 'postgresql',
        LEADERWAY_POSTGRESQL_URL: pairUrl(pair, GATEWAY_ROLE, GATEWAY_PASSWORD),
        ...nodePath,
      };
    },
    primary: () => Promise.reject(new Error('a postgres chaos store has no Redis')),
    healthy: () => writableWithSyncStandby(pair.primary),
    stop: () => pair.stop(),
  };
}
