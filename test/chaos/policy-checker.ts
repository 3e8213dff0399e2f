/**
 * The policy checker: once a policy change is acknowledged, no node answers a request as if it
 * had not happened. One client (policy-client.ts) flips a policy between granting and denying
 * read on a secret, one change at a time (each ends before the next begins), and reads the secret
 * with a token that has only that policy, through both gateways and every node directly
 * (standbys included). For each read, the states it may legitimately see are:
 *  - the state set by the last change acknowledged before the read began (`allow` at first: the
 *    policy is set up granting, acknowledged, before the run);
 *  - and that of any later change not definitely failed that began before the read ended;
 *  - and that of an earlier indeterminate change, unless the next acknowledged change after it
 *    ended before the read began. The client retries an indeterminate change until one is
 *    acknowledged (the same state, so a late application of it changes nothing), and only then
 *    moves on; the checker assumes an abandoned request is not applied after a later change was
 *    acknowledged (a request still held by a deposed active cannot write: fencing).
 * A read allowed (200) when only `deny` was possible, or refused (403) when only `allow` was, is
 * a violation naming the target. Anything else (5xx, timeouts) is not checked.
 */

export type PolicyState = 'allow' | 'deny';

export interface PolicyOp {
  id: number;
  /** `set`: the policy changed to `state`; `read`: the secret read with the policy's token. */
  kind: 'set' | 'read';
  /** set: the state asked for; read: what was seen (`allow` 200, `deny` 403), absent otherwise. */
  state?: PolicyState;
  via: string;
  start: number;
  end: number;
  /** As for KV ops: `ok` acknowledged, `fail` definitely not done, `info` unknown. */
  outcome: 'ok' | 'fail' | 'info';
  status: number;
}

export interface PolicyStats {
  changes: number;
  reads: number;
  /** Reads whose answer had only one legitimate value (allowed or refused). */
  checked: number;
  checkedDirect: number;
}

export function checkPolicy(
  ops: PolicyOp[],
  initial: PolicyState = 'allow',
): {
  violations: string[];
  stats: PolicyStats;
} {
  const v: string[] = [];
  const sets = ops.filter((o) => o.kind === 'set').sort((a, b) => a.start - b.start);
  const reads = ops.filter((o) => o.kind === 'read');
  const stats: PolicyStats = {
    changes: sets.filter((s) => s.outcome === 'ok').length,
    reads: reads.length,
    checked: 0,
    checkedDirect: 0,
  };
  for (const r of reads) {
    if (r.state === undefined) continue;
    let last: PolicyOp | undefined;
    for (const s of sets) if (s.outcome === 'ok' && s.end < r.start) last = s;
    const possible = new Set<PolicyState>([last?.state ?? initial]);
    for (const s of sets) {
      if (s.outcome === 'fail' || s.start >= r.end || s === last || s.state === undefined) continue;
      if (!last || s.start > last.start) possible.add(s.state);
      else if (s.outcome === 'info') {
        const nextOk = sets.find((x) => x.outcome === 'ok' && x.start > s.start);
        if (!nextOk || nextOk.end >= r.start) possible.add(s.state);
      }
    }
    if (possible.size !== 1) continue;
    stats.checked++;
    if (!r.via.startsWith('gw')) stats.checkedDirect++;
    if (possible.has(r.state)) continue;
    const since = last
      ? `${r.start - last.end} ms after set op ${last.id} (via ${last.via}) to ${last.state} was acknowledged`
      : `with the policy still as set up (${initial})`;
    v.push(
      `policy: read op ${r.id} (via ${r.via}) was ${r.state === 'allow' ? 'allowed' : 'refused'} (${r.status}) ${since}`,
    );
  }
  return { violations: v, stats };
}
