/**
 * The PostgreSQL schema, created and migrated by the node. OpenBao's names are kept where they
 * exist (`table` for the data, `ha_table` for the lock); `leaderway_schema` records which version
 * of each table's layout is applied, so a later release can migrate it.
 *
 * - data table (default `leaderway_kv`): `path text COLLATE "C" PRIMARY KEY, value bytea`. The C
 *   collation sorts paths by their bytes (UTF-8 code point order), so a prefix scan is a range
 *   scan of the primary key.
 * - HA table (default `leaderway_ha_locks`): two rows per lock (postgres-ha-backend.ts says why):
 *   the fence row `core/lock` (the holder's value and the fencing `epoch`, kept on release so it
 *   never goes back) and the lease row `core/lock-lease` (the holder's value, NULL when released
 *   or never taken, `valid_until` by the database's clock, and `ha_identity`, the holder's lock
 *   session `<value>|<postmaster start µs>|<backend pid>|<backend start µs>` for liveness).
 * - events: NOTIFY on the channel `<ha_table>_events`.
 */
import type { PoolClient } from 'pg';
import { LwError } from '../../errors';
import { storageUnavailableError } from '../semantics';

export const DEFAULT_TABLE = 'leaderway_kv';
export const DEFAULT_HA_TABLE = 'leaderway_ha_locks';
/** The version table's name (one per database, shared by every leaderway cluster in it). */
export const SCHEMA_TABLE = 'leaderway_schema';

/**
 * Lower-case SQL identifiers only, so names are never quoted or escaped; 48 characters leave room
 * for the `_events` suffix within PostgreSQL's 63-byte identifier limit.
 */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;

/** Throws `LW_ERR_CONFIG` unless `name` is a usable table name. */
export function validateTableName(name: string, what: string): void {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || name === SCHEMA_TABLE) {
    throw new LwError(
      'LW_ERR_CONFIG',
      `postgresql ${what} must be 1-48 characters of a-z 0-9 _ (not starting with a digit), not ${SCHEMA_TABLE}`,
    );
  }
}

/** One migration step of one table kind; `version` n brings the table from n-1 to n. */
interface Migration {
  version: number;
  sql: (table: string) => string[];
}

const DATA_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: (t) => [`CREATE TABLE IF NOT EXISTS ${t} (path text COLLATE "C" PRIMARY KEY, value bytea NOT NULL)`],
  },
];

/** The lease row's key (the fence row's is LOCK_PATH, `core/lock`). */
export const LEASE_KEY = 'core/lock-lease';

/** Inserts the two lock rows, free, unless they exist. Parameters: LOCK_PATH, LEASE_KEY. */
export const ENSURE_ROWS = (t: string): string =>
  `INSERT INTO ${t} (ha_key, valid_until, epoch) VALUES ($1, '-infinity', 0), ($2, '-infinity', 0)
   ON CONFLICT (ha_key) DO NOTHING`;

const HA_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: (t) => [
      `CREATE TABLE IF NOT EXISTS ${t} (
         ha_key text COLLATE "C" PRIMARY KEY,
         ha_value text,
         ha_identity text,
         valid_until timestamptz NOT NULL,
         epoch bigint NOT NULL
       )`,
    ],
  },
];

/** The newest layout this release writes, per kind (a newer one in the database is refused). */
export const SCHEMA_VERSIONS = { data: DATA_MIGRATIONS.length, ha: HA_MIGRATIONS.length } as const;

/**
 * For a reader (a gateway), which may not write: checks `table`'s recorded layout version with
 * one SELECT. Rejects (an Error whose message names the table, never a value) unless it is
 * exactly this release's: missing (no node has created it yet), older (no node of this release
 * has migrated it yet) or newer (this release would misread it) reject with
 * `LW_ERR_STORAGE_UNAVAILABLE`, the reason in its `cause`, so the reader keeps retrying. Needs only SELECT on
 * `leaderway_schema` (`leaderway postgres-grants`).
 */
export async function checkVersion(c: PoolClient, kind: 'data' | 'ha', table: string): Promise<void> {
  const known = SCHEMA_VERSIONS[kind];
  let version: number | undefined;
  try {
    const { rows } = await c.query<{ version: number }>(
      `SELECT version FROM ${SCHEMA_TABLE} WHERE component = $1`,
      [`${kind}:${table}`],
    );
    version = rows[0]?.version;
  } catch (err) {
    // undefined_table: no node ever ran in this database.
    if ((err as { code?: unknown }).code !== '42P01') throw err;
  }
  if (version === undefined) {
    throw storageUnavailableError(
      new Error(
        `postgresql table ${table} has no recorded schema: a leaderway node creates it on start (a reader never does)`,
      ),
    );
  }
  if (version !== known) {
    throw storageUnavailableError(
      new Error(
        version > known
          ? `postgresql table ${table} has schema version ${version}; this release reads up to ${known}: upgrade it`
          : `postgresql table ${table} has schema version ${version}; this release reads ${known}: a node of this release migrates it on start`,
      ),
    );
  }
}

/**
 * Brings `table` to this release's layout in one transaction, serialized across nodes by an
 * advisory lock (two nodes starting together do not both run a step). Refuses a database whose
 * table is newer than this release knows (a downgrade would misread it).
 */
export async function migrate(c: PoolClient, kind: 'data' | 'ha', table: string): Promise<void> {
  const steps = kind === 'data' ? DATA_MIGRATIONS : HA_MIGRATIONS;
  const component = `${kind}:${table}`;
  await c.query('BEGIN');
  try {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('${SCHEMA_TABLE}'))`);
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${SCHEMA_TABLE} (
         component text PRIMARY KEY,
         version integer NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await c.query<{ version: number }>(
      `SELECT version FROM ${SCHEMA_TABLE} WHERE component = $1`,
      [component],
    );
    const current = rows[0]?.version ?? 0;
    if (current > steps.length) {
      throw new LwError(
        'LW_ERR_CONFIG',
        `postgresql table ${table} has schema version ${current}; this release knows up to ${steps.length}`,
      );
    }
    for (const step of steps) {
      if (step.version <= current) continue;
      for (const statement of step.sql(table)) await c.query(statement);
    }
    if (current < steps.length) {
      await c.query(
        `INSERT INTO ${SCHEMA_TABLE} (component, version) VALUES ($1, $2)
         ON CONFLICT (component) DO UPDATE SET version = excluded.version, applied_at = now()`,
        [component, steps.length],
      );
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
