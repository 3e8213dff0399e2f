/**
 * HA mode end to end: three real node processes on a real Redis. Lock TTL is 2 s here.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findActive, gatewayClientTls, rawRedis, waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { type Proc, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';
import { servedBy, tlsAccepted } from '../helpers/tls-probe';

describe('HA: three nodes on one Redis', () => {
  let redis: RedisServer;
  const keys = testKeys();
  let nodes: Proc[] = [];
  let token = '';

  before(async () => {
    redis = await startRedis({ appendonly: true });
    nodes = await Promise.all(['n1', 'n2', 'n3'].map((n) => spawnNode(n, { redisUrl: redis.url, keys })));
    token = await initCluster(nodes[0]!.url);
    await waitActive(nodes);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await redis?.stop();
  });

  it('has exactly one active; standbys answer 429 and report the leader', async () => {
    const active = await waitActive(nodes);
    for (const n of nodes) {
      const h = await waitFor(
        async () => {
          const r = await call(n.url, '/v1/sys/health');
          return r.status === 200 || r.status === 429 ? r : null;
        },
        10_000,
        `${n.name} unsealed`,
      );
      assert.equal(h.status, n === active ? 200 : 429);
      const l = await waitFor(
        async () => {
          const r = await call(n.url, '/v1/sys/leader');
          return (r.body as { leader_address: string }).leader_address ? r : null;
        },
        10_000,
        `${n.name} knows the leader`,
      );
      const body = l.body as Record<string, unknown>;
      assert.equal(body.ha_enabled, true);
      assert.equal(body.is_self, n === active);
      assert.equal(body.leader_address, active.url);
      assert.equal(body.leader_cluster_address, `https://127.0.0.1:${active.clusterPort}`);
    }
  });

  it('forwards writes and reads sent to each standby to the active', async () => {
    const active = await waitActive(nodes);
    for (const n of nodes.filter((x) => x !== active)) {
      const w = await call(n.url, `/v1/secret/data/via-${n.name}`, {
        token,
        body: { data: { from: n.name } },
      });
      assert.equal(w.status, 200, w.text);
      const r = await call(n.url, `/v1/secret/data/via-${n.name}`, { token });
      assert.equal(r.status, 200);
      assert.deepEqual((r.body as { data: { data: unknown } }).data.data, { from: n.name });
      const direct = await call(active.url, `/v1/secret/data/via-${n.name}`, { token });
      assert.deepEqual((direct.body as { data: { data: unknown } }).data.data, { from: n.name });
    }
    const ha = await call(active.url, '/v1/sys/ha-status', { token });
    assert.equal(ha.status, 200);
    const names = await waitFor(
      async () => {
        const r = await call(active.url, '/v1/sys/ha-status', { token });
        const ns = (r.body as { nodes: Array<{ hostname: string; active_node: boolean }> }).nodes;
        return ns.length === 3 ? ns : null;
      },
      10_000,
      'all three nodes in ha-status',
    );
    assert.deepEqual(
      names.filter((x) => x.active_node).map((x) => x.hostname),
      [active.name],
    );
  });

  it('answers 307 to the active api_addr when asked not to forward', async () => {
    const active = await waitActive(nodes);
    const standby = nodes.find((n) => n !== active)!;
    const r = await call(standby.url, '/v1/secret/data/x?version=1', {
      token,
      body: { data: { v: 1 } },
      headers: { 'x-vault-no-request-forwarding': 'true' },
    });
    assert.equal(r.status, 307);
    assert.equal(r.headers.location, `${active.url}/v1/secret/data/x?version=1`);
    assert.equal(r.headers['cache-control'], 'no-store');
    // A read needs no forwarding: the standby serves it (standby reads), as a Vault Enterprise
    // performance standby does with this header.
    const read = await call(standby.url, '/v1/secret/data/x?version=1', {
      token,
      headers: { 'x-vault-no-request-forwarding': 'true' },
    });
    assert.equal(read.status, 404, read.text);
  });

  it('the active’s cluster port admits only a gateway’s certificate (or its own); a standby’s, only gateways, with its own certificate', async () => {
    const active = await waitActive(nodes);
    const { cert, key } = await gatewayClientTls();
    assert.equal(
      await tlsAccepted(active.clusterPort, { cert, key }),
      true,
      'a gateway certificate accepted',
    );
    assert.equal(await tlsAccepted(active.clusterPort, {}), false, 'no client cert refused');
    const { newClusterIdentity } = await import('../../node/ha/cluster-cert');
    const other = await newClusterIdentity();
    assert.equal(
      await tlsAccepted(active.clusterPort, { cert: other.certPem, key: other.keyPem }),
      false,
      'self-made cert refused',
    );
    // A standby's cluster port is its listener for gateways (spread reads): the gateway is
    // admitted, but is shown the standby's own certificate, never the term's; others are refused.
    const term = await servedBy(active.clusterPort, { cert, key });
    const shown = new Set([term]);
    for (const s of nodes.filter((n) => n !== active)) {
      const own = await servedBy(s.clusterPort, { cert, key });
      assert.ok(own !== null && !shown.has(own), `${s.name} presents a certificate of its own`);
      shown.add(own);
      assert.equal(await tlsAccepted(s.clusterPort, {}), false, `${s.name}: no client cert refused`);
      assert.equal(
        await tlsAccepted(s.clusterPort, { cert: other.certPem, key: other.keyPem }),
        false,
        `${s.name}: self-made cert refused`,
      );
    }
  });

  it('step-down hands over at once and the cooldown keeps the old active out', async () => {
    const a = await waitActive(nodes);
    const { cert, key } = await gatewayClientTls();
    // The certificate of a's term (its cluster listener's).
    const term = await servedBy(a.clusterPort, { cert, key });
    assert.ok(term);
    const r = await call(a.url, '/v1/sys/step-down', { method: 'PUT', token });
    assert.equal(r.status, 204);
    const b = await waitActive(nodes, 10_000, a);
    assert.notEqual(b, a);
    // Step down the new one at once: `a` is still cooling down (3 s), so the third node wins.
    const r2 = await call(b.url, '/v1/sys/step-down', { method: 'PUT', token });
    assert.equal(r2.status, 204);
    const c = await waitActive(
      nodes.filter((n) => n !== b),
      10_000,
      b,
    );
    assert.notEqual(c, a, 'the node in cooldown must not win');
    assert.notEqual(c, b);
    // The old active's cluster listener closes once its peers have moved to the new leader; its
    // port is then its listener for gateways as a standby, with its own certificate.
    await waitFor(
      async () => {
        const shown = await servedBy(a.clusterPort, { cert, key });
        return shown !== null && shown !== term;
      },
      5_000,
      'the old active to close its cluster listener and reopen its port for gateways',
    );
  });

  it('cleans stale core/leader/* entries when a node becomes active', async () => {
    const r = await rawRedis(redis.url);
    try {
      const stale = `core/leader/${randomUUID()}`;
      await r.set(`{leaderway}/d/${stale}`, Buffer.from('left over by a restored backup'));
      await r.zadd('{leaderway}/index', 0, stale);
      const a = await waitActive(nodes);
      await call(a.url, '/v1/sys/step-down', { method: 'PUT', token });
      await waitActive(nodes, 10_000, a);
      await waitFor(
        async () => (await r.exists(`{leaderway}/d/${stale}`)) === 0,
        10_000,
        'stale entry deleted',
      );
      const legacy = await r.zrangebylex('{leaderway}/index', '[core/leader/', '[core/leader/\xff');
      assert.equal(legacy.length, 0, `no previous-format advertisement left, got ${legacy.join(',')}`);
      const left = await r.zrangebylex(
        '{leaderway}/index',
        '[core/leader-signed/',
        '[core/leader-signed/\xff',
      );
      assert.equal(left.length, 1, `one advertisement left, got ${left.join(',')}`);
      const keys = await r.zrangebylex('{leaderway}/index', '[core/leader-key/', '[core/leader-key/\xff');
      assert.equal(keys.length, 1, `one cluster key left, got ${keys.join(',')}`);
    } finally {
      r.disconnect();
    }
  });

  it('kill -9 of the active: a standby takes over and every acknowledged write is there', async () => {
    const a = await waitActive(nodes);
    const acked: string[] = [];
    for (let i = 0; i < 20; i++) {
      const w = await call(a.url, `/v1/secret/data/k9-${i}`, { token, body: { data: { i } } });
      if (w.status === 200) acked.push(`k9-${i}`);
    }
    assert.equal(acked.length, 20);
    await a.stop('SIGKILL');
    const survivors = nodes.filter((n) => n !== a);
    const b = await waitActive(survivors, 15_000);
    for (const k of acked) {
      const r = await call(b.url, `/v1/secret/data/${k}`, { token });
      assert.equal(r.status, 200, `${k} lost`);
    }
    // Replace the killed node so later tests have three nodes again.
    const idx = nodes.indexOf(a);
    nodes[idx] = await spawnNode(`${a.name}b`, { redisUrl: redis.url, keys });
  });

  it('a SIGSTOPped active resumed after the TTL cannot store a write', async () => {
    const a = await waitActive(nodes);
    // Start a write whose body is only half sent: the active has authenticated it and holds the
    // storage of its term while it waits for the rest.
    const { request } = await import('undici');
    const body = JSON.stringify({ data: { stale: 'must-not-be-stored' } });
    let sendRest: () => void = () => {};
    const rest = new Promise<void>((r) => {
      sendRest = r;
    });
    const { Readable } = await import('node:stream');
    const stream = Readable.from(
      (async function* () {
        yield Buffer.from(body.slice(0, 10));
        await rest;
        yield Buffer.from(body.slice(10));
      })(),
    );
    const pending = request(`${a.url}/v1/secret/data/fenced`, {
      method: 'POST',
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      body: stream,
    });
    await new Promise((r) => setTimeout(r, 300));
    a.pause();
    try {
      const b = await waitActive(
        nodes.filter((n) => n !== a),
        15_000,
      );
      assert.notEqual(b, a);
    } finally {
      a.resume();
    }
    sendRest();
    const res = await pending;
    const text = await res.body.text();
    assert.notEqual(res.statusCode, 200, `stale write acknowledged: ${text}`);
    const b = await waitActive(nodes);
    const read = await call(b.url, '/v1/secret/data/fenced', { token });
    assert.equal(read.status, 404, 'nothing was stored');
  });

  it('rejects a garbage advertisement: a new standby does not route to it', async () => {
    const active = await waitActive(nodes);
    const r = await rawRedis(redis.url);
    try {
      const uuid = await r.get('{leaderway}/core/lock');
      assert.ok(uuid);
      await r.set(
        `{leaderway}/d/core/leader-signed/${uuid}`,
        Buffer.from('{"api_addr":"http://evil:1","cluster_addr":"https://evil:2"}'),
      );
      const fresh = await spawnNode('n-fresh', { redisUrl: redis.url, keys });
      try {
        const h = await waitFor(
          async () => {
            const x = await call(fresh.url, '/v1/sys/health');
            return x.status === 429 ? x : null;
          },
          10_000,
          'fresh node unsealed',
        );
        assert.equal(h.status, 429);
        // A read needs no leader: the standby serves it from storage (standby reads).
        assert.equal((await call(fresh.url, '/v1/secret/data/x', { token })).status, 404);
        const res = await call(fresh.url, '/v1/secret/data/x', { token, body: { data: { v: 1 } } });
        assert.equal(res.status, 503, res.text);
        assert.deepEqual(res.body, { errors: ['local node not active but active cluster node not found'] });
        assert.ok(res.headers['retry-after']);
        const l = (await call(fresh.url, '/v1/sys/leader')).body as Record<string, unknown>;
        assert.equal(l.leader_address, '');
        assert.ok(fresh.logs().some((x) => x.msg === 'leader advertisement rejected'));
      } finally {
        await fresh.stop('SIGKILL');
      }
      // The active rewrites a good advertisement on the next term.
      await call(active.url, '/v1/sys/step-down', { method: 'PUT', token });
      await waitActive(nodes, 10_000, active);
    } finally {
      r.disconnect();
    }
  });

  it('SIGTERM on the active releases the lock so a standby takes over, and exits 0', async () => {
    const a = await waitActive(nodes);
    const code = await a.stop('SIGTERM');
    assert.equal(code, 0);
    const b = await waitActive(
      nodes.filter((n) => n !== a),
      10_000,
    );
    assert.notEqual(b, a);
    assert.ok(a.logs().some((x) => x.msg === 'stepping down' && x.reason === 'shutdown'));
    const idx = nodes.indexOf(a);
    nodes[idx] = await spawnNode(`${a.name}c`, { redisUrl: redis.url, keys });
  });
});

describe('HA: redirects when forwarding is impossible', () => {
  let redis: RedisServer;
  const keys = testKeys();
  const nodes: Proc[] = [];
  let token = '';

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await redis?.stop();
  });

  it('307s with forwarding disabled, and when the cluster address is unreachable', async () => {
    // The active advertises a cluster address nobody listens on.
    const a = await spawnNode('bad-cluster', {
      redisUrl: redis.url,
      keys,
      env: { VAULT_CLUSTER_ADDR: 'https://127.0.0.1:9' },
    });
    nodes.push(a);
    token = await initCluster(a.url);
    await waitActive([a]);
    const noFwd = await spawnNode('no-forwarding', {
      redisUrl: redis.url,
      keys,
      env: { LEADERWAY_REQUEST_FORWARDING: 'false' },
    });
    const fwd = await spawnNode('forwarding', { redisUrl: redis.url, keys });
    nodes.push(noFwd, fwd);
    // A write (a standby serves reads itself).
    const write = { token, method: 'PUT', body: { data: { v: 307 } } };
    for (const n of [noFwd, fwd]) {
      const r = await waitFor(
        async () => {
          const x = await call(n.url, '/v1/secret/data/y', write);
          return x.status === 307 ? x : null;
        },
        10_000,
        `${n.name} redirects`,
      );
      assert.equal(r.headers.location, `${a.url}/v1/secret/data/y`);
      // Following the redirect works (the client resends to the active).
      const follow = await call(
        String(r.headers.location).replace('/v1/secret/data/y', ''),
        '/v1/secret/data/y',
        write,
      );
      assert.equal(follow.status, 200, follow.text);
    }
    // The forwarding failure is visible, not hidden behind the 307 (openbao#3899).
    await waitFor(
      () => fwd.logs().some((x) => x.msg === 'forwarding failed; redirecting'),
      5_000,
      'the failure logged',
    );
  });
});

describe('HA: split storage and configuration precedence', () => {
  let data: RedisServer;
  let haRedis: RedisServer;
  const keys = testKeys();
  const nodes: Proc[] = [];

  before(async () => {
    [data, haRedis] = await Promise.all([startRedis(), startRedis()]);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await Promise.all([data?.stop(), haRedis?.stop()]);
  });

  it('keeps the lock out of the data Redis, and the environment beats the config file', async () => {
    const file = path.join(tmpdir(), `lw-${randomUUID()}.yaml`);
    writeFileSync(
      file,
      'api_addr: "http://from-file.invalid:8200"\ncluster_addr: "https://from-file.invalid:8201"\n',
    );
    const n = await spawnNode('split', {
      redisUrl: data.url,
      keys,
      env: { LEADERWAY_HA_REDIS_URL: haRedis.url, LEADERWAY_CONFIG: file },
    });
    nodes.push(n);
    assert.ok(
      n.lines.some((l) => /HA Storage: redis/.test(l)),
      'banner shows HA Storage',
    );
    assert.ok(
      n.lines.some((l) => /Storage: redis$/.test(l)),
      'storage line has no (HA available) when split',
    );
    await initCluster(n.url);
    await waitActive([n]);
    const d = await rawRedis(data.url);
    const h = await rawRedis(haRedis.url);
    try {
      assert.equal(await d.exists('{leaderway}/core/lock'), 0, 'no lock in the data Redis');
      assert.equal(await h.exists('{leaderway}/core/lock'), 1, 'lock in the HA Redis');
      assert.equal((await h.keys('{leaderway}/d/*')).length, 0, 'no data in the HA Redis');
      assert.ok(
        (await d.keys('{leaderway}/d/core/leader-signed/*')).length === 1,
        'advertisement in the data Redis',
      );
    } finally {
      d.disconnect();
      h.disconnect();
    }
    const l = (await call(n.url, '/v1/sys/leader')).body as Record<string, unknown>;
    assert.equal(l.leader_address, n.url, 'VAULT_API_ADDR beats the file');
    assert.equal(
      l.leader_cluster_address,
      `https://127.0.0.1:${n.clusterPort}`,
      'VAULT_CLUSTER_ADDR beats the file',
    );
    assert.ok(await findActive([n]));
  });
});

describe('HA: Redis loses its data', () => {
  let redis: RedisServer;
  const keys = testKeys();
  let nodes: Proc[] = [];

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all(['w1', 'w2'].map((n) => spawnNode(n, { redisUrl: redis.url, keys })));
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await redis?.stop();
  });

  it('no node serves from an emptied store: all go back to uninitialized, and a new init works', async () => {
    const token = await initCluster(nodes[0]!.url);
    const active = await waitActive(nodes);
    assert.equal(
      (await call(active.url, '/v1/secret/data/a', { token, body: { data: { v: 1 } } })).status,
      200,
    );
    await redis.cli('FLUSHALL');
    for (const n of nodes) {
      await waitFor(
        async () => (await call(n.url, '/v1/sys/health')).status === 501,
        15_000,
        `${n.name} uninitialized`,
      );
    }
    assert.ok(nodes.some((n) => n.logs().some((l) => String(l.msg).startsWith('storage has no root key'))));
    const token2 = await initCluster(nodes[1]!.url);
    const again = await waitActive(nodes, 15_000);
    const r = await call(again.url, '/v1/secret/data/a', { token: token2 });
    assert.equal(r.status, 404, 'the old data is gone, and nothing stale is served');
  });
});
