/**
 * Faults of the Sentinel topology (`npm run chaos -- --redis sentinel`): the primary killed,
 * killed and back on its own data while the Sentinels replace it, frozen past down-after
 * (isolated, then back as a replica), replaced by `SENTINEL FAILOVER` while it takes writes, and
 * back on an empty disk; a replica and a Sentinel killed. Each repairs what it broke; the
 * scheduler then waits for the cluster and the replicas to be healthy again.
 */
import { SEQUENCES, type SentinelTopology } from '../helpers/sentinel';
import type { ChaosCluster } from './cluster';
import type { Fault, FaultResult } from './fault';
import type { SENTINEL_FAULT_KINDS } from './history';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function topology(c: ChaosCluster): SentinelTopology {
  const t = c.store.sentinel;
  if (!t) throw new Error('this fault needs the Sentinel topology (--redis sentinel)');
  return t;
}

/** Kills the primary, waits for the Sentinels to promote a replica; resolves old and new. */
async function killPrimary(t: SentinelTopology) {
  const old = await t.primary();
  const t0 = Date.now();
  await old.kill('SIGKILL');
  const next = await t.waitFailover(old);
  return { old, next, failoverMs: Date.now() - t0 };
}

export const SENTINEL_FAULTS: Record<(typeof SENTINEL_FAULT_KINDS)[number], Fault> = {
  /** kill -9 of the primary; it restarts on its append-only file and rejoins as a replica. */
  async 'redis-primary-kill9'(c, r): Promise<FaultResult> {
    const t = topology(c);
    const { old, next, failoverMs } = await killPrimary(t);
    await sleep(r.int(0, 1_000));
    await old.start();
    return {
      target: `redis:${old.port}`,
      detail: `primary now :${next.port} after ${failoverMs} ms`,
      violations: [],
    };
  },

  /**
   * SIGSTOP of the primary past down-after: the Sentinels promote a replica while the old one
   * still believes it is primary; SIGCONT brings it back isolated, and the Sentinels demote it.
   * Nothing a node writes to it after the promotion may be acknowledged.
   */
  async 'redis-primary-sigstop'(c, r): Promise<FaultResult> {
    const t = topology(c);
    const old = await t.primary();
    const t0 = Date.now();
    old.pause();
    let next: Awaited<ReturnType<SentinelTopology['waitFailover']>>;
    try {
      next = await t.waitFailover(old);
      await sleep(r.int(0, 1_000));
    } finally {
      old.resume();
    }
    return {
      target: `redis:${old.port}`,
      detail: `frozen ${Date.now() - t0} ms; primary now :${next.port}`,
      violations: [],
    };
  },

  /**
   * kill -9 of the primary, started again on its own data 1.5–3 s later whether or not the
   * Sentinels have promoted a replica yet (a pod restart; issue 25): back before the
   * announcement it is still named primary, and must acknowledge nothing (its other replica may
   * re-attach and confirm writes the promoted one never gets).
   */
  async 'redis-primary-return-own-data'(c, r): Promise<FaultResult> {
    const t = topology(c);
    const backMs = r.int(1_500, 3_000);
    const { from, to, failoverMs } = await SEQUENCES.killAndReturn(t, backMs);
    return {
      target: `redis:${from.port}`,
      detail: `back after ${backMs} ms; primary now :${to.port} after ${failoverMs.toFixed(0)} ms`,
      violations: [],
    };
  },

  /**
   * `SENTINEL FAILOVER` while the primary is alive and taking writes: Sentinel promotes a replica
   * a second before it announces it, and nothing the old primary takes meanwhile may be
   * acknowledged (issue 25: without that, every such failover lost that second of writes).
   */
  async 'redis-forced-failover'(c): Promise<FaultResult> {
    const t = topology(c);
    const { from, to, failoverMs } = await SEQUENCES.forcedFailover(t);
    return {
      target: `redis:${from.port}`,
      detail: `primary now :${to.port} after ${failoverMs.toFixed(0)} ms`,
      violations: [],
    };
  },

  /** kill -9 of a replica, restarted after a moment. */
  async 'redis-replica-kill'(c, r): Promise<FaultResult> {
    const t = topology(c);
    const primary = await t.primary();
    const replica = r.pick(t.servers.filter((s) => s !== primary));
    await replica.kill('SIGKILL');
    const down = r.int(200, 2_000);
    await sleep(down);
    await replica.start();
    return { target: `redis:${replica.port}`, detail: `down ${down} ms`, violations: [] };
  },

  /** kill -9 of one Sentinel (two keep the quorum), restarted after a moment. */
  async 'sentinel-kill'(c, r): Promise<FaultResult> {
    const t = topology(c);
    const s = r.pick(t.sentinels);
    await s.kill('SIGKILL');
    const down = r.int(200, 2_000);
    await sleep(down);
    await s.start();
    return { target: `sentinel:${s.port}`, detail: `down ${down} ms`, violations: [] };
  },

  /**
   * kill -9 of the primary, and once a replica is promoted it comes back on an empty disk (a pod
   * rescheduled without its volume): it must resync as a replica, and no acknowledged write may
   * be lost (each was confirmed by WAIT on a replica that survives).
   */
  async 'redis-primary-empty-restart'(c): Promise<FaultResult> {
    const t = topology(c);
    const { old, next, failoverMs } = await killPrimary(t);
    old.wipe();
    await old.start();
    return {
      target: `redis:${old.port}`,
      detail: `primary now :${next.port} after ${failoverMs} ms; back empty`,
      violations: [],
    };
  },
};
