/**
 * Issue 13's figures, on topologies of its own (the shared bench cluster runs on one Redis):
 *  - writes: KV writes of 1 KB straight to the active node, one Redis vs Sentinel without WAIT
 *    (LEADERWAY_REDIS_MIN_REPLICAS=0) vs Sentinel with WAIT (the default there), in alternating
 *    rounds — what confirming each write on a replica costs;
 *  - kills: three nodes and a gateway on Sentinel (down-after 1 s), four clients writing and
 *    reading through the gateway, kill -9 of the primary ten times; per kill the failover time
 *    (kill → a promoted replica takes writes) and the longest request, then every acknowledged
 *    write is read back.
 */
import { waitActive } from '../../test/helpers/cluster';
import { call, initCluster } from '../../test/helpers/http';
import { freePort } from '../../test/helpers/ports';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../../test/helpers/procs';
import { startRedis } from '../../test/helpers/redis';
import { startSentinel } from '../../test/helpers/sentinel';
import { startWriters } from '../../test/helpers/writers';
import type { SectionContext } from '../lib/context';
import { type LoadResult, runLoad } from '../lib/load';
import { sleep } from '../lib/stats';

export const WRITE_CONFIGS = ['single', 'sentinel-no-wait', 'sentinel-wait'] as const;
export type WriteConfig = (typeof WRITE_CONFIGS)[number];

export interface ReplicationResult {
  writes: Array<{ round: number; config: WriteConfig; connections: number; result: LoadResult }>;
  downAfterMs: number;
  kills: Array<{ kill: number; failoverMs: number; longestMs: number }>;
  traffic: { reads: number; writes: number; unknown: number; failedReads: number; failedWrites: number };
  /** Acknowledged writes not found afterwards. */
  lost: number;
}

const CONNECTIONS = 16;
const BODY = JSON.stringify({ data: { v: 'x'.repeat(1024) } });

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

async function writeRounds(ctx: SectionContext): Promise<ReplicationResult['writes']> {
  const redis = await startRedis();
  const topo = await startSentinel();
  const procs: Proc[] = [];
  try {
    const start = async (name: string, url: string, env: Record<string, string>) => {
      const n = await spawnNode(name, { redisUrl: url, keys: testKeys(), env });
      procs.push(n);
      const token = await initCluster(n.url);
      return { node: await activeOf([n], token), token };
    };
    const targets: Record<WriteConfig, { node: Proc; token: string }> = {
      single: await start('single', redis.url, {}),
      'sentinel-no-wait': await start('nowait', topo.url, {
        LEADERWAY_REDIS_PREFIX: 'lw-nowait',
        LEADERWAY_REDIS_MIN_REPLICAS: '0',
      }),
      'sentinel-wait': await start('wait', topo.url, { LEADERWAY_REDIS_PREFIX: 'lw-wait' }),
    };
    const out: ReplicationResult['writes'] = [];
    const rounds = ctx.quick ? 1 : 3;
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [...WRITE_CONFIGS] : [...WRITE_CONFIGS].reverse();
      for (const config of order) {
        const t = targets[config];
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
        out.push({ round, config, connections: CONNECTIONS, result });
        ctx.log(
          `replication writes ${config}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(1)} ms, ${result.errors} errors`,
        );
      }
    }
    return out;
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await topo.stop();
    await redis.stop();
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
