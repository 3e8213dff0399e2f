/**
 * Faults of the PostgreSQL store (`npm run chaos -- --store postgres`): the primary killed and
 * its synchronous standby promoted (then a new standby built, so the next fault finds full
 * redundancy), the primary frozen past the lock TTL, leaderway's sessions terminated by the
 * server, and the synchronous standby frozen (every commit waits for it: writes pause, and those
 * whose wait is cancelled have an unknown outcome). Each repairs what it broke; the scheduler then
 * waits for the cluster and the store (writable primary, synchronous standby streaming).
 */
import type { PostgresPair } from '../helpers/postgres';
import { waitFor } from '../helpers/procs';
import type { ChaosCluster } from './cluster';
import type { Fault, FaultResult } from './fault';
import type { POSTGRES_FAULT_KINDS } from './history';

/** The nodes' lock TTL (spawnNode sets LEADERWAY_LOCK_TTL=2s): a freeze of the primary outlasts it. */
const LOCK_TTL_MS = 2_000;
/**
 * How long "the primary is gone" takes to notice before promoting (a failover manager's
 * detection: Patroni's loop_wait is 10 s by default; short here so runs stay short).
 */
const DETECT_MIN_MS = 300;
const DETECT_MAX_MS = 1_500;
/** How long the synchronous standby stays frozen: past the data statements' 2 s timeout at most. */
const STANDBY_FROZEN_MIN_MS = 1_000;
const STANDBY_FROZEN_MAX_MS = 4_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pair(c: ChaosCluster): PostgresPair {
  const p = c.store.pg;
  if (!p) throw new Error('this fault needs the PostgreSQL store (--store postgres)');
  return p;
}

export const POSTGRES_FAULTS: Record<(typeof POSTGRES_FAULT_KINDS)[number], Fault> = {
  /**
   * kill -9 of the primary (postmaster and backends, as a host crash); after a detection delay
   * the synchronous standby is promoted, still wanting a synchronous standby of its own (so
   * nothing is acknowledged on it alone), and a new standby is built from it on the old port.
   * No acknowledged write may be lost, and the epoch must go on rising on the promoted server.
   */
  async 'pg-primary-kill9-promote'(c, r): Promise<FaultResult> {
    const p = pair(c);
    const old = p.primary;
    const t0 = Date.now();
    await old.kill('SIGKILL');
    const detect = r.int(DETECT_MIN_MS, DETECT_MAX_MS);
    await sleep(detect);
    await p.promote({ keepSynchronous: true });
    const promoted = Date.now() - t0;
    await p.rebuild();
    return {
      target: `pg:${old.port}`,
      detail: `detected after ${detect} ms, :${p.primary.port} promoted at ${promoted} ms, new standby :${p.standby.port} at ${Date.now() - t0} ms`,
      violations: [],
    };
  },

  /** SIGSTOP of the primary past the lock TTL, then SIGCONT: its sessions come back to a lapsed lease. */
  async 'pg-primary-sigstop'(c, r): Promise<FaultResult> {
    const p = pair(c);
    const server = p.primary;
    const ms = LOCK_TTL_MS + r.int(500, 2_000);
    server.pause();
    try {
      await sleep(ms);
    } finally {
      server.resume();
    }
    return { target: `pg:${server.port}`, detail: `frozen ${ms} ms`, violations: [] };
  },

  /**
   * pg_terminate_backend of every leaderway session (nodes' and gateways' pools, lock and LISTEN
   * sessions), or of the active's lock session only (`leaderway-lock/<node>`): the holder must
   * renew on a new session within the grace, or a standby takes over and it steps down.
   */
  async 'pg-connection-kill'(c, r): Promise<FaultResult> {
    const p = pair(c);
    const active = await waitFor(() => c.active(), 20_000, 'an active node', 100);
    const all = r.int(0, 1) === 0;
    const rows = await p.primary.sql(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND ${all ? `application_name LIKE 'leaderway-%'` : 'application_name = $1'}`,
      all ? [] : [`leaderway-lock/${active.name}`],
    );
    const n = Number(rows[0]?.['n'] ?? 0);
    return {
      target: all ? 'every leaderway session' : `${active.name}'s lock session`,
      detail: `${n} terminated`,
      violations: [],
    };
  },

  /**
   * SIGSTOP of the synchronous standby for a few seconds, then SIGCONT: every commit waits for
   * it, so writes (and lock renewals) pause; a write whose wait is cancelled by its statement
   * timeout is committed on the primary alone and must be answered as of unknown outcome.
   */
  async 'pg-standby-lost'(c, r): Promise<FaultResult> {
    const p = pair(c);
    const standby = p.standby;
    const ms = r.int(STANDBY_FROZEN_MIN_MS, STANDBY_FROZEN_MAX_MS);
    standby.pause();
    try {
      await sleep(ms);
    } finally {
      standby.resume();
    }
    return { target: `pg:${standby.port}`, detail: `standby frozen ${ms} ms`, violations: [] };
  },
};
