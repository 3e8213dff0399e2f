/**
 * The storage layer alone: CPU of this process per fenced PostgreSQL write (a KV v2 write's
 * batch: one 1 KB put and one delete), 16 writers, this build's PostgresBackend beside another
 * build's (`--base=<its dist/>`) on tables of their own in one PostgreSQL, in alternating
 * slices. No HTTP, no node: what the storage code costs, with less of the machine's noise.
 * `--redis` adds this build's Redis backend to the same slices; `--op=get` measures a 1 KB read.
 *
 *   npm run build && node --import tsx bench/pg-write-cpu.ts [--base=<dist>] [--redis] [--op=get]
 *     [--slices=10] [--seconds=2]
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { Backend, FencingBackend, HABackend } from '../shared/storage/backend';
import { startPostgres } from '../test/helpers/postgres';
import { startRedis } from '../test/helpers/redis';

const arg = (name: string, dflt: string): string =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const SLICES = Number(arg('slices', '10'));
const SECONDS = Number(arg('seconds', '2'));
const BASE = arg('base', '');
const OP = arg('op', 'write');
const WRITERS = 16;
const VALUE = Buffer.alloc(1024, 'x');

interface Build {
  name: string;
  view: Backend;
  close: () => Promise<void>;
  cpuUs: number[];
  writes: number[];
}

async function open(name: string, dist: string, url: string, n: number): Promise<Build> {
  const pgDir = path.join(dist, 'shared', 'storage', 'postgres');
  const { PostgresBackend } = require(
    path.join(pgDir, 'postgres-backend.js'),
  ) as typeof import('../shared/storage/postgres/postgres-backend');
  const { PostgresHABackend } = require(
    path.join(pgDir, 'postgres-ha-backend.js'),
  ) as typeof import('../shared/storage/postgres/postgres-ha-backend');
  const t = { table: `cpu_kv_${n}`, haTable: `cpu_ha_${n}` };
  const data = new PostgresBackend({ url, ...t });
  const ha = new PostgresHABackend({ url, haTable: t.haTable });
  await data.start();
  await ha.start();
  return fencedBuild(name, data, ha);
}

async function openRedis(url: string): Promise<Build> {
  const { RedisBackend } = await import('../shared/storage/redis/redis-backend');
  const { RedisHABackend } = await import('../shared/storage/redis/redis-ha-backend');
  const data = new RedisBackend({ url });
  const ha = new RedisHABackend({ url });
  await data.start();
  await ha.start();
  return fencedBuild('redis', data, ha);
}

async function fencedBuild(
  name: string,
  data: FencingBackend & { close(): Promise<void> },
  ha: HABackend & { close(): Promise<void> },
): Promise<Build> {
  const holder = randomUUID();
  if ((await ha.acquire(holder, 600_000)) === null) throw new Error(`${name}: lock not taken`);
  return {
    name,
    view: data.fenced(holder, new AbortController().signal),
    close: async () => {
      await ha.close();
      await data.close();
    },
    cpuUs: [],
    writes: [],
  };
}

async function slice(b: Build): Promise<void> {
  const end = performance.now() + SECONDS * 1000;
  let writes = 0;
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) {
        if (OP === 'get') await b.view.get('w0/v0');
        else
          await b.view.batch([
            { op: 'put', path: `w${w}/v${i}`, value: VALUE },
            { op: 'delete', path: `w${w}/v${i - 10}` },
          ]);
        writes++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  b.cpuUs.push(cpu.user + cpu.system);
  b.writes.push(writes);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[(s.length - 1) / 2] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

async function main(): Promise<void> {
  const pg = await startPostgres();
  const redis = process.argv.includes('--redis') ? await startRedis() : undefined;
  try {
    const builds = [await open('this', path.resolve(__dirname, '..', 'dist'), pg.url, 1)];
    if (BASE) builds.push(await open('base', path.resolve(BASE), pg.url, 2));
    if (redis) builds.push(await openRedis(redis.url));
    for (const b of builds) {
      await b.view.put('w0/v0', VALUE);
      await slice(b); // warm-up, not counted
    }
    for (const b of builds) {
      b.cpuUs.length = 0;
      b.writes.length = 0;
    }
    for (let s = 0; s < SLICES; s++) {
      for (const b of s % 2 === 0 ? builds : [...builds].reverse()) {
        await slice(b);
        const i = b.cpuUs.length - 1;
        console.log(
          `slice ${s} ${b.name}: ${((b.writes[i] as number) / SECONDS).toFixed(0)} ${OP}s/s, ` +
            `${((b.cpuUs[i] as number) / (b.writes[i] as number)).toFixed(0)} µs CPU per ${OP}`,
        );
      }
    }
    for (const b of builds) {
      const per = b.cpuUs.map((us, i) => us / (b.writes[i] as number));
      console.log(
        `${b.name}: median ${median(per).toFixed(0)} µs CPU per ${OP} (min ${Math.min(...per).toFixed(0)}), ` +
          `median ${median(b.writes.map((w) => w / SECONDS)).toFixed(0)} ${OP}s/s over ${SLICES} slices`,
      );
    }
    for (const b of builds) await b.close();
  } finally {
    await pg.stop();
    await redis?.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
