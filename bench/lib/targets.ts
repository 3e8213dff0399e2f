/**
 * The targets of issues 3, 4 and 7, evaluated against the latest results. Each says what was
 * compared, so "met" and "missed" can be checked by a reader.
 */
import type { EngineName } from '../engines/compare';
import type { Fault } from '../sections/failover';
import type { ReadScalingResult } from '../sections/read-scaling';
import type { ReplicationResult } from '../sections/replication';
import type { PathName, SteadyRow } from '../sections/steady';
import type { LoadResult } from './load';
import { readScalingRatios, readTargetMedians } from './report-read-scaling';
import type { Measured, Results } from './results';
import { parseDurationMs } from './standby-failover';
import { fmt, max, median, ratio } from './stats';

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

const KB = 1024;
const MB = 1024 * KB;

/** The kill target: no failed read or write, nothing lost, each pause ≤ failover + 1 s. */
function replicationTarget(d: ReplicationResult): TargetCheck {
  const over = d.kills.filter((k) => k.longestMs > k.failoverMs + 1_000);
  const longest = Math.max(...d.kills.map((k) => k.longestMs));
  const t = d.traffic;
  return {
    target: `Redis primary kill -9 ×${d.kills.length} (Sentinel, down-after ${d.downAfterMs} ms) through the gateway: 0 failed reads, 0 lost acknowledged writes, longest request ≤ failover + 1 s`,
    measured: `${t.failedReads} failed reads, ${t.failedWrites} failed writes, ${d.lost} lost, ${t.unknown} outcome unknown; longest ${fmt(longest)} ms (${d.kills.length - over.length}/${d.kills.length} kills within failover + 1 s)`,
    met: t.failedReads === 0 && t.failedWrites === 0 && d.lost === 0 && over.length === 0,
  };
}

/** The steady-state figures for a path and condition: the median over its rounds. */
export function cell(
  rows: SteadyRow[],
  path: PathName,
  op: 'read' | 'write',
  size: number,
  connections: number,
): LoadResult | undefined {
  const rs = rows
    .filter((r) => r.path === path && r.op === op && r.size === size && r.connections === connections)
    .map((r) => r.result);
  const first = rs[0];
  if (!first) return undefined;
  if (rs.length === 1) return first;
  const med = (f: (x: LoadResult) => number | undefined) => median(rs.map((x) => f(x) ?? Number.NaN));
  const cpuPer1k: Record<string, number> = {};
  for (const k of Object.keys(first.cpuPer1k)) cpuPer1k[k] = med((x) => x.cpuPer1k[k]);
  return {
    ...first,
    rps: med((x) => x.rps),
    p50: med((x) => x.p50),
    p99: med((x) => x.p99),
    maxMs: Math.max(...rs.map((x) => x.maxMs)),
    errors: rs.reduce((n, x) => n + x.errors, 0),
    cpuPer1k,
    rssMb: Math.max(...rs.map((x) => x.rssMb ?? 0)),
    foreignCpuPct: med((x) => x.foreignCpuPct),
  };
}

/** Median of one engine's rounds for one operation (reads by default). */
export function engineMedian(
  r: Results,
  engine: EngineName,
  pick: (x: { rps: number; p99: number; cpu: number }) => number,
  op: 'read' | 'write' = 'read',
) {
  const rounds = r.engines?.data.rounds.filter((x) => x.engine === engine && (x.op ?? 'read') === op) ?? [];
  return median(
    rounds.map((x) =>
      pick({ rps: x.result.rps, p99: x.result.p99, cpu: x.result.cpuPer1k[engine] ?? Number.NaN }),
    ),
  );
}

/** The on/off ratios of each alternating pair of list-shim runs (GET req/s and gateway CPU/1k). */
export function listShimRatios(runs: NonNullable<Results['listShim']>['data']['runs']): {
  rps: number[];
  cpu: number[];
} {
  const rps: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i + 1 < runs.length; i += 2) {
    const a = runs[i];
    const b = runs[i + 1];
    if (!a || !b || a.shim === b.shim) continue;
    const [on, off] = a.shim === 'on' ? [a, b] : [b, a];
    rps.push(ratio(on.result.rps, off.result.rps));
    cpu.push(ratio(on.result.cpuPer1k.gateway ?? Number.NaN, off.result.cpuPer1k.gateway ?? Number.NaN));
  }
  return { rps, cpu };
}

/** Issue 27: two nodes serving reads vs one, and CPU per read on a standby vs the active. */
function readScalingTargets(m: Measured<ReadScalingResult>): TargetCheck[] {
  const d = m.data;
  const q = readScalingRatios(d);
  const rps = (t: Parameters<typeof readTargetMedians>[1]) => fmt(readTargetMedians(d, t)?.rps);
  const anchor =
    `HAProxy round-robin/active-only ${fmt(q.rrOverActiveOnly)}× (${rps('haproxy-rr')} vs ${rps('haproxy-active')}; ` +
    `ceilings from CPU per read ${fmt(q.rrOverActiveOnlyCeiling)}×), direct to both nodes/to the active ${fmt(q.bothOverActive)}×`;
  return [
    {
      target:
        'Read scaling: gateway with spread routing ≥ 1.6× active-only reads/s, two nodes serving on their own cores (KV v2 reads, non-root token)',
      measured: d.spread.available
        ? `${fmt(q.spreadOverGateway)}× (${rps('gateway-spread')} vs ${rps('gateway')} reads/s); ${anchor}`
        : `not measured (${d.spread.note}); ${anchor}`,
      met: d.spread.available ? q.spreadOverGateway >= 1.6 : null,
    },
    {
      target: 'CPU per read on a standby no higher than on the active (direct, same load)',
      measured: `${fmt(q.standbyOverActiveCpu)}× (${fmt(q.standbyCpu)} vs ${fmt(q.activeCpu)} ms per 1,000 reads)`,
      met: Number.isNaN(q.standbyOverActiveCpu) ? null : q.standbyOverActiveCpu <= 1,
    },
  ];
}

export function evaluateTargets(r: Results): TargetCheck[] {
  const out: TargetCheck[] = [];
  const rows = r.steady?.data.rows ?? [];
  // Issue 15: reads of 1 KB at 50 and 100 connections, medians of the alternating rounds.
  for (const conns of [50, 100]) {
    const gw = cell(rows, 'gateway', 'read', KB, conns);
    const hp = cell(rows, 'haproxy', 'read', KB, conns);
    const un = cell(rows, 'undici', 'read', KB, conns);
    if (!gw || !hp) continue;
    const q = ratio(gw.rps, hp.rps);
    const p = ratio(gw.p99, hp.p99);
    out.push({
      target: `Gateway ≥ 0.85× HAProxy req/s, p99 ≤ 1.2× (KV reads 1 KB, ${conns} connections)`,
      measured: `${fmt(q)}× req/s (${fmt(gw.rps)} vs ${fmt(hp.rps)}), p99 ${fmt(p)}× (${gw.p99} vs ${hp.p99} ms)`,
      met: q >= 0.85 && p <= 1.2,
    });
    if (un) {
      const c = ratio(gw.cpuPer1k.gateway, un.cpuPer1k.undici);
      out.push({
        target: `Gateway CPU per 1,000 requests ≤ 1.15× the bare undici proxy's (same load, ${conns} connections)`,
        measured: `${fmt(c)}× (${fmt(gw.cpuPer1k.gateway)} vs ${fmt(un.cpuPer1k.undici)} ms; HAProxy ${fmt(hp.cpuPer1k.haproxy)} ms)`,
        met: c <= 1.15,
      });
    }
  }
  const direct = cell(rows, 'direct', 'read', KB, 100);
  const standby = cell(rows, 'standby', 'read', KB, 100);
  if (standby && direct) {
    const q = ratio(standby.rps, direct.rps);
    out.push({
      target: 'Forwarding through a standby ≥ 0.7× direct req/s (reads 1 KB, 100 connections)',
      measured: `${fmt(q)}× (${fmt(standby.rps)} vs ${fmt(direct.rps)} req/s)`,
      met: q >= 0.7,
    });
  }
  const tr = r.tracing?.data.runs;
  if (tr?.length) {
    const rps = (on: 'on' | 'off') => median(tr.filter((x) => x.tracing === on).map((x) => x.result.rps));
    const q = ratio(rps('on'), rps('off'));
    out.push({
      target: 'Tracing on (every request sampled and exported) ≥ 0.85× the gateway req/s of tracing off',
      measured: `${fmt(q)}× (${fmt(rps('on'))} vs ${fmt(rps('off'))} req/s, medians)`,
      met: q >= 0.85,
    });
  }
  if (r.replication) out.push(replicationTarget(r.replication.data));
  if (r.readScaling) out.push(...readScalingTargets(r.readScaling));
  const abuse = r.abuse?.data.rounds;
  if (abuse && abuse.length > 0) {
    const q = median(abuse.map((x) => ratio(x.loadedP99, x.unloadedP99)));
    const rss = Math.max(...abuse.map((x) => x.peakRssMiB - x.idleRssMiB));
    out.push({
      target:
        'Unauthenticated abuse (5 × 32 MiB sys/init + 500 slow bodies via the gateway): light-read p99 ≤ 2× unloaded, active RSS ≤ idle + 64 MiB',
      measured: `p99 ${fmt(q)}× (median of ${abuse.length}); RSS +${fmt(rss)} MiB (max)`,
      met: q <= 2 && rss <= 64 && abuse.every((x) => x.failures === 0),
    });
  }
  const writers = r.abuse?.data.writers;
  if (writers && writers.length > 0) {
    const q = median(writers.map((x) => ratio(x.besideP99, x.aloneP99)));
    out.push({
      target:
        'A legitimate writer (KV writes + AppRole logins) beside an attacker trickling bodies (64 × 1 MiB held one byte short from 8 addresses, 20 slow logins, 500 slow bodies): p99 ≤ 2× alone, no failure',
      measured: `p99 ${fmt(q)}× (median of ${writers.length}); ${writers.reduce((n, x) => n + x.failures, 0)} failures`,
      met: q <= 2 && writers.every((x) => x.failures === 0),
    });
  }
  const shim = r.listShim?.data.runs;
  if (shim) {
    const pairs = listShimRatios(shim);
    const q = median(pairs.rps);
    out.push({
      target:
        'Raw-LIST shim costs the gateway ≤ 3% req/s (GET 1 KB, 100 connections, median of alternating on/off pairs)',
      measured: `${fmt(q)}× req/s; gateway CPU per request ${fmt(median(pairs.cpu))}× (${pairs.rps.length} pairs)`,
      met: q >= 0.97,
    });
  }
  const fo = r.failover?.data;
  if (fo) {
    const ttl = parseDurationMs(fo.lockTtl);
    for (const fault of ['step-down', 'sigterm'] as Fault[]) {
      const runs = fo.runs.filter((x) => x.fault === fault);
      if (!runs.length) continue;
      const failed = runs.map((x) => x.gateway.failedReads + x.gateway.failedWrites);
      const hpFailed = runs.map((x) => x.haproxy.failedReads + x.haproxy.failedWrites);
      out.push({
        target: `${fault} through the gateway: 0 failed requests (${runs.length} runs)`,
        measured: `max ${max(failed)} failed (HAProxy: max ${max(hpFailed)})`,
        met: max(failed) === 0,
      });
    }
    const kills = fo.runs.filter((x) => x.fault === 'kill-9');
    if (kills.length) {
      const reads = max(kills.map((x) => x.gateway.failedReads));
      const longests = kills.map((x) => x.gateway.longestMs);
      const longest = max(longests);
      // Issue 14: a crashed active is replaced through holder liveness, not the TTL.
      out.push({
        target: `kill -9 through the gateway (${kills.length} runs): 0 failed idempotent requests, longest ≤ 1000 ms, median longest ≤ 500 ms (TTL ${fmt(ttl)} ms)`,
        measured: `max ${reads} failed reads, longest ${fmt(longest)} ms, median ${fmt(median(longests))} ms (HAProxy: max ${max(kills.map((x) => x.haproxy.failedReads))} failed reads, longest ${fmt(max(kills.map((x) => x.haproxy.longestMs)))} ms)`,
        met: reads === 0 && longest <= 1000 && median(longests) <= 500,
      });
    }
  }
  const growth = r.growth?.data;
  // Measured on the fresh gateway of the cost-growth section (900 idle + 100 busy connections);
  // the steady-state cell comes after 256 KB loads that grew the heap, so it is only a fallback.
  const level1000 = growth?.levels.find((l) => l.total === 1000);
  const steady1000 = cell(rows, 'gateway', 'read', KB, 1000);
  const rss1000 = level1000?.result.rssMb ?? steady1000?.rssMb;
  if (rss1000 !== undefined) {
    out.push({
      target: 'Gateway RSS at 1,000 connections < 150 MB',
      measured: `${fmt(rss1000)} MB peak${level1000 ? ' (fresh gateway, 900 idle + 100 busy)' : ''}${steady1000?.rssMb !== undefined ? `; ${fmt(steady1000.rssMb)} MB with 1,000 busy after the 256 KB loads` : ''}`,
      met: rss1000 < 150,
    });
  }
  const sizes = growth?.sizes.filter((s) => s.path === 'gateway') ?? [];
  const rssAt = (size: number) =>
    max(sizes.filter((s) => s.size === size).map((s) => s.result.rssMb ?? Number.NaN));
  if (sizes.some((s) => s.size === 8 * MB) && sizes.some((s) => s.size === MB)) {
    const growthMb = rssAt(8 * MB) - rssAt(MB);
    out.push({
      target:
        'Gateway memory flat against value size: peak RSS at 8 MB ≤ at 1 MB + 25 MB (buffering 10 × 7 MB more would add ≥ 70 MB)',
      measured: `${fmt(rssAt(KB))} / ${fmt(rssAt(MB))} / ${fmt(rssAt(8 * MB))} MB at 1 KB / 1 MB / 8 MB`,
      met: growthMb <= 25,
    });
  }
  const u = engineMedian(r, 'undici', (x) => x.rps);
  const h3 = engineMedian(r, 'http-proxy-3', (x) => x.rps);
  if (!Number.isNaN(u)) {
    out.push({
      target: 'Engine: build on undici unless http-proxy-3 is within 10% of it',
      measured: Number.isNaN(h3)
        ? `http-proxy-3 not measured: ${r.engines?.data.skipped ?? ''}`
        : `http-proxy-3 at ${fmt(ratio(h3, u))}× the bare undici proxy`,
      met: Number.isNaN(h3) ? null : h3 < 0.9 * u,
    });
  }
  const sf = r.standbyFailover?.data;
  if (sf) {
    const ttl = parseDurationMs(sf.lockTtl);
    for (const fault of ['step-down', 'sigterm', 'kill-9'] as Fault[]) {
      const runs = sf.runs.filter((x) => x.fault === fault);
      if (!runs.length) continue;
      const limit = fault === 'kill-9' ? ttl + 1000 : 500;
      const m = max(runs.map((x) => x.servedAgainMs));
      out.push({
        target: `${fault}: a client through a standby is served again within ${fmt(limit)} ms (${runs.length} runs)`,
        measured: `median ${fmt(median(runs.map((x) => x.servedAgainMs)))} ms, max ${fmt(m)} ms`,
        met: m < limit,
      });
    }
  }
  return out;
}
