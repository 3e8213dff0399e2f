/** The startup banner, in the shape of `bao server`'s: sorted keys, right-aligned. */

/** Renders the banner for `title` with `lines` (key → value). */
export function banner(title: string, lines: Record<string, string>): string {
  const keys = Object.keys(lines).sort();
  const width = Math.max(...keys.map((k) => k.length)) + 8;
  const body = keys.map((k) => `${k.padStart(width)}: ${lines[k]}`).join('\n');
  return `==> ${title} configuration:\n\n${body}\n\n==> ${title} started! Log data will stream in below:\n`;
}
