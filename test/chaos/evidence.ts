/**
 * What the nodes' own logs say about leadership, cross-checked against the MONITOR record:
 * which node acquired which epoch, how terms ended, and how often a write was refused by
 * fencing (the refusals are the fence working: a deposed leader tried and was stopped).
 */
import type { Proc } from '../helpers/procs';
import type { FencingReport } from './lock-monitor';

export interface LogEvidence {
  /** epoch → node that logged acquiring it. */
  epochs: Map<number, string>;
  /** Writes refused by fencing, per node. */
  fencedRefusals: Record<string, number>;
  /** `leadership lost` reasons and counts. */
  lostReasons: Record<string, number>;
  /** Epochs the monitor saw acquired that no node logged (e.g. a log line lost to kill -9). */
  unloggedEpochs: number[];
  violations: string[];
}

/** Reads every node's JSON log. */
export function logEvidence(procs: Proc[], fencing: FencingReport): LogEvidence {
  const ev: LogEvidence = {
    epochs: new Map(),
    fencedRefusals: {},
    lostReasons: {},
    unloggedEpochs: [],
    violations: [],
  };
  for (const p of procs) {
    for (const l of p.logs()) {
      if (l.msg === 'lock acquired; becoming active' && typeof l.epoch === 'number') {
        const other = ev.epochs.get(l.epoch);
        if (other) ev.violations.push(`epoch ${l.epoch} acquired by both ${other} and ${p.name}`);
        ev.epochs.set(l.epoch, p.name);
      } else if (typeof l.msg === 'string' && l.msg.startsWith('write refused by fencing')) {
        ev.fencedRefusals[p.name] = (ev.fencedRefusals[p.name] ?? 0) + 1;
      } else if (l.msg === 'leadership lost') {
        const reason = String(l.reason);
        ev.lostReasons[reason] = (ev.lostReasons[reason] ?? 0) + 1;
      }
    }
  }
  const seen = new Set<number>();
  for (const a of fencing.acquisitions) {
    seen.add(a.epoch);
    if (!ev.epochs.has(a.epoch)) ev.unloggedEpochs.push(a.epoch);
  }
  // A node that logs an epoch Redis never granted (within the observed windows) is a real problem.
  const first = fencing.acquisitions[0]?.epoch ?? Number.POSITIVE_INFINITY;
  for (const [epoch, node] of ev.epochs) {
    if (epoch >= first && !seen.has(epoch) && !insideGap(epoch, fencing)) {
      ev.violations.push(`${node} logged acquiring epoch ${epoch}, which Redis never granted`);
    }
  }
  return ev;
}

/** True when `epoch` may have been granted while MONITOR was disconnected. */
function insideGap(epoch: number, f: FencingReport): boolean {
  const before = [...f.acquisitions].reverse().find((a) => a.epoch < epoch);
  const after = f.acquisitions.find((a) => a.epoch > epoch);
  return f.gaps.some((g) => (!before || g.to >= before.at) && (!after || g.from <= after.at));
}
