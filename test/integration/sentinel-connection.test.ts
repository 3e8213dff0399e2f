/**
 * What a data connection does when its Redis server changes role under it, against real Redis
 * (no Sentinel needed): READONLY — the server was demoted to a replica — makes it reconnect, so
 * behind Sentinel it asks the Sentinels for the primary again (the fallback when no
 * `+switch-master` was heard); NOREPLICAS — `min-replicas-to-write` with a replica missing — is
 * answered as a clear, Vault-shaped 503 naming the cause, counted by code, not a timeout.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { isLwError } from '../../shared/errors';
import { NO_REPLICAS_MESSAGE } from '../../shared/storage/redis/no-replicas';
import { RedisBackend } from '../../shared/storage/redis/redis-backend';
import { waitActive } from '../helpers/cluster';
import { call, initCluster, scrapeMetric } from '../helpers/http';
import { spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

/** The id Redis gave the backend's data connection (CLIENT LIST, by its connection name). */
async function dataClientId(server: RedisServer): Promise<string | null> {
  const list = String(await server.cli('CLIENT', 'LIST'));
  return /id=(\d+) [^\n]*name=leaderway-data-/.exec(list)?.[1] ?? null;
}

describe('a Redis server changing role under a connection', () => {
  const servers: RedisServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('READONLY (the server was demoted) makes the connection reconnect', async () => {
    const [x, y] = await Promise.all([startRedis(), startRedis()]);
    servers.push(x, y);
    const backend = new RedisBackend({ url: x.url });
    try {
      await backend.start();
      await backend.put('before', Buffer.from('1'));
      const first = await dataClientId(x);
      assert.ok(first, 'positive control: the data connection is listed');
      await x.cli('REPLICAOF', '127.0.0.1', String(y.port));
      await assert.rejects(backend.put('after', Buffer.from('2')), (err) =>
        isLwError(err, 'LW_ERR_STORAGE_UNAVAILABLE'),
      );
      // Reconnected: Redis lists a new connection (behind Sentinel it would be to the primary).
      await waitFor(
        async () => {
          const id = await dataClientId(x);
          return id !== null && id !== first;
        },
        3_000,
        'the data connection to reconnect after READONLY',
      );
    } finally {
      await backend.close();
    }
  });

  it('NOREPLICAS is a 503 that names min-replicas-to-write, counted by code and on its own, not a timeout', async () => {
    const redis = await startRedis({ args: ['--min-replicas-max-lag', '10'] });
    servers.push(redis);
    const node = await spawnNode('noreplicas', { redisUrl: redis.url, keys: testKeys() });
    try {
      const token = await initCluster(node.url);
      await waitActive([node], 15_000);
      const ok = await call(node.url, '/v1/secret/data/k', { token, body: { data: { v: 1 } } });
      assert.equal(ok.status, 200, ok.text);
      // The replica is gone (here: none was ever there).
      await redis.cli('CONFIG', 'SET', 'min-replicas-to-write', '1');
      const before = await scrapeMetric(
        node.metricsUrl,
        'leaderway_request_errors_total',
        'LW_ERR_STORAGE_UNAVAILABLE',
      );
      const t0 = performance.now();
      const r = await call(node.url, '/v1/secret/data/k', { token, body: { data: { v: 2 } } });
      const tookMs = performance.now() - t0;
      assert.equal(r.status, 503, r.text);
      assert.deepEqual(r.body, { errors: [NO_REPLICAS_MESSAGE] });
      assert.equal(r.headers['retry-after'], '1');
      assert.ok(tookMs < 1_000, `answered after ${tookMs.toFixed(0)} ms: a refusal, not a timeout`);
      const afterCount = await scrapeMetric(
        node.metricsUrl,
        'leaderway_request_errors_total',
        'LW_ERR_STORAGE_UNAVAILABLE',
      );
      assert.ok(afterCount > before, 'the refusal is counted');
      assert.equal(
        await scrapeMetric(node.metricsUrl, 'leaderway_storage_noreplicas_writes_total'),
        1,
        'and counted as NOREPLICAS, which the LeaderwayRedisReplicasMissing alert watches',
      );
      // The replica is back: writes go through again.
      await redis.cli('CONFIG', 'SET', 'min-replicas-to-write', '0');
      const again = await call(node.url, '/v1/secret/data/k', { token, body: { data: { v: 3 } } });
      assert.equal(again.status, 200, again.text);
    } finally {
      await node.stop('SIGKILL');
    }
  });
});
