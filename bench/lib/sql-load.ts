/**
 * A closed-loop SQL load straight from the bench to PostgreSQL, without leaderway: what the
 * database itself gives for the statements a KV write costs, so a leaderway figure can be read
 * against it. Two shapes, each client on its own connection writing its own key:
 *  - `fenced`: leaderway's write transaction as postgres-backend.ts sends it, three round trips —
 *    BEGIN with the fence `SELECT ... FOR SHARE` (sent together, connection.ts sendTogether), the
 *    upsert, COMMIT;
 *  - `single`: the upsert alone in autocommit, one round trip.
 * The tables are the bench's own (`lwbench_*`), beside leaderway's in the same database.
 */
import { Client } from 'pg';
import { sendTogether } from '../../shared/storage/postgres/connection';

/** A shape of write transaction. */
export type SqlShape = 'fenced' | 'single';

/** What one SQL load measured (latencies in ms). */
export interface SqlLoadResult {
  shape: SqlShape;
  clients: number;
  durationS: number;
  /** Committed transactions per second. */
  tps: number;
  p50: number;
  p99: number;
  errors: number;
}

const FENCE_TABLE = 'lwbench_fence';
const KV_TABLE = 'lwbench_kv';
const FENCE_VALUE = 'bench-holder';

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Creates the bench's tables (idempotent): a fence row like leaderway's lock row, and a kv table. */
export async function prepareSqlLoad(url: string): Promise<void> {
  const c = new Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${FENCE_TABLE} (ha_key text PRIMARY KEY, ha_value text NOT NULL)`,
    );
    await c.query(
      `INSERT INTO ${FENCE_TABLE} VALUES ('core/lock', $1) ON CONFLICT (ha_key) DO UPDATE SET ha_value = excluded.ha_value`,
      [FENCE_VALUE],
    );
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${KV_TABLE} (path text COLLATE "C" PRIMARY KEY, value bytea NOT NULL)`,
    );
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Runs `clients` connections, each writing `valueBytes` to its own key back to back, for `durationS`. */
export async function runSqlLoad(o: {
  url: string;
  shape: SqlShape;
  clients: number;
  durationS: number;
  valueBytes: number;
}): Promise<SqlLoadResult> {
  const value = Buffer.alloc(o.valueBytes, 'x');
  const upsert = `INSERT INTO ${KV_TABLE} (path, value) VALUES ($1, $2)
    ON CONFLICT (path) DO UPDATE SET value = excluded.value`;
  const clients = Array.from(
    { length: o.clients },
    // Pipeline mode, as leaderway's data pool: BEGIN and the fence go out in one write.
    () => new Client({ connectionString: o.url, pipeline: true }),
  );
  for (const c of clients) c.on('error', () => {});
  await Promise.all(clients.map((c) => c.connect()));
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const end = started + o.durationS * 1000;
  try {
    await Promise.all(
      clients.map(async (c, i) => {
        const key = `bench/sql/${i}`;
        while (performance.now() < end) {
          const t = performance.now();
          try {
            if (o.shape === 'single') {
              await c.query(upsert, [key, value]);
            } else {
              await sendTogether(c, [
                { text: 'BEGIN' },
                {
                  text: `SELECT 1 FROM ${FENCE_TABLE} WHERE ha_key = 'core/lock' AND ha_value = $1 FOR SHARE`,
                  values: [FENCE_VALUE],
                },
              ]);
              await c.query(upsert, [key, value]);
              await c.query('COMMIT');
            }
            latencies.push(performance.now() - t);
          } catch {
            errors++;
            await c.query('ROLLBACK').catch(() => undefined);
          }
        }
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
  const durationS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    shape: o.shape,
    clients: o.clients,
    durationS,
    tps: latencies.length / durationS,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    errors,
  };
}
