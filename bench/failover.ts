/**
 * `npm run bench:failover` (issue 3's measure): the time from a step-down, SIGTERM or kill -9 of
 * the active until a client going through a standby is served again; 10 runs each (`-- --quick`:
 * 3), median and max, with the product's default lock TTL. Records like `npm run bench` does.
 */
import { BenchCluster } from './lib/cluster';
import { makeLogger } from './lib/context';
import { closeHttp } from './lib/http';
import { renderBlocks, updateBenchmarksMd } from './lib/report';
import { runMeta, saveResults } from './lib/results';
import { measureStandbyFailover } from './lib/standby-failover';

/** Hard bound on the whole run. */
const MAX_RUN_MS = 20 * 60_000;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  for (const a of args) if (a !== '--quick') throw new Error(`unknown argument ${a} (only --quick)`);
  const quick = args.includes('--quick');
  const log = makeLogger();
  setTimeout(() => {
    log('run exceeded its bound: stopping');
    process.exit(1);
  }, MAX_RUN_MS).unref();
  const cluster = await BenchCluster.start();
  log(`cluster up: redis, ${cluster.nodes.length} nodes, lock TTL ${cluster.lockTtl}`);
  process.once('SIGINT', () => void cluster.close().finally(() => process.exit(130)));
  let data: Awaited<ReturnType<typeof measureStandbyFailover>>;
  try {
    data = await measureStandbyFailover(cluster, ['step-down', 'sigterm', 'kill-9'], quick ? 3 : 10, log);
  } finally {
    await cluster.close();
    await closeHttp();
  }
  const command = `npm run bench:failover${args.length ? ` -- ${args.join(' ')}` : ''}`;
  const run = {
    standbyFailover: { meta: runMeta(command, quick ? 'quick' : 'full', cluster.lockTtl), data },
  };
  const { runFile, merged } = saveResults(run, !quick);
  log(`results: ${runFile}`);
  if (!quick) updateBenchmarksMd(merged);
  const blocks = renderBlocks(run);
  process.stdout.write(`\n${blocks['standby-failover']}\n\n${blocks.targets}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench:failover: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
