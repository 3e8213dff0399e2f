/**
 * Redis stalls writes (CLIENT PAUSE … WRITE: reads go on, scripts wait) for longer than the data
 * command timeout (2 s) but shorter than what the lock has left: the node gives up waiting and
 * answers, yet its write is queued in Redis and runs when the pause ends (the fence passes: the
 * lock is still held). The client must not be told something that reads as "not done".
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { type Proc, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

/** Longer than the node's data command timeout (2 s), well inside the 5 s lock TTL. */
const STALL_MS = 2_600;

describe('chaos: a write whose Redis command timed out', () => {
  let redis: RedisServer;
  let node: Proc;
  let token = '';

  before(async () => {
    redis = await startRedis();
    node = await spawnNode('n1', {
      redisUrl: redis.url,
      keys: testKeys(),
      env: { LEADERWAY_LOCK_TTL: '5s' },
    });
    token = await initCluster(node.url);
    await waitActive([node]);
  });

  after(async () => {
    await node?.stop('SIGKILL');
    await redis?.stop();
  });

  it('is answered "outcome unknown", not like a write that was refused', async () => {
    await redis.cli('CLIENT', 'PAUSE', String(STALL_MS), 'WRITE');
    const res = await call(node.url, '/v1/secret/data/stalled', { token, body: { data: { v: 1 } } });
    const read = await waitFor(
      async () => {
        const r = await call(node.url, '/v1/secret/data/stalled', { token });
        return r.status === 200 || r.status === 404 ? r : null;
      },
      15_000,
      'a read after the stall',
    );
    // The scenario this test is about: the node answered before Redis ran the write.
    assert.equal(read.status, 200, 'the write was not applied after all: the stall did not reproduce');
    if (res.status !== 200) {
      assert.match(String((res.body as { errors?: string[] }).errors?.[0]), /outcome is unknown/, res.text);
    }
  });
});
