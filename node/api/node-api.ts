/**
 * What the API needs from the node: its state (one union, read, never mirrored) and the few
 * commands a request may give it. NodeServer implements it; the routes derive everything else
 * (seal state, whether active, the leader, this term's storage) from `state()`.
 */
import type { Advertisement } from '../../shared/advertisement';
import type { LeaderWatcher } from '../../shared/leader/leader-watcher';
import type { SecureStorage } from '../barrier/secure-storage';
import type { ActiveSession } from '../ha/active-session';
import type { LeaderElector } from '../ha/leader-elector';
import type { Echoer, PeerInfo } from '../ha/peers';

export type { PeerInfo };

import type { StandbyPolicy } from '../ha/standby-policy';

/** Seal state, as sys/health and sys/seal-status report it. */
export type SealState = 'uninitialized' | 'sealed' | 'unsealed';

/** What an unsealed node runs: the keyring, the leader watcher and the standby policy. */
export interface Unsealed {
  storage: SecureStorage;
  clusterId: string;
  watcher: LeaderWatcher;
  standby: StandbyPolicy;
  /** Contends for the lock for as long as the node is unsealed. */
  elector: LeaderElector;
  /** Heartbeats the active node (sys/ha-status) for as long as the node is unsealed. */
  echoer: Echoer;
}

/**
 * The node's state. `standby` and `active` are unsealed; `active` holds the term (whose
 * `serving()` turns false the moment step-down begins). `closing` keeps what it had, so requests
 * in flight can finish.
 */
export type NodeState =
  | { status: 'new' | 'closed' }
  | { status: 'sealed'; seal: 'uninitialized' | 'sealed' }
  | { status: 'standby'; unsealed: Unsealed }
  | { status: 'active'; unsealed: Unsealed; session: ActiveSession }
  | {
      status: 'closing';
      unsealed: Unsealed | null;
      session: ActiveSession | null;
      /** Resolves once the node is closed (close() returns it). */
      done: Promise<void>;
    };

/** The node as the API sees it. */
export interface NodeApi {
  readonly version: string;
  readonly nodeId: string;
  readonly maxRequestSize: number;
  readonly storageType: string;
  /** A standby serves reads itself (else forwards everything). */
  readonly standbyReads: boolean;
  state(): NodeState;
  /** Whether storage is initialized right now (reads storage while this node still waits for init). */
  initializedNow(): Promise<boolean>;
  /** Initializes storage; resolves the root token. */
  initialize(): Promise<string>;
  /** Nodes heard from recently (active only). */
  peers(): PeerInfo[];
  /** Starts giving up leadership; the node waits out a cooldown before contending again. */
  stepDown(): void;
  /** Called when a write was refused by fencing: the node must step down at once. */
  onFencedWrite(): void;
  /** Called for each read a standby was asked for: served here, or forwarded to the active. */
  onStandbyRead(outcome: 'served' | 'forwarded'): void;
  /** Called for every request answered with an error (a metric by code). */
  onRequestError(code: string): void;
  /** This node's metrics in the Prometheus text format, and that format's content type. */
  scrapeMetrics(): Promise<{ text: string; contentType: string }>;
}

/** The seal state a state implies. */
export function sealOf(s: NodeState): SealState {
  if (s.status === 'sealed') return s.seal;
  if (s.status === 'standby' || s.status === 'active') return 'unsealed';
  if (s.status === 'closing' && s.unsealed) return 'unsealed';
  return 'sealed';
}

/** The current term, serving or stepping down, if any. */
export function sessionOf(s: NodeState): ActiveSession | null {
  return s.status === 'active' || s.status === 'closing' ? s.session : null;
}

/** The term being served, if this node is active and not stepping down. */
export function servingSession(s: NodeState): ActiveSession | null {
  const session = sessionOf(s);
  return session?.serving() ? session : null;
}

/** The unsealed parts, if any. */
export function unsealedOf(s: NodeState): Unsealed | null {
  return s.status === 'standby' || s.status === 'active' || s.status === 'closing' ? s.unsealed : null;
}

/** The leader as this node knows it (itself when active), or null. */
export function leaderOf(s: NodeState): Advertisement | null {
  const session = servingSession(s);
  if (session) return session.ad;
  return unsealedOf(s)?.watcher.current()?.ad ?? null;
}
