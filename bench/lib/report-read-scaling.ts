/**
 * BENCHMARKS.md block for issue 27's read-scaling section (sections/read-scaling.ts): reads/s and
 * latency per target, the scaling ratios, and where every core's time went. Its targets are
 * evaluated with the others in ./targets.ts.
 */
import {
  cpuPer1kReads,
  READ_TARGETS,
  type ReadScalingResult,
  type ReadScalingRun,
  type ReadTarget,
} from '../sections/read-scaling';
import { metaLine, table } from './markdown';
import type { Measured } from './results';
import { fmt, median, ratio } from './stats';

const LABEL: Record<ReadTarget, string> = {
  gateway: '(a) gateway, active-only routing (as shipped)',
  'gateway-spread': '(e) gateway, spread routing',
  'haproxy-rr': '(b) HAProxy round-robin, active + standby (standby reads on)',
  'haproxy-active': '(c) HAProxy, active only (`sys/health` 200)',
  'direct-active': '(d) direct to the active',
  'direct-standby': '(d) direct to the standby',
  'direct-both': 'direct to both, half the connections each (no proxy)',
};

/** The processes of the CPU table, in order (those never metered are left out). */
const PROCESSES = [
  'active',
  'standby',
  'gateway',
  'gateway-spread',
  'haproxy',
  'haproxy-rr',
  'redis',
  'load generator',
  'other',
];

const runsOf = (d: ReadScalingResult, t: ReadTarget) => d.runs.filter((r) => r.target === t);

/**
 * The most reads/s the measured CPU costs allow (ms per 1,000 reads per process, `other` left
 * out): each core gives 1,000 ms per second to the processes pinned to it, and all cores together
 * carry every process, the floating ones (load generator, proxies, Redis) wherever there is room.
 * `machine`: on these cores with nothing else running; `nodes`: the pinned nodes alone, as if
 * everything else had cores of its own.
 */
export function readCeilings(
  cpu: Record<string, number>,
  pinning: Record<string, string>,
  cores: number,
): { machine: number; nodes: number } {
  const perCore = new Map<string, number>();
  let all = 0;
  for (const [name, ms] of Object.entries(cpu)) {
    if (name === 'other' || Number.isNaN(ms)) continue;
    all += ms;
    const at = pinning[name];
    if (at !== undefined && at !== 'any') perCore.set(at, (perCore.get(at) ?? 0) + ms);
  }
  const nodes = Math.min(...[...perCore.values()].map((ms) => (1000 * 1000) / ms));
  return { nodes, machine: Math.min(nodes, (cores * 1000 * 1000) / all) };
}

/** Medians over the rounds of one target (undefined when it was not measured). */
export function readTargetMedians(d: ReadScalingResult, t: ReadTarget) {
  const rs = runsOf(d, t);
  if (!rs.length) return undefined;
  const med = (f: (r: ReadScalingRun) => number) => median(rs.map(f));
  const cpu: Record<string, number> = {};
  for (const name of PROCESSES) cpu[name] = med((r) => cpuPer1kReads(r, name));
  const total = med((r) => Object.keys(r.cpuMs).reduce((s, n) => s + (cpuPer1kReads(r, n) || 0), 0));
  const cores = (rs[0]?.coreBusyMs ?? []).map((_, i) =>
    med((r) => ((r.coreBusyMs[i] ?? 0) / r.wallMs) * 100),
  );
  // Share of one core per process over the window; what no process used is `idle`.
  const coreShare: Record<string, number> = {};
  for (const name of PROCESSES)
    coreShare[name] = med((r) => ((r.cpuMs[name] ?? Number.NaN) / r.wallMs) * 100);
  coreShare.idle = med(
    (r) => r.coreBusyMs.length * 100 - (r.coreBusyMs.reduce((s, x) => s + x, 0) / r.wallMs) * 100,
  );
  return {
    ceiling: readCeilings(cpu, d.pinning, cores.length),
    coreShare,
    rounds: rs.length,
    rps: med((r) => r.result.rps),
    p50: med((r) => r.result.p50),
    p99: med((r) => r.result.p99),
    errors: rs.reduce((n, r) => n + r.result.errors, 0),
    // The counter also sees the requests still in flight when the load's window closes (at most
    // one per connection), so the share can read a little over 100%: capped.
    servedShare: med((r) =>
      r.standbyReads ? Math.min(1, r.standbyReads.served / Math.max(1, r.reads)) : Number.NaN,
    ),
    /** CPU ms per 1,000 reads, per process. */
    cpu,
    /** Of all processes together. */
    total,
    /** Busy % of each core. */
    cores,
  };
}

/** The loads in which both nodes serve reads at the same time. */
const SHARED: readonly ReadTarget[] = ['gateway-spread', 'haproxy-rr', 'direct-both'];

/**
 * Standby/active CPU per read in one round where both served: each node's CPU over the reads it
 * served itself (the standby's counter; the active the rest). NaN when one of them served none.
 */
export function sharedCpuRatio(r: ReadScalingRun): number {
  const served = Math.min(r.standbyReads?.served ?? Number.NaN, r.reads);
  const standby = (r.cpuMs.standby ?? Number.NaN) / served;
  const active = (r.cpuMs.active ?? Number.NaN) / (r.reads - served);
  return Number.isFinite(standby / active) ? standby / active : Number.NaN;
}

/** The scaling ratios the issue asks for (NaN when a side was not measured). */
export function readScalingRatios(d: ReadScalingResult) {
  const rps = (t: ReadTarget) => readTargetMedians(d, t)?.rps;
  const ceiling = (t: ReadTarget, k: 'machine' | 'nodes') => readTargetMedians(d, t)?.ceiling[k];
  const a = readTargetMedians(d, 'direct-active');
  const s = readTargetMedians(d, 'direct-standby');
  return {
    rrOverActiveOnly: ratio(rps('haproxy-rr'), rps('haproxy-active')),
    rrOverGateway: ratio(rps('haproxy-rr'), rps('gateway')),
    bothOverActive: ratio(rps('direct-both'), rps('direct-active')),
    bothOverActiveCeiling: ratio(ceiling('direct-both', 'machine'), ceiling('direct-active', 'machine')),
    spreadOverGateway: ratio(rps('gateway-spread'), rps('gateway')),
    standbyCpu: s?.cpu.standby ?? Number.NaN,
    activeCpu: a?.cpu.active ?? Number.NaN,
    standbyOverActiveCpu: ratio(s?.cpu.standby, a?.cpu.active),
    /** The same, in the rounds where both served at once (sharedCpuRatio): median and count. */
    standbyOverActiveCpuShared: median(SHARED.flatMap((t) => runsOf(d, t)).map(sharedCpuRatio)),
    sharedRounds: SHARED.flatMap((t) => runsOf(d, t)).length,
    /** The same ratios between the CPU-bound ceilings (readCeilings). */
    rrOverActiveOnlyCeiling: ratio(ceiling('haproxy-rr', 'machine'), ceiling('haproxy-active', 'machine')),
    rrOverActiveOnlyNodes: ratio(ceiling('haproxy-rr', 'nodes'), ceiling('haproxy-active', 'nodes')),
    spreadOverGatewayCeiling: ratio(ceiling('gateway-spread', 'machine'), ceiling('gateway', 'machine')),
  };
}

export function readScaling(m: Measured<ReadScalingResult>): string {
  const d = m.data;
  const measured = READ_TARGETS.filter((t) => runsOf(d, t).length > 0);
  const foreign = median(d.runs.map((r) => r.result.foreignCpuPct ?? Number.NaN));
  const r = readScalingRatios(d);
  const throughput = table(
    [
      'Target',
      'rounds',
      'reads/s (median)',
      'p50 ms',
      'p99 ms',
      'errors',
      'served by the standby itself',
      'ceiling: these cores, nothing else running',
      'ceiling: pinned nodes alone',
    ],
    measured.map((t) => {
      const x = readTargetMedians(d, t);
      return [
        LABEL[t],
        String(x?.rounds ?? 0),
        fmt(x?.rps),
        fmt(x?.p50),
        fmt(x?.p99),
        String(x?.errors ?? 0),
        Number.isNaN(x?.servedShare ?? Number.NaN) ? 'n/a' : `${Math.round((x?.servedShare ?? 0) * 100)}%`,
        fmt(x?.ceiling.machine),
        fmt(x?.ceiling.nodes),
      ];
    }),
  );
  const shown = PROCESSES.filter((p) => d.runs.some((run) => run.cpuMs[p] !== undefined));
  const coreCount = d.runs[0]?.coreBusyMs.length ?? 0;
  const cpu = table(
    [
      'Target',
      ...shown.map((p) => `${p}${d.pinning[p] && d.pinning[p] !== 'any' ? ` (core ${d.pinning[p]})` : ''}`),
      'all',
      ...Array.from({ length: coreCount }, (_, i) => `core ${i} busy`),
    ],
    measured.map((t) => {
      const x = readTargetMedians(d, t);
      return [
        LABEL[t],
        ...shown.map((p) => fmt(x?.cpu[p])),
        fmt(x?.total),
        ...(x?.cores ?? []).map((c) => `${Math.round(c)}%`),
      ];
    }),
  );
  const shares = table(
    ['Target', ...shown, 'idle'],
    measured.map((t) => {
      const x = readTargetMedians(d, t);
      return [
        LABEL[t],
        ...[...shown, 'idle'].map((p) => {
          const v = x?.coreShare[p];
          return v === undefined || Number.isNaN(v) ? 'n/a' : `${Math.round(v)}%`;
        }),
      ];
    }),
  );
  const spread = d.spread.available
    ? `spread/active-only through the gateway (e)/(a) **${fmt(r.spreadOverGateway)}×** (ceilings ${fmt(r.spreadOverGatewayCeiling)}×); `
    : `(e) not measured: ${d.spread.note}; `;
  return [
    metaLine(m.meta, foreign),
    '',
    `KV v2 reads of a ${d.valueBytes}-byte secret with a token of a non-root policy (\`${d.policy.trim().replace(/\n\s*/g, ' ')}\`), ` +
      `${d.connections} connections, ${d.rounds} alternating round(s) of ${d.durationS} s after a ${d.warmupS} s warm-up. ` +
      `Two nodes serve (the third, ${d.stopped}, is stopped for the section), pinned with taskset: the active (${d.active}) on core ${d.pinning.active}, ` +
      `the standby (${d.standby}) on core ${d.pinning.standby}; the load generator, gateways, HAProxies and Redis float. ` +
      `1-minute load average ${fmt(d.loadavg.start)} at the start, ${fmt(d.loadavg.end)} at the end.`,
    '',
    throughput,
    '',
    `Ratios (medians): HAProxy round-robin/HAProxy active-only (b)/(c) **${fmt(r.rrOverActiveOnly)}×** ` +
      `(ceilings on these cores ${fmt(r.rrOverActiveOnlyCeiling)}×, pinned nodes alone ${fmt(r.rrOverActiveOnlyNodes)}×); ` +
      `HAProxy round-robin/gateway (b)/(a) **${fmt(r.rrOverGateway)}×**; ${spread}` +
      `direct to both/direct to the active **${fmt(r.bothOverActive)}×** (ceilings ${fmt(r.bothOverActiveCeiling)}×); ` +
      `CPU per read, standby/active (direct) **${fmt(r.standbyOverActiveCpu)}×** (${fmt(r.standbyCpu)} vs ${fmt(r.activeCpu)} ms per 1,000 reads), ` +
      `and in the ${r.sharedRounds} rounds where both served at once (spread, round-robin, direct to both; each node's CPU over the reads it served) **${fmt(r.standbyOverActiveCpuShared)}×**.`,
    '',
    'The ceilings are what the measured CPU per read allows: each core gives its pinned processes at most 1,000 ms a second, and all cores together carry every process of the bench (the floating ones wherever there is room); "nodes alone" counts only the pinned nodes, as if the load generator, proxies and Redis had cores of their own.',
    '',
    'CPU milliseconds per 1,000 reads by process (medians; "load generator" is the bench process running autocannon, "other" everything else on the machine), and how busy each core was:',
    '',
    cpu,
    '',
    `Where the ${coreCount} cores' time went during each load (% of one core, medians; a row adds up to about ${coreCount * 100}%):`,
    '',
    shares,
  ].join('\n');
}
