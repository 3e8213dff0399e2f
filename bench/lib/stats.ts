/** Small statistics and formatting helpers for benchmark tables. */

/** Median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Maximum of `xs` (NaN when empty). */
export function max(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x));
  return s.length === 0 ? Number.NaN : Math.max(...s);
}

/** `value` rounded for a table: integers above 100, one decimal above 10, two below. */
export function fmt(value: number | null | undefined, unit = ''): string {
  if (value === null || value === undefined || Number.isNaN(value)) return 'n/a';
  const abs = Math.abs(value);
  const s = abs >= 100 ? Math.round(value).toString() : abs >= 10 ? value.toFixed(1) : value.toFixed(2);
  return unit ? `${s} ${unit}` : s;
}

/** `a / b` (NaN when either is missing or b is 0). */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || b === 0) return Number.NaN;
  return a / b;
}

/** Value sizes in bytes, written as 1 KB / 256 KB / 8 MB. */
export function sizeLabel(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${bytes / (1024 * 1024)} MB`;
  return `${bytes / 1024} KB`;
}

/** Promise-based sleep. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
