/**
 * `npm run escalation -- [--seed S] [--steps N] [--history file.json]`: one seeded privilege-
 * escalation property run against a fresh cluster (default 400 steps). Prints the seed first
 * (replay with --seed), the summary and every violation with its step; `--history` also writes
 * the recorded history (labels only, no token values) for a closer look. Exits 1 on a violation.
 * Needs `npm run build` first (the script does it).
 */
import { writeFileSync } from 'node:fs';
import { randomSeed } from '../../chaos/rng';
import { replayCommand, summarize } from './report';
import { runEscalation } from './runner';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

async function main(): Promise<number> {
  const seed = arg('seed') === undefined ? randomSeed() : Number(arg('seed'));
  const steps = Number(arg('steps') ?? 400);
  if (!Number.isInteger(seed) || !Number.isInteger(steps) || steps <= 0) {
    process.stderr.write('usage: npm run escalation -- [--seed S] [--steps N] [--history file.json]\n');
    return 2;
  }
  process.stdout.write(`escalation: seed ${seed}, ${steps} steps (replay: ${replayCommand(seed, steps)})\n`);
  const report = await runEscalation({ seed, steps, log: (l) => process.stdout.write(`escalation: ${l}\n`) });
  process.stdout.write(`${summarize(report, Number.POSITIVE_INFINITY)}\n`);
  const file = arg('history');
  if (file) writeFileSync(file, `${JSON.stringify(report.history, null, 1)}\n`);
  return report.violations.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`escalation: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
