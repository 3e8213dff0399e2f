/**
 * Where a request goes, with LEADERWAY_GATEWAY_READ_ROUTING=spread: pure decisions, no I/O and no
 * clock of their own, so every rule is tested in milliseconds (test/unit/read-router.test.ts).
 *
 *  - `spreadable`: only a request that clearly only reads may go to a standby. Anything else —
 *    a write, a body, `sys/` (seal, health, leader, wrapping, policies: answered by the active),
 *    response wrapping, or a client asking for the active (`X-Vault-Forward`,
 *    `X-Vault-Inconsistent`) — goes to the active as before.
 *  - `pick`: the target with the fewest requests outstanding among the active and the standbys
 *    fit to serve; ties rotate, so a lightly loaded cluster (nothing outstanding) still spreads.
 *    A standby is unfit when its heartbeat is late, it is draining, it failed us a moment ago,
 *    or its pool is full; the active is always fit (the hold loop waits for it when needed).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { hasBody } from '../shared/forward/policy';
import type { MemberStatus } from '../shared/membership';

/** How requests are routed (LEADERWAY_GATEWAY_READ_ROUTING). */
export type ReadRouting = 'active' | 'spread';

/** Headers with which a client asks for the active node (or for a wrapped answer it creates). */
const TO_ACTIVE_HEADERS = ['x-vault-wrap-ttl', 'x-vault-forward', 'x-vault-inconsistent'] as const;

/**
 * Whether a request only reads and may be served by a standby: GET or HEAD (a LIST as the
 * method, or GET `?list=true`), under `/v1/` but not `/v1/sys/`, without a body and without a
 * header asking for the active.
 */
export function spreadable(method: string, url: string, headers: IncomingHttpHeaders): boolean {
  if (method !== 'GET' && method !== 'HEAD' && method !== 'LIST') return false;
  let path: string;
  try {
    // The node decodes the path before routing: so must the test, or `%73ys/` would pass.
    path = decodeURIComponent(url.split('?', 1)[0] ?? url);
  } catch {
    return false;
  }
  if (!path.startsWith('/v1/') || path === '/v1/sys' || path.startsWith('/v1/sys/')) return false;
  // Dot segments, doubled slashes or backslashes could name sys/ in a way the prefix test misses.
  if (path.includes('/.') || path.includes('//') || path.includes('\\')) return false;
  if (hasBody(headers)) return false;
  for (const h of TO_ACTIVE_HEADERS) if (headers[h] !== undefined) return false;
  return true;
}

/** What the router knows of a standby's health. */
export interface StandbyHealth {
  status: MemberStatus;
  /** How long ago the active last heard its heartbeat, as far as this gateway can tell. */
  heartbeatAgeMs: number;
  /** It failed to take a request from us a moment ago (refused, TLS failure): let it be a while. */
  coolingDown: boolean;
}

/** One possible target of a read. */
export interface Candidate<T> {
  target: T;
  /** Null for the active; a standby's health otherwise. */
  standby: StandbyHealth | null;
  /** Requests in flight or waiting in its pool. */
  outstanding: number;
  /** No place left in its pool: a read sent there would wait (the active's waits are the hold's). */
  full: boolean;
}

/**
 * A heartbeat older than this makes a standby unfit: the active drops a standby from the record
 * 3 s after its last echo (MEMBER_LATE_MS in node/ha/peers.ts); the record is rewritten every
 * second and read every second, which a healthy standby's age may add on top.
 */
export const HEARTBEAT_LATE_MS = 5_000;

/** Whether `c` may be sent a read. */
export function fit(c: Candidate<unknown>): boolean {
  const s = c.standby;
  if (s === null) return true;
  return s.status === 'serving' && s.heartbeatAgeMs <= HEARTBEAT_LATE_MS && !s.coolingDown && !c.full;
}

/**
 * The fit candidate with the fewest outstanding requests; among equals the `turn`-th (mod their
 * number), so consecutive turns rotate. Null when none is fit (the caller sends to the active).
 */
export function pick<T>(candidates: readonly Candidate<T>[], turn: number): Candidate<T> | null {
  let least = Number.POSITIVE_INFINITY;
  let tied = 0;
  for (const c of candidates) {
    if (!fit(c)) continue;
    if (c.outstanding < least) {
      least = c.outstanding;
      tied = 1;
    } else if (c.outstanding === least) {
      tied++;
    }
  }
  if (tied === 0) return null;
  let k = ((turn % tied) + tied) % tied;
  for (const c of candidates) {
    if (!fit(c) || c.outstanding !== least) continue;
    if (k-- === 0) return c;
  }
  return null;
}
