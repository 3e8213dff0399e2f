/**
 * Opens the data and HA backends a process is configured for. With no separate HA storage the
 * lock lives beside the data (same Redis and prefix, or same PostgreSQL database), which is what
 * makes fencing possible.
 */
import { LwError } from '../errors';
import { type Backend, type HABackend, isHABackend } from './backend';
import { InmemBackend, InmemHABackend, InmemStore } from './inmem';
import { PostgresBackend } from './postgres/postgres-backend';
import { PostgresHABackend } from './postgres/postgres-ha-backend';
import { RedisBackend } from './redis/redis-backend';
import { RedisHABackend } from './redis/redis-ha-backend';
import type { ReplicationSettings } from './redis/replication';
import { StorageSignals } from './signals';

/** Where a PostgreSQL backend lives (OpenBao's `connection_url`, `table`, `ha_table`, `max_parallel`). */
export interface PostgresSpec {
  url: string;
  table: string;
  haTable: string;
  maxParallel: number;
}

/** Where one backend lives. */
export interface StorageSpec {
  type: 'redis' | 'postgresql' | 'inmem';
  redisUrl: string;
  prefix: string;
  /** Replicas a write must reach before it is acknowledged (Redis WAIT). */
  replication?: ReplicationSettings;
  /** Required for `postgresql`. */
  postgres?: PostgresSpec;
}

function postgresSpec(spec: StorageSpec): PostgresSpec {
  if (!spec.postgres) throw new LwError('LW_ERR_CONFIG', 'postgresql storage needs a connection_url');
  return spec.postgres;
}

/** The opened backends. */
export interface OpenedStorage {
  data: Backend;
  ha: HABackend;
  /** True when the lock is in a different store than the data (no fencing). */
  split: boolean;
  /** What the backends report outside any call (liveness refused, unreplicated writes). */
  signals: StorageSignals;
}

export interface OpenOptions {
  /** Lock commands time out after this (the HA layer passes ttl/3, so a renew never lingers). */
  lockCommandTimeoutMs: number;
  /**
   * The process's id (LEADERWAY_NODE_ID of a node or gateway), added to the PostgreSQL sessions'
   * `application_name` (`leaderway-data/<id>`) so an operator, or an audit trigger, tells each
   * process's sessions apart.
   */
  processId?: string;
  /** The in-process store to use for `inmem` (shared by the nodes of `leaderway dev`). */
  inmem?: InmemStore;
  /**
   * The process only reads (a gateway): its Redis connections send nothing a reader's Redis user
   * is not allowed (no INFO ready check, no connection identity for holder liveness).
   */
  reader?: boolean;
}

function openHA(spec: StorageSpec, o: OpenOptions, store: InmemStore, signals: StorageSignals): HABackend {
  let ha: unknown;
  switch (spec.type) {
    case 'redis':
      ha = new RedisHABackend({
        url: spec.redisUrl,
        prefix: spec.prefix,
        commandTimeoutMs: o.lockCommandTimeoutMs,
        replication: spec.replication,
        onLivenessUnavailable: (reason) => signals.refuseLiveness(reason),
        reader: o.reader,
      });
      break;
    case 'postgresql': {
      const pg = postgresSpec(spec);
      ha = new PostgresHABackend({
        url: pg.url,
        haTable: pg.haTable,
        statementTimeoutMs: o.lockCommandTimeoutMs,
        reader: o.reader,
        processId: o.processId,
      });
      break;
    }
    case 'inmem':
      ha = new InmemHABackend(store);
      break;
  }
  if (!isHABackend(ha)) throw new LwError('LW_ERR_CONFIG', 'specified HA storage does not support HA');
  return ha;
}

function openData(spec: StorageSpec, o: OpenOptions, store: InmemStore, signals: StorageSignals): Backend {
  switch (spec.type) {
    case 'redis':
      return new RedisBackend({
        url: spec.redisUrl,
        prefix: spec.prefix,
        replication: spec.replication,
        onUnreplicated: () => signals.unreplicatedWrite(),
        onNoReplicas: () => signals.noReplicasRefusal(),
        reader: o.reader,
      });
    case 'postgresql': {
      const pg = postgresSpec(spec);
      return new PostgresBackend({
        url: pg.url,
        table: pg.table,
        haTable: pg.haTable,
        maxParallel: pg.maxParallel,
        reader: o.reader,
        processId: o.processId,
      });
    }
    case 'inmem':
      return new InmemBackend(store);
  }
}

/** Opens storage (connections are made lazily; see each backend's start()). */
export function openStorage(data: StorageSpec, ha: StorageSpec | null, o: OpenOptions): OpenedStorage {
  const store = o.inmem ?? new InmemStore();
  const signals = new StorageSignals();
  const dataBackend = openData(data, o, store, signals);
  const haBackend = openHA(ha ?? data, o, ha && ha.type === 'inmem' ? new InmemStore() : store, signals);
  return { data: dataBackend, ha: haBackend, split: ha !== null, signals };
}

/**
 * Waits until the backends can be reached, or `timeoutMs` passes (then resolves anyway: they
 * heal). Resolves null when both are ready, else what kept the first one from it (a driver's
 * message, sanitized: no URL or statement parameter; or a schema a reader cannot use).
 */
export async function warmUp(s: OpenedStorage, timeoutMs: number): Promise<string | null> {
  const starts = [s.data, s.ha].map((b) =>
    (b as { start?: (t: number) => Promise<void> }).start?.(timeoutMs),
  );
  const results = await Promise.allSettled(starts);
  for (const r of results) {
    if (r.status === 'fulfilled') continue;
    const err = r.reason as { message?: unknown; cause?: { message?: unknown } } | null;
    return String(err?.cause?.message ?? err?.message ?? 'unknown');
  }
  return null;
}
