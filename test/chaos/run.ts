/**
 * `npm run chaos [-- --minutes N] [-- --seed S] [-- --redis sentinel] [-- --no-traces]`: a chaos
 * run against real processes (default 2 minutes; one Redis, or a Sentinel topology with its own
 * faults). Prints the seed first (replay with --seed), a line per fault,
 * the summary table and any violation; exits 1 on a violation. Needs `npm run build` first.
 */

import { runChaos } from './chaos';
import { leakScan } from './leaks';
import { randomSeed } from './rng';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

async function main(): Promise<number> {
  const minutes = Number(arg('minutes') ?? 2);
  const seed = arg('seed') === undefined ? randomSeed() : Number(arg('seed'));
  const store = arg('redis') ?? 'single';
  const minReplicas = arg('min-replicas') === undefined ? undefined : Number(arg('min-replicas'));
  if (
    !Number.isFinite(minutes) ||
    minutes <= 0 ||
    !Number.isInteger(seed) ||
    (store !== 'single' && store !== 'sentinel') ||
    (minReplicas !== undefined && !Number.isInteger(minReplicas))
  ) {
    process.stderr.write(
      'usage: npm run chaos -- [--minutes N] [--seed S] [--redis single|sentinel] [--min-replicas N] [--no-traces]\n',
    );
    return 2;
  }
  const traces = !process.argv.includes('--no-traces');
  process.stdout.write(
    `chaos: seed ${seed}, ${minutes} min, ${store} Redis (replay: npm run chaos -- --minutes ${minutes} --seed ${seed} --redis ${store}${minReplicas !== undefined ? ` --min-replicas ${minReplicas}` : ''})\n`,
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
