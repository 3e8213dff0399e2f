/**
 * Where the CPU goes on the two forwarding paths: the gateway (tracing off, then with every
 * request traced and exported to a local sink), then a standby, each restarted
 * under `node --cpu-prof`, the headline load (KV reads 1 KB, 100 connections) through it for a
 * while, then a graceful stop so V8 writes the profile; summarised as the top frames by self time
 * and self time per package/file. Run explicitly with `--section=profile` (it is not part of the
 * default run).
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import type { BenchCluster } from '../lib/cluster';
import { clusterWatch, type SectionContext } from '../lib/context';
import { type ProfileRow, summariseProfile } from '../lib/cpu-profile';
import { type LoadResult, runLoad } from '../lib/load';
import { prime, readKey, seedReads } from './steady';
import { startSink } from './tracing';

export interface ProcessProfile {
  load: LoadResult;
  totalMs: number;
  frames: ProfileRow[];
  groups: ProfileRow[];
  /** Where the raw .cpuprofile was kept (under .bench/, gitignored; load it in Chrome DevTools). */
  file: string;
}

/** The gateway's profile (top level, as recorded before the standby was profiled too). */
export interface ProfileResult extends ProcessProfile {
  /** The gateway with every request sampled and exported (OTLP http/protobuf to a local sink). */
  traced?: ProcessProfile;
  standby?: ProcessProfile;
}

/** Loads `url` for the profiled process, then keeps its profile under .bench/. */
async function record(
  ctx: SectionContext,
  who: string,
  url: string,
  dir: string,
  stop: () => Promise<unknown>,
): Promise<ProcessProfile> {
  const c: BenchCluster = ctx.cluster;
  await prime(url, c.token);
  const load = await runLoad(
    {
      url,
      connections: 100,
      method: 'GET',
      path: readKey(1024),
      token: c.token,
      durationS: ctx.quick ? 4 : 10,
    },
    clusterWatch(c),
  );
  await stop();
  const name = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!name) throw new Error(`the ${who} wrote no CPU profile`);
  const keep = path.resolve(__dirname, '..', '..', '.bench');
  mkdirSync(keep, { recursive: true });
  const file = path.join(keep, `${who}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
  copyFileSync(path.join(dir, name), file);
  const s = summariseProfile(file, 25);
  ctx.log(
    `profile ${who}: ${Math.round(load.rps)} req/s under the profiler; top: ${s.frames
      .slice(0, 5)
      .map((f) => f.name)
      .join('; ')}`,
  );
  return { load, totalMs: s.totalMs, frames: s.frames, groups: s.groups, file };
}

export async function profileSection(ctx: SectionContext): Promise<ProfileResult> {
  const c = ctx.cluster;
  const active = await c.settle();
  await seedReads(ctx, active, [1024]);
  const gwDir = path.join(c.dir, 'cpu-prof-gateway');
  await c.startGateway({ LEADERWAY_DRAIN_DELAY: '0s' }, ['--cpu-prof', `--cpu-prof-dir=${gwDir}`]);
  const gateway = await record(ctx, 'gateway', c.gatewayUrl, gwDir, async () => c.gateway?.stop('SIGTERM'));
  const sink = await startSink();
  let traced: ProcessProfile;
  try {
    const trDir = path.join(c.dir, 'cpu-prof-gateway-traced');
    await c.startGateway(
      {
        LEADERWAY_DRAIN_DELAY: '0s',
        OTEL_SDK_DISABLED: 'false',
        OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
        OTEL_TRACES_SAMPLER: 'always_on',
      },
      ['--cpu-prof', `--cpu-prof-dir=${trDir}`],
    );
    traced = await record(ctx, 'gateway-traced', c.gatewayUrl, trDir, async () => c.gateway?.stop('SIGTERM'));
  } finally {
    sink.close();
  }
  await c.startGateway();
  const standby = c.standbys(active)[0];
  if (!standby) return { ...gateway, traced };
  const sbDir = path.join(c.dir, 'cpu-prof-standby');
  await c.restartNode(standby, ['--cpu-prof', `--cpu-prof-dir=${sbDir}`]);
  await c.settle();
  const sb = await record(ctx, 'standby', standby.apiUrl, sbDir, async () => standby.proc.stop('SIGTERM'));
  await c.restartNode(standby);
  await c.settle();
  await prime(c.gatewayUrl, c.token);
  return { ...gateway, traced, standby: sb };
}
