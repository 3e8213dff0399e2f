/**
 * The faults the scheduler injects. Each one breaks something, repairs it (restart, SIGCONT...)
 * and returns what it did; the scheduler then waits for the cluster to be healthy again.
 */
import type { Proc } from '../helpers/procs';
import { waitFor } from '../helpers/procs';
import { type ChaosCluster, probe } from './cluster';
import type { Fault, FaultResult } from './fault';
import type { FaultKind } from './history';
import { POSTGRES_FAULTS } from './pg-faults';
import type { Rng } from './rng';
import { SENTINEL_FAULTS } from './sentinel-faults';

/** The nodes' lock TTL (spawnNode sets LEADERWAY_LOCK_TTL=2s): a SIGSTOP must outlast it. */
export const LOCK_TTL_MS = 2_000;
/** How long finding the active node may take before the fault is skipped. */
const FIND_ACTIVE_MS = 20_000;

export type { Fault, FaultResult } from './fault';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function activeNode(c: ChaosCluster): Promise<Proc> {
  return waitFor(() => c.active(), FIND_ACTIVE_MS, 'an active node to inject a fault into', 100);
}

/** Waits until a freshly started node is unsealed (its health answers 429 or 200). */
async function unsealed(p: Proc): Promise<void> {
  await waitFor(
    async () => {
      const s = await probe(p.url, '/v1/sys/health');
      return s === 200 || s === 429;
    },
    20_000,
    `${p.name} unsealed`,
  );
}

/** The active's lock connection as it recorded it (`<value>|<run id>|<client id>`). */
async function holderClientId(c: ChaosCluster): Promise<string | null> {
  const record = String((await (await c.store.primary()).cli('GET', `{leaderway}/core/lock-conn`)) ?? '');
  const id = record.split('|')[2];
  return id && /^\d+$/.test(id) ? id : null;
}

/**
 * Reads the lock's remaining lease, ms: Redis' PTTL of the lock key, or on PostgreSQL the lease
 * row's `valid_until` against the database's clock (leaderway's default HA table).
 */
async function leaseRemaining(c: ChaosCluster): Promise<() => Promise<number>> {
  const pg = c.store.pg;
  if (pg) {
    return async () => {
      const [row] = await pg.primary.sql(
        `SELECT (extract(epoch FROM valid_until - clock_timestamp()) * 1000)::float8 AS ms
           FROM leaderway_ha_locks WHERE ha_key = 'core/lock-lease'`,
      );
      return Math.round(Number(row?.['ms'] ?? 0));
    };
  }
  const primary = await c.store.primary();
  return async () => Number(await primary.cli('PTTL', '{leaderway}/core/lock'));
}

const FAULTS: Record<FaultKind, Fault> = {
  /** kill -9 of the active, then a replacement node joins. */
  async 'kill9-active'(c) {
    const a = await activeNode(c);
    await c.stopProc(a, 'SIGKILL');
    const fresh = await c.replaceNode(a);
    return { target: a.name, detail: `replaced by ${fresh.name}`, violations: [] };
  },

  /** SIGSTOP of the active for longer than the lock TTL, then SIGCONT: it must not write again. */
  async 'sigstop-active'(c, r) {
    const a = await activeNode(c);
    const ms = LOCK_TTL_MS + r.int(500, 2_000);
    a.pause();
    try {
      await sleep(ms);
    } finally {
      a.resume();
    }
    return { target: a.name, detail: `paused ${ms} ms`, violations: [] };
  },

  /** SIGTERM every node in turn (standbys first, the active last), replacing each. */
  async 'sigterm-rolling'(c) {
    const a = await activeNode(c);
    const order = [...c.nodes.filter((n) => n !== a), a];
    const violations: string[] = [];
    const codes: string[] = [];
    for (const n of order) {
      const code = await c.stopProc(n, 'SIGTERM');
      codes.push(`${n.name}:${code}`);
      if (code !== 0) violations.push(`${n.name} exited ${code} on SIGTERM (expected 0)`);
      const fresh = await c.replaceNode(n);
      await unsealed(fresh);
    }
    return {
      target: order.map((n) => n.name).join(','),
      detail: `exit codes ${codes.join(' ')}`,
      violations,
    };
  },

  /** sys/step-down through a gateway. */
  async 'step-down'(c, r) {
    const a = await activeNode(c);
    const g = r.pick(c.gateways);
    const { request } = await import('undici');
    const res = await request(`${g.url}/v1/sys/step-down`, {
      method: 'PUT',
      headers: { 'x-vault-token': c.token },
      signal: AbortSignal.timeout(15_000),
    });
    await res.body.dump();
    const violations =
      res.statusCode === 204 ? [] : [`step-down through ${g.name} answered ${res.statusCode}`];
    return { target: a.name, detail: `via ${g.name}`, violations };
  },

  /** kill -9 of one gateway, restarted on its port after a moment. */
  async 'gateway-kill'(c, r) {
    const g = r.pick(c.gateways);
    await c.stopProc(g, 'SIGKILL');
    const down = r.int(200, 1_000);
    await sleep(down);
    await c.restartGateway(g);
    return { target: g.name, detail: `down ${down} ms`, violations: [] };
  },

  /** Redis restart (SIGTERM, append-only file kept): acknowledged writes must survive. */
  async 'redis-restart'(c) {
    const p = await c.store.primary();
    await p.restart();
    return { target: `redis:${p.port}`, violations: [] };
  },

  /**
   * A latency burst on every Redis connection: the server is frozen (SIGSTOP) for a few hundred
   * ms, so every command in flight waits (DEBUG SLEEP needs enable-debug-command, off in Redis 7).
   */
  async 'redis-latency'(c, r) {
    const ms = r.int(200, 900);
    const p = await c.store.primary();
    p.pause();
    try {
      await sleep(ms);
    } finally {
      p.resume();
    }
    return { target: `redis:${p.port}`, detail: `frozen ${ms} ms`, violations: [] };
  },

  /**
   * CLIENT KILL of the active's lock connection while it lives: it reconnects and re-records the
   * new connection within the grace, or a standby takes over and it steps down. Either way at
   * most one leader change, and none of its writes after a takeover lands (MONITOR check).
   */
  async 'holder-conn-kill'(c) {
    const a = await activeNode(c);
    const id = await holderClientId(c);
    if (!id) return { target: a.name, detail: 'no connection record', violations: [] };
    await (await c.store.primary()).cli('CLIENT', 'KILL', 'ID', id);
    return { target: a.name, detail: `client ${id} killed`, violations: [] };
  },

  /** kill -9 of the active right after a renew (the lock's TTL just reset), then a replacement. */
  async 'kill9-at-renew'(c) {
    const a = await activeNode(c);
    const remaining = await leaseRemaining(c);
    const deadline = Date.now() + LOCK_TTL_MS * 2;
    let last = Number.POSITIVE_INFINITY;
    // A renew shows as the lock's remaining TTL jumping back up.
    while (Date.now() < deadline) {
      const pttl = await remaining();
      if (pttl > last + 50) break;
      last = pttl;
      await sleep(5);
    }
    await c.stopProc(a, 'SIGKILL');
    const fresh = await c.replaceNode(a);
    return { target: a.name, detail: `killed ${last}→renewed; replaced by ${fresh.name}`, violations: [] };
  },

  ...SENTINEL_FAULTS,
  ...POSTGRES_FAULTS,
};

/** Injects one fault of `kind`. */
export function inject(kind: FaultKind, c: ChaosCluster, r: Rng): Promise<FaultResult> {
  return FAULTS[kind](c, r);
}
