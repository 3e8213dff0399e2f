/**
 * Where the gateway's CPU goes: the gateway restarted under `node --cpu-prof`, the headline load
 * (KV reads, 1 KB, 100 connections) for a while, then a graceful stop so V8 writes the profile;
 * summarised as the top frames by self time and self time per package/file. Run explicitly with
 * `--section=profile` (it is not part of the default run).
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { clusterWatch, type SectionContext } from '../lib/context';
import { type ProfileRow, summariseProfile } from '../lib/cpu-profile';
import { type LoadResult, runLoad } from '../lib/load';
import { prime, readKey, seedReads } from './steady';

export interface ProfileResult {
  load: LoadResult;
  totalMs: number;
  frames: ProfileRow[];
  groups: ProfileRow[];
  /** Where the raw .cpuprofile was kept (under .bench/, gitignored; load it in Chrome DevTools). */
  file: string;
}

export async function profileSection(ctx: SectionContext): Promise<ProfileResult> {
  const c = ctx.cluster;
  const active = await c.settle();
  await seedReads(ctx, active, [1024]);
  const dir = path.join(c.dir, 'cpu-prof');
  await c.startGateway({ LEADERWAY_DRAIN_DELAY: '0s' }, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const spec = {
    url: c.gatewayUrl,
    connections: 100,
    method: 'GET' as const,
    path: readKey(1024),
    token: c.token,
  };
  await prime(c.gatewayUrl, c.token);
  const load = await runLoad({ ...spec, durationS: ctx.quick ? 4 : 10 }, clusterWatch(c));
  await c.gateway?.stop('SIGTERM');
  const name = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  await c.startGateway();
  await prime(c.gatewayUrl, c.token);
  if (!name) throw new Error('the gateway wrote no CPU profile');
  // Kept outside the cluster's temporary directory (.bench/ is gitignored): open it in DevTools.
  const keep = path.resolve(__dirname, '..', '..', '.bench');
  mkdirSync(keep, { recursive: true });
  const file = path.join(keep, `gateway-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
  copyFileSync(path.join(dir, name), file);
  const s = summariseProfile(file, 25);
  ctx.log(
    `profile: ${Math.round(load.rps)} req/s under the profiler; top: ${s.frames
      .slice(0, 5)
      .map((f) => f.name)
      .join('; ')}`,
  );
  return { load, totalMs: s.totalMs, frames: s.frames, groups: s.groups, file };
}
