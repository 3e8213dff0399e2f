/**
 * Node CPU per KV write, one node on Redis beside one on PostgreSQL (alone), the replication
 * section's write load (1 KB, 16 connections, each its own key) in alternating rounds; with
 * `--profile`, each node runs under `node --cpu-prof` and its profile is summarised (top self
 * time, and inclusive time of the storage layers). Short and bounded: for comparing a change.
 *
 *   npm run build && node --import tsx bench/write-cpu.ts [--seconds=5] [--rounds=2] [--profile]
 *     [--base=<another build's bin/leaderway>]
 *
 * `--base` adds a third node, that build on a PostgreSQL of its own, loaded in the same rounds:
 * a change measured against the build before it back to back, on the same machine load.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { waitActive } from '../test/helpers/cluster';
import { call } from '../test/helpers/http';
import { startPostgres } from '../test/helpers/postgres';
import { type Proc, spawnNode, testKeys, waitFor } from '../test/helpers/procs';
import { startRedis } from '../test/helpers/redis';
import { summariseInclusive, summariseProfile } from './lib/cpu-profile';
import { initWhenUninitialized } from './lib/http';
import { runLoad } from './lib/load';
import { cpuSplitMs } from './lib/proc-stats';

const arg = (name: string, dflt: string): string =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const SECONDS = Number(arg('seconds', '5'));
const ROUNDS = Number(arg('rounds', '2'));
const PROFILE = process.argv.includes('--profile');
const BASE = arg('base', '');
const BODY = JSON.stringify({ data: { v: 'x'.repeat(1024) } });

/** The read and write syscalls `pid` made so far (/proc/<pid>/io: every socket read and write). */
function syscalls(pid: number | undefined): { r: number; w: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1]);
  return { r: field('syscr'), w: field('syscw') };
}

async function main(): Promise<void> {
  const bound = setTimeout(() => {
    console.error('write-cpu: over its 10 minute bound');
    process.exit(2);
  }, 600_000);
  bound.unref();
  const redis = await startRedis();
  const pg = await startPostgres();
  const pgBase = BASE ? await startPostgres() : undefined;
  const procs: Proc[] = [];
  try {
    const keys = testKeys();
    const start = async (name: string, url: string, env: Record<string, string>, bin?: string) => {
      const dir = mkdtempSync(path.join(tmpdir(), `lw-cpuprof-${name}-`));
      const node = await spawnNode(name, {
        redisUrl: url,
        keys,
        env,
        nodeArgs: PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [],
        bin,
      });
      procs.push(node);
      const token = await initWhenUninitialized(node.url);
      const a = await waitActive([node], 20_000);
      await waitFor(
        async () => (await call(a.url, '/v1/secret/data/warm', { token, body: BODY })).status === 200,
        20_000,
        'a first write',
      );
      return { node, token, dir };
    };
    const onPg = (name: string, url: string, bin?: string) =>
      start(
        name,
        'redis://127.0.0.1:1',
        { LEADERWAY_STORAGE: 'postgresql', LEADERWAY_POSTGRESQL_URL: url },
        bin,
      );
    const targets: Record<string, Awaited<ReturnType<typeof start>>> = {
      redis: await start('redis', redis.url, {}),
      pg: await onPg('pg', pg.url),
    };
    if (pgBase) targets['pg-base'] = await onPg('pg-base', pgBase.url, BASE);
    for (let round = 0; round < ROUNDS; round++) {
      const names = Object.keys(targets);
      const order = round % 2 === 0 ? names : names.reverse();
      for (const store of order) {
        const t = targets[store] as Awaited<ReturnType<typeof start>>;
        const before = syscalls(t.node.child.pid);
        const cpuBefore = cpuSplitMs(t.node.child.pid as number);
        const r = await runLoad(
          {
            url: t.node.url,
            connections: 16,
            durationS: SECONDS,
            method: 'POST',
            path: (i) => `/v1/secret/data/bench-w${i}`,
            body: BODY,
            token: t.token,
          },
          { cpu: { node: t.node.child.pid } },
        );
        const after = syscalls(t.node.child.pid);
        const cpuAfter = cpuSplitMs(t.node.child.pid as number);
        const n = r.rps * r.durationS;
        console.log(
          `round ${round} ${store}: ${r.rps.toFixed(0)} writes/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ` +
            `node CPU ${r.cpuPer1k['node']?.toFixed(0)} ms per 1k writes ` +
            `(user ${(((cpuAfter.user - cpuBefore.user) * 1000) / n).toFixed(0)}, sys ${(((cpuAfter.sys - cpuBefore.sys) * 1000) / n).toFixed(0)}), ` +
            `syscalls per write ${((after.w - before.w) / n).toFixed(2)} write ${((after.r - before.r) / n).toFixed(2)} read, ` +
            `${r.errors} errors`,
        );
      }
    }
    if (PROFILE) {
      for (const [store, t] of Object.entries(targets)) {
        await t.node.stop('SIGTERM');
        const name = readdirSync(t.dir).find((f) => f.endsWith('.cpuprofile'));
        if (!name) throw new Error(`${store}: no profile written`);
        const file = path.join(t.dir, name);
        const s = summariseProfile(file, 30);
        console.log(`\n== ${store} profile ${file}: ${s.totalMs.toFixed(0)} ms sampled`);
        for (const g of s.groups) console.log(`  group ${(g.share * 100).toFixed(1)}% ${g.name}`);
        for (const f of s.frames) console.log(`  self ${(f.share * 100).toFixed(1)}% ${f.name}`);
        for (const f of summariseInclusive(file, 60))
          console.log(`  incl ${(f.share * 100).toFixed(1)}% ${f.name}`);
      }
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await redis.stop();
    await pg.stop();
    await pgBase?.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
