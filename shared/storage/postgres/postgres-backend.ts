/**
 * The data backend on PostgreSQL. Every write is one transaction: the fence check (a
 * `SELECT ... FOR SHARE` of the lock's fence row), the ifAbsent guard, then the writes. The shared
 * row lock is what makes fencing hold: a change of holder must lock that row FOR UPDATE, so it
 * waits until every fenced transaction that saw the old value has ended, and every fenced
 * transaction after it sees the new value and stores nothing.
 */
import type { PoolClient } from 'pg';
import { type Backend, type FencingBackend, LOCK_PATH, type WriteOp } from '../backend';
import { FencedView, type FenceTarget, fencedWriteError } from '../fenced-view';
import { immediateChildren } from '../semantics';
import {
  DEFAULT_START_TIMEOUT_MS,
  PgPool,
  Rollback,
  type Statement,
  sendTogether,
  sessionName,
} from './connection';
import { DEFAULT_HA_TABLE, DEFAULT_TABLE, LEASE_KEY, validateTableName } from './schema';
import { SchemaGate } from './schema-gate';

/** Default per-statement timeout: a data request should fail over to a 503 well before clients time out. */
const DEFAULT_STATEMENT_TIMEOUT_MS = 2000;
/** Default pool size (OpenBao's `max_parallel` defaults to 128; a node rarely needs that many). */
export const DEFAULT_MAX_PARALLEL = 16;

/** Options for {@link PostgresBackend}. */
export interface PostgresBackendOptions {
  /** `postgres://` URL. May hold a password: never logged. */
  url: string;
  /** The data table (OpenBao's `table`). Default `leaderway_kv`. */
  table?: string;
  /** The lock table the fence reads (OpenBao's `ha_table`). Default `leaderway_ha_locks`. */
  haTable?: string;
  /** Connections at most (OpenBao's `max_parallel`). */
  maxParallel?: number;
  /** Per-statement timeout; default 2000 ms. */
  statementTimeoutMs?: number;
  /** A process that only reads (a gateway): never creates or migrates tables. */
  reader?: boolean;
  /** Added to the sessions' application_name (connection.ts sessionName). */
  processId?: string;
}

/** The final state of each path a batch touches: the last op on a path wins, as if applied in order. */
function finalWrites(ops: WriteOp[]): { puts: Map<string, Buffer>; deletes: string[] } {
  const last = new Map<string, Buffer | null>();
  for (const op of ops) {
    if (op.op === 'put') {
      if (!Buffer.isBuffer(op.value)) throw new TypeError('storage values must be Buffers');
      last.set(op.path, op.value);
    } else {
      last.set(op.path, null);
    }
  }
  const puts = new Map<string, Buffer>();
  const deletes: string[] = [];
  for (const [path, value] of last) {
    if (value === null) deletes.push(path);
    else puts.set(path, value);
  }
  return { puts, deletes };
}

/**
 * Data storage on PostgreSQL, with fencing when the lock table is in the same database.
 * Construct it while PostgreSQL is down if need be: calls reject with
 * `LW_ERR_STORAGE_UNAVAILABLE` until it comes back, and the tables are created on first use.
 */
export class PostgresBackend implements FencingBackend, FenceTarget {
  readonly kind = 'postgresql';
  readonly table: string;
  readonly haTable: string;
  private readonly pool: PgPool;
  private readonly schema: SchemaGate;
  private readonly haSchema: SchemaGate;

  constructor(opts: PostgresBackendOptions) {
    this.table = opts.table ?? DEFAULT_TABLE;
    this.haTable = opts.haTable ?? DEFAULT_HA_TABLE;
    validateTableName(this.table, 'table');
    validateTableName(this.haTable, 'ha_table');
    this.pool = new PgPool({
      url: opts.url,
      applicationName: sessionName('data', opts.processId),
      statementTimeoutMs: opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
      max: opts.maxParallel ?? DEFAULT_MAX_PARALLEL,
      idleTimeoutMs: 30_000,
      // A write sends its fence check with BEGIN, and its DELETE with its upsert (write()).
      pipeline: true,
    });
    this.schema = new SchemaGate(this.pool, 'data', this.table, opts.reader ?? false);
    // The fence reads the lock table: it must exist even before any node took the lock.
    this.haSchema = new SchemaGate(this.pool, 'ha', this.haTable, opts.reader ?? false);
  }

  /** Connects and creates the tables; rejects with `LW_ERR_STORAGE_UNAVAILABLE` after `timeoutMs`. */
  async start(timeoutMs: number = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    await this.pool.start(timeoutMs);
    await this.ready();
  }

  get(path: string): Promise<Buffer | null> {
    return this.read(async (c) => {
      const { rows } = await c.query<{ value: Buffer }>(`SELECT value FROM ${this.table} WHERE path = $1`, [
        path,
      ]);
      return rows[0]?.value ?? null;
    });
  }

  getWithin(path: string, maxBytes: number): Promise<Buffer | number | null> {
    return this.read(async (c) => {
      // octet_length is read from the stored datum's header: a long value does not cross the wire.
      const { rows } = await c.query<{ len: number; value: Buffer | null }>(
        `SELECT octet_length(value) AS len, CASE WHEN octet_length(value) <= $2 THEN value END AS value
           FROM ${this.table} WHERE path = $1`,
        [path, maxBytes],
      );
      const row = rows[0];
      if (!row) return null;
      return row.value ?? Number(row.len);
    });
  }

  /**
   * One statement, so one snapshot (READ COMMITTED takes one per statement); a row per path asked,
   * in order (matched by position, not by the path text coming back).
   */
  getMany(paths: readonly string[]): Promise<(Buffer | null)[]> {
    if (paths.length === 0) return Promise.resolve([]);
    return this.read(async (c) => {
      const { rows } = await c.query<{ value: Buffer | null }>(
        `SELECT t.value FROM unnest($1::text[]) WITH ORDINALITY AS p(path, i)
           LEFT JOIN ${this.table} t ON t.path = p.path ORDER BY p.i`,
        [paths],
      );
      return rows.map((r) => r.value ?? null);
    });
  }

  async put(path: string, value: Buffer): Promise<void> {
    await this.batch([{ op: 'put', path, value }]);
  }

  async delete(path: string): Promise<void> {
    await this.batch([{ op: 'delete', path }]);
  }

  list(prefix: string): Promise<string[]> {
    return this.read(async (c) => {
      // `^@` (starts_with) is a range scan of the C-collated primary key; no LIKE escaping needed.
      const { rows } =
        prefix === ''
          ? await c.query<{ path: string }>(`SELECT path FROM ${this.table}`)
          : await c.query<{ path: string }>(`SELECT path FROM ${this.table} WHERE path ^@ $1`, [prefix]);
      return immediateChildren(
        prefix,
        rows.map((r) => r.path),
      );
    });
  }

  batch(ops: WriteOp[], opts: { ifAbsent?: string } = {}): Promise<boolean> {
    return this.write(ops, opts.ifAbsent, undefined);
  }

  /** @internal Used by the fenced view. */
  fencedBatch(ops: WriteOp[], opts: { ifAbsent?: string }, fence: string): Promise<boolean> {
    return this.write(ops, opts.ifAbsent, fence);
  }

  /** A view whose writes are refused unless the lock row holds `lockValue`. No new connection. */
  fenced(lockValue: string, signal: AbortSignal): Backend {
    return new FencedView(this, lockValue, signal);
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async ready(): Promise<void> {
    await this.schema.ready();
    await this.haSchema.ready();
  }

  private async read<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    await this.ready();
    return this.pool.run(fn);
  }

  private async write(
    ops: WriteOp[],
    ifAbsent: string | undefined,
    fence: string | undefined,
  ): Promise<boolean> {
    const { puts, deletes } = finalWrites(ops);
    await this.ready();
    // FOR SHARE of the fence row: held to COMMIT, so no change of holder (which locks that row FOR
    // UPDATE) can commit between this check and our writes; one that committed first makes the
    // row not match (READ COMMITTED re-checks a concurrently updated row against the WHERE
    // clause). Not FOR KEY SHARE: that lock skips the re-check when an update left the key alone,
    // and would pass a stale holder. The lease row is only read: a lease that ran out while this
    // write was in flight is harmless, as nobody can take the lock until the write ends. A read,
    // so it is sent with BEGIN (one socket write); the writes wait for its answer.
    const fenceCheck: Statement | undefined =
      fence === undefined
        ? undefined
        : {
            text: `SELECT 1 FROM ${this.haTable} f, ${this.haTable} l
                    WHERE f.ha_key = $1 AND f.ha_value = $3 AND l.ha_key = $2 AND l.ha_value = $3
                      AND l.valid_until > clock_timestamp()
                    FOR SHARE OF f`,
            values: [LOCK_PATH, LEASE_KEY, fence],
          };
    const writes: Statement[] = [];
    if (deletes.length > 0) {
      writes.push({ text: `DELETE FROM ${this.table} WHERE path = ANY($1::text[])`, values: [deletes] });
    }
    if (puts.size > 0) {
      writes.push({
        text: `INSERT INTO ${this.table} (path, value) SELECT * FROM unnest($1::text[], $2::bytea[])
               ON CONFLICT (path) DO UPDATE SET value = excluded.value`,
        values: [[...puts.keys()], [...puts.values()]],
      });
    }
    return this.pool.transaction(
      async (c, fenced) => {
        if (fenceCheck !== undefined && fenced?.rowCount !== 1) throw fencedWriteError();
        if (ifAbsent !== undefined) {
          // Two guarded batches on one path (two nodes initializing) run one after the other, so
          // the second sees the first's row.
          await c.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [this.table, ifAbsent]);
          const { rowCount } = await c.query(`SELECT 1 FROM ${this.table} WHERE path = $1`, [ifAbsent]);
          if (rowCount === 1) throw new Rollback(false);
        }
        // The DELETE and the upsert touch different paths (finalWrites): sent together (one
        // socket write). COMMIT only once both answered, so a write that fails or is cut off
        // before then stored nothing ("not served", not "outcome unknown").
        await sendTogether(c, writes, this.pool.statementTimeoutMs);
        return true;
      },
      { data: true, first: fenceCheck },
    );
  }
}
