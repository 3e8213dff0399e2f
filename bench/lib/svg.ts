/**
 * Charts for BENCHMARKS.md as plain SVG (no browser, no dependency): a timeline of successes
 * (lines) and failures (bars below the axis) per 250 ms bucket, and grouped bars. Text is escaped;
 * sizes are fixed so the files diff cleanly between runs.
 */

export interface TimelineSeries {
  label: string;
  color: string;
  ok: number[];
  fail: number[];
}

const W = 720;
const H = 260;
const PAD = { left: 52, right: 16, top: 50, bottom: 40 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (x: number) => (Math.round(x * 10) / 10).toString();
/** A value printed on a chart: whole numbers from 100 up. */
const label = (x: number) => (Math.abs(x) >= 100 ? Math.round(x).toString() : num(x));

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** One legend entry, in a row under the title. */
function legendItem(k: number, text: string, color: string): string[] {
  const x = PAD.left + k * 200;
  return [
    `<rect x="${x}" y="27" width="10" height="10" fill="${color}"/>`,
    `<text x="${x + 14}" y="36">${esc(text)}</text>`,
  ];
}

function frame(title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${PAD.left}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/**
 * Requests per bucket after a fault at t = 0: successes as a line per series above the axis,
 * failures as bars below it (same scale), so a failover's gap and its errors show at a glance.
 */
export function timelineSvg(title: string, series: TimelineSeries[], bucketMs: number): string {
  const n = Math.max(1, ...series.map((s) => s.ok.length));
  const top = niceMax(Math.max(1, ...series.flatMap((s) => s.ok)));
  const bottom = Math.max(0, ...series.flatMap((s) => s.fail));
  const failSpan = bottom > 0 ? niceMax(bottom) : 0;
  const plotH = H - PAD.top - PAD.bottom;
  const zeroY = PAD.top + plotH * (top / (top + failSpan || 1));
  const unit = (zeroY - PAD.top) / top;
  const x = (i: number) => PAD.left + ((W - PAD.left - PAD.right) * i) / n;
  const body: string[] = [];
  for (const v of [0, top / 2, top]) {
    const y = zeroY - v * unit;
    body.push(
      `<line x1="${PAD.left}" y1="${num(y)}" x2="${W - PAD.right}" y2="${num(y)}" stroke="#ddd"/>`,
      `<text x="${PAD.left - 6}" y="${num(y + 4)}" text-anchor="end">${num(v)}</text>`,
    );
  }
  if (failSpan > 0) {
    const y = zeroY + failSpan * unit;
    body.push(
      `<text x="${PAD.left - 6}" y="${num(y + 4)}" text-anchor="end" fill="#c00">-${num(failSpan)}</text>`,
    );
  }
  const barW = (W - PAD.left - PAD.right) / n / Math.max(1, series.length);
  series.forEach((s, k) => {
    s.fail.forEach((f, i) => {
      if (f <= 0) return;
      body.push(
        `<rect x="${num(x(i) + k * barW)}" y="${num(zeroY)}" width="${num(barW)}" height="${num(f * unit)}" fill="${s.color}" opacity="0.55"/>`,
      );
    });
    const pts = s.ok.map((v, i) => `${num(x(i + 0.5))},${num(zeroY - v * unit)}`).join(' ');
    body.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    body.push(...legendItem(k, s.label, s.color));
  });
  body.push(
    `<line x1="${PAD.left}" y1="${num(zeroY)}" x2="${W - PAD.right}" y2="${num(zeroY)}" stroke="#333"/>`,
  );
  const seconds = (n * bucketMs) / 1000;
  const step = seconds > 12 ? 2 : 1;
  for (let t = 0; t <= seconds; t += step) {
    const xx = PAD.left + ((W - PAD.left - PAD.right) * t) / seconds;
    body.push(`<text x="${num(xx)}" y="${H - PAD.bottom + 14}" text-anchor="middle">${t}</text>`);
  }
  body.push(
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle">seconds after the fault (${bucketMs} ms buckets; line: successes, bars below the axis: failures)</text>`,
  );
  return frame(title, body);
}

export interface BarGroup {
  label: string;
  values: Array<{ label: string; value: number; color: string }>;
}

/** Grouped vertical bars, one group per label, the value printed on each bar. */
export function barsSvg(title: string, unit: string, groups: BarGroup[]): string {
  const top = niceMax(Math.max(1, ...groups.flatMap((g) => g.values.map((v) => v.value))));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const groupW = plotW / Math.max(1, groups.length);
  const body: string[] = [];
  for (const v of [0, top / 2, top]) {
    const y = PAD.top + plotH - (v / top) * plotH;
    body.push(
      `<line x1="${PAD.left}" y1="${num(y)}" x2="${W - PAD.right}" y2="${num(y)}" stroke="#ddd"/>`,
      `<text x="${PAD.left - 6}" y="${num(y + 4)}" text-anchor="end">${num(v)}</text>`,
    );
  }
  groups.forEach((g, gi) => {
    const barW = (groupW * 0.8) / Math.max(1, g.values.length);
    g.values.forEach((v, vi) => {
      const h = (v.value / top) * plotH;
      const xx = PAD.left + gi * groupW + groupW * 0.1 + vi * barW;
      body.push(
        `<rect x="${num(xx)}" y="${num(PAD.top + plotH - h)}" width="${num(barW - 2)}" height="${num(h)}" fill="${v.color}"/>`,
        `<text x="${num(xx + barW / 2)}" y="${num(PAD.top + plotH - h - 3)}" text-anchor="middle">${label(v.value)}</text>`,
      );
    });
    body.push(
      `<text x="${num(PAD.left + gi * groupW + groupW / 2)}" y="${H - PAD.bottom + 14}" text-anchor="middle">${esc(g.label)}</text>`,
    );
  });
  const legend = groups.some((g) => g.values.length > 1) ? (groups[0]?.values ?? []) : [];
  legend.forEach((v, k) => {
    body.push(...legendItem(k, v.label, v.color));
  });
  body.push(`<text x="${W / 2}" y="${H - 8}" text-anchor="middle">${esc(unit)}</text>`);
  return frame(title, body);
}
