/**
 * One term as the active node, from winning the lock to giving it up.
 *
 * Start order (each step needs the previous one):
 *   1. open the cluster listener — so nobody learns our address before we can answer on it;
 *   2. store the cluster private key through the barrier (`core/leader-key/<uuid>`: standbys
 *      read it, gateways cannot), then write the signed, encrypted advertisement at
 *      `core/leader-signed/<uuid>` (both fenced: only while we hold the lock) — and in legacy
 *      mode the previous format at `core/leader/<uuid>` too;
 *   3. publish `advertised`, so standbys and gateways switch at once;
 *   4. start writing the membership record (`core/members-signed/<uuid>`: the standbys gateways
 *      may send reads to, ./membership-publisher.ts), fenced like the advertisement;
 *   5. in the background, delete stale `core/leader/*` entries (and other terms' records).
 * Close order: stop writing the membership record, stop serving new requests (they are answered
 * "not served" and retried by gateways), drain in-flight ones with a bound, close the listener,
 * delete our advertisement and membership record, release the lock, publish `released` so a
 * standby takes over at once.
 *
 * The term owns what lives only while active: the standbys' heartbeats (`peers`), the token
 * cleanup (`tidy`, started once advertised, stopped when the term ends) and the result of the
 * cluster-address check.
 */
import type { Logger } from 'pino';
import {
  type Advertisement,
  advertisementPath,
  encodeAdvertisement,
  encodeLegacyAdvertisement,
  LEADER_KEY_PREFIX,
  legacyAdvertisementPath,
  SIGNED_LEADER_PREFIX,
} from '../../shared/advertisement';
import type { HostPort } from '../../shared/config/formats';
import type { SigningKey } from '../../shared/crypto/signing';
import type { ProbeResult } from '../../shared/leader/probe';
import { MEMBERS_PREFIX } from '../../shared/membership';
import { type Backend, type HABackend, isFencingBackend, LEADER_PREFIX } from '../../shared/storage/backend';
import type { HeldLock } from '../../shared/storage/held-lock';
import type { SecureStorage } from '../barrier/secure-storage';
import type { ClusterIdentity } from './cluster-cert';
import { ClusterListener, type ClusterListenerOptions } from './cluster-listener';
import type { TermGateways } from './gateway-trust';
import { MembershipPublisher } from './membership-publisher';
import { PeerTable } from './peers';

/** Housekeeping that runs while a term is active (the token cleanup). */
export interface TermTask {
  start(storage: SecureStorage): void;
  stop(): void;
}

/** After handing over, how long open cluster connections may linger before they are cut. */
const LISTENER_LINGER_MS = 2_000;
/** Pause between stale-entry deletes, so the store is not slammed after a long outage. */
const STALE_DELETE_INTERVAL_MS = 200;

export interface ActiveSessionOptions {
  lock: HeldLock;
  identity: ClusterIdentity;
  data: Backend;
  ha: HABackend;
  /** Fencing is possible only when the lock lives in the data store. */
  fence: boolean;
  storage: SecureStorage;
  advertisementKeys: readonly Buffer[];
  signingKey: SigningKey;
  /** Also write the previous, unsigned format (rolling upgrade). */
  legacy: boolean;
  /** The gateway CA bundle and checks for this term (null: no gateway can connect). */
  gateways: TermGateways | null;
  nodeId: string;
  apiAddr: string;
  clusterAddr: string;
  /** Null with clustering disabled. */
  clusterListen: HostPort | null;
  log: Logger;
  handlers: Pick<ClusterListenerOptions, 'handle' | 'onPeerRejected'>;
  /** Runs from the advertisement until the term ends, on this term's storage. */
  tidy: TermTask;
}

/** The active term. */
export class ActiveSession {
  readonly activeTime = new Date().toISOString();
  readonly ad: Advertisement;
  /** Storage for requests served in this term (writes fenced with our lock value). */
  readonly storage: SecureStorage;
  /** The standbys heard from in this term (their heartbeats arrive on the cluster listener). */
  readonly peers = new PeerTable();
  /** Whether the advertised cluster_addr reaches this term's listener (null: not checked yet). */
  clusterAddrCheck: ProbeResult | null = null;
  private readonly data: Backend;
  private readonly membership: MembershipPublisher;
  private listener: ClusterListener | null = null;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly o: ActiveSessionOptions) {
    this.data = o.fence && isFencingBackend(o.data) ? o.data.fenced(o.lock.value, o.lock.lost) : o.data;
    this.storage = o.storage.withBackend(this.data);
    this.ad = {
      uuid: o.identity.uuid,
      epoch: o.lock.epoch,
      node_id: o.nodeId,
      api_addr: o.apiAddr,
      cluster_addr: o.clusterListen ? o.clusterAddr : '',
      cert: o.identity.certDer,
      active_time: this.activeTime,
    };
    this.membership = new MembershipPublisher({
      data: this.data,
      uuid: this.ad.uuid,
      epoch: this.ad.epoch,
      peers: this.peers,
      advertisementKeys: o.advertisementKeys,
      signingKey: o.signingKey,
      log: o.log,
    });
  }

  /** True until close() begins: requests may be served in this term. */
  serving(): boolean {
    return !this.stopping && this.o.lock.isValid();
  }

  /** Counts a request served in this term; call the returned function when it finishes. */
  track(): () => void {
    this.inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    };
  }

  async start(): Promise<void> {
    const { o } = this;
    if (o.clusterListen) {
      this.listener = new ClusterListener({
        address: o.clusterListen,
        identity: o.identity,
        gateways: o.gateways,
        log: o.log,
        ...o.handlers,
        internal: (req, res, path) => this.peers.handle(req, res, path),
      });
      await this.listener.start();
    }
    const uuid = this.ad.uuid;
    await this.storage.put(LEADER_KEY_PREFIX + uuid, { key: o.identity.keyDer });
    await this.data.put(
      advertisementPath(uuid),
      encodeAdvertisement(this.ad, o.advertisementKeys, o.signingKey),
    );
    if (o.legacy) {
      const legacy = encodeLegacyAdvertisement({ ...this.ad, key: o.identity.keyDer }, o.advertisementKeys);
      await this.data.put(legacyAdvertisementPath(uuid), legacy);
    }
    o.log.info({ epoch: this.ad.epoch, cluster_addr: this.ad.cluster_addr }, 'advertisement written');
    await o.ha.publish({ type: 'advertised', epoch: this.ad.epoch });
    if (!this.stopping) this.membership.start();
    o.tidy.start(this.storage);
    void this.cleanStale();
  }

  /** Deletes other terms' advertisements and keys left behind, one at a time, while we are active. */
  private async cleanStale(): Promise<void> {
    try {
      const mine = this.ad.uuid;
      const stale = [
        ...(await this.data.list(SIGNED_LEADER_PREFIX)).map((k) => SIGNED_LEADER_PREFIX + k),
        ...(await this.data.list(LEADER_PREFIX)).map((k) => LEADER_PREFIX + k),
        ...(await this.data.list(MEMBERS_PREFIX)).map((k) => MEMBERS_PREFIX + k),
        ...(await this.storage.list(LEADER_KEY_PREFIX)).map((k) => LEADER_KEY_PREFIX + k),
      ].filter((p) => !p.endsWith('/') && !p.endsWith(mine));
      for (const path of stale) {
        if (!this.serving()) return;
        await this.data.delete(path);
        this.o.log.info('stale advertisement deleted');
        await new Promise((r) => setTimeout(r, STALE_DELETE_INTERVAL_MS));
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'stale advertisement cleanup stopped');
    }
  }

  /** Ends the term (idempotent): drain with `graceMs`, delete the advertisement, release the lock. */
  close(graceMs: number): Promise<void> {
    if (!this.closing) this.closing = this.doClose(graceMs);
    return this.closing;
  }

  private async doClose(graceMs: number): Promise<void> {
    this.stopping = true;
    this.o.tidy.stop();
    await this.membership.stop();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.drained = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.listener?.stopServing();
    // Deleting our advertisement is fenced: if the lock is already gone this is refused, and the
    // next active node's cleanup removes it instead.
    if (this.o.lock.isValid()) {
      const uuid = this.ad.uuid;
      const paths = [
        advertisementPath(uuid),
        legacyAdvertisementPath(uuid),
        LEADER_KEY_PREFIX + uuid,
        this.membership.path,
      ];
      for (const path of paths) {
        await this.data.delete(path).catch(() => undefined);
      }
    }
    const wasHeld = this.o.lock.isValid();
    await this.o.lock.release();
    if (wasHeld) await this.o.ha.publish({ type: 'released', epoch: this.ad.epoch });
    // Only now close open cluster connections: peers drop them once they see the next leader,
    // and until then anything they send is answered "not served" instead of being reset.
    await this.listener?.close(LISTENER_LINGER_MS);
  }
}
