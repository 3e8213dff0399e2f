/**
 * Issue 28's failover figure, beside the failover windows: kill -9 of the PostgreSQL primary
 * under the failover section's load (read + write loops, paced), then the standby promoted after
 * a fixed detection delay — what an operator's tooling (Patroni, a script) would do. Each run
 * starts a topology of its own: a primary and a synchronous streaming standby
 * (startPostgresPair), two nodes on PostgreSQL with the product's lock TTL, and — when the
 * gateway can read PostgreSQL — a gateway on it; otherwise the load goes straight to the active
 * node (the table says which). Per run: kill → the promoted standby takes writes, the longest
 * request, failed reads and writes, and how many failures were "outcome unknown".
 */

import { gatewaySchema } from '../../shared/config/gateway-schema';
import { waitActive } from '../../test/helpers/cluster';
import { call } from '../../test/helpers/http';
import { freePort } from '../../test/helpers/ports';
import { type PostgresPair, startPostgresPair } from '../../test/helpers/postgres';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../../test/helpers/procs';
import { DEFAULT_LOCK_TTL } from '../lib/cluster';
import type { SectionContext } from '../lib/context';
import { initWhenUninitialized, kvBody } from '../lib/http';
import { analyseWindow, startRecordingLoad, type WindowStats } from '../lib/recording-load';
import { sleep } from '../lib/stats';

/**
 * From the kill to the promotion: the time a watcher needs to declare the primary dead
 * (Sentinel's down-after in the replication section is 1 s too). Fixed, so the runs measure
 * leaderway's part, not a detector's.
 */
export const DETECTION_DELAY_MS = 1_000;
/** The failover section's load: 8 loops × 40 req/s, alternating a KV read and a 1 KB write. */
const WORKERS = 8;
const RATE_PER_WORKER = 40;
const VALUE_BYTES = 1024;
const BASELINE_MS = 2_000;
/** Observation after the kill: the promotion plus the pools reconnecting, with room to spare. */
const OBSERVE_MS = 10_000;
const NODES = 2;

/** One kill and promotion. */
export interface PgPromotionRun {
  run: number;
  /** The active node before the kill and after the run. */
  from: string;
  to: string;
  /** Kill → the promoted standby accepts writes (includes the detection delay). */
  promotedMs: number;
  window: WindowStats;
}

export interface PgPromotionResult {
  /** Where the load went: through a gateway on PostgreSQL, or straight to the active node. */
  path: 'gateway' | 'active node';
  lockTtl: string;
  detectionDelayMs: number;
  /** The standby is synchronous (synchronous_commit=on, synchronous_standby_names). */
  synchronous: boolean;
  /** PostgreSQL's server_version. */
  postgres: string;
  nodes: number;
  workers: number;
  ratePerWorker: number;
  runs: PgPromotionRun[];
}

/**
 * Whether this build's gateway can read PostgreSQL: its configuration schema has the storage
 * URL (branch wip/gw-pg). Without it a gateway would ignore the variable and look for Redis.
 */
export function gatewayReadsPostgres(): boolean {
  return JSON.stringify(gatewaySchema).includes('LEADERWAY_POSTGRESQL_URL');
}

async function oneRun(
  ctx: SectionContext,
  run: number,
  viaGateway: boolean,
): Promise<PgPromotionRun & { postgres: string }> {
  const pair: PostgresPair = await startPostgresPair({ synchronous: true });
  const procs: Proc[] = [];
  try {
    const [version] = await pair.primary.sql('SHOW server_version');
    const postgres = String(version?.['server_version'] ?? 'unknown');
    const keys = testKeys();
    const gwPort = await freePort();
    const pgEnv = {
      LEADERWAY_STORAGE: 'postgresql',
      LEADERWAY_POSTGRESQL_URL: pair.url,
      LEADERWAY_LOCK_TTL: DEFAULT_LOCK_TTL,
    };
    for (let i = 1; i <= NODES; i++) {
      procs.push(
        await spawnNode(`pg-n${i}`, {
          redisUrl: 'redis://127.0.0.1:1', // unused: storage is PostgreSQL
          keys,
          ...(viaGateway ? { apiAddr: `http://127.0.0.1:${gwPort}` } : {}),
          env: pgEnv,
        }),
      );
    }
    const nodes = [...procs];
    const token = await initWhenUninitialized((nodes[0] as Proc).url);
    const active = await waitActive(nodes, 20_000);
    await waitFor(
      async () =>
        (await call(active.url, '/v1/secret/data/warm', { token, body: kvBody(16) })).status === 200,
      20_000,
      'a first write',
    );
    let base = active.url;
    if (viaGateway) {
      const gw = await spawnGateway('pg-gw', {
        redisUrl: 'redis://127.0.0.1:1',
        keys,
        port: gwPort,
        env: { LEADERWAY_STORAGE: 'postgresql', LEADERWAY_POSTGRESQL_URL: pair.url },
      });
      procs.push(gw);
      await waitFor(async () => (await call(gw.url, '/-/ready')).status === 200, 20_000, 'gateway ready');
      base = gw.url;
    }
    const load = await startRecordingLoad({
      base,
      token,
      workers: WORKERS,
      keyPrefix: `pg-promotion-${run}`,
      valueBytes: VALUE_BYTES,
      ratePerWorker: RATE_PER_WORKER,
    });
    const baselineFrom = performance.now();
    let promotedMs = Number.NaN;
    let samples: Awaited<ReturnType<typeof load.stop>>;
    let faultAt = Number.NaN;
    try {
      await sleep(BASELINE_MS);
      faultAt = performance.now();
      await pair.primary.kill('SIGKILL');
      await sleep(faultAt + DETECTION_DELAY_MS - performance.now());
      await pair.promote();
      promotedMs = performance.now() - faultAt;
      await sleep(faultAt + OBSERVE_MS - performance.now());
    } finally {
      samples = await load.stop();
    }
    const window = analyseWindow(samples, faultAt, baselineFrom, faultAt + OBSERVE_MS);
    const next = await waitActive(nodes, 20_000);
    const r: PgPromotionRun = { run, from: active.name, to: next.name, promotedMs, window };
    ctx.log(
      `failover-pg #${run} ${r.from}→${r.to}: promoted after ${promotedMs.toFixed(0)} ms; failed ` +
        `${window.failedReads}r/${window.failedWrites}w (${window.outcomeUnknown} outcome unknown) ` +
        `longest ${Math.round(window.longestMs)} ms recovery ${window.recoveryMs}${window.recoveryCensored ? '+' : ''} ms ` +
        `${JSON.stringify(window.failureCodes)}`,
    );
    return { ...r, postgres };
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await pair.stop();
  }
}

export async function failoverPgSection(ctx: SectionContext): Promise<PgPromotionResult> {
  const viaGateway = gatewayReadsPostgres();
  ctx.log(
    `failover-pg: load ${viaGateway ? 'through a gateway on PostgreSQL' : 'straight to the active node'}`,
  );
  const runs: PgPromotionRun[] = [];
  let postgres = 'unknown';
  const n = ctx.quick ? 1 : 5;
  for (let run = 1; run <= n; run++) {
    const { postgres: v, ...r } = await oneRun(ctx, run, viaGateway);
    postgres = v;
    runs.push(r);
  }
  return {
    path: viaGateway ? 'gateway' : 'active node',
    lockTtl: DEFAULT_LOCK_TTL,
    detectionDelayMs: DETECTION_DELAY_MS,
    synchronous: true,
    postgres,
    nodes: NODES,
    workers: WORKERS,
    ratePerWorker: RATE_PER_WORKER,
    runs,
  };
}
