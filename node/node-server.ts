/**
 * The HA server's lifecycle: one node of a leaderway cluster, and the one place its state
 * (`NodeState`) changes. The state owns what it needs: unsealed, the leader watcher, the standby
 * policy, the heartbeats (echoer) and the elector; active, the term (ActiveSession: cluster
 * listener, advertisement, peers, token cleanup, the cluster-address check); closing, the one
 * shutdown in progress. Start order: API listener → unseal (waiting for init if needed) →
 * watcher, standby policy, heartbeats, the standby listener for gateways → elector. The standby
 * listener (./ha/standby-listener.ts) shares the cluster port with the active term's cluster
 * listener: it is paused before a term opens that and opened again after the term ends.
 * Requests are served by ApiEntry/ApiHandler, which only read the state. What storage reports outside any call (liveness refused,
 * unreplicated writes) arrives through its StorageSignals, not through calls from the CLI.
 *
 * Shutdown order (close()): stop accepting API connections and close the standby listener
 * (gateways retry what it no longer takes on the active); end the active term, which drains
 * in-flight requests, deletes the advertisement and releases the lock so a standby takes over at
 * once; finish the API's in-flight requests (bounded); stop the watcher; close storage; close the
 * metrics listener last, so the shutdown itself can still be scraped.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { LEADER_KEY_PREFIX } from '../shared/advertisement';
import type { HostPort } from '../shared/config/formats';
import { LwError, MESSAGES } from '../shared/errors';
import { ApiListener } from '../shared/http/server';
import { derToPem } from '../shared/leader/leader-client';
import { ADVERTISEMENT_REJECTIONS, LeaderWatcher } from '../shared/leader/leader-watcher';
import { probeClusterAddr } from '../shared/leader/probe';
import type { Backend, HABackend } from '../shared/storage/backend';
import type { HeldLock } from '../shared/storage/held-lock';
import type { StorageSignals } from '../shared/storage/signals';
import { createNodeMetrics, listenerHooks, type NodeMetrics } from '../shared/telemetry/metrics';
import { MetricsListener } from '../shared/telemetry/metrics-listener';
import { detached, traced } from '../shared/telemetry/tracing';
import { VERSION } from '../shared/version';
import { ApiEntry } from './api/api-entry';
import { ByteBudget } from './api/byte-budget';
import { ApiHandler } from './api/dispatch';
import { fullCollection } from './api/full-collection';
import {
  type NodeApi,
  type NodeState,
  type PeerInfo,
  sessionOf,
  type Unsealed,
  unsealedOf,
} from './api/node-api';
import { newToken, rootTokenEntry } from './auth/token-store';
import { TokenTidy } from './auth/token-tidy';
import { initialize, isInitialized, unseal } from './barrier/seal';
import type { SecureStorage } from './barrier/secure-storage';
import { ActiveSession } from './ha/active-session';
import type { ClusterIdentity } from './ha/cluster-cert';
import type { GatewayTrust } from './ha/gateway-trust';
import { LeaderElector } from './ha/leader-elector';
import { Echoer, PeerTable } from './ha/peers';
import { StandbyListener } from './ha/standby-listener';
import { StandbyPolicy } from './ha/standby-policy';
import type { NodeSettings } from './settings';

/** While uninitialized (or storage is down), how often to look again. */
const UNSEAL_POLL_MS = 1_000;
/** Bound for draining in-flight requests when stepping down (not shutting down). */
const STEP_DOWN_GRACE_MS = 5_000;
/** Connections a standby keeps to the active for forwarding (opened on demand). */
const STANDBY_CONNECTIONS = 128;

export interface NodeServerDeps {
  data: Backend;
  ha: HABackend;
  /** True when the lock lives in a separate store (no fencing). */
  split: boolean;
  log: Logger;
  /**
   * Which gateways the cluster listener admits (null: none can connect). Made by the entry point
   * from `settings.gateways`, so a broken CA or CRL file stops the start; started and closed here.
   */
  gateways: GatewayTrust | null;
  /** Set by `leaderway dev`: init with this root token if storage is uninitialized. */
  devRootToken?: string;
  /** What the storage reports outside any call (opened with it: shared/storage/open.ts). */
  signals?: StorageSignals;
}

export class NodeServer implements NodeApi {
  readonly version = VERSION;
  readonly nodeId: string;
  readonly maxRequestSize: number;
  readonly storageType: string;
  readonly standbyReads: boolean;
  /** This node's Prometheus metrics (the metrics listener, sys/metrics, maybe /metrics on the API listener). */
  readonly metrics: NodeMetrics = createNodeMetrics(() => this.responses);
  /** What reads of secrets hold while answered (LEADERWAY_RESPONSE_BUDGET); one node per process in production. */
  private readonly responses: ByteBudget;
  /** The node's state: the one mutable thing here, which owns what each state needs. */
  private current: NodeState = { status: 'new' };
  private readonly listener: ApiListener;
  private readonly metricsListener: MetricsListener | null;
  private readonly api: ApiHandler;
  private readonly entry: ApiEntry;
  /** Which gateways the cluster listener admits (null: none can connect). */
  private readonly gateways: GatewayTrust | null;
  /**
   * The listener gateways send reads to while this node is an unsealed standby (null without a
   * cluster listen address or a gateway CA: no gateway could connect).
   */
  private readonly standbyListener: StandbyListener | null;
  /** Aborted by close(): the unseal loop and a pending unseal stop. */
  private readonly stop = new AbortController();
  /** Storage was seen initialized (initializedNow), and has not lost its root key since (reseal). */
  private knownInitialized = false;
  /** The one storage read initializedNow callers share. */
  private initializedRead: Promise<boolean> | undefined;
  /** The loop waiting for an initialized storage, while sealed (close() waits for it). */
  private unsealLoop: Promise<void> | undefined;

  constructor(
    readonly settings: NodeSettings,
    private readonly deps: NodeServerDeps,
  ) {
    this.nodeId = settings.nodeId;
    this.maxRequestSize = settings.maxRequestSize;
    this.storageType = deps.data.kind;
    this.standbyReads = settings.standbyReads;
    this.responses = new ByteBudget(settings.responseBudget.bytes, fullCollection());
    this.api = new ApiHandler(this, deps.log, {
      budget: this.responses,
      maxWaitMs: settings.responseBudget.waitMs,
    });
    this.entry = new ApiEntry({
      handler: this.api,
      metrics: this.metrics,
      unauthenticatedMetrics: settings.listener.unauthenticatedMetrics,
      log: deps.log,
      closing: () => this.current.status === 'closing' || this.current.status === 'closed',
      trackActive: () => {
        const session = sessionOf(this.current);
        return session?.serving() ? session.track() : null;
      },
    });
    // Eager LIST shim, as the cluster listener: large bodies read in JavaScript let V8 collect
    // as they arrive (the memory bound measured in test/security/memory-budget.test.ts).
    this.listener = new ApiListener(
      settings.listener,
      this.entry.onApiRequest,
      listenerHooks(this.metrics.listener, deps.log),
      'eager',
    );
    const notAfter = this.listener.certificateNotAfter();
    if (notAfter) this.metrics.listener.tlsNotAfter.set(Math.floor(notAfter.getTime() / 1000));
    this.metricsListener = settings.metricsListen
      ? new MetricsListener(settings.metricsListen, this.metrics.registry, deps.log)
      : null;
    this.gateways = deps.gateways;
    // Only a standby that serves reads listens for gateways' reads (and announces it).
    this.standbyListener =
      settings.clusterListen && deps.gateways && settings.standbyReads
        ? new StandbyListener({
            address: settings.clusterListen,
            advertise: settings.clusterAddr,
            gateways: deps.gateways,
            log: deps.log,
            handle: (req, res) => this.entry.serve(req, res, 'gateway'),
            onPeerRejected: (reason) => this.metrics.clusterPeerRejected.inc({ reason }),
          })
        : null;
    const signals = deps.signals;
    if (signals) {
      if (signals.livenessRefused !== null) this.livenessRefused(signals.livenessRefused);
      signals.on('liveness-refused', (reason) => this.livenessRefused(reason));
      signals.on('unreplicated', () => this.metrics.unreplicatedWrites.inc());
      signals.on('no-replicas', () => this.metrics.noReplicasWrites.inc());
    }
  }

  state(): NodeState {
    return this.current;
  }

  /** The one place the state changes (logged when the status does). */
  private setState(next: NodeState): void {
    if (next.status !== this.current.status) {
      this.deps.log.info({ from: this.current.status, to: next.status }, 'node status');
    }
    this.current = next;
  }

  /** The listening API address (useful when configured with port 0). */
  address(): { host: string; port: number } {
    return this.listener.address();
  }

  /** The listening metrics address, or null without a metrics listener. */
  metricsAddress(): HostPort | null {
    return this.metricsListener?.address() ?? null;
  }

  async start(): Promise<void> {
    if (this.current.status !== 'new') return;
    this.setState({ status: 'sealed', seal: 'sealed' });
    await this.listener.listen();
    await this.metricsListener?.listen();
    this.gateways?.start();
    this.unsealLoop = this.unsealWhenReady();
  }

  /** SIGHUP: reload the API listener's TLS certificate (as `bao server` does) and the gateway CRL. */
  reload(): void {
    this.listener.reloadTls();
    this.gateways?.reloadCrl();
  }

  /** Tries to unseal until it works: waits for init, retries while storage is down. */
  private async unsealWhenReady(): Promise<void> {
    let warnedWrongKey = false;
    while (!this.stop.signal.aborted && !unsealedOf(this.current)) {
      try {
        if (this.deps.devRootToken !== undefined) await this.devInit(this.deps.devRootToken);
        const r = await unseal(this.deps.data, this.settings.sealKey);
        // An init answered while this look was in flight has unsealed the node already: the
        // state must not go back to sealed (a second onUnsealed would start HA twice).
        if (unsealedOf(this.current)) return;
        if (r.state === 'unsealed') {
          this.onUnsealed(r.storage);
          return;
        }
        this.setState({ status: 'sealed', seal: r.state === 'uninitialized' ? 'uninitialized' : 'sealed' });
        if (r.state !== 'uninitialized' && !warnedWrongKey) {
          warnedWrongKey = true;
          this.deps.log.error(
            r.state === 'wrong-key'
              ? 'cannot unseal: the seal key (LEADERWAY_SEAL_KEY) does not open this storage; staying sealed'
              : 'cannot unseal: the keyring in storage is damaged; staying sealed',
          );
        }
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'storage unavailable while unsealing; retrying');
      }
      await new Promise((r) => setTimeout(r, UNSEAL_POLL_MS));
    }
  }

  private async devInit(token: string): Promise<void> {
    try {
      await initialize(this.deps.data, this.settings.sealKey, (s) => [rootTokenEntry(s, token)]);
      this.deps.log.info('storage initialized (dev)');
    } catch (err) {
      if (!(err instanceof LwError && err.code === 'LW_ERR_ALREADY_INITIALIZED')) throw err;
    }
  }

  private onUnsealed(storage: SecureStorage): void {
    detached(() => this.startHA(storage));
  }

  /** Starts following the leader and contending for the lock (outside any request's trace). */
  private startHA(storage: SecureStorage): void {
    if (unsealedOf(this.current) || this.stop.signal.aborted) return;
    const s = this.settings;
    const log = this.deps.log;
    const connect = s.forwarding && s.clusterListen !== null;
    for (const reason of ADVERTISEMENT_REJECTIONS) this.metrics.advertisementsRejected.inc({ reason }, 0);
    const watcher = new LeaderWatcher({
      data: this.deps.data,
      ha: this.deps.ha,
      keys: s.advertisementKeys,
      verifyKeys: s.verifyKeys,
      legacy: s.legacyAdvertisement,
      // A standby presents the leader's own certificate; its key is behind the barrier.
      identity: async (ad) => {
        const stored = await storage.get<{ key: string }>(LEADER_KEY_PREFIX + ad.uuid);
        return stored
          ? { certPem: derToPem(ad.cert, 'CERTIFICATE'), keyPem: derToPem(stored.key, 'PRIVATE KEY') }
          : null;
      },
      connect,
      // As many as a gateway keeps (opened on demand): fewer made forwarded requests queue at
      // 100 concurrent clients, which cost the standby CPU for nothing.
      connections: STANDBY_CONNECTIONS,
      selfValue: () => sessionOf(this.current)?.ad.uuid ?? null,
      hooks: {
        onChange: (l) => {
          if (l) this.metrics.leaderChanges.inc();
          log.info({ leader: l?.ad.node_id ?? null, epoch: l?.ad.epoch }, 'leader change observed');
        },
        onReject: (reason) => {
          this.metrics.advertisementsRejected.inc({ reason });
          log.warn({ reason }, 'leader advertisement rejected');
        },
      },
    });
    const unsealed: Unsealed = {
      storage,
      clusterId: formatUuid(storage.barrier.hmac('cluster-id')),
      watcher,
      standby: new StandbyPolicy({
        watcher,
        forwarding: connect,
        failoverWaitMs: s.failoverWaitMs,
        tlsApi: s.listener.tls !== null,
        log,
        metrics: this.metrics,
      }),
      echoer: new Echoer(
        watcher,
        () => ({
          node_id: s.nodeId,
          api_addr: s.apiAddr,
          cluster_addr: s.clusterAddr,
          version: VERSION,
          status: this.current.status === 'closing' ? 'draining' : 'serving',
          reads: this.current.status === 'standby' ? (this.standbyListener?.info() ?? null) : null,
        }),
        log,
      ),
      elector: new LeaderElector({
        ha: this.deps.ha,
        ttlMs: s.lockTtlMs,
        livenessGraceMs: this.livenessGrace(),
        log,
        onActive: (lock, identity) => this.becomeActive(lock, identity),
        onStandby: (reason) => this.becomeStandby(reason),
        metrics: this.metrics,
      }),
    };
    this.setState({ status: 'standby', unsealed });
    log.info('unsealed');
    void watcher.start();
    unsealed.echoer.start();
    void this.standbyListener?.open();
    unsealed.elector.start();
  }

  /** Redis refused the liveness commands: no takeovers will happen (the backend reports unknown). */
  private livenessRefused(reason: string): void {
    this.deps.log.warn(
      { reason },
      'holder liveness off: Redis refuses CLIENT ID/LIST; a crashed active is replaced after the lock TTL',
    );
    this.metrics.livenessEnabled.set(0);
  }

  /** The takeover grace, or 0 where a takeover could not be fenced or cannot be observed. */
  private livenessGrace(): number {
    const grace = this.settings.livenessGraceMs;
    let off: string | null = null;
    if (grace === 0) off = null;
    else if (this.deps.split) off = 'split storage: a takeover could not be fenced';
    else if (!this.deps.ha.liveness) off = 'the HA storage cannot tell whether the holder is connected';
    if (off)
      this.deps.log.info(
        { reason: off },
        'holder liveness off: a crashed active is replaced after the lock TTL',
      );
    const on = grace > 0 && off === null && this.deps.signals?.livenessRefused == null;
    this.metrics.livenessEnabled.set(on ? 1 : 0);
    return on ? grace : 0;
  }

  private async becomeActive(lock: HeldLock, identity: ClusterIdentity): Promise<void> {
    const s = this.settings;
    const unsealed = unsealedOf(this.current);
    if (!unsealed) throw new LwError('LW_ERR_SEALED', MESSAGES.sealed);
    // A Redis that lost its data (or was replaced) has no root key: serving from it would answer
    // from an empty store with keys it no longer holds. Seal instead, and wait for init.
    if (!(await isInitialized(this.deps.data))) {
      this.deps.log.error(
        'storage has no root key (Redis lost its data?): sealing instead of becoming active',
      );
      setImmediate(() => void this.reseal());
      throw new LwError('LW_ERR_SEALED', MESSAGES.sealed);
    }
    const session = new ActiveSession({
      lock,
      identity,
      data: this.deps.data,
      ha: this.deps.ha,
      fence: !this.deps.split,
      storage: unsealed.storage,
      advertisementKeys: s.advertisementKeys,
      signingKey: s.signingKey,
      legacy: s.legacyAdvertisement,
      // The CA bundle is read again for every term (rotation without a restart).
      gateways: this.gateways?.forTerm() ?? null,
      nodeId: s.nodeId,
      apiAddr: s.apiAddr,
      clusterAddr: s.clusterAddr,
      clusterListen: s.clusterListen,
      log: this.deps.log,
      handlers: {
        handle: (req: Http2ServerRequest, res: Http2ServerResponse, peer) => this.entry.serve(req, res, peer),
        onPeerRejected: (reason) => this.metrics.clusterPeerRejected.inc({ reason }),
      },
      tidy: new TokenTidy(this.api.tokens, this.deps.log),
    });
    // The cluster port is the term's now.
    await this.standbyListener?.pause();
    // Active before the listener opens, so the first forwarded request is served, not refused.
    const now = this.current;
    if (now.status === 'closing') this.setState({ ...now, session });
    else this.setState({ status: 'active', unsealed, session });
    await traced('lw.advertise', { 'lw.epoch': lock.epoch }, () => session.start());
    void unsealed.watcher.refresh();
    if (s.clusterListen) void this.checkClusterAddr(session, identity);
  }

  /**
   * Checks that the advertised cluster_addr reaches this node's cluster listener. With api_addr
   * pointing at a load balancer and cluster_addr unset, the derived cluster_addr is the load
   * balancer's: standbys and gateways would then never reach the active. Say so loudly.
   */
  private async checkClusterAddr(session: ActiveSession, identity: ClusterIdentity): Promise<void> {
    const context = createSecureContext({
      ca: [identity.certPem],
      cert: identity.certPem,
      key: identity.keyPem,
    });
    const r = await probeClusterAddr(
      session.ad.cluster_addr,
      context,
      `fw-${identity.uuid}`,
      Buffer.from(identity.certDer, 'base64'),
    );
    if (sessionOf(this.current) !== session) return;
    session.clusterAddrCheck = r;
    this.metrics.clusterAddrReachable.set(r.ok ? 1 : 0);
    if (!r.ok) {
      this.deps.log.error(
        { cluster_addr: session.ad.cluster_addr, error: r.error },
        'the advertised cluster_addr does not reach this node’s cluster listener: standbys and gateways cannot reach ' +
          'the active. Set BAO_CLUSTER_ADDR (or VAULT_CLUSTER_ADDR, cluster_addr) to an address of this node; when ' +
          'api_addr is the load balancer, the default (api_addr’s host, port + 1) is the load balancer’s',
      );
    }
  }

  private async becomeStandby(reason: string): Promise<void> {
    const session = sessionOf(this.current);
    if (!session) return;
    this.deps.log.info({ reason }, 'stepping down');
    const grace = this.current.status === 'closing' ? this.settings.shutdownTimeoutMs : STEP_DOWN_GRACE_MS;
    await traced('lw.step_down', { 'lw.reason': reason, 'lw.epoch': session.ad.epoch }, () =>
      session.close(grace),
    );
    const now = this.current;
    const unsealed = unsealedOf(now);
    if (now.status === 'closing') this.setState({ ...now, session: null });
    else if (unsealed) {
      this.setState({ status: 'standby', unsealed });
      // The term's cluster listener has closed: the port is the standby listener's again.
      void this.standbyListener?.open();
    }
    void unsealed?.watcher.refresh();
  }

  /** Drops the keyring and HA machinery and goes back to waiting for an initialized storage. */
  private async reseal(): Promise<void> {
    const unsealed = unsealedOf(this.current);
    if (!unsealed || this.stop.signal.aborted) return;
    await unsealed.elector.close();
    unsealed.echoer.close();
    await this.standbyListener?.pause();
    await unsealed.watcher.close();
    // The storage lost its root key: a yes seen before would refuse the init it now waits for.
    this.knownInitialized = false;
    this.setState({ status: 'sealed', seal: 'uninitialized' });
    this.unsealLoop = this.unsealWhenReady();
  }

  // ---- commands from the API (NodeApi) ----

  async initializedNow(): Promise<boolean> {
    if (this.current.status !== 'sealed' || this.knownInitialized) return true;
    // Sealed: storage says. Until the unseal loop's first look at it (slower on PostgreSQL,
    // which creates its tables first) 'sealed' only means "not known yet", and an init sent
    // right after start was refused as "already initialized". Unauthenticated callers share
    // one read at a time, and a yes is kept (storage does not become uninitialized again, unless
    // it loses its data: then the node reseals, and forgets the yes).
    this.initializedRead ??= isInitialized(this.deps.data).finally(() => {
      this.initializedRead = undefined;
    });
    const yes = await this.initializedRead;
    if (yes) this.knownInitialized = true;
    return yes;
  }

  async initialize(): Promise<string> {
    const token = newToken();
    const storage = await initialize(this.deps.data, this.settings.sealKey, (s) => [
      rootTokenEntry(s, token),
    ]);
    this.deps.log.info('storage initialized');
    this.onUnsealed(storage);
    return token;
  }

  peers(): PeerInfo[] {
    const s = this.settings;
    const session = sessionOf(this.current);
    const check = session?.clusterAddrCheck ?? null;
    return (session?.peers ?? new PeerTable()).list({
      hostname: s.nodeId,
      api_address: s.apiAddr,
      cluster_address: s.clusterAddr,
      version: VERSION,
      cluster_address_reachable: check ? check.ok : null,
      cluster_address_error: check && !check.ok ? check.error : null,
    });
  }

  stepDown(): void {
    unsealedOf(this.current)?.elector.stepDown(this.settings.stepDownCooldownMs);
  }

  onStandbyRead(outcome: 'served' | 'forwarded'): void {
    this.metrics.standbyReads.inc({ outcome });
  }

  onRequestError(code: string): void {
    this.metrics.requestErrors.inc({ code });
  }

  async scrapeMetrics(): Promise<{ text: string; contentType: string }> {
    const registry = this.metrics.registry;
    return { text: await registry.metrics(), contentType: registry.contentType };
  }

  onFencedWrite(): void {
    this.metrics.fencedWrites.inc();
    this.deps.log.error('write refused by fencing: another node holds the lock; stepping down');
    unsealedOf(this.current)?.elector.stepDown(0);
  }

  // ---- lifecycle ----

  /** Shuts down in the documented order. Idempotent: the closing state holds the one shutdown. */
  close(): Promise<void> {
    const s = this.current;
    if (s.status === 'closing') return s.done;
    if (s.status === 'closed') return Promise.resolve();
    let finish!: { resolve: () => void; reject: (err: unknown) => void };
    const done = new Promise<void>((resolve, reject) => {
      finish = { resolve, reject };
    });
    this.setState({ status: 'closing', unsealed: unsealedOf(s), session: sessionOf(s), done });
    this.doClose(s.status !== 'new').then(finish.resolve, finish.reject);
    return done;
  }

  /** `started`: the listeners were opened (start() ran). */
  private async doClose(started: boolean): Promise<void> {
    this.stop.abort();
    const grace = this.settings.shutdownTimeoutMs;
    const apiClosed = started
      ? this.listener.closeGracefully(() => this.entry.inFlight(), grace)
      : Promise.resolve();
    // What a gateway sends the standby listener from now on is refused and retried on the active.
    await this.standbyListener?.close();
    await unsealedOf(this.current)?.elector.close();
    await apiClosed;
    await this.unsealLoop;
    const unsealed = unsealedOf(this.current);
    unsealed?.echoer.close();
    await unsealed?.watcher.close();
    await Promise.allSettled([this.deps.data.close(), this.deps.ha.close()]);
    this.gateways?.close();
    await this.metricsListener?.close();
    this.setState({ status: 'closed' });
  }
}

function formatUuid(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
