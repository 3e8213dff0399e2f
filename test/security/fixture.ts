/**
 * The cluster the security tests attack: Redis, three nodes (debug logs, so request lines show
 * the client address they believed) whose api_addr is the gateway, one gateway with a short
 * failover wait (several checks expect a 503 while no valid leader exists), every process
 * exporting traces to a local receiver, and one secret written whose value carries `marker`.
 */
import assert from 'node:assert/strict';
import { otlpEnv } from '../chaos/chaos';
import { waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { type OtlpReceiver, startOtlpReceiver } from '../helpers/otlp-receiver';
import { freePort } from '../helpers/ports';
import { type Proc, spawnGateway, spawnNode, type TestKeys, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

export interface SecurityCluster {
  redis: RedisServer;
  keys: TestKeys;
  nodes: Proc[];
  gw: Proc;
  /** Other processes a test started (stopped with the cluster; their logs are scanned too). */
  extra: Proc[];
  token: string;
  traces: OtlpReceiver;
  /** Waits for one active node that the gateway (or `g`) follows, and returns it. */
  healthy(g?: Proc): Promise<Proc>;
  /** A fresh gateway (failover wait 1 s) that remembers nothing. */
  freshGateway(name: string): Promise<Proc>;
  stop(): Promise<void>;
}

export async function startSecurityCluster(marker: string): Promise<SecurityCluster> {
  const traces = await startOtlpReceiver();
  const redis = await startRedis();
  const keys = testKeys();
  const port = await freePort();
  const apiAddr = `http://127.0.0.1:${port}`;
  const env = { LEADERWAY_LOG_LEVEL: 'debug', ...otlpEnv(traces.url) };
  const nodes = await Promise.all(
    ['n1', 'n2', 'n3'].map((n) => spawnNode(n, { redisUrl: redis.url, keys, apiAddr, env })),
  );
  const token = await initCluster(nodes[0]!.url);
  const gw = await spawnGateway('gw', {
    redisUrl: redis.url,
    keys,
    port,
    env: { LEADERWAY_FAILOVER_WAIT: '2s', ...otlpEnv(traces.url) },
  });
  const extra: Proc[] = [];
  const leaderOf = async (g: Proc) => ((await call(g.url, '/-/ready')).body as { leader?: string }).leader;
  const c: SecurityCluster = {
    redis,
    keys,
    nodes,
    gw,
    extra,
    token,
    traces,
    async healthy(g = gw) {
      const a = await waitActive(nodes, 20_000);
      await waitFor(async () => (await leaderOf(g)) === a.name, 15_000, `${g.name} following ${a.name}`);
      return a;
    },
    async freshGateway(name) {
      const p = await spawnGateway(name, {
        redisUrl: redis.url,
        keys,
        env: { LEADERWAY_FAILOVER_WAIT: '1s' },
      });
      extra.push(p);
      return p;
    },
    async stop() {
      await Promise.all([...nodes, gw, ...extra].map((p) => p.stop('SIGKILL')));
      await redis.stop();
      await traces.close();
    },
  };
  for (const n of nodes) {
    await waitFor(
      async () => [200, 429].includes((await call(n.url, '/v1/sys/health')).status),
      15_000,
      'unsealed',
    );
  }
  await c.healthy();
  const w = await call(gw.url, '/v1/secret/data/sec', { token, body: { data: { v: `${marker}value` } } });
  assert.equal(w.status, 200, w.text);
  return c;
}
