/**
 * The fault scheduler: until the time budget is spent (and at least `minFaults` were injected),
 * wait a random settle period, inject a random fault, and wait until the cluster is healthy again.
 * Kinds are drawn from a seeded shuffle of `round`, so every kind appears once per round.
 */
import { type ChaosCluster, RECOVERY_TIMEOUT_MS } from './cluster';
import { inject } from './faults';
import type { FaultKind, History } from './history';
import type { Rng } from './rng';

export interface ScheduleOptions {
  /** One round of fault kinds (history.ts faultRound). */
  round: readonly FaultKind[];
  durationMs: number;
  minFaults: number;
  /** Settle time between a recovery and the next fault. */
  settleMinMs: number;
  settleMaxMs: number;
  log?: (line: string) => void;
}

/** Runs the schedule; resolves the violations the faults themselves observed. */
export async function runSchedule(
  c: ChaosCluster,
  h: History,
  r: Rng,
  o: ScheduleOptions,
): Promise<string[]> {
  const violations: string[] = [];
  const end = Date.now() + o.durationMs;
  let bag: FaultKind[] = [];
  let n = 0;
  while (Date.now() < end || n < o.minFaults) {
    await new Promise((res) => setTimeout(res, r.int(o.settleMinMs, o.settleMaxMs)));
    if (bag.length === 0) bag = shuffle([...o.round], r);
    const kind = bag.shift() as FaultKind;
    n++;
    const start = Date.now();
    let result: Awaited<ReturnType<typeof inject>>;
    try {
      result = await inject(kind, c, r.fork());
    } catch (err) {
      violations.push(`fault #${n} ${kind} could not be injected: ${(err as Error).message}`);
      result = { target: '?', violations: [] };
    }
    const recovered = Date.now();
    violations.push(...result.violations.map((v) => `fault #${n} ${kind}: ${v}`));
    try {
      await c.waitHealthy(RECOVERY_TIMEOUT_MS);
    } catch (err) {
      violations.push(`fault #${n} ${kind}: the cluster did not recover: ${(err as Error).message}`);
      h.addFault({
        n,
        kind,
        target: result.target,
        start,
        recovered,
        healthy: Date.now(),
        detail: result.detail,
      });
      break;
    }
    const healthy = Date.now();
    h.addFault({ n, kind, target: result.target, start, recovered, healthy, detail: result.detail });
    o.log?.(
      `fault #${n} ${kind} on ${result.target}${result.detail ? ` (${result.detail})` : ''}: healthy after ${healthy - start} ms`,
    );
  }
  return violations;
}

function shuffle<T>(items: T[], r: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
