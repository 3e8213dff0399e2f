/**
 * The benchmark's cluster: a real Redis, three real nodes (API over TLS, as in production), and
 * optionally a gateway and HAProxy in front of the same nodes. Built on the integration-test
 * helpers (`startRedis`, `spawnLeaderway`), with the product's default lock TTL unless told
 * otherwise. Everything started here is stopped by `close()`, and SIGKILLed if the bench dies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freePorts } from '../../test/helpers/ports';
import {
  type GatewayPkiFiles,
  gatewayPkiFiles,
  type Proc,
  spawnLeaderway,
  testKeys,
} from '../../test/helpers/procs';
import { type RedisServer, startRedis } from '../../test/helpers/redis';
import { type HAProxy, startHAProxy } from './haproxy';
import { call, tryCall } from './http';
import { sleep } from './stats';
import { type CertFiles, writeApiCert } from './tls';

/** The product default (`LEADERWAY_LOCK_TTL`); the figures say which TTL they used. */
export const DEFAULT_LOCK_TTL = '5s';
/** How long any orchestration wait (an active node, a ready gateway) may take. */
const SETTLE_TIMEOUT_MS = 30_000;

/** One node: its process and addresses. */
export interface BenchNode {
  readonly name: string;
  proc: Proc;
  readonly apiUrl: string;
  readonly port: number;
  readonly clusterPort: number;
  /** Its metrics listener (`/metrics` without a token), when the cluster was started with `metrics`. */
  readonly metricsUrl?: string;
}

export interface ClusterOptions {
  lockTtl?: string;
  gateway?: boolean;
  haproxy?: boolean;
  /** Extra environment for the gateway (e.g. OTEL_*). */
  gatewayEnv?: Record<string, string>;
  /** Node flags for the gateway (e.g. --cpu-prof). */
  gatewayNodeArgs?: string[];
  /** Give each node a metrics listener (LEADERWAY_METRICS_ADDR; idle unless scraped). */
  metrics?: boolean;
}

/** Polls `fn` until it returns a truthy value; throws `what` after `timeoutMs`. */
export async function until<T>(
  fn: () => Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = SETTLE_TIMEOUT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

const alive = (p: Proc) => p.child.exitCode === null && p.child.signalCode === null;

export class BenchCluster {
  readonly keys = testKeys();
  nodes: BenchNode[] = [];
  gateway: Proc | undefined;
  haproxy: HAProxy | undefined;
  token = '';
  readonly lockTtl: string;
  /** redis-server's pid (for CPU accounting). */
  redisPid: number | undefined;
  private gatewayPort = 0;
  /** Gateways started with `startExtraGateway`, stopped by `close()`. */
  private readonly extraGateways = new Set<Proc>();

  private constructor(
    readonly redis: RedisServer,
    readonly dir: string,
    readonly cert: CertFiles,
    readonly pki: GatewayPkiFiles,
    o: ClusterOptions,
  ) {
    this.lockTtl = o.lockTtl ?? DEFAULT_LOCK_TTL;
  }

  /** Starts Redis, three nodes (initialised), and the gateway and HAProxy if asked for. */
  static async start(o: ClusterOptions = {}): Promise<BenchCluster> {
    const dir = mkdtempSync(path.join(tmpdir(), 'lw-bench-'));
    const redis = await startRedis();
    const c = new BenchCluster(redis, dir, await writeApiCert(dir), await gatewayPkiFiles(), o);
    try {
      const info = String(await redis.cli('INFO', 'server'));
      c.redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]) || undefined;
      const ports = await freePorts(11);
      for (let i = 0; i < 3; i++) {
        const port = ports[2 * i] as number;
        const clusterPort = ports[2 * i + 1] as number;
        const metricsPort = o.metrics ? (ports[8 + i] as number) : undefined;
        const name = `n${i + 1}`;
        c.nodes.push({
          name,
          port,
          clusterPort,
          apiUrl: `https://127.0.0.1:${port}`,
          metricsUrl: metricsPort ? `http://127.0.0.1:${metricsPort}` : undefined,
          proc: await c.spawnNode(name, port, clusterPort, [], metricsPort),
        });
      }
      const init = await call(c.nodes[0]!.apiUrl, '/v1/sys/init', { method: 'PUT', body: {} });
      if (init.status !== 200) throw new Error(`init failed: ${init.status} ${init.text}`);
      c.token = init.json<{ root_token: string }>().root_token;
      await c.waitActive();
      c.gatewayPort = ports[6] as number;
      if (o.gateway) await c.startGateway(o.gatewayEnv ?? {}, o.gatewayNodeArgs ?? []);
      if (o.haproxy) {
        c.haproxy = await startHAProxy({
          dir,
          port: ports[7] as number,
          servers: c.nodes.map((n) => ({ name: n.name, port: n.port })),
        });
      }
      await c.settle();
      return c;
    } catch (err) {
      await c.close();
      throw err;
    }
  }

  private spawnNode(
    name: string,
    port: number,
    clusterPort: number,
    nodeArgs: string[] = [],
    metricsPort?: number,
  ): Promise<Proc> {
    const metrics: Record<string, string> = metricsPort
      ? { LEADERWAY_METRICS_ADDR: `127.0.0.1:${metricsPort}` }
      : {};
    return spawnLeaderway(
      name,
      ['server'],
      {
        LEADERWAY_LISTEN_ADDR: `127.0.0.1:${port}`,
        LEADERWAY_CLUSTER_LISTEN_ADDR: `127.0.0.1:${clusterPort}`,
        VAULT_API_ADDR: `https://127.0.0.1:${port}`,
        VAULT_CLUSTER_ADDR: `https://127.0.0.1:${clusterPort}`,
        LEADERWAY_REDIS_URL: this.redis.url,
        LEADERWAY_SEAL_KEY: this.keys.sealKey,
        LEADERWAY_ADVERTISEMENT_KEY: this.keys.adKey,
        LEADERWAY_ADVERTISEMENT_SIGNING_KEY: this.keys.signingKey,
        LEADERWAY_GATEWAY_CA_FILE: this.pki.caFile,
        LEADERWAY_NODE_ID: name,
        LEADERWAY_LOCK_TTL: this.lockTtl,
        LEADERWAY_TLS_CERT_FILE: this.cert.certFile,
        LEADERWAY_TLS_KEY_FILE: this.cert.keyFile,
        LEADERWAY_LOG_LEVEL: 'info',
        OTEL_SDK_DISABLED: 'true',
        ...metrics,
      },
      { port, clusterPort },
      { nodeArgs },
    );
  }

  /** Starts (or restarts, with new env and Node flags) the gateway on its fixed port. */
  async startGateway(env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Proc> {
    if (this.gateway && alive(this.gateway)) await this.gateway.stop('SIGKILL');
    this.gateway = await this.spawnGateway('gw', this.gatewayPort, env, nodeArgs);
    return this.gateway;
  }

  /**
   * Starts a second gateway beside the cluster's (e.g. with other routing), on a port of its own;
   * the caller stops it (or `close()` does).
   */
  async startExtraGateway(name: string, env: Record<string, string>): Promise<{ proc: Proc; url: string }> {
    const port = (await freePorts(1))[0] as number;
    const proc = await this.spawnGateway(name, port, env, []);
    this.extraGateways.add(proc);
    void proc.exited.then(() => this.extraGateways.delete(proc));
    return { proc, url: `http://127.0.0.1:${port}` };
  }

  private async spawnGateway(
    name: string,
    port: number,
    env: Record<string, string>,
    nodeArgs: string[],
  ): Promise<Proc> {
    const url = `http://127.0.0.1:${port}`;
    const proc = await spawnLeaderway(
      name,
      ['gateway'],
      {
        LEADERWAY_LISTEN_ADDR: `127.0.0.1:${port}`,
        LEADERWAY_REDIS_URL: this.redis.url,
        LEADERWAY_ADVERTISEMENT_KEY: this.keys.adKey,
        LEADERWAY_ADVERTISEMENT_VERIFY_KEY: this.keys.verifyKey,
        LEADERWAY_GATEWAY_CERT_FILE: this.pki.certFile,
        LEADERWAY_GATEWAY_KEY_FILE: this.pki.keyFile,
        LEADERWAY_NODE_ID: name,
        LEADERWAY_LOG_LEVEL: 'info',
        OTEL_SDK_DISABLED: 'true',
        ...env,
      },
      { port },
      { nodeArgs },
    );
    try {
      await until(async () => (await tryCall(url, '/-/ready'))?.status === 200, `the gateway ${name} ready`);
    } catch (err) {
      await proc.stop('SIGKILL');
      throw err;
    }
    return proc;
  }

  get gatewayUrl(): string {
    return `http://127.0.0.1:${this.gatewayPort}`;
  }

  /** The node whose sys/health answers 200 (active), if any. */
  async active(): Promise<BenchNode | undefined> {
    const states = await Promise.all(
      this.nodes.map(
        async (n) =>
          alive(n.proc) && (await tryCall(n.apiUrl, '/v1/sys/health', { timeoutMs: 2_000 }))?.status === 200,
      ),
    );
    return this.nodes[states.indexOf(true)];
  }

  /** Waits for an active node other than `not`. */
  waitActive(not?: BenchNode, timeoutMs = SETTLE_TIMEOUT_MS): Promise<BenchNode> {
    return until(
      async () => {
        const a = await this.active();
        return a && a !== not ? a : undefined;
      },
      'an active node',
      timeoutMs,
    );
  }

  /** Live nodes that are not `active`. */
  standbys(active: BenchNode): BenchNode[] {
    return this.nodes.filter((n) => n !== active && alive(n.proc));
  }

  /**
   * Replaces a stopped node with a fresh process on the same ports (HAProxy's config stays
   * valid), with extra Node flags if given (e.g. `--cpu-prof`).
   */
  async restartNode(n: BenchNode, nodeArgs: string[] = []): Promise<void> {
    if (alive(n.proc)) await n.proc.stop('SIGKILL');
    const metricsPort = n.metricsUrl ? Number(new URL(n.metricsUrl).port) : undefined;
    n.proc = await this.spawnNode(n.name, n.port, n.clusterPort, nodeArgs, metricsPort);
  }

  /**
   * Waits until the cluster is steady: every node up, one active, every standby knows it, the
   * gateway routes to it, and HAProxy has exactly the active server UP.
   */
  async settle(): Promise<BenchNode> {
    const active = await this.waitActive();
    for (const n of this.nodes) {
      await until(async () => {
        const r = await tryCall(n.apiUrl, '/v1/sys/leader');
        return r?.status === 200 && r.json<{ leader_address: string }>().leader_address === active.apiUrl;
      }, `${n.name} following ${active.name}`);
    }
    if (this.gateway) {
      await until(async () => {
        const r = await tryCall(this.gatewayUrl, '/-/ready');
        return r?.status === 200 && r.json<{ leader: string }>().leader === active.name;
      }, `the gateway routing to ${active.name}`);
    }
    if (this.haproxy) {
      const hp = this.haproxy;
      await until(async () => {
        const s = await hp.serverStates();
        return this.nodes.every((n) => (s[n.name] === 'UP') === (n === active));
      }, `HAProxy with only ${active.name} UP`);
    }
    return active;
  }

  /** Every live pid the cluster runs (nodes, gateway, HAProxy, Redis). */
  pids(): number[] {
    const out = this.nodes.map((n) => n.proc.child.pid);
    out.push(this.gateway?.child.pid, this.haproxy?.pid, this.redisPid);
    return out.filter((p): p is number => p !== undefined && p > 0);
  }

  /** Stops everything this cluster started. Idempotent. */
  async close(): Promise<void> {
    await this.haproxy?.stop();
    await Promise.all(
      [this.gateway, ...this.extraGateways, ...this.nodes.map((n) => n.proc)].map((p) => p?.stop('SIGKILL')),
    );
    await this.redis.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
