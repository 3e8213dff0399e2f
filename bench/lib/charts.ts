/**
 * The pictures in BENCHMARKS.md, written from the results as SVG next to it (bench/charts/):
 * gateway vs HAProxy through each failover fault, and req/s and CPU per path. The markdown
 * blocks embed them; `npm run bench:charts` redraws them (and the tables) from latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Fault } from '../sections/failover';
import { BUCKET_MS } from './recording-load';
import type { Results } from './results';
import { barsSvg, timelineSvg } from './svg';
import { cell } from './targets';

export const CHARTS_DIR = path.resolve(__dirname, '..', 'charts');
const GATEWAY = '#1f77b4';
const HAPROXY = '#ff7f0e';
const COLORS = {
  direct: '#2ca02c',
  gateway: GATEWAY,
  undici: '#8c564b',
  haproxy: HAPROXY,
  standby: '#9467bd',
};

/**
 * Per-bucket mean over runs (shorter runs count as zero past their end). The last bucket is left
 * out: the observation ends inside it.
 */
function meanSeries(xs: number[][]): number[] {
  const n = Math.max(0, ...xs.map((x) => x.length - 1));
  return Array.from(
    { length: n },
    (_, i) => xs.reduce((a, x) => a + (x[i] ?? 0), 0) / Math.max(1, xs.length),
  );
}

/** File name (relative to the repository) of the failover chart of `fault`. */
export const failoverChart = (fault: Fault) => `bench/charts/failover-${fault}.svg`;
export const STEADY_CHARTS = { rps: 'bench/charts/steady-rps.svg', cpu: 'bench/charts/steady-cpu.svg' };

/** Writes every chart the results allow; returns the files written. */
export function writeCharts(r: Results, dir = CHARTS_DIR): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const put = (file: string, svg: string) => {
    writeFileSync(path.join(dir, path.basename(file)), svg);
    written.push(file);
  };
  for (const fault of ['step-down', 'sigterm', 'kill-9'] as Fault[]) {
    const runs = r.failover?.data.runs.filter((x) => x.fault === fault) ?? [];
    if (!runs.length) continue;
    const side = (s: 'gateway' | 'haproxy', label: string, color: string) => ({
      label,
      color,
      ok: meanSeries(runs.map((x) => x[s].timeline)),
      fail: meanSeries(runs.map((x) => x[s].failTimeline ?? [])),
    });
    put(
      failoverChart(fault),
      timelineSvg(
        `${fault} of the active under load: requests per ${BUCKET_MS} ms (mean of ${runs.length} runs)`,
        [side('gateway', 'leaderway gateway', GATEWAY), side('haproxy', 'HAProxy', HAPROXY)],
        BUCKET_MS,
      ),
    );
  }
  const rows = r.steady?.data.rows ?? [];
  const paths = (['direct', 'gateway', 'undici', 'haproxy', 'standby'] as const).filter((p) =>
    cell(rows, p, 'read', 1024, 100),
  );
  if (paths.length) {
    const bars = (value: (p: (typeof paths)[number]) => number) =>
      paths.map((p) => ({ label: p, values: [{ label: p, value: value(p), color: COLORS[p] }] }));
    put(
      STEADY_CHARTS.rps,
      barsSvg(
        'KV reads of 1 KB, 100 connections: requests per second per path',
        'req/s (median of rounds)',
        bars((p) => cell(rows, p, 'read', 1024, 100)?.rps ?? 0),
      ),
    );
    // The proxy's own CPU per 1,000 requests (direct has no proxy: the active node's own).
    put(
      STEADY_CHARTS.cpu,
      barsSvg(
        'KV reads of 1 KB, 100 connections: CPU ms per 1,000 requests',
        'CPU ms / 1k requests of the proxy on the path (direct: the active node)',
        bars((p) => {
          const c = cell(rows, p, 'read', 1024, 100)?.cpuPer1k;
          return (p === 'direct' ? c?.['active'] : c?.[p]) ?? 0;
        }),
      ),
    );
  }
  return written;
}
