/** The text report of an escalation run: what it exercised, and each violation with its replay. */
import type { RuleId } from './checker';
import type { RunReport } from './runner';

/** How many violations of one rule a test prints (the count is always given). */
const SHOWN_PER_RULE = 5;

/** The command that replays a run. */
export function replayCommand(seed: number, steps: number): string {
  return `npm run escalation -- --seed ${seed} --steps ${steps}`;
}

/** A summary: steps and answers by kind, then violations grouped by rule, then model notes. */
export function summarize(r: RunReport, shownPerRule = SHOWN_PER_RULE): string {
  const lines: string[] = [];
  const st = r.stats;
  lines.push(
    `escalation: seed ${r.seed}, ${st.steps} steps in ${(r.ms / 1000).toFixed(1)} s; ` +
      `${st.tokensIssued} tokens issued (${st.nonRootCreates} by non-root parents, ${st.logins} AppRole logins), ` +
      `${st.deadTokenRequests} requests with dead tokens`,
  );
  lines.push(`  ${standbyLine(r)}`);
  const kinds = Object.entries(st.byKind).sort(([a], [b]) => a.localeCompare(b));
  lines.push(`  answers (2xx/4xx/other): ${kinds.map(([k, [a, b, c]]) => `${k} ${a}/${b}/${c}`).join(', ')}`);
  const byRule = new Map<RuleId, typeof r.violations>();
  for (const v of r.violations) byRule.set(v.rule, [...(byRule.get(v.rule) ?? []), v]);
  if (byRule.size === 0) lines.push('  no violation');
  for (const [rule, vs] of byRule) {
    lines.push(`  VIOLATED ${rule} (${vs.length}):`);
    for (const v of vs.slice(0, shownPerRule)) lines.push(`    step ${v.step}: ${v.reason}\n      ${v.at}`);
  }
  if (r.notes.length) {
    lines.push(`  notes: capabilities-self and the model's evaluator differ ${r.notes.length} times:`);
    for (const n of r.notes.slice(0, shownPerRule)) lines.push(`    ${n}`);
  }
  if (r.violations.length) lines.push(`  replay: ${replayCommand(r.seed, st.steps)}`);
  return lines.join('\n');
}

/**
 * What the standbys did: their counters (leaderway_standby_reads_total, scraped after the run) and,
 * per kind of call, how many requests straight to a standby it served itself (2xx of them).
 */
export function standbyLine(r: RunReport): string {
  const direct = r.history.filter((s) => s.via !== 'gateway' && s.status !== 0).length;
  const toStandby = r.history.filter((s) => s.via === 'standby' && s.status !== 0).length;
  const served = new Map<string, [number, number]>();
  for (const s of r.history) {
    if (s.standby !== 'served') continue;
    const [n, ok] = served.get(s.call.kind) ?? [0, 0];
    served.set(s.call.kind, [n + 1, ok + (s.status >= 200 && s.status < 300 ? 1 : 0)]);
  }
  const kinds = [...served].sort(([a], [b]) => a.localeCompare(b));
  return (
    `standby reads: ${r.standbyReads.served} served by standbys, ${r.standbyReads.forwarded} forwarded ` +
    `(${toStandby} of ${direct} requests straight to a node went to a standby); served (2xx): ` +
    (kinds.map(([k, [n, ok]]) => `${k} ${n} (${ok})`).join(', ') || 'none')
  );
}
