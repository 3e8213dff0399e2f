/**
 * The Jepsen-style history of a chaos run: every client operation with its start, end and
 * result, and every injected fault with its start and end. Times are `Date.now()` milliseconds
 * (the same clock as the nodes' JSON logs and Redis' MONITOR timestamps on this host).
 */

import type { PolicyOp } from './policy-checker';
import type { StoreKind } from './store';

/** What an operation did. */
export type OpKind = 'read' | 'write' | 'cas' | 'delete';

/**
 * How an operation ended, from the client's point of view:
 *  - `ok`: acknowledged (2xx; for reads also a 404 that carries the version metadata);
 *  - `fail`: definitely did not happen (4xx such as a CAS mismatch, a connection refused before
 *    anything was sent, a "no active node" 503 that the API defines as unserved);
 *  - `info`: indeterminate — it may or may not have happened (timeouts, resets, "outcome is
 *    unknown", storage errors): the checker must accept both.
 */
export type Outcome = 'ok' | 'fail' | 'info';

/** One token operation. `token` is a label (`t12`): token values never enter the history. */
export interface TokenOp {
  id: number;
  client: string;
  /** Where it was sent: `gw1`, `gw2`, `standby:<node>` or `active:<node>` (as for `Op.via`). */
  via: string;
  kind: 'create' | 'renew' | 'revoke' | 'use';
  token: string;
  /** create: the parent's label (children of chaos tokens); absent for tokens root created. */
  parent?: string;
  start: number;
  end: number;
  outcome: Outcome;
  status: number;
  /** create/renew acknowledged: the lease granted, seconds; renew indeterminate: the increment asked for. */
  leaseS?: number;
  error?: string;
}

/** The unique payload of one write: who wrote it, which op, and a secret-looking marker. */
export interface WriteData {
  c: string;
  o: number;
  /** A value that must never appear in the clear in Redis, logs or traces. */
  s: string;
}

/** One client operation. */
export interface Op {
  id: number;
  client: string;
  /**
   * Where the request was sent first: `gw1`, `gw2`, or a node directly, `standby:<node>` or
   * `active:<node>` (its role as last observed, which may lag a failover by a poll).
   */
  via: string;
  kind: OpKind;
  key: string;
  /** The CAS version sent (cas ops). */
  cas?: number;
  /** The data sent (write/cas). */
  data?: WriteData;
  start: number;
  end: number;
  outcome: Outcome;
  status: number;
  /** Version acknowledged by a write, or returned by a read (0 = key absent). */
  version?: number;
  /** What a read returned: the data (null when the version is deleted). */
  readData?: WriteData | null;
  /** True when a read returned a deleted version. */
  readDeleted?: boolean;
  /** True when the client followed a 307 from a standby. */
  redirected?: boolean;
  /** Short error description for non-ok outcomes (never a token or value). */
  error?: string;
}

/** One injected fault. */
export interface FaultEvent {
  n: number;
  kind: FaultKind;
  /** Which process, e.g. `n2`, `gw1`, `redis`. */
  target: string;
  start: number;
  /** When the fault's recovery step finished (restart done, SIGCONT sent...). */
  recovered: number;
  /** When the cluster was healthy again (an active node, both gateways ready). */
  healthy: number;
  detail?: string;
}

/** Faults of every run (the Redis ones hit the primary under Sentinel). */
export const FAULT_KINDS = [
  'kill9-active',
  'sigstop-active',
  'sigterm-rolling',
  'step-down',
  'gateway-kill',
  'redis-restart',
  'redis-latency',
  'holder-conn-kill',
  'kill9-at-renew',
] as const;
/** Faults only a Sentinel topology has (`npm run chaos -- --redis sentinel`). */
export const SENTINEL_FAULT_KINDS = [
  'redis-primary-kill9',
  'redis-primary-sigstop',
  'redis-replica-kill',
  'sentinel-kill',
  'redis-primary-empty-restart',
  'redis-primary-return-own-data',
  'redis-forced-failover',
] as const;
/** Faults of the PostgreSQL store (`npm run chaos -- --store postgres`; pg-faults.ts). */
export const POSTGRES_FAULT_KINDS = [
  'pg-primary-kill9-promote',
  'pg-primary-sigstop',
  'pg-connection-kill',
  'pg-standby-lost',
] as const;
/**
 * The faults of FAULT_KINDS that also apply to PostgreSQL (`kill9-at-renew` watches the lease
 * row there). `holder-conn-kill` has its PostgreSQL form in `pg-connection-kill`.
 */
const NODE_FAULT_KINDS = [
  'kill9-active',
  'sigstop-active',
  'sigterm-rolling',
  'step-down',
  'gateway-kill',
  'kill9-at-renew',
] as const;
export type FaultKind =
  | (typeof FAULT_KINDS)[number]
  | (typeof SENTINEL_FAULT_KINDS)[number]
  | (typeof POSTGRES_FAULT_KINDS)[number];

/**
 * One round of faults for a store kind (the scheduler draws a shuffled round at a time). Under
 * Sentinel, primary failovers (kill -9 and its return on its own data mid-failover, SIGSTOP,
 * SENTINEL FAILOVER, the empty-disk restart) are about a third of faults.
 * A quick restart of the primary there races the Sentinels' failover (it is back, with its data,
 * just as they promote a replica): writes it takes meanwhile can be confirmed by a replica that
 * is then re-pointed, and lost — unless every replica must confirm each write. So it is in the
 * Sentinel round only with `allReplicas` (LEADERWAY_REDIS_MIN_REPLICAS = the replica count);
 * docs/GUARANTEES.md, "does not promise".
 * On PostgreSQL: the node faults and the PostgreSQL ones (the primary killed or frozen: two in ten).
 */
export function faultRound(store: StoreKind, allReplicas = false): FaultKind[] {
  if (store === 'single') return [...FAULT_KINDS];
  if (store === 'postgres') return [...NODE_FAULT_KINDS, ...POSTGRES_FAULT_KINDS];
  const kinds = FAULT_KINDS.filter((k) => allReplicas || k !== 'redis-restart');
  return [...kinds, ...SENTINEL_FAULT_KINDS, 'redis-primary-sigstop'];
}

/** Collects operations and faults; cheap enough to record tens of thousands of ops. */
export class History {
  readonly ops: Op[] = [];
  /** Token operations (token-client.ts), checked by token-checker.ts. */
  readonly tokenOps: TokenOp[] = [];
  /** Policy changes and reads under the policy (policy-client.ts), checked by policy-checker.ts. */
  readonly policyOps: PolicyOp[] = [];
  readonly faults: FaultEvent[] = [];
  private nextId = 1;

  /** Reserves an op id (ids are unique across clients and used in the written data). */
  id(): number {
    return this.nextId++;
  }

  add(op: Op): void {
    this.ops.push(op);
  }

  addFault(f: FaultEvent): void {
    this.faults.push(f);
  }
}
