/**
 * Standbys serve reads themselves (issue 27; LEADERWAY_DISABLE_STANDBY_READS=false, the default),
 * and no read is stale: once a write, a policy change, an unmount or a revocation is acknowledged,
 * no standby answers as if it had not happened — even with its caches warm from before
 * (docs/GUARANTEES.md, G15). What needs the active (a write, a use counted, response wrapping,
 * `X-Vault-Forward`, the active's own status) is forwarded as before.
 *
 * Every case warms the standby first (a read it serves itself, counted by its
 * `leaderway_standby_reads_total{outcome="served"}`), then changes something through another
 * node, then reads on the standby at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gatewayClientTls, waitActive } from '../helpers/cluster';
import { call, initCluster, scrapeMetric, type TestResponse } from '../helpers/http';
import { type Proc, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';
import { tlsAccepted } from '../helpers/tls-probe';

const SERVED = 'leaderway_standby_reads_total';

describe('standby reads', () => {
  let redis: RedisServer;
  let nodes: Proc[] = [];
  let active: Proc;
  let standby: Proc;
  /** The third node: writes go through it (another standby, forwarding to the active). */
  let other: Proc;
  let token = '';

  const served = (n: Proc) => scrapeMetric(n.metricsUrl, SERVED, 'outcome="served"');
  const forwarded = (n: Proc) => scrapeMetric(n.metricsUrl, SERVED, 'outcome="forwarded"');

  /** `read` on the standby, asserting it served it itself (not forwarded). */
  async function readHere(path: string, o: { token?: string; headers?: Record<string, string> } = {}) {
    const before = await served(standby);
    const r = await call(standby.url, path, { token: o.token ?? token, headers: o.headers });
    assert.equal(
      await served(standby),
      before + 1,
      `the standby served ${path} itself: ${r.status} ${r.text}`,
    );
    return r;
  }

  async function ok(r: Promise<TestResponse>): Promise<TestResponse> {
    const res = await r;
    assert.ok(res.status === 200 || res.status === 204, `${res.status} ${res.text}`);
    return res;
  }

  before(async () => {
    redis = await startRedis();
    const keys = testKeys();
    for (const name of ['n1', 'n2', 'n3']) nodes.push(await spawnNode(name, { redisUrl: redis.url, keys }));
    token = await initCluster((nodes[0] as Proc).url);
    active = await waitActive(nodes);
    [standby, other] = nodes.filter((n) => n !== active) as [Proc, Proc];
    await ok(call(active.url, '/v1/secret/data/app', { token, body: { data: { v: 0 } } }));
    // Both standbys know the active (writes through `other` are forwarded to it).
    for (const n of [standby, other]) {
      await waitFor(
        async () => (await call(n.url, '/v1/sys/leader')).text.includes(active.url.replace('http://', '')),
        15_000,
        `${n.name} knows the leader`,
      );
    }
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    nodes = [];
    await redis?.stop();
  });

  it('a standby serves a KV read itself and reads every acknowledged write at once', async () => {
    for (let v = 1; v <= 20; v++) {
      await ok(call(other.url, '/v1/secret/data/app', { token, body: { data: { v } } }));
      const r = await readHere('/v1/secret/data/app');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(
        (r.body as { data: { data: unknown } }).data.data,
        { v },
        'never the previous version',
      );
    }
  });

  it('a policy change applies on a standby whose cache holds the policy from before', async () => {
    const rules = (cap: string) => `path "secret/data/app" { capabilities = [${cap}] }`;
    await ok(
      call(other.url, '/v1/sys/policy/reader', { token, method: 'PUT', body: { policy: rules('"read"') } }),
    );
    const app = await ok(call(other.url, '/v1/auth/token/create', { token, body: { policies: ['reader'] } }));
    const appToken = (app.body as { auth: { client_token: string } }).auth.client_token;
    assert.equal((await readHere('/v1/secret/data/app', { token: appToken })).status, 200);
    await ok(
      call(other.url, '/v1/sys/policy/reader', { token, method: 'PUT', body: { policy: rules('"deny"') } }),
    );
    assert.equal((await readHere('/v1/secret/data/app', { token: appToken })).status, 403, 'denied at once');
    await ok(
      call(other.url, '/v1/sys/policy/reader', { token, method: 'PUT', body: { policy: rules('"read"') } }),
    );
    assert.equal((await readHere('/v1/secret/data/app', { token: appToken })).status, 200, 'allowed at once');
    await ok(call(other.url, '/v1/sys/policy/reader', { token, method: 'DELETE' }));
    assert.equal((await readHere('/v1/secret/data/app', { token: appToken })).status, 403, 'deleted: denied');
  });

  it('an unmount and a remount apply on a standby whose cache holds the mount table from before', async () => {
    await ok(
      call(other.url, '/v1/sys/mounts/team', { token, body: { type: 'kv', options: { version: '1' } } }),
    );
    await ok(call(other.url, '/v1/team/db', { token, body: { password: 'v1-engine' } }));
    const r1 = await readHere('/v1/team/db');
    assert.deepEqual((r1.body as { data: unknown }).data, { password: 'v1-engine' });
    await ok(call(other.url, '/v1/sys/mounts/team', { token, method: 'DELETE' }));
    assert.equal((await readHere('/v1/team/db')).status, 404, 'unmounted: no such route at once');
    await ok(
      call(other.url, '/v1/sys/mounts/team', { token, body: { type: 'kv', options: { version: '2' } } }),
    );
    await ok(call(other.url, '/v1/team/data/db', { token, body: { data: { password: 'v2-engine' } } }));
    const r2 = await readHere('/v1/team/data/db');
    assert.deepEqual((r2.body as { data: { data: unknown } }).data.data, { password: 'v2-engine' });
  });

  it('a revoked token is refused by a standby from the moment the revocation is acknowledged', async () => {
    const child = await ok(
      call(other.url, '/v1/auth/token/create', { token, body: { policies: ['default'] } }),
    );
    const t = (child.body as { auth: { client_token: string } }).auth.client_token;
    assert.equal((await readHere('/v1/auth/token/lookup-self', { token: t })).status, 200);
    await ok(call(other.url, '/v1/auth/token/revoke', { token, body: { token: t } }));
    assert.equal((await readHere('/v1/auth/token/lookup-self', { token: t })).status, 403);
  });

  it('forwards what needs the active: writes, counted uses, wrapping, X-Vault-Forward, its status', async () => {
    const before = await forwarded(standby);
    // A token good for two uses: each read counts one (a write), so the standby forwards them.
    const limited = await ok(
      call(active.url, '/v1/auth/token/create', { token, body: { policies: ['root'], num_uses: 2 } }),
    );
    const t = (limited.body as { auth: { client_token: string } }).auth.client_token;
    assert.equal((await call(standby.url, '/v1/secret/data/app', { token: t })).status, 200);
    assert.equal((await call(standby.url, '/v1/secret/data/app', { token: t })).status, 200);
    assert.equal(
      (await call(standby.url, '/v1/secret/data/app', { token: t })).status,
      403,
      'both uses spent',
    );
    const wrapped = await call(standby.url, '/v1/secret/data/app', {
      token,
      headers: { 'x-vault-wrap-ttl': '60' },
    });
    assert.equal(wrapped.status, 200, wrapped.text);
    const wrapToken = (wrapped.body as { wrap_info: { token: string } }).wrap_info.token;
    const unwrapped = await call(standby.url, '/v1/sys/wrapping/unwrap', {
      token: wrapToken,
      method: 'POST',
    });
    assert.equal(unwrapped.status, 200, unwrapped.text);
    const direct = await call(standby.url, '/v1/secret/data/app', {
      token,
      headers: { 'x-vault-forward': 'active-node' },
    });
    assert.equal(direct.status, 200);
    const ha = await call(standby.url, '/v1/sys/ha-status', { token });
    assert.equal(ha.status, 200);
    assert.ok((ha.body as { nodes: unknown[] }).nodes.length >= 1, 'the active’s peers');
    // Reads only (the unwrap is a write, not counted): two with the limited token (the third is
    // refused by the standby itself: the token is gone), wrapped, X-Vault-Forward, ha-status.
    assert.equal(await forwarded(standby), before + 5, 'forwarded, not served on the standby');
  });

  it('answers X-Vault-Index and serves a read that carries one on the standby; a made-up one goes to the active', async () => {
    const w = await ok(call(other.url, '/v1/secret/data/indexed', { token, body: { data: { v: 'x' } } }));
    const index = w.headers['x-vault-index'];
    assert.equal(typeof index, 'string', 'a write is answered with X-Vault-Index');
    const decoded = Buffer.from(index as string, 'base64').toString('utf8');
    assert.match(
      decoded,
      /^v1:[^:]+:\d+:0:[0-9a-f]{64}$/,
      "Vault's format: v1:cluster:local:replicated:hmac",
    );
    const r = await readHere('/v1/secret/data/indexed', { headers: { 'x-vault-index': index as string } });
    assert.equal(r.status, 200);
    assert.equal(typeof r.headers['x-vault-index'], 'string', 'a read is answered with one too');
    const [v, cluster, , , mac] = decoded.split(':');
    const forged = Buffer.from(`${v}:${cluster}:999999:0:${mac}`).toString('base64');
    const before = await served(standby);
    const f = await call(standby.url, '/v1/secret/data/indexed', {
      token,
      headers: { 'x-vault-index': forged },
    });
    assert.equal(f.status, 200, 'answered (by the active)');
    assert.equal(await served(standby), before, 'not served on the standby');
  });
});

describe('standby reads off (LEADERWAY_DISABLE_STANDBY_READS=true)', () => {
  let redis: RedisServer;
  let nodes: Proc[] = [];

  before(async () => {
    redis = await startRedis();
    const keys = testKeys();
    const env = { LEADERWAY_DISABLE_STANDBY_READS: 'true' };
    for (const name of ['m1', 'm2']) nodes.push(await spawnNode(name, { redisUrl: redis.url, keys, env }));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    nodes = [];
    await redis?.stop();
  });

  it('a standby forwards every read, as OpenBao with disable_standby_reads', async () => {
    const token = await initCluster((nodes[0] as Proc).url);
    const active = await waitActive(nodes);
    const standby = nodes.find((n) => n !== active) as Proc;
    await ok2(call(active.url, '/v1/secret/data/app', { token, body: { data: { v: 1 } } }));
    await waitFor(
      async () => (await call(standby.url, '/v1/secret/data/app', { token })).status === 200,
      15_000,
      'a read through the standby',
    );
    for (let i = 0; i < 5; i++)
      assert.equal((await call(standby.url, '/v1/secret/data/app', { token })).status, 200);
    assert.equal(
      await scrapeMetric(standby.metricsUrl, SERVED),
      0,
      'no read served (or counted) on the standby',
    );
    // Nor does it listen for gateways' reads (spread routing): its cluster port stays closed.
    const gw = await gatewayClientTls();
    assert.equal(await tlsAccepted(standby.clusterPort, gw), false, 'no listener for gateways');
    assert.equal(await tlsAccepted(active.clusterPort, gw), true, 'the active’s listener');
    assert.ok(
      (await scrapeMetric(standby.metricsUrl, 'leaderway_forwarded_requests_total', 'outcome="served"')) >= 5,
      'forwarded',
    );
  });
});

async function ok2(r: Promise<TestResponse>): Promise<void> {
  const res = await r;
  assert.equal(res.status, 200, res.text);
}
