/**
 * The gateway end to end: real Redis, three real nodes whose api_addr is the gateway, and real
 * gateway processes. Lock TTL is 2 s here.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { advertisementPath, encodeAdvertisement } from '../../shared/advertisement';
import { signingKeyFromSeed } from '../../shared/crypto/signing';
import { rawRedis, waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { startLoad } from '../helpers/load';
import { freePort } from '../helpers/ports';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

const LOAD_WORKERS = 8;
/** How long the load runs on each side of a fault. */
const LOAD_SETTLE_MS = 1_000;

describe('gateway in front of three nodes', () => {
  let redis: RedisServer;
  const keys = testKeys();
  let nodes: Proc[] = [];
  let gw1: Proc;
  let gw2: Proc;
  let token = '';

  before(async () => {
    redis = await startRedis({ appendonly: true });
    const gwPort = await freePort();
    const apiAddr = `http://127.0.0.1:${gwPort}`;
    nodes = await Promise.all(
      ['n1', 'n2', 'n3'].map((n) =>
        spawnNode(n, { redisUrl: redis.url, keys, apiAddr, env: { LEADERWAY_LOG_LEVEL: 'debug' } }),
      ),
    );
    token = await initCluster(nodes[0]!.url);
    await waitActive(nodes);
    for (const n of nodes) {
      await waitFor(
        async () => {
          const l = await call(n.url, '/v1/sys/leader');
          return l.status === 200 && (l.body as { leader_address: string }).leader_address !== '';
        },
        10_000,
        `${n.name} unsealed and following the leader`,
      );
    }
    gw1 = await spawnGateway('gw1', { redisUrl: redis.url, keys, port: gwPort });
    gw2 = await spawnGateway('gw2', { redisUrl: redis.url, keys });
    await waitFor(async () => (await call(gw1.url, '/-/ready')).status === 200, 10_000, 'gw1 ready');
    await waitFor(async () => (await call(gw2.url, '/-/ready')).status === 200, 10_000, 'gw2 ready');
  });

  after(async () => {
    await Promise.all([...nodes, gw1, gw2].filter(Boolean).map((p) => p.stop('SIGKILL')));
    await redis?.stop();
  });

  async function replaceNode(dead: Proc): Promise<void> {
    const idx = nodes.indexOf(dead);
    nodes[idx] = await spawnNode(`${dead.name}x`, {
      redisUrl: redis.url,
      keys,
      apiAddr: gw1.url,
      env: { LEADERWAY_LOG_LEVEL: 'debug' },
    });
  }

  it('reads and writes through two gateways; /v1/sys/health is the leader’s', async () => {
    const w = await call(gw1.url, '/v1/secret/data/both', { token, body: { data: { v: 1 } } });
    assert.equal(w.status, 200, w.text);
    const r = await call(gw2.url, '/v1/secret/data/both', { token });
    assert.equal(r.status, 200);
    assert.deepEqual((r.body as { data: { data: unknown } }).data.data, { v: 1 });
    const h = await call(gw2.url, '/v1/sys/health');
    assert.equal(h.status, 200);
    assert.equal((h.body as { standby: boolean }).standby, false);
    assert.equal((await call(gw1.url, '/-/live')).status, 200);
    const ready = await call(gw1.url, '/-/ready');
    assert.equal(ready.status, 200);
    assert.equal(ready.headers['cache-control'], 'no-store');
  });

  it('a standby’s 307 points at the gateway, which serves it from the leader: no loop', async () => {
    const active = await waitActive(nodes);
    const standby = nodes.find((n) => n !== active)!;
    // A write: a standby serves reads itself (standby reads), even when asked not to forward.
    const write = {
      token,
      method: 'PUT',
      body: { data: { v: 307 } },
      headers: { 'x-vault-no-request-forwarding': '1' },
    };
    const r = await call(standby.url, '/v1/secret/data/both', write);
    assert.equal(r.status, 307, r.text);
    assert.equal(r.headers.location, `${gw1.url}/v1/secret/data/both`);
    // Follow it like a Vault client would (one hop), with the same header.
    const followed = await call(gw1.url, '/v1/secret/data/both', write);
    assert.equal(followed.status, 200);
  });

  it('does not believe X-Forwarded-For from an untrusted client', async () => {
    const active = await waitActive(nodes);
    await call(gw1.url, '/v1/secret/data/xff', { token, headers: { 'x-forwarded-for': '203.0.113.9' } });
    const seen = await waitFor(
      () =>
        active.logs().filter((l) => l.msg === 'request' && l.via === 'gateway' && l.route === 'secret/data'),
      5_000,
      'a request log line on the active',
    );
    const last = seen[seen.length - 1]!;
    assert.equal(last.remote_addr, '127.0.0.1');
    assert.ok(!seen.some((l) => l.remote_addr === '203.0.113.9'), 'forged X-Forwarded-For was believed');
  });

  it('passes large values through: streamed (4 MiB) and held for replay (200 KB, many chunks)', async () => {
    // 4 MiB is over the 1 MiB replay cap: streamed. 200 KB arrives in many chunks and is held
    // whole, then sent as those chunks.
    for (const [key, bytes] of [
      ['big', 3 * 1024 * 1024],
      ['held', 150 * 1024],
    ] as const) {
      const big = randomBytes(bytes).toString('base64');
      const w = await call(gw2.url, `/v1/secret/data/${key}`, { token, body: { data: { big } } });
      assert.equal(w.status, 200, w.text.slice(0, 200));
      const r = await call(gw2.url, `/v1/secret/data/${key}`, { token });
      assert.equal(r.status, 200);
      assert.equal((r.body as { data: { data: { big: string } } }).data.data.big, big);
    }
  });

  it('step-down under a mixed read/write load: no request fails', async () => {
    const load = await startLoad({ base: gw1.url, token, workers: LOAD_WORKERS, mixed: true });
    await new Promise((r) => setTimeout(r, LOAD_SETTLE_MS));
    const a = await waitActive(nodes);
    assert.equal((await call(a.url, '/v1/sys/step-down', { method: 'PUT', token })).status, 204);
    await waitActive(nodes, 10_000, a);
    await new Promise((r) => setTimeout(r, LOAD_SETTLE_MS));
    const res = await load.stop();
    assert.deepEqual(res.failures, []);
    assert.ok(res.ok > 0);
  });

  it('SIGTERM of the active under a mixed read/write load: no request fails', async () => {
    const load = await startLoad({ base: gw2.url, token, workers: LOAD_WORKERS, mixed: true });
    await new Promise((r) => setTimeout(r, LOAD_SETTLE_MS));
    const a = await waitActive(nodes);
    assert.equal(await a.stop('SIGTERM'), 0);
    await waitActive(
      nodes.filter((n) => n !== a),
      10_000,
    );
    await new Promise((r) => setTimeout(r, LOAD_SETTLE_MS));
    const res = await load.stop();
    assert.deepEqual(res.failures, []);
    await replaceNode(a);
  });

  it('kill -9 of the active during a stream of reads: every read succeeds', async () => {
    const load = await startLoad({ base: gw1.url, token, workers: LOAD_WORKERS, mixed: false });
    await new Promise((r) => setTimeout(r, LOAD_SETTLE_MS));
    const a = await waitActive(nodes);
    await a.stop('SIGKILL');
    await waitActive(
      nodes.filter((n) => n !== a),
      15_000,
    );
    await new Promise((r) => setTimeout(r, LOAD_SETTLE_MS));
    const res = await load.stop();
    assert.deepEqual(res.failures, []);
    await replaceNode(a);
  });

  it('never routes to a forged advertisement (well-formed, wrong keys)', async () => {
    // A fake "leader" that counts connections.
    let connections = 0;
    const fake = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    const fakePort = (fake.address() as { port: number }).port;
    const r = await rawRedis(redis.url);
    const stale = await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    assert.equal(stale.length, 3);
    try {
      // With every node gone, forge the holder and its advertisement under another key.
      const uuid = randomUUID();
      const epoch = Number(await r.get('{leaderway}/core/lock-epoch')) + 1;
      await r.set('{leaderway}/core/lock', uuid, 'PX', 60_000);
      await r.set('{leaderway}/core/lock-epoch', String(epoch));
      const forged = encodeAdvertisement(
        {
          uuid,
          epoch,
          node_id: 'evil',
          api_addr: `http://127.0.0.1:${fakePort}`,
          cluster_addr: `https://127.0.0.1:${fakePort}`,
          cert: '',
          active_time: new Date().toISOString(),
        },
        [randomBytes(32)],
        signingKeyFromSeed(randomBytes(32)),
      );
      await r.set(`{leaderway}/d/${advertisementPath(uuid)}`, forged);
      await r.publish('{leaderway}/events', JSON.stringify({ type: 'advertised', epoch }));
      const gw3 = await spawnGateway('gw3', {
        redisUrl: redis.url,
        keys,
        env: { LEADERWAY_FAILOVER_WAIT: '1s' },
      });
      try {
        assert.equal((await call(gw3.url, '/-/ready')).status, 503);
        const res = await call(gw3.url, '/v1/secret/data/both', { token });
        assert.equal(res.status, 503);
        assert.ok(res.headers['retry-after']);
        assert.ok(Array.isArray((res.body as { errors: unknown[] }).errors));
        await waitFor(
          () => gw3.logs().some((l) => l.msg === 'leader advertisement rejected; not routing to it'),
          5_000,
          'rejection logged',
        );
        assert.equal(connections, 0, 'the forged leader was contacted');
      } finally {
        await gw3.stop('SIGKILL');
      }
    } finally {
      await r.del('{leaderway}/core/lock');
      r.disconnect();
      fake.close();
      for (const n of [...nodes]) await replaceNode(n);
      await waitActive(nodes, 15_000);
    }
  });

  it('Redis down: /-/ready 503, and a request is held until Redis returns (a pause, not an error)', async () => {
    await waitFor(
      async () => (await call(gw2.url, '/v1/secret/data/both', { token })).status === 200,
      15_000,
      'healthy',
    );
    await redis.kill();
    let held: ReturnType<typeof call> | undefined;
    let t = 0;
    try {
      await waitFor(async () => (await call(gw2.url, '/-/ready')).status === 503, 10_000, '/-/ready 503');
      // No leader can be learned while Redis is down; the gateway holds the request within its
      // failover wait (10 s) instead of failing it at once.
      t = performance.now();
      held = call(gw2.url, '/v1/secret/data/both', { token });
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await redis.start();
    }
    const r = await held;
    assert.equal(r?.status, 200, r?.text);
    assert.ok(performance.now() - t >= 1_000, 'answered before Redis was back');
    await waitFor(async () => (await call(gw2.url, '/-/ready')).status === 200, 20_000, '/-/ready 200 again');
  });

  it('SIGTERM on a gateway: not-ready first, in-flight requests finish, exit 0', async () => {
    const gw = await spawnGateway('gw-drain', {
      redisUrl: redis.url,
      keys,
      env: { LEADERWAY_DRAIN_DELAY: '1s' },
    });
    await waitFor(async () => (await call(gw.url, '/-/ready')).status === 200, 10_000, 'ready');
    // A request whose body trickles in across the drain.
    const { request } = await import('undici');
    const { Readable } = await import('node:stream');
    const body = JSON.stringify({ data: { drained: true } });
    const stream = Readable.from(
      (async function* () {
        yield Buffer.from(body.slice(0, 5));
        await new Promise((r) => setTimeout(r, 1500));
        yield Buffer.from(body.slice(5));
      })(),
    );
    const pending = request(`${gw.url}/v1/secret/data/drained`, {
      method: 'POST',
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      body: stream,
    });
    await new Promise((r) => setTimeout(r, 200));
    const exited = gw.stop('SIGTERM');
    await waitFor(
      async () => (await call(gw.url, '/-/ready')).status === 503,
      2_000,
      'not ready while draining',
    );
    const res = await pending;
    assert.equal(res.statusCode, 200, await res.body.text());
    assert.equal(await exited, 0);
  });
});
