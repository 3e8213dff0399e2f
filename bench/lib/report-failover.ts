/** Markdown for the failover sections: windows under load, and the standby client's view. */
import type { Fault } from '../sections/failover';
import type { PgPromotionResult } from '../sections/failover-pg';
import { metaLine, mm, table } from './markdown';
import { BUCKET_MS, RECOVERY_FRACTION, type WindowStats } from './recording-load';
import type { Measured, Results } from './results';
import { fmt, max, median } from './stats';

/** Load before the kill in the PostgreSQL promotion runs (sections/failover-pg.ts). */
const BASELINE_MS_TEXT = '2 s of load';

/** The failover-windows block. */
export function failover(f: Measured<NonNullable<Results['failover']>['data']>): string {
  const d = f.data;
  const out = [metaLine(f.meta)];
  out.push(
    `${d.workersPerPath} client loops per path, each alternating a KV read and a KV write (1 KB) at ${d.ratePerWorker} req/s ` +
      `(${d.workersPerPath * d.ratePerWorker} req/s per path, well under capacity), through the gateway and through HAProxy at the same time. ` +
      `Figures are median / max over the runs. Error window: first failure to end of last. ` +
      `Recovery: from the fault until successful throughput stays at ≥ ${RECOVERY_FRACTION * 100}% of its pre-fault rate (${BUCKET_MS} ms buckets; "+" = not recovered by the end of the observation).`,
    '',
  );
  const rows: string[][] = [];
  for (const fault of ['step-down', 'sigterm', 'kill-9'] as Fault[]) {
    const runs = d.runs.filter((r) => r.fault === fault);
    if (!runs.length) continue;
    for (const side of ['gateway', 'haproxy'] as const) {
      const w = runs.map((r) => r[side]);
      const pick = (fn: (x: WindowStats) => number) => w.map(fn);
      const censored = w.some((x) => x.recoveryCensored) ? '+' : '';
      rows.push([
        fault,
        side === 'gateway' ? 'gateway' : 'HAProxy',
        String(runs.length),
        mm(pick((x) => x.failedReads)),
        mm(pick((x) => x.failedWrites)),
        mm(pick((x) => x.longestMs)),
        mm(pick((x) => x.errorWindowMs)),
        `${mm(pick((x) => x.recoveryMs))}${censored}`,
      ]);
    }
  }
  out.push(
    table(
      [
        'Fault',
        'Path',
        'Runs',
        'failed reads',
        'failed writes',
        'longest request ms',
        'error window ms',
        'recovery ms',
      ],
      rows,
    ),
  );
  const codes: Record<string, number> = {};
  for (const r of d.runs)
    for (const side of ['gateway', 'haproxy'] as const)
      for (const [c, n] of Object.entries(r[side].failureCodes))
        codes[`${side} ${c}`] = (codes[`${side} ${c}`] ?? 0) + n;
  out.push(
    '',
    `Failure statuses over all runs (0 = connection error): ${
      Object.entries(codes)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ') || 'none'
    }.`,
  );
  return out.join('\n');
}

/** The PostgreSQL promotion block (issue 28): one row per kill, then median / max. */
export function failoverPg(f: Measured<PgPromotionResult>): string {
  const d = f.data;
  const via =
    d.path === 'gateway'
      ? 'through a gateway reading PostgreSQL'
      : 'straight to the active node (this build has no gateway on PostgreSQL)';
  const w = d.runs.map((r) => r.window);
  const rows = d.runs.map((r) => [
    String(r.run),
    `${r.from} → ${r.to}`,
    fmt(r.window.baselineRps),
    fmt(r.promotedMs),
    fmt(r.window.longestMs),
    String(r.window.failedReads),
    String(r.window.failedWrites),
    String(r.window.outcomeUnknown ?? 'n/a'),
    fmt(r.window.errorWindowMs),
    `${fmt(r.window.recoveryMs)}${r.window.recoveryCensored ? '+' : ''}`,
  ]);
  rows.push([
    'median / max',
    '',
    mm(w.map((x) => x.baselineRps)),
    mm(d.runs.map((r) => r.promotedMs)),
    mm(w.map((x) => x.longestMs)),
    mm(w.map((x) => x.failedReads)),
    mm(w.map((x) => x.failedWrites)),
    mm(w.map((x) => x.outcomeUnknown ?? Number.NaN)),
    mm(w.map((x) => x.errorWindowMs)),
    mm(w.map((x) => x.recoveryMs)),
  ]);
  const codes: Record<string, number> = {};
  for (const x of w) for (const [c, n] of Object.entries(x.failureCodes)) codes[c] = (codes[c] ?? 0) + n;
  const reasons: Record<string, number> = {};
  for (const x of w)
    for (const [m, n] of Object.entries(x.reasons503 ?? {})) reasons[m] = (reasons[m] ?? 0) + n;
  return [
    metaLine(f.meta),
    '',
    `PostgreSQL ${d.postgres}, a primary and a ${d.synchronous ? 'synchronous' : 'asynchronous'} streaming standby (fsync=off, loopback), ${d.nodes} nodes on it (lock TTL ${d.lockTtl}), a fresh topology per run. ` +
      `${d.workers} client loops, each alternating a KV read and a KV write (1 KB) at ${d.ratePerWorker} req/s, ${via}. ` +
      `kill -9 of the primary (postmaster and backends) after ${BASELINE_MS_TEXT}; the standby is promoted (\`pg_promote()\`) ${d.detectionDelayMs} ms after the kill — a fixed detection delay standing for the operator's tooling. ` +
      `Promoted: kill → the standby accepts writes. Error window and recovery as in the failover windows above.`,
    '',
    table(
      [
        'Run',
        'active node',
        'req/s before the kill',
        'promoted ms',
        'longest request ms',
        'failed reads',
        'failed writes',
        'of which outcome unknown',
        'error window ms',
        'recovery ms',
      ],
      rows,
    ),
    '',
    `Failure statuses over all runs (0 = connection error): ${
      Object.entries(codes)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ') || 'none'
    }.${
      Object.keys(reasons).length
        ? ` The 503s said: ${Object.entries(reasons)
            .map(([m, n]) => `“${m}…” ${n}`)
            .join(', ')}.`
        : ''
    }`,
  ].join('\n');
}

/** The issue-3 block: failover seen through a standby. */
export function standbyFailover(s: Measured<NonNullable<Results['standbyFailover']>['data']>): string {
  const d = s.data;
  const out = [metaLine(s.meta), ''];
  out.push(
    'One client sends KV reads (1 KB) back to back through a surviving standby. Served again: from the fault to the end of the first successful request that started after the fault and after the last failure ("+" = not within the observation). Failures are what that client saw (307 = the standby fell back to redirecting, 503 = no leader known, 0 = connection error).',
    '',
  );
  out.push(
    table(
      [
        'Fault',
        'runs',
        'served again: median ms',
        'max ms',
        'failed requests median / max',
        'longest request median / max ms',
        'runs where the client’s standby became the active',
      ],
      (['step-down', 'sigterm', 'kill-9'] as Fault[])
        .map((f) => d.runs.filter((x) => x.fault === f))
        .filter((runs) => runs.length)
        .map((runs) => [
          runs[0]?.fault ?? '',
          String(runs.length),
          fmt(median(runs.map((x) => x.servedAgainMs))),
          `${fmt(max(runs.map((x) => x.servedAgainMs)))}${runs.some((x) => x.censored) ? '+' : ''}`,
          mm(runs.map((x) => x.failures)),
          mm(runs.map((x) => x.longestMs)),
          String(runs.filter((x) => x.via === x.to).length),
        ]),
    ),
  );
  return out.join('\n');
}
