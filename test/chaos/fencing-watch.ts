/**
 * Fencing evidence across every data server of the store: one LockMonitor per server (the single
 * Redis, or each member of a Sentinel topology: whichever is primary at the time runs the nodes'
 * scripts, and the monitors skip what replicas merely copy), merged into one report. Across
 * servers it also checks that the fencing epoch only rises: in time order, every acquisition's
 * epoch is above every earlier one, whichever server granted it, so no promotion of a replica
 * hands out an epoch again.
 */
import { emptyReport, type FencingReport, LockMonitor } from './lock-monitor';

const addr = (port: number) => `127.0.0.1:${port}`;

export class FencingWatch {
  private readonly monitors: Array<{ port: number; m: LockMonitor }>;

  constructor(ports: readonly number[]) {
    this.monitors = ports.map((port) => ({
      port,
      m: new LockMonitor(port, 'leaderway', new Set(ports.filter((p) => p !== port).map(addr))),
    }));
  }

  /** Connects to every server (each keeps reconnecting across restarts until stopped). */
  async start(): Promise<void> {
    await Promise.all(this.monitors.map(({ m }) => m.start()));
  }

  /** Stops watching (idempotent) and returns the merged report. */
  stop(): FencingReport {
    const many = this.monitors.length > 1;
    const out = emptyReport();
    for (const { port, m } of this.monitors) {
      const r = m.stop();
      out.violations.push(...r.violations.map((v) => (many ? `redis :${port}: ${v}` : v)));
      out.acquisitions.push(...r.acquisitions);
      out.ends.released += r.ends.released;
      out.ends.expired += r.ends.expired;
      out.ends.takenOver += r.ends.takenOver;
      out.writesChecked += r.writesChecked;
      out.writesUnchecked += r.writesUnchecked;
      out.gaps.push(...r.gaps);
      out.minExpiryMarginMs = Math.min(out.minExpiryMarginMs, r.minExpiryMarginMs);
    }
    out.acquisitions.sort((a, b) => a.at - b.at);
    out.violations.push(...epochRegressions(out.acquisitions));
    return out;
  }
}

/** Acquisitions (in time order) whose epoch is not above every earlier one. */
export function epochRegressions(acqs: FencingReport['acquisitions']): string[] {
  const out: string[] = [];
  let max = 0;
  for (const a of acqs) {
    if (a.epoch <= max) {
      out.push(
        `epoch went backwards: ${a.value} acquired epoch ${a.epoch} at ${new Date(a.at).toISOString()} after epoch ${max}`,
      );
    }
    max = Math.max(max, a.epoch);
  }
  return out;
}
