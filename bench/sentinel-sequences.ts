/**
 * Issue 25's figures: the longest request through the gateway per Redis failover, for each
 * failover sequence of test/integration/sentinel-sequences.test.ts (kill -9 and return on its own
 * data, SIGSTOP past down-after, SENTINEL FAILOVER under load, a replica promoted and demoted),
 * on the operator's topology (1 primary, 2 replicas, 3 Sentinels, down-after 1 s,
 * failover-timeout 4 s, parallel-syncs 2, AOF, min-replicas-to-write 1), three nodes (lock TTL 5 s)
 * and a gateway under four writers and two readers.
 *
 *   npm run build && node --import tsx bench/sentinel-sequences.ts [--rounds N]
 *
 * Prints a Markdown table (BENCHMARKS.md, "Sentinel failover sequences") and the traffic totals,
 * acknowledged writes lost counted by KV version handed out twice.
 */
import { waitActive } from '../test/helpers/cluster';
import { call, initCluster } from '../test/helpers/http';
import { freePort } from '../test/helpers/ports';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../test/helpers/procs';
import { SEQUENCES, type SequenceName, startSentinel, startSequenceLoad } from '../test/helpers/sentinel';

/** Hard bound on the whole run. */
const MAX_RUN_MS = 30 * 60_000;
/** After the replicas are back, before the next sequence. */
const SETTLE_MS = 500;
// The forced failovers first: each waits until every Sentinel sees the replicas as replicas
// (waitSentinelsSettled), up to 10 s after a primary was demoted, and none has been yet.
const ORDER: SequenceName[] = ['forcedFailover', 'promoteAndDemote', 'killAndReturn', 'freezePastDownAfter'];
const LABEL: Record<SequenceName, string> = {
  killAndReturn: 'kill -9, back on its own data after 2.5 s',
  freezePastDownAfter: 'SIGSTOP past down-after, then SIGCONT',
  forcedFailover: 'SENTINEL FAILOVER under load',
  promoteAndDemote: 'replica promoted, demoted 1 s later',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--rounds');
  const rounds = at >= 0 ? Number(args[at + 1]) : 3;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('usage: [--rounds N]');
  setTimeout(() => {
    process.stderr.write('run exceeded its bound: stopping\n');
    process.exit(1);
  }, MAX_RUN_MS).unref();
  const topo = await startSentinel({ appendonly: true, failoverTimeoutMs: 4_000 });
  const procs: Proc[] = [];
  try {
    const keys = testKeys();
    const port = await freePort();
    const apiAddr = `http://127.0.0.1:${port}`;
    for (const n of ['n1', 'n2', 'n3'])
      procs.push(
        await spawnNode(n, { redisUrl: topo.url, keys, apiAddr, env: { LEADERWAY_LOCK_TTL: '5s' } }),
      );
    const token = await initCluster((procs[0] as Proc).url);
    await waitActive(procs, 20_000);
    const gw = await spawnGateway('gw', { redisUrl: topo.url, keys, port });
    procs.push(gw);
    await waitFor(async () => (await call(gw.url, '/-/ready')).status === 200, 20_000, 'gateway ready');
    const load = startSequenceLoad(gw.url, token);
    const rows: string[] = [];
    try {
      await sleep(1_000);
      for (let round = 1; round <= rounds; round++) {
        for (const name of ORDER) {
          const start = performance.now();
          const r = await SEQUENCES[name](topo);
          await topo.waitReplicasSynced(30_000);
          await sleep(SETTLE_MS);
          const during = load.record.requests.filter((q) => q.start >= start);
          const longest = Math.max(0, ...during.map((q) => q.end - q.start));
          const unknown = during.filter((q) => q.result === 'unknown').length;
          const failed = during.filter((q) => q.result === 'failed').length;
          const within = longest <= r.failoverMs + 1_000 ? 'yes' : 'no';
          rows.push(
            `| ${LABEL[name]} | ${round} | ${r.failoverMs.toFixed(0)} | ${longest.toFixed(0)} | ${within} | ${unknown} | ${failed} |`,
          );
          process.stderr.write(`${rows[rows.length - 1]}\n`);
        }
      }
    } finally {
      await load.stop();
    }
    const { requests, reusedVersions } = load.record;
    const writes = requests.filter((q) => q.kind === 'write');
    const reads = requests.filter((q) => q.kind === 'read');
    process.stdout.write(
      [
        '',
        '| sequence | round | failover ms | longest request ms | within failover + 1 s | outcome unknown | failed |',
        '| --- | --- | --- | --- | --- | --- | --- |',
        ...rows,
        '',
        `Traffic: ${reads.length} reads (${reads.filter((q) => q.result === 'failed').length} failed), ` +
          `${writes.filter((q) => q.result === 'ok').length} acknowledged writes ` +
          `(${writes.filter((q) => q.result === 'failed').length} failed, ` +
          `${writes.filter((q) => q.result === 'unknown').length} "outcome unknown"), ` +
          `${reusedVersions.length} acknowledged writes lost (version handed out again).`,
        '',
      ].join('\n'),
    );
    return 0;
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await topo.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench sentinel-sequences: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
