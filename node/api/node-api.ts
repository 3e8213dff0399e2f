/**
 * What the API handlers need from the node, as an interface so the routes don't depend on how
 * the node is assembled (NodeServer implements it).
 */
import type { Advertisement } from '../../shared/advertisement';
import type { AnyResponse } from '../../shared/http/respond';
import type { SecureStorage } from '../barrier/secure-storage';
import type { AnyRequest } from './request';

/** Seal state, as sys/health and sys/seal-status report it. */
export type SealState = 'uninitialized' | 'sealed' | 'unsealed';

/** One node in sys/ha-status. */
export interface PeerInfo {
  hostname: string;
  api_address: string;
  cluster_address: string;
  active_node: boolean;
  last_echo: string | null;
  version: string;
}

/** The node as the API sees it. */
export interface NodeApi {
  readonly version: string;
  readonly nodeId: string;
  readonly maxRequestSize: number;
  readonly storageType: string;
  sealState(): SealState;
  /** Whether storage is initialized right now (reads storage while this node still waits for init). */
  initializedNow(): Promise<boolean>;
  /** Initializes storage; resolves the root token. */
  initialize(): Promise<string>;
  /** True while this node is the active node and may serve requests. */
  isActive(): boolean;
  /** The storage for a request on the active node (fenced when the lock shares the store). */
  activeStorage(): SecureStorage;
  /** The current leader as this node knows it (itself when active), or null. */
  leader(): Advertisement | null;
  /** ISO time this node became active, or null. */
  activeSince(): string | null;
  /** Nodes heard from recently (active only). */
  peers(): PeerInfo[];
  /** Starts giving up leadership (active only); the node waits out a cooldown before contending again. */
  stepDown(): void;
  /** Called when a write was refused by fencing: the node must step down at once. */
  onFencedWrite(): void;
  /**
   * Handles a request this standby must not serve itself: forward to the active, or 307, or 503.
   * `viaCluster` requests arrived on the cluster listener and are never forwarded again.
   */
  standbyHandle(req: AnyRequest, res: AnyResponse, url: string): Promise<void>;
}
