/**
 * Figures for the summary: per fault kind, how long clients going through the gateways saw no
 * successful operation (the unavailability window), and how many of their operations failed.
 */
import type { FaultEvent, FaultKind, Op } from './history';

/** Per-fault-kind figures. */
export interface KindFigures {
  kind: FaultKind;
  count: number;
  /** Longest gap without a successful gateway operation during the fault, ms. */
  unavailMedianMs: number;
  unavailMaxMs: number;
  /** Time from injection until the cluster was healthy again, ms. */
  recoverMedianMs: number;
  recoverMaxMs: number;
  /** Gateway client ops in the windows: definite failures (CAS mismatches excluded) and indeterminate. */
  gwFail: number;
  gwInfo: number;
  /** Same for operations sent to a node directly (standby or active). */
  sbFail: number;
  sbInfo: number;
}

/** The largest gap between successful completions of `via`'s ops inside [from, to]. */
function maxGap(ops: Op[], from: number, to: number): number {
  const t = ops
    .filter((o) => o.outcome === 'ok' && o.end >= from && o.end <= to)
    .map((o) => o.end)
    .sort((a, b) => a - b);
  let prev = from;
  let gap = 0;
  for (const x of [...t, to]) {
    gap = Math.max(gap, x - prev);
    prev = x;
  }
  return gap;
}

const isCasMismatch = (o: Op) => o.kind === 'cas' && o.status === 400;

/** Computes the figures per fault kind. */
export function figures(ops: Op[], faults: FaultEvent[]): KindFigures[] {
  const viaGw = (name: string) => ops.filter((o) => o.via === name);
  const gw = ['gw1', 'gw2'].map(viaGw);
  const sb = ops.filter((o) => o.via.startsWith('standby:') || o.via.startsWith('active:'));
  const kinds = [...new Set(faults.map((f) => f.kind))];
  return kinds.map((kind) => {
    const fs = faults.filter((f) => f.kind === kind);
    const unavail = fs.map((f) => Math.max(...gw.map((g) => maxGap(g, f.start, f.healthy))));
    const recover = fs.map((f) => f.healthy - f.start);
    const inWindow = (o: Op) => fs.some((f) => o.end >= f.start && o.end <= f.healthy);
    const count = (list: Op[], outcome: string) =>
      list.filter((o) => o.outcome === outcome && inWindow(o) && !isCasMismatch(o)).length;
    const gwAll = gw.flat();
    return {
      kind,
      count: fs.length,
      unavailMedianMs: median(unavail),
      unavailMaxMs: Math.max(...unavail),
      recoverMedianMs: median(recover),
      recoverMaxMs: Math.max(...recover),
      gwFail: count(gwAll, 'fail'),
      gwInfo: count(gwAll, 'info'),
      sbFail: count(sb, 'fail'),
      sbInfo: count(sb, 'info'),
    };
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return 0;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Renders rows as an aligned text table. */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** The fault table for the summary. */
export function faultTable(f: KindFigures[]): string {
  return table(
    [
      'fault',
      'n',
      'unavail med/max ms',
      'recovered med/max ms',
      'gw fail/indet',
      'direct-to-node fail/indet',
    ],
    f.map((x) => [
      x.kind,
      x.count,
      `${Math.round(x.unavailMedianMs)} / ${Math.round(x.unavailMaxMs)}`,
      `${Math.round(x.recoverMedianMs)} / ${Math.round(x.recoverMaxMs)}`,
      `${x.gwFail} / ${x.gwInfo}`,
      `${x.sbFail} / ${x.sbInfo}`,
    ]),
  );
}
