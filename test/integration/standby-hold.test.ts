/**
 * A standby holds a forwarded request that the active did not serve, instead of answering 307 at
 * once: here the active's Redis freezes for longer than its data command timeout (2 s), so the
 * active answers "not served: nothing stored"; the standby retries until Redis is back and the
 * client gets its answer. The nodes' api_addr points nowhere, so a 307 would be a failure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { type Proc, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

/** Longer than the active's data command timeout (2 s), well inside the lock TTL. */
const FREEZE_MS = 3_500;

describe('standby forwarding through a storage pause', () => {
  let redis: RedisServer;
  let nodes: Proc[] = [];
  let active: Proc;
  let standby: Proc;
  let token = '';

  before(async () => {
    redis = await startRedis();
    const keys = testKeys();
    const env = { LEADERWAY_LOCK_TTL: '15s', LEADERWAY_LIVENESS_GRACE: '5s' };
    for (const name of ['n1', 'n2']) {
      nodes.push(await spawnNode(name, { redisUrl: redis.url, keys, apiAddr: 'http://127.0.0.1:9', env }));
    }
    token = await initCluster((nodes[0] as Proc).url);
    active = await waitActive(nodes);
    standby = nodes.find((n) => n !== active) as Proc;
    await call(active.url, '/v1/secret/data/held', { token, body: { data: { v: 1 } } });
    // The standby knows the active and forwards to it.
    await waitFor(
      async () => (await call(standby.url, '/v1/secret/data/held', { token })).status === 200,
      15_000,
      'a read forwarded by the standby',
    );
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    nodes = [];
    await redis?.stop();
  });

  it('answers the read once Redis is back, not with a 307', async () => {
    redis.pause();
    const t0 = Date.now();
    const resumed = new Promise<void>((r) =>
      setTimeout(() => {
        redis.resume();
        r();
      }, FREEZE_MS),
    );
    try {
      const res = await call(standby.url, '/v1/secret/data/held', { token });
      const waited = Date.now() - t0;
      assert.equal(res.status, 200, `${res.status} ${res.text}`);
      assert.deepEqual((res.body as { data: { data: unknown } }).data.data, { v: 1 });
      // The hold is what made it succeed: the answer came after Redis came back.
      assert.ok(waited >= FREEZE_MS - 100, `answered after ${waited} ms, before Redis was back`);
    } finally {
      await resumed;
    }
  });
});
