/**
 * On a single Redis no WAIT is sent (there is no replica to wait for). The Sentinel topology's
 * tests — WAIT sent behind Sentinel, and the failover sequences under load (kill -9 and return on
 * its own data, SIGSTOP, SENTINEL FAILOVER, a replica promoted and demoted) — are in
 * sentinel-sequences.test.ts, on one topology.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { spawnNode, testKeys } from '../helpers/procs';
import { startRedis } from '../helpers/redis';

describe('single Redis: no WAIT', () => {
  it('sends no WAIT when there are no replicas', async () => {
    const redis = await startRedis();
    const node = await spawnNode('solo', { redisUrl: redis.url, keys: testKeys() });
    try {
      const token = await initCluster(node.url);
      await waitActive([node], 15_000);
      const w = await call(node.url, '/v1/secret/data/solo', { token, body: { data: { v: 1 } } });
      assert.equal(w.status, 200, w.text);
      const stats = String(await redis.cli('INFO', 'commandstats'));
      assert.match(stats, /cmdstat_evalsha:calls=[1-9]/, 'positive control: the write reached Redis');
      assert.doesNotMatch(stats, /cmdstat_wait:/);
    } finally {
      await node.stop('SIGKILL');
      await redis.stop();
    }
  });
});
