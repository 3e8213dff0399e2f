/**
 * The HA server: one node of a leaderway cluster. It owns its parts and their order:
 * API listener → unseal (waiting for init if needed) → leader watcher → elector. While active,
 * an ActiveSession holds the cluster listener and the advertisement; while standby, the
 * StandbyPolicy forwards or redirects.
 *
 * Shutdown order (close()): stop accepting API connections; end the active term, which drains
 * in-flight requests, deletes the advertisement and releases the lock so a standby takes over at
 * once; finish the API's in-flight requests (bounded); stop the watcher; close storage.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Logger } from 'pino';
import type { Advertisement } from '../shared/advertisement';
import { LwError, MESSAGES } from '../shared/errors';
import type { AnyResponse } from '../shared/http/respond';
import { routeClass } from '../shared/http/route-class';
import { closeGracefully, createApiServer, listen } from '../shared/http/server';
import { LeaderWatcher } from '../shared/leader/leader-watcher';
import type { Backend, HABackend } from '../shared/storage/backend';
import type { HeldLock } from '../shared/storage/held-lock';
import { createNodeMetrics, methodLabel, type NodeMetrics, serveMetrics } from '../shared/telemetry/metrics';
import { detached, endServerSpan, traced, withIncomingContext } from '../shared/telemetry/tracing';
import { VERSION } from '../shared/version';
import { ApiHandler } from './api/dispatch';
import type { NodeApi, PeerInfo, SealState } from './api/node-api';
import type { AnyRequest } from './api/request';
import { newToken, rootTokenEntry } from './api/tokens';
import { initialize, isInitialized, unseal } from './barrier/seal';
import type { SecureStorage } from './barrier/secure-storage';
import { ActiveSession } from './ha/active-session';
import type { ClusterIdentity } from './ha/cluster-cert';
import { LeaderElector } from './ha/leader-elector';
import { Echoer, PeerTable } from './ha/peers';
import { StandbyPolicy } from './ha/standby-policy';
import type { NodeSettings } from './settings';

/** While uninitialized (or storage is down), how often to look again. */
const UNSEAL_POLL_MS = 1_000;
/** Bound for draining in-flight requests when stepping down (not shutting down). */
const STEP_DOWN_GRACE_MS = 5_000;

export interface NodeServerDeps {
  data: Backend;
  ha: HABackend;
  /** True when the lock lives in a separate store (no fencing). */
  split: boolean;
  log: Logger;
  /** Set by `leaderway dev`: init with this root token if storage is uninitialized. */
  devRootToken?: string;
}

export type NodeStatus = 'new' | 'sealed' | 'standby' | 'active' | 'closing' | 'closed';

export class NodeServer implements NodeApi {
  readonly version = VERSION;
  readonly nodeId: string;
  readonly maxRequestSize: number;
  readonly storageType: string;
  private status: NodeStatus = 'new';
  private seal: SealState = 'sealed';
  private storage: SecureStorage | null = null;
  private session: ActiveSession | null = null;
  private server: Server | undefined;
  private apiInFlight = 0;
  private readonly api: ApiHandler;
  private readonly peerTable = new PeerTable();
  private watcher: LeaderWatcher | undefined;
  private elector: LeaderElector | undefined;
  private echoer: Echoer | undefined;
  private standby: StandbyPolicy | undefined;
  private readonly stop = new AbortController();
  private unsealLoop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private clusterId = '';
  /** This node's Prometheus metrics (served at /metrics on the API listener). */
  readonly metrics: NodeMetrics = createNodeMetrics();

  constructor(
    readonly settings: NodeSettings,
    private readonly deps: NodeServerDeps,
  ) {
    this.nodeId = settings.nodeId;
    this.maxRequestSize = settings.maxRequestSize;
    this.storageType = deps.data.kind;
    this.api = new ApiHandler(this, () => this.clusterId, deps.log);
  }

  private setStatus(s: NodeStatus): void {
    if (this.status === s) return;
    this.deps.log.info({ from: this.status, to: s }, 'node status');
    this.status = s;
  }

  /** The listening API address (useful when configured with port 0). */
  address(): { host: string; port: number } {
    const a = this.server?.address();
    return typeof a === 'object' && a ? { host: a.address, port: a.port } : this.settings.listen;
  }

  async start(): Promise<void> {
    if (this.server) return;
    this.setStatus('sealed');
    this.server = createApiServer(this.settings.tls, (req, res) => this.onApiRequest(req, res));
    await listen(this.server, this.settings.listen.host, this.settings.listen.port);
    this.unsealLoop = this.unsealWhenReady();
  }

  private onApiRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.url === '/metrics' && req.method === 'GET') {
      serveMetrics(this.metrics.registry, res);
      return;
    }
    this.apiInFlight++;
    res.once('close', () => this.apiInFlight--);
    // While closing, tell keep-alive clients (and load balancers) to reconnect elsewhere.
    if (this.closing) res.setHeader('connection', 'close');
    this.serve(req, res, false);
  }

  private serve(req: AnyRequest, res: AnyResponse, viaCluster: boolean): void {
    const s = this.session;
    if (s?.serving()) res.once('close', s.track());
    const started = performance.now();
    const via = viaCluster ? 'cluster' : 'api';
    const route = routeClass(req.url);
    const run = (span: Parameters<typeof endServerSpan>[0]) => {
      res.once('close', () => {
        const status = res.statusCode;
        this.metrics.http.requests.inc({
          route,
          method: methodLabel(req.method),
          status: String(status),
          via,
        });
        this.metrics.http.duration.observe({ route, via }, (performance.now() - started) / 1000);
        endServerSpan(span, status);
        if (this.deps.log.isLevelEnabled('debug')) {
          const remote_addr = clientAddress(req, viaCluster);
          this.deps.log.debug({ method: req.method, route, status, via, remote_addr }, 'request');
        }
      });
      this.api.handle(req, res, viaCluster);
    };
    // The API listener's server spans come from the http instrumentation; the cluster listener
    // (HTTP/2 server) continues the forwarder's trace here.
    if (viaCluster) withIncomingContext(req.headers, 'lw.cluster.request', run);
    else run(undefined);
  }

  /** Tries to unseal until it works: waits for init, retries while storage is down. */
  private async unsealWhenReady(): Promise<void> {
    let warnedWrongKey = false;
    while (!this.stop.signal.aborted && !this.storage) {
      try {
        if (this.deps.devRootToken !== undefined) await this.devInit(this.deps.devRootToken);
        const r = await unseal(this.deps.data, this.settings.sealKey);
        if (r.state === 'unsealed') {
          this.onUnsealed(r.storage);
          return;
        }
        this.seal = r.state === 'uninitialized' ? 'uninitialized' : 'sealed';
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
    if (this.storage || this.stop.signal.aborted) return;
    this.storage = storage;
    this.seal = 'unsealed';
    this.clusterId = formatUuid(storage.barrier.hmac('cluster-id'));
    this.setStatus('standby');
    this.deps.log.info('unsealed');
    const s = this.settings;
    const connect = s.forwarding && s.clusterListen !== null;
    this.watcher = new LeaderWatcher({
      data: this.deps.data,
      ha: this.deps.ha,
      keys: s.advertisementKeys,
      connect,
      connections: 32,
      selfValue: () => this.session?.ad.uuid ?? null,
      hooks: {
        onChange: (l) => {
          if (l) this.metrics.leaderChanges.inc();
          this.deps.log.info({ leader: l?.ad.node_id ?? null, epoch: l?.ad.epoch }, 'leader change observed');
        },
        onReject: (reason) => {
          this.metrics.advertisementsRejected.inc({ reason });
          this.deps.log.warn({ reason }, 'leader advertisement rejected');
        },
      },
    });
    this.standby = new StandbyPolicy({
      watcher: this.watcher,
      forwarding: connect,
      tlsApi: s.tls !== null,
      log: this.deps.log,
      metrics: this.metrics,
    });
    this.echoer = new Echoer(
      this.watcher,
      { node_id: s.nodeId, api_addr: s.apiAddr, cluster_addr: s.clusterAddr, version: VERSION },
      this.deps.log,
    );
    void this.watcher.start();
    this.echoer.start();
    this.elector = new LeaderElector({
      ha: this.deps.ha,
      ttlMs: s.lockTtlMs,
      log: this.deps.log,
      onActive: (lock, identity) => this.becomeActive(lock, identity),
      onStandby: (reason) => this.becomeStandby(reason),
      metrics: this.metrics,
    });
    this.elector.start();
  }

  private async becomeActive(lock: HeldLock, identity: ClusterIdentity): Promise<void> {
    const s = this.settings;
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
      storage: this.storage as SecureStorage,
      advertisementKeys: s.advertisementKeys,
      nodeId: s.nodeId,
      apiAddr: s.apiAddr,
      clusterAddr: s.clusterAddr,
      clusterListen: s.clusterListen,
      log: this.deps.log,
      handlers: {
        handle: (req: Http2ServerRequest, res: Http2ServerResponse) => this.serve(req, res, true),
        internal: (req, res, path) => this.peerTable.handle(req, res, path),
      },
    });
    this.session = session;
    this.peerTable.clear();
    await traced('lw.advertise', { 'lw.epoch': lock.epoch }, () => session.start());
    this.setStatus('active');
    void this.watcher?.refresh();
  }

  private async becomeStandby(reason: string): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.deps.log.info({ reason }, 'stepping down');
    const grace = this.closing ? this.settings.shutdownTimeoutMs : STEP_DOWN_GRACE_MS;
    await traced('lw.step_down', { 'lw.reason': reason, 'lw.epoch': session.ad.epoch }, () =>
      session.close(grace),
    );
    this.session = null;
    if (!this.closing) this.setStatus('standby');
    void this.watcher?.refresh();
  }

  /** Drops the keyring and HA machinery and goes back to waiting for an initialized storage. */
  private async reseal(): Promise<void> {
    if (!this.storage || this.stop.signal.aborted) return;
    await this.elector?.close();
    this.echoer?.close();
    await this.watcher?.close();
    this.elector = this.echoer = this.watcher = this.standby = undefined;
    this.storage = null;
    this.seal = 'uninitialized';
    this.setStatus('sealed');
    this.unsealLoop = this.unsealWhenReady();
  }

  // ---- NodeApi ----

  sealState(): SealState {
    return this.seal;
  }

  async initializedNow(): Promise<boolean> {
    if (this.seal !== 'uninitialized') return true;
    return isInitialized(this.deps.data);
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

  isActive(): boolean {
    return this.session?.serving() ?? false;
  }

  activeStorage(): SecureStorage {
    const s = this.session;
    if (!s?.serving()) throw new LwError('LW_ERR_NOT_ACTIVE', 'node is not active', { retryAfter: 1 });
    return s.storage;
  }

  leader(): Advertisement | null {
    if (this.session?.serving()) return this.session.ad;
    return this.watcher?.current()?.ad ?? null;
  }

  activeSince(): string | null {
    return this.session?.activeTime ?? null;
  }

  peers(): PeerInfo[] {
    const s = this.settings;
    return this.peerTable.list({
      hostname: s.nodeId,
      api_address: s.apiAddr,
      cluster_address: s.clusterAddr,
      version: VERSION,
    });
  }

  stepDown(): void {
    this.elector?.stepDown(this.settings.stepDownCooldownMs);
  }

  onFencedWrite(): void {
    this.metrics.fencedWrites.inc();
    this.deps.log.error('write refused by fencing: another node holds the lock; stepping down');
    this.elector?.stepDown(0);
  }

  async standbyHandle(req: AnyRequest, res: AnyResponse, url: string): Promise<void> {
    if (!this.standby) throw new LwError('LW_ERR_SEALED', MESSAGES.sealed);
    await this.standby.handle(req, res, url);
  }

  // ---- lifecycle ----

  /** Shuts down in the documented order. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.setStatus('closing');
    this.stop.abort();
    const grace = this.settings.shutdownTimeoutMs;
    const server = this.server;
    const apiClosed = server ? closeGracefully(server, () => this.apiInFlight, grace) : Promise.resolve();
    await this.elector?.close();
    await apiClosed;
    await this.unsealLoop;
    this.echoer?.close();
    await this.watcher?.close();
    await Promise.allSettled([this.deps.data.close(), this.deps.ha.close()]);
    this.setStatus('closed');
  }
}

/**
 * The client's address. Over the cluster channel the peer is a standby or gateway (mutually
 * authenticated), which has already dropped forwarding headers it does not trust, so the
 * left-most X-Forwarded-For entry is the client.
 */
function clientAddress(req: AnyRequest, viaCluster: boolean): string {
  const xff = req.headers['x-forwarded-for'];
  if (viaCluster && typeof xff === 'string' && xff !== '') return (xff.split(',')[0] ?? '').trim();
  return req.socket?.remoteAddress ?? '';
}

function formatUuid(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
