/**
 * BENCHMARKS.md block for issue 13's replication section (sections/replication.ts); its target is
 * evaluated with the others in ./targets.ts.
 */
import { type ReplicationResult, WRITE_CONFIGS, type WriteConfig } from '../sections/replication';
import { metaLine, table } from './markdown';
import type { Measured } from './results';
import { fmt, median, ratio } from './stats';

const LABEL: Record<WriteConfig, string> = {
  single: 'one Redis (no WAIT)',
  'sentinel-no-wait': 'Sentinel, LEADERWAY_REDIS_MIN_REPLICAS=0 (no WAIT)',
  'sentinel-wait': 'Sentinel, WAIT for 1 replica (default)',
};

function writeMedians(d: ReplicationResult, config: WriteConfig) {
  const rs = d.writes.filter((w) => w.config === config).map((w) => w.result);
  return {
    rounds: rs.length,
    rps: median(rs.map((r) => r.rps)),
    p99: median(rs.map((r) => r.p99)),
    errors: rs.reduce((n, r) => n + r.errors, 0),
  };
}

export function replication(m: Measured<ReplicationResult>): string {
  const d = m.data;
  const base = writeMedians(d, 'single');
  const noWait = writeMedians(d, 'sentinel-no-wait');
  const writes = table(
    [
      'Redis',
      'rounds',
      'writes/s (median)',
      'p99 ms (median)',
      'errors',
      'vs one Redis',
      'vs Sentinel without WAIT',
    ],
    WRITE_CONFIGS.map((c) => {
      const w = writeMedians(d, c);
      return [
        LABEL[c],
        String(w.rounds),
        fmt(w.rps),
        fmt(w.p99),
        String(w.errors),
        fmt(ratio(w.rps, base.rps)),
        fmt(ratio(w.rps, noWait.rps)),
      ];
    }),
  );
  const kills = table(
    [
      'Kill',
      'failover ms (kill → promoted replica takes writes)',
      'longest request ms',
      'within failover + 1 s',
    ],
    d.kills.map((k) => [
      String(k.kill),
      fmt(k.failoverMs),
      fmt(k.longestMs),
      k.longestMs <= k.failoverMs + 1_000 ? 'yes' : 'no',
    ]),
  );
  const t = d.traffic;
  return [
    metaLine(m.meta),
    '',
    `KV writes of 1 KB straight to the active node, ${d.writes[0]?.connections ?? '?'} connections, alternating rounds:`,
    '',
    writes,
    '',
    `kill -9 of the Sentinel primary under 4 clients writing and reading through the gateway (down-after ${d.downAfterMs} ms; the old primary restarts on its AOF and rejoins as a replica):`,
    '',
    kills,
    '',
    `Traffic: ${t.reads} reads (${t.failedReads} failed), ${t.writes} acknowledged writes (${t.failedWrites} failed, ${t.unknown} "outcome unknown"), ${d.lost} acknowledged writes lost.`,
  ].join('\n');
}
