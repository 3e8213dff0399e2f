/** Markdown building blocks for the benchmark tables. */
import type { RunMeta } from './results';
import { fmt, max, median } from './stats';

/** A GitHub-flavoured Markdown table. */
export function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** The line under each table that says where and how it was measured. */
export function metaLine(m: RunMeta, foreign?: number): string {
  const noise =
    foreign === undefined || Number.isNaN(foreign)
      ? ''
      : `; other work on the machine used a median ${fmt(foreign)}% of the cores during the loads`;
  return (
    `_Measured ${m.date.slice(0, 16).replace('T', ' ')} UTC with \`${m.command}\` (${m.mode}) on ${m.cpuModel}, ${m.cores} cores shared by ` +
    `everything (load generator, Redis, nodes, proxies), Node ${m.node}, ${m.haproxy}, ${m.redis}; lock TTL ${m.lockTtl}; ` +
    `git ${m.git}${noise}._`
  );
}

/** `median / max` of `xs`. */
export const mm = (xs: number[], unit = '') => `${fmt(median(xs), unit)} / ${fmt(max(xs), unit)}`;
