/**
 * The results file: bench/results/latest.json holds the newest full measurement of every
 * section (each with its own run metadata), merged run after run, and BENCHMARKS.md is rendered
 * from it. Every run also leaves bench/results/<timestamp>.json with just what it measured.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import * as path from 'node:path';
import type { EnginesResult } from '../engines/compare';
import type { AbuseResult } from '../sections/abuse';
import type { FailoverResult } from '../sections/failover';
import type { PgPromotionResult } from '../sections/failover-pg';
import type { GrowthResult } from '../sections/growth';
import type { ListShimResult } from '../sections/list-shim';
import type { ProfileResult } from '../sections/profile';
import type { ReadScalingResult } from '../sections/read-scaling';
import type { ReplicationResult } from '../sections/replication';
import type { SteadyResult } from '../sections/steady';
import type { TracingResult } from '../sections/tracing';
import type { StandbyFailoverResult } from './standby-failover';

export const RESULTS_DIR = path.resolve(__dirname, '..', 'results');
export const LATEST = path.join(RESULTS_DIR, 'latest.json');

/** Where and how a section was measured. */
export interface RunMeta {
  date: string;
  command: string;
  mode: 'full' | 'quick';
  cpuModel: string;
  cores: number;
  node: string;
  haproxy: string;
  redis: string;
  lockTtl: string;
  git: string;
}

/** One section's figures with its metadata. */
export interface Measured<T> {
  meta: RunMeta;
  data: T;
}

export interface Results {
  steady?: Measured<SteadyResult>;
  failover?: Measured<FailoverResult>;
  failoverPg?: Measured<PgPromotionResult>;
  growth?: Measured<GrowthResult>;
  tracing?: Measured<TracingResult>;
  listShim?: Measured<ListShimResult>;
  abuse?: Measured<AbuseResult>;
  replication?: Measured<ReplicationResult>;
  readScaling?: Measured<ReadScalingResult>;
  engines?: Measured<EnginesResult>;
  standbyFailover?: Measured<StandbyFailoverResult>;
  profile?: Measured<ProfileResult>;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return (
      execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0] ?? ''
    );
  } catch {
    return 'unknown';
  }
}

/** Machine and software facts for a run. */
export function runMeta(command: string, mode: RunMeta['mode'], lockTtl: string): RunMeta {
  const commit = firstLine('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = firstLine('git', ['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    date: new Date().toISOString(),
    command,
    mode,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    haproxy: firstLine('/usr/sbin/haproxy', ['-v']).replace(/ - https.*$/, ''),
    redis: firstLine('redis-server', ['--version']).replace(/ sha=.*$/, ''),
    lockTtl,
    git: `${commit}${dirty ? ' (with uncommitted changes)' : ''}`,
  };
}

/** The merged results so far (empty when none). */
export function loadLatest(): Results {
  if (!existsSync(LATEST)) return {};
  return JSON.parse(readFileSync(LATEST, 'utf8')) as Results;
}

/** Writes this run's file, and merges it into latest.json unless `recordLatest` is false. */
export function saveResults(run: Results, recordLatest: boolean): { runFile: string; merged: Results } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runFile = path.join(RESULTS_DIR, `${stamp}.json`);
  writeFileSync(runFile, `${JSON.stringify(run, null, 2)}\n`);
  const merged = { ...loadLatest(), ...run };
  if (recordLatest) writeFileSync(LATEST, `${JSON.stringify(merged, null, 2)}\n`);
  return { runFile, merged };
}
