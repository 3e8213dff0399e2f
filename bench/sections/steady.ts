/**
 * Steady state: the same leader reached five ways — directly (TLS to the active's API), through
 * the gateway (mTLS to the cluster listener), through the bare undici proxy the gateway is built
 * on (the same mTLS, nothing else: the floor for the gateway's own cost), through HAProxy (TLS to
 * the nodes' API) and through a standby (TLS to the standby, which forwards over mTLS) — for KV
 * reads and writes at 1 KB and 256 KB values and 10, 50 and 100 connections. Within each
 * condition the paths run back to back in a rotating order, so slow drift on the shared machine
 * hits them alike. (1,000 connections: the cost-growth section.)
 */

import { startBareUndici } from '../engines/start-engine';
import type { BenchNode } from '../lib/cluster';
import { clusterWatch, type SectionContext } from '../lib/context';
import { call, kvBody } from '../lib/http';
import { type LoadResult, runLoad } from '../lib/load';
import { sizeLabel } from '../lib/stats';

export type PathName = 'direct' | 'gateway' | 'undici' | 'haproxy' | 'standby';
export const PATHS: readonly PathName[] = ['direct', 'gateway', 'undici', 'haproxy', 'standby'];

/** One measured cell. */
export interface SteadyRow {
  path: PathName;
  op: 'read' | 'write';
  size: number;
  connections: number;
  /** Round of this condition (the headline condition runs several rounds; the tables use the median). */
  round: number;
  result: LoadResult;
}

export interface SteadyResult {
  active: string;
  standby: string;
  warmupS: number;
  durationS: number;
  headlineRounds: number;
  rows: SteadyRow[];
}

const KB = 1024;

/**
 * The grid: quick mode is reads of 1 KB at 50 and 100 connections only. The headline conditions
 * (reads, 1 KB, 50 and 100 connections) run several alternating rounds: on 2 shared cores one
 * round is noise.
 */
function grid(quick: boolean) {
  return quick
    ? {
        ops: ['read'] as const,
        sizes: [KB],
        connections: [50, 100],
        warmupS: 1,
        durationS: 2,
        headlineRounds: 1,
      }
    : {
        ops: ['read', 'write'] as const,
        sizes: [KB, 256 * KB],
        connections: [10, 50, 100],
        warmupS: 1,
        durationS: 3,
        headlineRounds: 3,
      };
}

/** Key read by the read loads of one value size. */
export const readKey = (size: number) => `/v1/secret/data/bench/r-${sizeLabel(size).replace(' ', '')}`;
/** Key written by connection `i` of a write load (one key per connection: no lock contention). */
export const writeKey = (size: number, i: number) =>
  `/v1/secret/data/bench/w-${sizeLabel(size).replace(' ', '')}-${i}`;

/** Writes the keys the read loads read. */
export async function seedReads(
  ctx: SectionContext,
  active: BenchNode,
  sizes: readonly number[],
): Promise<void> {
  for (const size of sizes) {
    const r = await call(active.apiUrl, readKey(size), { token: ctx.cluster.token, body: kvBody(size) });
    if (r.status !== 200) throw new Error(`seeding ${readKey(size)}: ${r.status} ${r.text.slice(0, 200)}`);
  }
}

/** Priming time for a fresh path: the proxy's upstream pool fills (P-521 mTLS handshakes) and the JIT warms. */
export const PRIME_S = 3;

/** Reads through `url` at 100 connections for `seconds`, unrecorded: brings a path to steady state. */
export async function prime(url: string, token: string, seconds = PRIME_S): Promise<void> {
  await runLoad({ url, connections: 100, durationS: seconds, method: 'GET', path: readKey(KB), token });
}

export async function steadySection(ctx: SectionContext): Promise<SteadyResult> {
  const c = ctx.cluster;
  const g = grid(ctx.quick);
  const active = await c.settle();
  const standby = c.standbys(active)[0];
  if (!standby || !c.gateway || !c.haproxy)
    throw new Error('steady state needs a standby, the gateway and HAProxy');
  await seedReads(ctx, active, g.sizes);
  const undici = await startBareUndici(ctx);
  try {
    const urls: Record<PathName, string> = {
      direct: active.apiUrl,
      gateway: c.gatewayUrl,
      undici: undici.url,
      haproxy: c.haproxy.url,
      standby: standby.apiUrl,
    };
    const watch = clusterWatch(c, {
      active: active.proc.child.pid,
      standby: standby.proc.child.pid,
      undici: undici.child.pid,
    });
    for (const path of PATHS) await prime(urls[path], c.token, ctx.quick ? 2 : PRIME_S);
    const rows = await measureGrid(ctx, g, urls, watch);
    return {
      active: active.name,
      standby: standby.name,
      warmupS: g.warmupS,
      durationS: g.durationS,
      headlineRounds: g.headlineRounds,
      rows,
    };
  } finally {
    undici.stop();
  }
}

/** Every condition of the grid, paths in rotating order. */
async function measureGrid(
  ctx: SectionContext,
  g: ReturnType<typeof grid>,
  urls: Record<PathName, string>,
  watch: ReturnType<typeof clusterWatch>,
): Promise<SteadyRow[]> {
  const c = ctx.cluster;
  const rows: SteadyRow[] = [];
  let turn = 0;
  for (const connections of g.connections) {
    for (const op of g.ops) {
      for (const size of g.sizes) {
        const body = op === 'write' ? kvBody(size) : undefined;
        const headline = op === 'read' && size === KB && connections >= 50;
        for (let round = 0; round < (headline ? g.headlineRounds : 1); round++) {
          const order = PATHS.map((_, i) => PATHS[(i + turn) % PATHS.length] as PathName);
          turn++;
          for (const path of order) {
            const spec = {
              url: urls[path],
              connections,
              method: op === 'read' ? ('GET' as const) : ('POST' as const),
              path: op === 'read' ? readKey(size) : (i: number) => writeKey(size, i),
              body,
              token: c.token,
              // 1,000 connections of 256 KB writes queue for seconds: count only real failures.
              timeoutS: 30,
            };
            await runLoad({ ...spec, durationS: g.warmupS });
            const result = await runLoad({ ...spec, durationS: g.durationS }, watch);
            rows.push({ path, op, size, connections, round, result });
            ctx.log(
              `steady ${op} ${sizeLabel(size)} c=${connections} ${path}: ${Math.round(result.rps)} req/s ` +
                `p99 ${result.p99} ms errors ${result.errors} (other work: ${Math.round(result.foreignCpuPct ?? 0)}% CPU)`,
            );
          }
        }
      }
    }
  }
  return rows;
}
