/**
 * `npm run chaos [-- --minutes N] [-- --seed S] [-- --store single|sentinel|postgres] [-- --no-traces]`:
 * a chaos run against real processes (default 2 minutes) on one Redis (`single`, the default), a
 * Sentinel topology, or a PostgreSQL primary with a synchronous standby, the last two with their
 * own faults (`--redis` is the old name of `--store`). Prints the seed first (replay with
 * --seed), a line per fault, the summary table and any violation; exits 1 on a violation or a
 * leak. Needs `npm run build` first.
 */

import { runChaos } from './chaos';
import { leakScan } from './leaks';
import { randomSeed } from './rng';
import { type StoreKind, storeLabel } from './store';

const STORES: readonly string[] = ['single', 'sentinel', 'postgres'] satisfies StoreKind[];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

async function main(): Promise<number> {
  const minutes = Number(arg('minutes') ?? 2);
  const seed = arg('seed') === undefined ? randomSeed() : Number(arg('seed'));
  const store = (arg('store') ?? arg('redis') ?? 'single') as StoreKind;
  const minReplicas = arg('min-replicas') === undefined ? undefined : Number(arg('min-replicas'));
  if (
    !Number.isFinite(minutes) ||
    minutes <= 0 ||
    !Number.isInteger(seed) ||
    !STORES.includes(store) ||
    (minReplicas !== undefined && !Number.isInteger(minReplicas))
  ) {
    process.stderr.write(
      'usage: npm run chaos -- [--minutes N] [--seed S] [--store single|sentinel|postgres] [--min-replicas N] [--no-traces]\n' +
        '  --store   single: one Redis (default); sentinel: a Redis Sentinel topology; postgres: a PostgreSQL\n' +
        '            primary with a synchronous standby (its faults: kill -9 + promotion, SIGSTOP, terminated\n' +
        '            sessions, a lost standby); --redis is an old name for it\n' +
        '  --min-replicas  LEADERWAY_REDIS_MIN_REPLICAS for the nodes (Redis only)\n',
    );
    return 2;
  }
  const traces = !process.argv.includes('--no-traces');
  process.stdout.write(
    `chaos: seed ${seed}, ${minutes} min, ${storeLabel(store)} (replay: npm run chaos -- --minutes ${minutes} --seed ${seed} --store ${store}${minReplicas !== undefined ? ` --min-replicas ${minReplicas}` : ''})\n`,
  );
  const stamp = () => new Date().toISOString().slice(11, 19);
  let leaks: string[] = [];
  const result = await runChaos({
    seed,
    durationMs: minutes * 60_000,
    minFaults: Math.max(8, Math.floor(minutes * 4)),
    traces,
    store,
    minReplicas,
    log: (l) => process.stdout.write(`[${stamp()}] ${l}\n`),
    beforeStop: async (c, traces) => {
      const scan = await leakScan(c, traces);
      leaks = scan.findings;
      process.stdout.write(`[${stamp()}] ${scan.line}\n`);
    },
  });
  process.stdout.write(`\n${result.summary}\n`);
  if (leaks.length > 0) process.stdout.write(`LEAKS (${leaks.length}):\n  ${leaks.join('\n  ')}\n`);
  return result.violations.length === 0 && leaks.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`chaos: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
