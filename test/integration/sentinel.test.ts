/**
 * HA all the way down: three nodes and a gateway on a real Sentinel topology (a primary, two
 * replicas, three Sentinels on loopback). Writes are acknowledged only once a replica has them
 * (Redis WAIT), so a kill -9 of the primary loses none; while Sentinel fails over, the gateway
 * holds requests instead of failing them (reads never fail; a write may only get "outcome
 * unknown"). On a single Redis no WAIT is sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { startRedis } from '../helpers/redis';
import { type SentinelTopology, startSentinel } from '../helpers/sentinel';
import { startWriters } from '../helpers/writers';

const KILLS = 3;

describe('Sentinel: replicated Redis', () => {
  let topo: SentinelTopology;
  const keys = testKeys();
  const nodes: Proc[] = [];
  let gw: Proc;
  let token = '';

  before(async () => {
    topo = await startSentinel();
    const port = await freePort();
    const apiAddr = `http://127.0.0.1:${port}`;
    for (const n of ['n1', 'n2', 'n3']) nodes.push(await spawnNode(n, { redisUrl: topo.url, keys, apiAddr }));
    token = await initCluster((nodes[0] as Proc).url);
    gw = await spawnGateway('gw', {
      redisUrl: topo.url,
      keys,
      port,
      env: { LEADERWAY_FAILOVER_WAIT: '15s' },
    });
    await waitActive(nodes, 20_000);
    await waitFor(async () => (await call(gw.url, '/-/ready')).status === 200, 20_000, 'gateway ready');
  });

  after(async () => {
    await Promise.all([gw?.stop('SIGKILL'), ...nodes.map((n) => n.stop('SIGKILL'))]);
    await topo?.stop();
  });

  it('acknowledges a write only once a replica has it (WAIT is sent)', async () => {
    const w = await call(gw.url, '/v1/secret/data/replicated', { token, body: { data: { v: 1 } } });
    assert.equal(w.status, 200, w.text);
    const primary = await topo.primary();
    const stats = String(await primary.cli('INFO', 'commandstats'));
    assert.match(stats, /cmdstat_wait:calls=[1-9]/, 'no WAIT reached the primary');
  });

  it(`kill -9 of the primary, ${KILLS} times under load: no failed read, no lost acknowledged write`, {
    timeout: 240_000,
  }, async (t) => {
    const load = startWriters(gw.url, token);
    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 1_500));
      const old = await topo.primary();
      await old.kill('SIGKILL');
      const next = await topo.waitFailover(old);
      t.diagnostic(`kill ${k + 1}: primary ${old.port} → ${next.port}`);
      // The old primary returns empty (no persistence in this topology) and Sentinel makes it a
      // replica of the new one.
      await old.start();
      await topo.waitReplicasSynced(30_000);
    }
    await new Promise((r) => setTimeout(r, 1_500));
    const tally = await load.stop();
    t.diagnostic(
      `reads ${tally.reads}, writes ${tally.writes}, outcome unknown ${tally.unknown}, longest ${tally.longestMs.toFixed(0)} ms`,
    );
    assert.deepEqual(tally.failedReads, [], 'a read failed during a Redis failover');
    assert.deepEqual(tally.failedWrites, [], 'a write failed other than "outcome unknown"');
    assert.ok(tally.writes > 0 && tally.reads > 0);
    for (const [key, n] of tally.acked) {
      const r = await call(gw.url, `/v1/secret/data/${key}`, { token });
      assert.equal(r.status, 200, r.text);
      const got = (r.body as { data: { data: { n: number } } }).data.data.n;
      // A later write may have landed with an unknown outcome; an acknowledged one is never lost.
      assert.ok(got >= n, `${key}: acknowledged ${n}, found ${got}`);
    }
  });
});

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
