/**
 * A whole deployment for end-to-end tests: a real Redis (or other storage: `startDeployment`),
 * `nodes` real nodes whose api_addr is the gateway, and one real gateway in front, initialized,
 * with every node unsealed and the gateway following the active one.
 */

import { findActive, waitActive } from './cluster';
import { call, initCluster } from './http';
import { freePort } from './ports';
import { type Proc, spawnGateway, spawnNode, type TestKeys, testKeys, waitFor } from './procs';
import { type RedisServer, startRedis } from './redis';

/** A deployment on Redis. */
export interface GatewayCluster extends Deployment {
  redis: RedisServer;
}

/** Nodes and a gateway, on whatever storage they were started with. */
export interface Deployment {
  keys: TestKeys;
  nodes: Proc[];
  gw: Proc;
  /** The root token from init. */
  token: string;
  /** The active node (waits for one, and for the gateway to follow it). */
  active(): Promise<Proc>;
  /** A live node that is not active. */
  standby(): Promise<Proc>;
  /** The three ways in: the gateway, a standby (forwarding) and the active node. */
  targets(): Array<[name: string, target: () => Promise<Proc>]>;
  stop(): Promise<void>;
}

export interface GatewayClusterOptions {
  nodes?: number;
  nodeEnv?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
}

/** Where a deployment keeps its storage; `stop()` is called with the deployment's. */
export interface DeploymentStorage {
  /** LEADERWAY_REDIS_URL of nodes and gateway (a dummy when storage is not Redis). */
  redisUrl: string;
  /** Variables of every node (under `nodeEnv`'s). */
  nodeEnv: Record<string, string>;
  /**
   * Variables of the gateway (under `gatewayEnv`'s), asked once the nodes are initialized: the
   * tables a reader role is granted on exist by then.
   */
  gatewayEnv(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export async function startGatewayCluster(o: GatewayClusterOptions = {}): Promise<GatewayCluster> {
  const redis = await startRedis();
  const d = await startDeployment(
    { redisUrl: redis.url, nodeEnv: {}, gatewayEnv: async () => ({}), stop: () => redis.stop() },
    o,
  );
  return Object.assign(d, { redis });
}

/** Starts nodes and a gateway on `storage` (stopped with them, or here if they fail to come up). */
export async function startDeployment(
  storage: DeploymentStorage,
  o: GatewayClusterOptions = {},
): Promise<Deployment> {
  const started: Proc[] = [];
  // A cluster that fails to come up is stopped here: its caller never gets it to stop, and its
  // processes would keep the test run from ending.
  const abandon = async (err: unknown): Promise<never> => {
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    await storage.stop();
    throw err;
  };
  try {
    return await bringUp(storage, started, o);
  } catch (err) {
    return abandon(err);
  }
}

async function bringUp(
  storage: DeploymentStorage,
  started: Proc[],
  o: GatewayClusterOptions,
): Promise<Deployment> {
  const keys = testKeys();
  const port = await freePort();
  const apiAddr = `http://127.0.0.1:${port}`;
  const names = Array.from({ length: o.nodes ?? 3 }, (_, i) => `n${i + 1}`);
  const nodes = await Promise.all(
    names.map(async (n) => {
      const p = await spawnNode(n, {
        redisUrl: storage.redisUrl,
        keys,
        apiAddr,
        env: { ...storage.nodeEnv, ...o.nodeEnv },
      });
      started.push(p);
      return p;
    }),
  );
  const token = await initCluster(nodes[0]!.url);
  const gw = await spawnGateway('gw', {
    redisUrl: storage.redisUrl,
    keys,
    port,
    env: { ...(await storage.gatewayEnv()), ...o.gatewayEnv },
  });
  started.push(gw);
  const live = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  const c: Deployment = {
    keys,
    nodes,
    gw,
    token,
    async active() {
      const a = await waitActive(live(), 20_000);
      await waitFor(
        async () => ((await call(gw.url, '/-/ready')).body as { leader?: string }).leader === a.name,
        15_000,
        `the gateway following ${a.name}`,
      );
      return a;
    },
    async standby() {
      const a = await findActive(live());
      const s = live().find((n) => n !== a);
      if (!s) throw new Error('no standby');
      return s;
    },
    targets() {
      return [
        ['gateway', async () => gw],
        ['standby', () => c.standby()],
        ['active', () => c.active()],
      ];
    },
    async stop() {
      await Promise.all([...nodes, gw].map((p) => p.stop('SIGKILL')));
      await storage.stop();
    },
  };
  for (const n of nodes) {
    await waitFor(
      async () => {
        const l = await call(n.url, '/v1/sys/leader');
        return l.status === 200 && (l.body as { leader_address: string }).leader_address !== '';
      },
      15_000,
      `${n.name} unsealed and following the leader`,
    );
  }
  await c.active();
  return c;
}
