/**
 * The cluster under chaos: real storage (one append-only redis-server, a Sentinel topology, or a
 * PostgreSQL primary with a synchronous standby: store.ts), three `leaderway server` nodes whose
 * api_addr is the first gateway (the gateway deployment), and two `leaderway gateway`s. Nodes that
 * are killed are replaced by new ones (new names, new ports); gateways restart on their own port
 * so clients keep their URL. Every process ever spawned is kept for the log checks, and any exit
 * that the chaos did not cause is recorded as a crash.
 */
import { request } from 'undici';
import { initCluster } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type ChaosStore, type StoreKind, startStore } from './store';

/** How often roles (active / standby) are polled for the clients that target standbys. */
const ROLE_POLL_MS = 300;
/** A cluster that is not healthy again this long after a fault has failed to recover. */
export const RECOVERY_TIMEOUT_MS = 40_000;
/** Probes of a process give up after this (a SIGSTOPped process never answers). */
const PROBE_TIMEOUT_MS = 2_000;

/** An exit nobody asked for. */
export interface Crash {
  name: string;
  code: number | null;
  signal: string | null;
  at: number;
  tail: string[];
}

export interface ChaosClusterOptions {
  /** Extra environment for every node and gateway (e.g. OTEL_* to export traces). */
  env?: Record<string, string>;
  /** The storage (default `single`: one Redis). */
  store?: StoreKind;
}

export class ChaosCluster {
  store!: ChaosStore;
  readonly keys = testKeys();
  token = '';
  /** Live nodes. */
  nodes: Proc[] = [];
  gateways: Proc[] = [];
  /** Every process ever spawned, for log scans. */
  readonly all: Proc[] = [];
  readonly crashes: Crash[] = [];
  private readonly expectedExit = new Set<Proc>();
  private activeName: string | undefined;
  private nodeSeq = 0;
  private rolePoll: NodeJS.Timeout | undefined;
  private gwPorts: number[] = [];
  private polling = false;

  constructor(private readonly o: ChaosClusterOptions = {}) {}

  /** The URL every node advertises as api_addr (standbys' 307s point here). */
  get apiAddr(): string {
    return `http://127.0.0.1:${this.gwPorts[0]}`;
  }

  async start(): Promise<void> {
    this.store = await startStore(this.o.store ?? 'single');
    this.gwPorts = [await freePort(), await freePort()];
    this.nodes = await Promise.all([0, 1, 2].map(() => this.spawnNode()));
    this.token = await initCluster(this.nodes[0]!.url);
    this.gateways = await Promise.all(this.gwPorts.map((port, i) => this.spawnGateway(`gw${i + 1}`, port)));
    await this.waitHealthy();
    this.rolePoll = setInterval(() => void this.pollRoles(), ROLE_POLL_MS);
    this.rolePoll.unref();
  }

  /** A node that is not the active one, as last observed (any node if none is known). */
  standbys(): Proc[] {
    const live = this.nodes.filter(alive);
    const s = live.filter((n) => n.name !== this.activeName);
    return s.length > 0 ? s : live;
  }

  /** A node's role as last observed (polled every ROLE_POLL_MS, so it may lag a failover). */
  roleOf(name: string): 'active' | 'standby' {
    return name === this.activeName ? 'active' : 'standby';
  }

  /**
   * Every place a client can send a request to: both gateways (labelled `gw1`, `gw2`) and every
   * live node directly (`standby:n2`, `active:n1`: the role as last observed).
   */
  targets(): Array<{ url: string; label: string }> {
    return [
      ...this.gateways.map((g) => ({ url: g.url, label: g.name })),
      ...this.nodes.filter(alive).map((n) => ({ url: n.url, label: `${this.roleOf(n.name)}:${n.name}` })),
    ];
  }

  /** The node whose sys/health answers 200, if any. */
  async active(): Promise<Proc | undefined> {
    const live = this.nodes.filter(alive);
    const codes = await Promise.all(live.map((n) => probe(n.url, '/v1/sys/health')));
    return live[codes.indexOf(200)];
  }

  async spawnNode(): Promise<Proc> {
    const name = `n${++this.nodeSeq}`;
    const p = await spawnNode(name, {
      redisUrl: this.store.url,
      keys: this.keys,
      apiAddr: this.apiAddr,
      env: { ...this.store.nodeEnv, ...this.o.env },
    });
    this.track(p);
    return p;
  }

  async spawnGateway(name: string, port: number): Promise<Proc> {
    const p = await spawnGateway(name, {
      redisUrl: this.store.url,
      keys: this.keys,
      port,
      // gw2 spreads reads over the standbys (gw1 sends everything to the active): both routings
      // are judged by the same checkers through every fault.
      env: {
        ...(await this.store.gatewayEnv()),
        ...(name === 'gw2' ? { LEADERWAY_GATEWAY_READ_ROUTING: 'spread' } : {}),
        ...this.o.env,
      },
    });
    this.track(p);
    return p;
  }

  /** Stops `p` on purpose (not a crash) and resolves its exit code. */
  async stopProc(p: Proc, signal: NodeJS.Signals): Promise<number | null> {
    this.expectedExit.add(p);
    return p.stop(signal);
  }

  /** Replaces a stopped node by a fresh one. */
  async replaceNode(dead: Proc): Promise<Proc> {
    const fresh = await this.spawnNode();
    this.nodes = this.nodes.map((n) => (n === dead ? fresh : n));
    return fresh;
  }

  /** Restarts a stopped gateway on its own port. */
  async restartGateway(dead: Proc): Promise<Proc> {
    const fresh = await this.spawnGateway(dead.name, dead.port);
    this.gateways = this.gateways.map((g) => (g === dead ? fresh : g));
    return fresh;
  }

  /**
   * Healthy: the store healthy (replicas in sync), every live node unsealed (200 or 429), exactly one active, both gateways ready and
   * a read through each gateway answered.
   */
  async waitHealthy(timeoutMs = RECOVERY_TIMEOUT_MS): Promise<void> {
    await waitFor(
      async () => {
        if (!(await this.store.healthy())) return false;
        const codes = await Promise.all(this.nodes.map((n) => probe(n.url, '/v1/sys/health')));
        if (codes.some((c) => c !== 200 && c !== 429)) return false;
        if (codes.filter((c) => c === 200).length !== 1) return false;
        for (const g of this.gateways) {
          if ((await probe(g.url, '/-/ready')) !== 200) return false;
          const c = await probe(g.url, '/v1/secret/data/chaos-health', this.token);
          if (c !== 404 && c !== 200) return false;
        }
        return true;
      },
      timeoutMs,
      'a healthy cluster (one active, all unsealed, gateways ready)',
      100,
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.rolePoll);
    for (const p of this.all) this.expectedExit.add(p);
    await Promise.all(this.all.map((p) => p.stop('SIGKILL')));
    await this.store?.stop();
  }

  private track(p: Proc): void {
    this.all.push(p);
    p.child.once('exit', (code, signal) => {
      if (this.expectedExit.has(p)) return;
      this.crashes.push({ name: p.name, code, signal, at: Date.now(), tail: p.lines.slice(-15) });
    });
  }

  private async pollRoles(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const a = await this.active();
      if (a) this.activeName = a.name;
    } finally {
      this.polling = false;
    }
  }
}

function alive(p: Proc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** The status of `GET base+path`, or 0 when the process does not answer in time. */
export async function probe(base: string, path: string, token?: string): Promise<number> {
  try {
    const r = await request(base + path, {
      headers: token ? { 'x-vault-token': token } : {},
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    await r.body.dump();
    return r.statusCode;
  } catch {
    return 0;
  }
}
