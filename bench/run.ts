/**
 * `npm run bench`: one command that starts a real Redis, three nodes (API over TLS), the gateway
 * and HAProxy, and measures them side by side. `-- --quick` runs a subset in about a minute;
 * `-- --section=steady,read-scaling,failover,failover-pg,growth,tracing,list-shim,abuse,engines,replication` (or `profile`)
 * picks sections.
 *
 * A full run writes bench/results/<timestamp>.json, merges it into bench/results/latest.json and
 * rewrites the tables in BENCHMARKS.md. A quick run writes its own file and prints the tables
 * but leaves latest.json and BENCHMARKS.md alone (its short samples must not replace a full run's).
 */
import { enginesSection } from './engines/compare';
import { BenchCluster } from './lib/cluster';
import { makeLogger, type SectionContext } from './lib/context';
import { closeHttp } from './lib/http';
import { renderBlocks, updateBenchmarksMd } from './lib/report';
import { type Results, runMeta, saveResults } from './lib/results';
import { abuseSection } from './sections/abuse';
import { failoverSection } from './sections/failover';
import { failoverPgSection } from './sections/failover-pg';
import { growthSection } from './sections/growth';
import { listShimSection } from './sections/list-shim';
import { profileSection } from './sections/profile';
import { readScalingSection } from './sections/read-scaling';
import { replicationSection } from './sections/replication';
import { steadySection } from './sections/steady';
import { tracingSection } from './sections/tracing';

const DEFAULT_SECTIONS = [
  'steady',
  'read-scaling',
  'growth',
  'tracing',
  'list-shim',
  'abuse',
  'engines',
  'failover',
  'failover-pg',
  'replication',
] as const;
const ALL_SECTIONS = [...DEFAULT_SECTIONS, 'profile'] as const;
type Section = (typeof ALL_SECTIONS)[number];
/** Hard bound on a whole run: whatever happens, the bench and everything it started stop. */
const MAX_RUN_MS = { full: 50 * 60_000, quick: 6 * 60_000 };

function parseArgs(argv: string[]): { quick: boolean; sections: Section[] } {
  let quick = false;
  let sections: Section[] = [...DEFAULT_SECTIONS];
  for (const a of argv) {
    if (a === '--quick') quick = true;
    else if (a.startsWith('--section=') || a.startsWith('--sections=')) {
      const wanted = a.slice(a.indexOf('=') + 1).split(',');
      for (const w of wanted)
        if (!(ALL_SECTIONS as readonly string[]).includes(w))
          throw new Error(`unknown section ${w}: one of ${ALL_SECTIONS.join(', ')}`);
      sections = ALL_SECTIONS.filter((s) => wanted.includes(s));
    } else throw new Error(`unknown argument ${a} (use --quick, --section=${ALL_SECTIONS.join('|')})`);
  }
  return { quick, sections };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const { quick, sections } = parseArgs(args);
  const log = makeLogger();
  const command = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
  const bound = setTimeout(
    () => {
      log(`run exceeded ${MAX_RUN_MS[quick ? 'quick' : 'full'] / 60_000} min: stopping`);
      process.exit(1);
    },
    MAX_RUN_MS[quick ? 'quick' : 'full'],
  );
  bound.unref();
  log(`sections: ${sections.join(', ')}${quick ? ' (quick)' : ''}`);
  // Node metrics listeners only when read-scaling runs (it counts the standby's own reads there).
  const cluster = await BenchCluster.start({
    gateway: true,
    haproxy: true,
    metrics: sections.includes('read-scaling'),
  });
  log(`cluster up: redis, ${cluster.nodes.length} nodes (lock TTL ${cluster.lockTtl}), gateway, HAProxy`);
  const onSignal = () => {
    log('interrupted: stopping everything');
    void cluster.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ctx: SectionContext = { cluster, quick, log };
  const results: Results = {};
  let failed = false;
  const meta = () => runMeta(command, quick ? 'quick' : 'full', cluster.lockTtl);
  try {
    for (const s of sections) {
      try {
        if (s === 'steady') results.steady = { meta: meta(), data: await steadySection(ctx) };
        else if (s === 'read-scaling')
          results.readScaling = { meta: meta(), data: await readScalingSection(ctx) };
        else if (s === 'growth') results.growth = { meta: meta(), data: await growthSection(ctx) };
        else if (s === 'tracing') results.tracing = { meta: meta(), data: await tracingSection(ctx) };
        else if (s === 'list-shim') results.listShim = { meta: meta(), data: await listShimSection(ctx) };
        else if (s === 'abuse') results.abuse = { meta: meta(), data: await abuseSection(ctx) };
        else if (s === 'replication')
          results.replication = { meta: meta(), data: await replicationSection(ctx) };
        else if (s === 'engines') results.engines = { meta: meta(), data: await enginesSection(ctx) };
        else if (s === 'failover') results.failover = { meta: meta(), data: await failoverSection(ctx) };
        else if (s === 'failover-pg')
          results.failoverPg = { meta: meta(), data: await failoverPgSection(ctx) };
        else if (s === 'profile') results.profile = { meta: meta(), data: await profileSection(ctx) };
      } catch (err) {
        failed = true;
        log(`section ${s} failed: ${(err as Error).stack ?? String(err)}`);
      }
    }
  } finally {
    await cluster.close();
    await closeHttp();
  }
  const { runFile, merged } = saveResults(results, !quick);
  log(`results: ${runFile}${quick ? '' : ' (merged into bench/results/latest.json)'}`);
  if (!quick) {
    updateBenchmarksMd(merged);
    log('BENCHMARKS.md tables rewritten');
  }
  const blocks = renderBlocks(quick ? results : merged);
  process.stdout.write(`\n## Targets\n\n${blocks.targets}\n`);
  if (quick) for (const s of sections) if (blocks[s]) process.stdout.write(`\n## ${s}\n\n${blocks[s]}\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
