/**
 * What a gateway and a standby send to the leader, and what they do when the leader fails
 * mid-request, seen from a fake leader (advertised exactly as a real one, under the real
 * advertisement key): forwarding headers are the proxy's own, internal headers and paths never
 * cross from a client, and a write that may have reached the leader is never replayed or
 * redirected as if it had not.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { rawRequest } from '../fuzz/raw-http';
import { call, initCluster } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';
import { FakeLeader, UPGRADE_REFUSAL_BYTES } from './fake-leader';

/** The gateway retires an old leader's pool after this (LeaderClient's RETIRE_BOUND_MS) + slack. */
const RETIRE_WAIT_MS = 40_000;

describe('proxy hygiene: what reaches the leader', () => {
  let redis: RedisServer;
  const keys = testKeys();
  let n1: Proc;
  let n2: Proc;
  let gw: Proc;
  let token = '';
  const fakes: FakeLeader[] = [];

  async function installFake(): Promise<FakeLeader> {
    const f = new FakeLeader();
    fakes.push(f);
    await f.start();
    await f.install(redis.url, keys, gw.url);
    const name = `fake-${f.identity.uuid.slice(0, 8)}`;
    await waitFor(
      async () => ((await call(gw.url, '/-/ready')).body as { leader?: string }).leader === name,
      10_000,
      'the gateway following the fake leader',
    );
    await waitFor(
      async () =>
        ((await call(n2.url, '/v1/sys/leader')).body as { leader_cluster_address?: string })
          .leader_cluster_address === `https://127.0.0.1:${f.port}`,
      10_000,
      'the standby following the fake leader',
    );
    return f;
  }

  before(async () => {
    redis = await startRedis();
    const port = await freePort();
    const apiAddr = `http://127.0.0.1:${port}`;
    n1 = await spawnNode('n1', { redisUrl: redis.url, keys, apiAddr });
    token = await initCluster(n1.url);
    n2 = await spawnNode('n2', { redisUrl: redis.url, keys, apiAddr });
    await waitFor(async () => (await call(n2.url, '/v1/sys/health')).status === 429, 15_000, 'n2 standby');
    gw = await spawnGateway('gw', { redisUrl: redis.url, keys, port });
  });

  after(async () => {
    await Promise.all([n1, n2, gw].filter(Boolean).map((p) => p.stop('SIGKILL')));
    await Promise.all(fakes.map((f) => f.stop()));
    await redis?.stop();
  });

  it('the gateway sends its own X-Forwarded-*, and drops internal, hop-by-hop and Connection-listed headers', async () => {
    const f = await installFake();
    // A raw request: HTTP clients rewrite Connection, and this one lists a header to drop.
    const raw = await rawRequest(gw.port, [
      'GET /v1/secret/data/h1 HTTP/1.1\r\nhost: gw\r\n' +
        `x-vault-token: ${token}\r\n` +
        'x-forwarded-for: 203.0.113.9\r\nx-forwarded-host: evil.example\r\nx-forwarded-proto: https\r\n' +
        'forwarded: for=203.0.113.9\r\nx-leaderway-not-served: LW_ERR_NOT_ACTIVE\r\nx-leaderway-anything: 1\r\n' +
        'connection: close, x-drop-me\r\nx-drop-me: 1\r\nproxy-authorization: Basic eA==\r\n\r\n',
    ]);
    const r = { status: raw.response?.status, headers: raw.response?.headers ?? {} };
    assert.equal(r.status, 200);
    const got = f.received.find((x) => x.url === '/v1/secret/data/h1');
    assert.ok(got, 'the request reached the leader');
    assert.equal(got.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(got.headers['x-forwarded-proto'], 'http');
    assert.equal(got.headers['x-forwarded-host'], 'gw');
    assert.equal(got.headers.forwarded, undefined);
    assert.equal(got.headers['x-drop-me'], undefined);
    assert.equal(got.headers['proxy-authorization'], undefined);
    // The client's internal headers are gone; the only one left is the gateway's own account
    // of the client address.
    assert.deepEqual(
      Object.keys(got.headers).filter((h) => h.startsWith('x-leaderway-')),
      ['x-leaderway-client-addr'],
    );
    assert.equal(got.headers['x-leaderway-client-addr'], '127.0.0.1');
    assert.equal(got.headers['x-vault-token'], token, 'end-to-end headers pass');
    // Internal headers on the leader's answer never reach the client.
    assert.deepEqual(
      Object.keys(r.headers).filter((h) => h.startsWith('x-leaderway-')),
      [],
    );
  });

  it('a standby forwards with the client address as X-Forwarded-For, dropping the client’s own', async () => {
    const f = fakes.at(-1) as FakeLeader;
    // A write: a standby serves reads itself.
    const r = await call(n2.url, '/v1/secret/data/h2', {
      token,
      body: { data: { v: 1 } },
      headers: { 'x-forwarded-for': '203.0.113.9', 'x-leaderway-not-served': 'x' },
    });
    assert.equal(r.status, 200);
    const got = f.received.find((x) => x.url === '/v1/secret/data/h2');
    assert.ok(got);
    assert.equal(got.headers['x-forwarded-for'], '127.0.0.1');
    assert.deepEqual(
      Object.keys(got.headers).filter((h) => h.startsWith('x-leaderway-')),
      ['x-leaderway-client-addr'],
    );
    assert.equal(got.headers['x-leaderway-client-addr'], '127.0.0.1');
  });

  it('internal cluster paths (/lw-cluster/*) are not reachable through the gateway', async () => {
    const f = fakes.at(-1) as FakeLeader;
    const echo = { node_id: 'intruder', api_addr: 'http://203.0.113.9', cluster_addr: '', version: 'x' };
    const r = await call(gw.url, '/lw-cluster/echo', { method: 'POST', body: echo });
    assert.ok(r.status >= 400 && r.status < 500, `answered ${r.status}`);
    // The standbys' own heartbeats reach the fake leader too; the intruder's echo must not.
    const passed = f.received.filter((x) => x.url === '/lw-cluster/echo' && x.body.includes('intruder'));
    assert.equal(passed.length, 0, 'the gateway passed an internal path to the leader');
  });

  it('the gateway serves a write sent with Expect: 100-continue (curl does so for bodies over 1 KiB)', async () => {
    const f = fakes.at(-1) as FakeLeader;
    const body = JSON.stringify({ data: { v: 'x'.repeat(2_000) } });
    const res = await rawRequest(gw.port, [
      'POST /v1/secret/data/h5 HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n' +
        `x-vault-token: ${token}\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\nexpect: 100-continue\r\n\r\n`,
      { data: body, delayMs: 100 },
    ]);
    assert.equal(res.response?.status, 200, res.response?.body.toString());
    assert.equal(f.count('/v1/secret/data/h5'), 1);
  });

  it('an upgrade the leader refuses is relayed once, streamed whole, without internal headers', async () => {
    const f = fakes.at(-1) as FakeLeader;
    const res = await rawRequest(gw.port, [
      'GET /v1/secret/data/ws HTTP/1.1\r\nhost: gw\r\nconnection: Upgrade\r\nupgrade: websocket\r\n' +
        `sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\nx-vault-token: ${token}\r\n\r\n`,
    ]);
    assert.equal(res.response?.status, 403);
    const body = JSON.parse(res.response?.body.toString() ?? '{}') as { pad?: string };
    assert.equal(body.pad?.length, UPGRADE_REFUSAL_BYTES, 'the whole answer arrived');
    assert.deepEqual(
      Object.keys(res.response?.headers ?? {}).filter((h) => h.startsWith('x-leaderway-')),
      [],
    );
    assert.equal(f.count('/v1/secret/data/ws'), 1, 'the request was sent to the leader again');
  });

  it('a 101 is relayed with the headers an upgrade needs and no others; bytes then flow both ways', async () => {
    const f = fakes.at(-1) as FakeLeader;
    const socket = connect(gw.port, '127.0.0.1');
    const got: Buffer[] = [];
    socket.on('data', (c: Buffer) => got.push(c));
    socket.write(
      'GET /v1/sys/events/subscribe HTTP/1.1\r\nhost: gw\r\nconnection: Upgrade\r\nupgrade: websocket\r\n' +
        `sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\nx-vault-token: ${token}\r\n\r\n`,
    );
    try {
      const headText = await waitFor(
        () => {
          const t = Buffer.concat(got).toString('latin1');
          return t.includes('\r\n\r\n') ? t.slice(0, t.indexOf('\r\n\r\n')) : null;
        },
        5_000,
        'the 101',
      );
      const [status, ...lines] = headText.split('\r\n');
      assert.match(status ?? '', /^HTTP\/1\.1 101 /);
      const names = lines.map((l) => l.slice(0, l.indexOf(':')).toLowerCase()).sort();
      assert.deepEqual(names, ['connection', 'sec-websocket-accept', 'upgrade']);
      got.length = 0;
      socket.write('ping-through-the-gateway');
      await waitFor(
        () => Buffer.concat(got).toString() === 'ping-through-the-gateway' || null,
        5_000,
        'the echo',
      );
      assert.equal(f.count('/v1/sys/events/subscribe'), 1);
    } finally {
      socket.destroy();
    }
  });

  it('a standby does not answer 307 for a write that may have reached the leader', async () => {
    const f = fakes.at(-1) as FakeLeader;
    f.mode = 'drop';
    try {
      const r = await call(n2.url, '/v1/secret/data/h3', { token, body: { data: { once: true } } });
      assert.equal(f.count('/v1/secret/data/h3'), 1, 'the write reached the leader');
      assert.notEqual(r.status, 307, 'a 307 invites the client to send the write again');
      assert.equal(r.status, 503);
      assert.match(String((r.body as { errors: string[] }).errors[0]), /outcome is unknown/);
    } finally {
      f.mode = 'ok';
    }
  });

  it('the gateway never replays a write that reached a leader which stopped answering', {
    timeout: RETIRE_WAIT_MS + 20_000,
  }, async () => {
    const old = fakes.at(-1) as FakeLeader;
    old.mode = 'hang';
    const pending = request(`${gw.url}/v1/secret/data/h4`, {
      method: 'POST',
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ data: { once: true } }),
      signal: AbortSignal.timeout(RETIRE_WAIT_MS),
    });
    await waitFor(() => old.count('/v1/secret/data/h4') === 1, 5_000, 'the write at the old leader');
    const next = await installFake();
    const res = await pending;
    const body = (await res.body.json()) as { errors?: string[] };
    assert.equal(next.count('/v1/secret/data/h4'), 0, 'the write was replayed on the next leader');
    assert.equal(res.statusCode, 503);
    assert.match(String(body.errors?.[0]), /outcome is unknown/);
  });
});
