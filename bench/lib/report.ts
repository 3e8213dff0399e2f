/**
 * Renders the results as Markdown tables and rewrites them in BENCHMARKS.md between
 * `<!-- bench:<block>:begin -->` and `<!-- bench:<block>:end -->` markers (appended when missing).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { EngineName } from '../engines/compare';
import type { ProcessProfile } from '../sections/profile';
import { TRACING_MODES, type TracingMode } from '../sections/tracing';
import { failoverChart, STEADY_CHARTS, writeCharts } from './charts';
import { metaLine, table } from './markdown';
import { failover, failoverPg, standbyFailover } from './report-failover';
import { readScaling } from './report-read-scaling';
import { replication } from './report-replication';
import { growth, steady } from './report-throughput';
import type { Measured, Results } from './results';
import { fmt, median, ratio } from './stats';
import { engineMedian, evaluateTargets, listShimRatios } from './targets';

export const BENCHMARKS_MD = path.resolve(__dirname, '..', '..', 'BENCHMARKS.md');

function tracing(t: Measured<NonNullable<Results['tracing']>['data']>): string {
  const d = t.data;
  const out = [metaLine(t.meta), ''];
  const runsOf = (m: TracingMode) => d.runs.filter((r) => r.tracing === m).map((r) => r.result);
  const rps = (m: TracingMode) => median(runsOf(m).map((r) => r.rps));
  const off = runsOf('off');
  const on = runsOf('on');
  const label: Record<TracingMode, string> = {
    off: 'off (OTEL_SDK_DISABLED=true)',
    on: 'on: every request, OTLP http/protobuf to a local sink',
    'on-json': 'on: every request, OTLP http/json',
    'sampled-10%': 'on: parentbased_traceidratio 0.1, http/protobuf',
  };
  out.push(
    d.implemented
      ? `Tracing is wired: ${d.exportRequests} OTLP export requests (${fmt(d.exportBytes / 1024)} KB; ${d.exportPaths.join(', ')}) reached the local sink.`
      : '**Tracing not yet implemented** in the measured build: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, no export reached the sink, so the "on" column measures nothing but noise.',
    '',
    table(
      ['Tracing', 'runs', 'req/s (median)', 'vs off', 'p99 ms (median)', 'gateway CPU ms/1k (median)'],
      TRACING_MODES.filter((m) => runsOf(m).length > 0).map((m) => [
        label[m],
        String(runsOf(m).length),
        fmt(rps(m)),
        fmt(ratio(rps(m), rps('off'))),
        fmt(median(runsOf(m).map((r) => r.p99))),
        fmt(median(runsOf(m).map((r) => r.cpuPer1k.gateway ?? Number.NaN))),
      ]),
    ),
    '',
    `On/off req/s ratio: ${fmt(ratio(median(on.map((r) => r.rps)), median(off.map((r) => r.rps))))}.`,
  );
  return out.join('\n');
}

function listShim(t: Measured<NonNullable<Results['listShim']>['data']>): string {
  const runs = t.data.runs;
  const pick = (shim: 'on' | 'off') => runs.filter((r) => r.shim === shim).map((r) => r.result);
  const row = (label: string, rs: ReturnType<typeof pick>) => [
    label,
    String(rs.length),
    fmt(median(rs.map((r) => r.rps))),
    fmt(median(rs.map((r) => r.p99))),
    fmt(median(rs.map((r) => r.cpuPer1k.gateway ?? Number.NaN))),
  ];
  const r = listShimRatios(runs);
  return [
    metaLine(t.meta, median(runs.map((x) => x.result.foreignCpuPct ?? Number.NaN))),
    '',
    table(
      ['Gateway', 'runs', 'req/s (median)', 'p99 ms (median)', 'gateway CPU ms/1k (median)'],
      [
        row('GET 1 KB, LIST shim off (Node parser reads the socket)', pick('off')),
        row('GET 1 KB, LIST shim on (as shipped)', pick('on')),
      ],
    ),
    '',
    `Per alternating pair, shim on/off: req/s ${r.rps.map((x) => fmt(x)).join(', ')} (median ${fmt(median(r.rps))}); ` +
      `gateway CPU per request ${r.cpu.map((x) => fmt(x)).join(', ')} (median ${fmt(median(r.cpu))}).`,
  ].join('\n');
}

function engines(e: Measured<NonNullable<Results['engines']>['data']>, r: Results): string {
  const d = e.data;
  const names: EngineName[] = ['undici', 'undici-h2', 'http-proxy-3', 'gateway', 'haproxy', 'haproxy-mtls'];
  const out = [metaLine(e.meta, median(d.rounds.map((x) => x.result.foreignCpuPct ?? Number.NaN))), ''];
  out.push(
    `Rounds alternate with a rotating order; each run ${d.connections} connections. "Own CPU" is the proxy process's CPU per 1,000 requests.`,
    '',
  );
  if (d.skipped) out.push(`http-proxy-3 skipped: ${d.skipped}`, '');
  const rows: string[][] = [];
  for (const op of ['read', 'write'] as const) {
    const u = engineMedian(r, 'undici', (x) => x.rps, op);
    const hp = engineMedian(r, 'haproxy', (x) => x.rps, op);
    for (const n of names) {
      const runs = d.rounds.filter((x) => x.engine === n && (x.op ?? 'read') === op);
      if (!runs.length) continue;
      const rps = engineMedian(r, n, (x) => x.rps, op);
      rows.push([
        `${op} 1 KB`,
        n,
        String(runs.length),
        fmt(rps),
        fmt(engineMedian(r, n, (x) => x.p99, op)),
        fmt(engineMedian(r, n, (x) => x.cpu, op)),
        fmt(ratio(rps, u)),
        fmt(ratio(rps, hp)),
      ]);
    }
  }
  out.push(
    table(
      [
        'Load',
        'Engine',
        'rounds',
        'req/s (median)',
        'p99 ms (median)',
        'own CPU ms/1k (median)',
        'vs bare undici',
        'vs HAProxy',
      ],
      rows,
    ),
  );
  return out.join('\n');
}

/** One process's profile: self time by package/file, then the top frames (shares of busy time). */
function profileTables(who: string, d: ProcessProfile): string[] {
  // Shares of busy time: idle samples (waiting for I/O) are left out.
  const idle = d.groups.find((g) => g.name === '(idle)')?.share ?? 0;
  const pct = (x: number) => `${((x / (1 - idle)) * 100).toFixed(1)}%`;
  return [
    `**${who}** under \`node --cpu-prof\` at ${fmt(d.load.rps)} req/s (KV reads 1 KB, 100 connections, after a 3 s priming load; the profiler itself costs throughput). It was idle ${(idle * 100).toFixed(0)}% of the time; shares below are of its busy time. Self time by package or file, then the top frames:`,
    '',
    table(
      ['Package / file', 'self time'],
      d.groups
        .filter((g) => g.name !== '(idle)')
        .slice(0, 15)
        .map((g) => [g.name, pct(g.share)]),
    ),
    '',
    table(
      ['Frame', 'self time'],
      d.frames
        .filter((f) => !f.name.startsWith('(idle)'))
        .slice(0, 20)
        .map((f) => [`\`${f.name}\``, pct(f.share)]),
    ),
  ];
}

function profile(p: Measured<NonNullable<Results['profile']>['data']>): string {
  const d = p.data;
  return [
    metaLine(p.meta),
    '',
    ...profileTables('The gateway', d),
    ...(d.traced
      ? ['', ...profileTables('The gateway with every request traced and exported', d.traced)]
      : []),
    ...(d.standby ? ['', ...profileTables('A standby forwarding to the active', d.standby)] : []),
  ].join('\n');
}

function targets(r: Results): string {
  const checks = evaluateTargets(r);
  if (!checks.length) return '_No results yet._';
  return table(
    ['Target', 'Measured', 'Met?'],
    checks.map((c) => [c.target, c.measured, c.met === null ? '—' : c.met ? '✅ met' : '❌ missed']),
  );
}

function abuse(t: Measured<NonNullable<Results['abuse']>['data']>): string {
  const writers = t.data.writers ?? [];
  return [
    metaLine(t.meta),
    '',
    table(
      [
        'Round',
        'light reads p99 ms, alone',
        'beside the attack',
        'ratio',
        'reads (alone / beside)',
        'failures',
        'active RSS MiB idle → peak',
      ],
      t.data.rounds.map((r) => [
        String(r.round + 1),
        fmt(r.unloadedP99),
        fmt(r.loadedP99),
        fmt(ratio(r.loadedP99, r.unloadedP99)),
        `${r.reads.unloaded} / ${r.reads.loaded}`,
        String(r.failures),
        `${fmt(r.idleRssMiB)} → ${fmt(r.peakRssMiB)}`,
      ]),
    ),
    ...(writers.length
      ? [
          '',
          'A legitimate writer (2 clients, each a ~330-byte KV write then an AppRole login) alone, then beside 64 bodies of 1 MiB held one byte short from 8 addresses, 20 slow logins and 500 slow bodies (issue 29):',
          '',
          table(
            [
              'Round',
              'writer p99 ms, alone',
              'beside the attack',
              'ratio',
              'requests (alone / beside)',
              'failures',
            ],
            writers.map((w) => [
              String(w.round + 1),
              fmt(w.aloneP99),
              fmt(w.besideP99),
              fmt(ratio(w.besideP99, w.aloneP99)),
              `${w.requests.alone} / ${w.requests.beside}`,
              String(w.failures),
            ]),
          ),
        ]
      : []),
  ].join('\n');
}

function failoverPictures(r: Results): string {
  const faults = [...new Set(r.failover?.data.runs.map((x) => x.fault))];
  return faults
    .map((f) => `![${f}: gateway vs HAProxy, requests per 250 ms](${failoverChart(f)})`)
    .join('\n\n');
}

function steadyPictures(): string {
  return `![req/s per path](${STEADY_CHARTS.rps})\n\n![CPU per 1,000 requests per path](${STEADY_CHARTS.cpu})`;
}

/** Every block, rendered from the results. */
export function renderBlocks(r: Results): Record<string, string> {
  const none = '_Not measured yet._';
  return {
    targets: targets(r),
    steady: r.steady ? `${steady(r.steady)}\n\n${steadyPictures()}` : none,
    failover: r.failover ? `${failover(r.failover)}\n\n${failoverPictures(r)}` : none,
    'failover-pg': r.failoverPg ? failoverPg(r.failoverPg) : none,
    growth: r.growth ? growth(r.growth) : none,
    tracing: r.tracing ? tracing(r.tracing) : none,
    'list-shim': r.listShim ? listShim(r.listShim) : none,
    abuse: r.abuse ? abuse(r.abuse) : none,
    replication: r.replication ? replication(r.replication) : none,
    'read-scaling': r.readScaling ? readScaling(r.readScaling) : none,
    engines: r.engines ? engines(r.engines, r) : none,
    'standby-failover': r.standbyFailover ? standbyFailover(r.standbyFailover) : none,
    profile: r.profile ? profile(r.profile) : none,
  };
}

/** Rewrites the blocks in BENCHMARKS.md (creating the file or missing markers as needed). */
export function updateBenchmarksMd(r: Results, file = BENCHMARKS_MD): void {
  writeCharts(r);
  let md = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  for (const [name, body] of Object.entries(renderBlocks(r))) {
    const begin = `<!-- bench:${name}:begin -->`;
    const end = `<!-- bench:${name}:end -->`;
    const block = `${begin}\n${body}\n${end}`;
    const i = md.indexOf(begin);
    const j = md.indexOf(end);
    md =
      i >= 0 && j > i
        ? md.slice(0, i) + block + md.slice(j + end.length)
        : `${md.trimEnd()}\n\n## ${name}\n\n${block}\n`;
  }
  writeFileSync(file, md);
}
