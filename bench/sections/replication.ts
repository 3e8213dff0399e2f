/**
 * Issue 13's figures, on topologies of its own (the shared bench cluster runs on one Redis):
 *  - writes: KV writes of 1 KB straight to the active node, one Redis vs Sentinel without WAIT
 *    (LEADERWAY_REDIS_MIN_REPLICAS=0) vs Sentinel with WAIT (the default there), and (issue 28)
 *    PostgreSQL alone vs with an asynchronous standby vs with a synchronous one, in alternating
 *    rounds — what confirming each write on a replica costs. Beside each PostgreSQL load, the
 *    same database is loaded without leaderway (sql-load.ts): its fenced write transaction and a
 *    lone upsert, to tell the database's share of a write from leaderway's;
 *  - kills: three nodes and a gateway on Sentinel (down-after 1 s), four clients writing and
 *    reading through the gateway, kill -9 of the primary ten times; per kill the failover time
 *    (kill → a promoted replica takes writes) and the longest request, then every acknowledged
 *    write is read back.
 */
import { waitActive } from '../../test/helpers/cluster';
import { call, initCluster } from '../../test/helpers/http';
import { freePort } from '../../test/helpers/ports';
import { type PostgresServer, startPostgres, startPostgresPair } from '../../test/helpers/postgres';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../../test/helpers/procs';
import { startRedis } from '../../test/helpers/redis';
import { startSentinel } from '../../test/helpers/sentinel';
import { startWriters } from '../../test/helpers/writers';
import type { SectionContext } from '../lib/context';
import { initWhenUninitialized } from '../lib/http';
import { type LoadResult, runLoad } from '../lib/load';
import { prepareSqlLoad, runSqlLoad, type SqlLoadResult } from '../lib/sql-load';
import { sleep } from '../lib/stats';

export const WRITE_CONFIGS = [
  'single',
  'sentinel-no-wait',
  'sentinel-wait',
  'pg',
  'pg-async',
  'pg-sync',
] as const;
export type WriteConfig = (typeof WRITE_CONFIGS)[number];
/** The PostgreSQL topologies (their loads also measure the database alone). */
export const PG_CONFIGS = ['pg', 'pg-async', 'pg-sync'] as const satisfies readonly WriteConfig[];
type PgConfig = (typeof PG_CONFIGS)[number];
const isPg = (c: WriteConfig): c is PgConfig => (PG_CONFIGS as readonly string[]).includes(c);

/** One load of one topology in one round. */
export interface WriteRound {
  round: number;
  config: WriteConfig;
  connections: number;
  result: LoadResult;
  /** PostgreSQL only: WAL written per acknowledged KV write (bytes), from pg_current_wal_lsn(). */
  walBytesPerWrite?: number;
  /** PostgreSQL only: the same database loaded without leaderway, right after. */
  sql?: SqlLoadResult[];
  /**
   * PostgreSQL alone only: the statements the server ran per acknowledged KV write, by kind
   * (pg_stat_statements over the load; lock renewals and the bench's own probes included).
   */
  statementsPerWrite?: Record<string, number>;
}

/** pg_stat_statements on the PostgreSQL-alone server: what one KV write sends. */
const STATEMENT_STATS = [
  'shared_preload_libraries=pg_stat_statements',
  'pg_stat_statements.track_utility=on',
];

/** The kind of a statement as pg_stat_statements normalised it. */
function statementKind(query: string): string {
  const q = query.trim().toUpperCase();
  if (q.startsWith('BEGIN')) return 'BEGIN';
  if (q.startsWith('COMMIT')) return 'COMMIT';
  if (q.startsWith('ROLLBACK')) return 'ROLLBACK';
  if (q.startsWith('SELECT') && q.includes('FOR SHARE')) return 'fence SELECT … FOR SHARE';
  if (q.startsWith('INSERT')) return 'INSERT (upsert)';
  // KV v2 drops the versions beyond max_versions in the write's own batch.
  if (q.startsWith('DELETE')) return 'DELETE (old versions)';
  if (q.startsWith('SELECT')) return 'SELECT (reads)';
  return 'other';
}

/** Statements run on `server`'s database since the last reset, by kind. */
async function statementCounts(server: PostgresServer): Promise<Record<string, number>> {
  const rows = await server.sql(
    `SELECT query, calls::text AS calls FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  const out: Record<string, number> = {};
  for (const r of rows) {
    const kind = statementKind(String(r['query']));
    out[kind] = (out[kind] ?? 0) + Number(r['calls']);
  }
  return out;
}

export interface ReplicationResult {
  writes: WriteRound[];
  downAfterMs: number;
  kills: Array<{ kill: number; failoverMs: number; longestMs: number }>;
  traffic: { reads: number; writes: number; unknown: number; failedReads: number; failedWrites: number };
  /** Acknowledged writes not found afterwards. */
  lost: number;
}

const CONNECTIONS = 16;
const BODY = JSON.stringify({ data: { v: 'x'.repeat(1024) } });
/** The SQL-alone loads are shorter than the leaderway ones: they only calibrate. */
const SQL_LOAD_S = { full: 3, quick: 1 };

async function activeOf(nodes: Proc[], token: string): Promise<Proc> {
  const a = await waitActive(nodes, 20_000);
  // The first write also waits for the keyring and mounts to be ready.
  await waitFor(
    async () => (await call(a.url, '/v1/secret/data/warm', { token, body: BODY })).status === 200,
    20_000,
    'a first write',
  );
  return a;
}

/** The WAL position of `server`, in bytes. */
async function walLsn(server: PostgresServer): Promise<bigint> {
  const [row] = await server.sql(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint::text AS b`);
  return BigInt(String(row?.['b']));
}

async function writeRounds(ctx: SectionContext): Promise<ReplicationResult['writes']> {
  const redis = await startRedis();
  const topo = await startSentinel();
  const procs: Proc[] = [];
  // Stopped in the finally, however far the starts got.
  const pgStops: Array<() => Promise<void>> = [];
  try {
    const pg = await startPostgres({ settings: STATEMENT_STATS });
    pgStops.push(() => pg.stop());
    const asyncPair = await startPostgresPair({ synchronous: false });
    pgStops.push(() => asyncPair.stop());
    const syncPair = await startPostgresPair({ synchronous: true });
    pgStops.push(() => syncPair.stop());
    const start = async (name: string, url: string, env: Record<string, string>) => {
      const n = await spawnNode(name, { redisUrl: url, keys: testKeys(), env });
      procs.push(n);
      const token = await initWhenUninitialized(n.url).catch((err: Error) => {
        throw new Error(`${name}: ${err.message}`);
      });
      return { node: await activeOf([n], token), token };
    };
    // Nodes on PostgreSQL get an unused Redis URL; a pair's URL lists both hosts, as an operator's
    // would, and the node picks the writable one (shared/storage/postgres/hosts.ts).
    const onPg = (name: string, url: string) =>
      start(name, 'redis://127.0.0.1:1', { LEADERWAY_STORAGE: 'postgresql', LEADERWAY_POSTGRESQL_URL: url });
    const pgServers: Record<PgConfig, { primary: PostgresServer; url: string }> = {
      pg: { primary: pg, url: pg.url },
      'pg-async': { primary: asyncPair.primary, url: asyncPair.url },
      'pg-sync': { primary: syncPair.primary, url: syncPair.url },
    };
    const targets: Record<WriteConfig, { node: Proc; token: string }> = {
      single: await start('single', redis.url, {}),
      'sentinel-no-wait': await start('nowait', topo.url, {
        LEADERWAY_REDIS_PREFIX: 'lw-nowait',
        LEADERWAY_REDIS_MIN_REPLICAS: '0',
      }),
      'sentinel-wait': await start('wait', topo.url, { LEADERWAY_REDIS_PREFIX: 'lw-wait' }),
      pg: await onPg('pg', pg.url),
      'pg-async': await onPg('pg-async', asyncPair.url),
      'pg-sync': await onPg('pg-sync', syncPair.url),
    };
    for (const c of PG_CONFIGS) await prepareSqlLoad(pgServers[c].primary.url);
    await pg.sql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const out: ReplicationResult['writes'] = [];
    const rounds = ctx.quick ? 1 : 3;
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [...WRITE_CONFIGS] : [...WRITE_CONFIGS].reverse();
      for (const config of order) {
        const t = targets[config];
        const pgTarget = isPg(config) ? pgServers[config] : undefined;
        const walBefore = pgTarget ? await walLsn(pgTarget.primary) : 0n;
        if (config === 'pg') await pg.sql('SELECT pg_stat_statements_reset()');
        const result = await runLoad(
          {
            url: t.node.url,
            connections: CONNECTIONS,
            durationS: ctx.quick ? 2 : 6,
            method: 'POST',
            path: (i) => `/v1/secret/data/bench-w${i}`,
            body: BODY,
            token: t.token,
          },
          { cpu: { node: t.node.child.pid } },
        );
        const row: WriteRound = { round, config, connections: CONNECTIONS, result };
        if (pgTarget) {
          const acked = result.rps * result.durationS;
          const wal = Number((await walLsn(pgTarget.primary)) - walBefore);
          if (acked > 0) row.walBytesPerWrite = wal / acked;
          if (config === 'pg' && acked > 0) {
            const counts = await statementCounts(pg);
            row.statementsPerWrite = Object.fromEntries(
              Object.entries(counts).map(([k, n]) => [k, n / acked]),
            );
          }
          row.sql = [];
          for (const shape of ['fenced', 'single'] as const) {
            // The primary's own URL: the bench talks to the writable host itself.
            row.sql.push(
              await runSqlLoad({
                url: pgTarget.primary.url,
                shape,
                clients: CONNECTIONS,
                durationS: SQL_LOAD_S[ctx.quick ? 'quick' : 'full'],
                valueBytes: 1024,
              }),
            );
          }
        }
        out.push(row);
        const sql = row.sql?.map(
          (q) => `; SQL alone ${q.shape} ${q.tps.toFixed(0)} tx/s p99 ${q.p99.toFixed(1)} ms`,
        );
        ctx.log(
          `replication writes ${config}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(1)} ms, ${result.errors} errors` +
            (row.walBytesPerWrite === undefined ? '' : `, ${row.walBytesPerWrite.toFixed(0)} B WAL/write`) +
            (sql?.join('') ?? ''),
        );
      }
    }
    return out;
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await topo.stop();
    await redis.stop();
    await Promise.all(pgStops.map((stop) => stop()));
  }
}

async function killRounds(ctx: SectionContext): Promise<Omit<ReplicationResult, 'writes'>> {
  const topo = await startSentinel({ appendonly: true });
  const procs: Proc[] = [];
  try {
    const keys = testKeys();
    const port = await freePort();
    const apiAddr = `http://127.0.0.1:${port}`;
    for (const n of ['n1', 'n2', 'n3']) procs.push(await spawnNode(n, { redisUrl: topo.url, keys, apiAddr }));
    const token = await initCluster((procs[0] as Proc).url);
    await activeOf(procs, token);
    const gw = await spawnGateway('gw', { redisUrl: topo.url, keys, port });
    procs.push(gw);
    await waitFor(async () => (await call(gw.url, '/-/ready')).status === 200, 20_000, 'gateway ready');
    const load = startWriters(gw.url, token);
    const kills: ReplicationResult['kills'] = [];
    const n = ctx.quick ? 2 : 10;
    try {
      for (let kill = 1; kill <= n; kill++) {
        await sleep(1_500);
        load.tally.longestMs = 0;
        const old = await topo.primary();
        const t0 = performance.now();
        await old.kill('SIGKILL');
        await topo.waitFailover(old);
        const failoverMs = performance.now() - t0;
        await old.start();
        await topo.waitReplicasSynced(30_000);
        await sleep(1_500);
        kills.push({ kill, failoverMs, longestMs: load.tally.longestMs });
        ctx.log(
          `replication kill ${kill}: failover ${failoverMs.toFixed(0)} ms, longest request ${load.tally.longestMs.toFixed(0)} ms`,
        );
      }
    } finally {
      await load.stop();
    }
    const t = load.tally;
    let lost = 0;
    for (const [key, acked] of t.acked) {
      const r = await call(gw.url, `/v1/secret/data/${key}`, { token });
      const got = (r.body as { data?: { data?: { n?: number } } }).data?.data?.n ?? 0;
      if (r.status !== 200 || got < acked) lost++;
    }
    return {
      downAfterMs: topo.downAfterMs,
      kills,
      traffic: {
        reads: t.reads,
        writes: t.writes,
        unknown: t.unknown,
        failedReads: t.failedReads.length,
        failedWrites: t.failedWrites.length,
      },
      lost,
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await topo.stop();
  }
}

export async function replicationSection(ctx: SectionContext): Promise<ReplicationResult> {
  const writes = await writeRounds(ctx);
  return { writes, ...(await killRounds(ctx)) };
}
