/**
 * Fair body admission that cannot leak (issue 29, item 3), attacked without a token through real
 * gateways and checked through their metrics:
 *  - every byte of the replay budget and every upload and leader-pool place comes back however a
 *    connection ends: reset at every stage of a request and of an upgrade (also while waiting
 *    for a place in the pool of a frozen leader — where each reset upgrade used to keep its place
 *    for the leader's lifetime), cut by the read timeout, its leader killed, its gateway drained;
 *  - large bodies held one byte short (from 8 addresses, or 28 from the writer's own address, as
 *    when every client arrives with the load balancer's) and slow logins do not hold up a
 *    legitimate writer's KV writes and AppRole logins (before: every one waited 10 s for a 503);
 *  - one client address (named by a trusted proxy's X-Forwarded-For) holds at most a quarter of
 *    the upload lane, so another's large upload still goes through.
 * Latency is bounded leniently here (shared machines are noisy); `npm run bench --
 * --section=abuse` measures the writer's p99 against its 2× target.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import {
  type AppRoleLogin,
  gatewayHoldings,
  type Holdings,
  heldBodies,
  legitWrites,
  quantile,
  slowLogins,
} from '../helpers/abuse';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { call } from '../helpers/http';
import { type Proc, spawnGateway, waitFor } from '../helpers/procs';

const MIB = 1024 * 1024;
/** A sanity bound, not a performance target: before the fix every write waited 10 s, then 503. */
const P99_CEILING_MS = 2_000;
const WRITE_MS = 5_000;
/** Eight attacking addresses (loopback aliases), none of them the writer's (127.0.0.1). */
const EIGHT = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

const UPGRADE =
  'GET /v1/sys/events/subscribe HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
const post = (framing: string, body = '') =>
  `POST /v1/secret/data/x HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n${framing}\r\n\r\n${body}`;
const SMALL = post('Content-Length: 100', '{"data":');
const SMALL_WHOLE = post('Content-Length: 12', '{"data":{}}\n');
const LARGE = (sent: number) => post(`Content-Length: ${2 * MIB}`, 'a'.repeat(sent));
const CHUNKED = post('Transfer-Encoding: chunked', '4\r\n{"da\r\n');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects to 127.0.0.1:`port` and sends `bytes`. */
async function send(port: number, bytes: string): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise((r) => s.once('connect', r));
  if (bytes) s.write(bytes);
  return s;
}

/** Sends `bytes`, waits `afterMs`, then resets the connection (RST, not FIN). */
async function sendAndReset(port: number, bytes: string, afterMs: number): Promise<void> {
  const s = await send(port, bytes);
  if (afterMs > 0) await sleep(afterMs);
  s.resetAndDestroy();
}

/**
 * Spends one client's share of the large lane: 1 MiB bodies held one byte short, sent one at a
 * time (bodies arriving together pass the share mid-way, and those stream on instead of being
 * held), until one is not held but streams to the leader (which answers it 403 at once).
 */
async function spendLargeShare(
  gw: Proc,
  o: { addresses?: string[]; headers?: Record<string, string> },
): Promise<{ stop(): void }> {
  const held: Array<{ stop(): void }> = [];
  for (let i = 0; i < 16; i++) {
    const before = (await gatewayHoldings(gw.metricsUrl)).replayBytes;
    const body = await heldBodies(gw.port, 1, o);
    held.push(body);
    let answered = false;
    body.sockets[0]?.once('data', () => {
      answered = true;
    });
    const kept = await waitFor(
      async () =>
        answered || ((await gatewayHoldings(gw.metricsUrl)).replayBytes >= before + MIB - 1 && 'held'),
      5_000,
      `body ${i} held or streamed`,
      20,
    );
    if (kept !== 'held') break;
  }
  return {
    stop() {
      for (const h of held) h.stop();
    },
  };
}

const nothing = (h: Holdings) =>
  h.replayBytes + h.bodiesReceiving + h.uploadsInUse + h.uploadsWaiting + h.poolInUse + h.poolWaiting === 0;

/** Waits until `gw` holds nothing for its requests; fails naming what is still held after `stage`. */
async function allReturned(gw: Proc, stage: string): Promise<void> {
  let last: Holdings | undefined;
  try {
    await waitFor(
      async () => {
        last = await gatewayHoldings(gw.metricsUrl);
        return nothing(last);
      },
      10_000,
      stage,
      100,
    );
  } catch {
    assert.fail(`after ${stage} the gateway still holds ${JSON.stringify(last)}`);
  }
}

describe('body admission: nothing leaks, and no client takes the budget or the places from others', () => {
  let c: GatewayCluster;
  let login: AppRoleLogin;

  before(async () => {
    // The gateway believes X-Forwarded-For from 127.0.0.1 (a load balancer's address); the
    // attacking aliases 127.0.0.2-9 are clients of their own.
    c = await startGatewayCluster({ nodes: 2, gatewayEnv: { LEADERWAY_TRUSTED_PROXIES: '127.0.0.1/32' } });
    const api = (path: string, body?: unknown) => call(c.gw.url, `/v1/${path}`, { token: c.token, body });
    assert.equal((await api('sys/auth/approle', { type: 'approle' })).status, 204);
    assert.equal((await api('auth/approle/role/app', { token_policies: 'default' })).status, 204);
    const roleId = (await api('auth/approle/role/app/role-id')).body as { data: { role_id: string } };
    const secret = (await api('auth/approle/role/app/secret-id', {})).body as { data: { secret_id: string } };
    login = { roleId: roleId.data.role_id, secretId: secret.data.secret_id };
  });

  after(async () => {
    await c?.stop();
  });

  it('large bodies held one byte short and slow logins do not hold up a writer, from 8 addresses or its own', async (t) => {
    await legitWrites(c.gw.url, c.token, 1_000, { login });
    const idle = await legitWrites(c.gw.url, c.token, 3_000, { login });
    assert.deepEqual(idle.failures, []);
    const idleP99 = quantile(idle.latencies, 0.99);

    const attacks: Array<[string, () => Promise<Array<{ stop(): void }>>, string | undefined]> = [
      [
        '64 × 1 MiB from 8 addresses + 20 slow logins',
        async () => [
          await heldBodies(c.gw.port, 64, { addresses: EIGHT }),
          await slowLogins(c.gw.port, 20, { localAddress: EIGHT[0] }),
        ],
        undefined,
      ],
      [
        '28 × 1 MiB + 20 slow logins from the writer’s own address',
        async () => [
          await heldBodies(c.gw.port, 28, { addresses: ['127.0.0.10'] }),
          await slowLogins(c.gw.port, 20, { localAddress: '127.0.0.10' }),
        ],
        '127.0.0.10',
      ],
    ];
    for (const [name, start, localAddress] of attacks) {
      const attack = await start();
      await sleep(500);
      const held = await gatewayHoldings(c.gw.metricsUrl);
      const loaded = await legitWrites(c.gw.url, c.token, WRITE_MS, { login, localAddress });
      for (const a of attack) a.stop();
      const p99 = quantile(loaded.latencies, 0.99);
      t.diagnostic(
        `${name}: gateway holds ${(held.replayBytes / MIB).toFixed(1)} MiB for replays, ` +
          `${held.uploadsInUse} upload places; writer p99 ${idleP99.toFixed(1)} ms idle, ` +
          `${p99.toFixed(1)} ms under attack (${(p99 / idleP99).toFixed(2)}×, ${loaded.latencies.length} requests)`,
      );
      assert.deepEqual(loaded.failures.slice(0, 5), [], `${name}: a legitimate request failed`);
      assert.ok(loaded.latencies.length > 0);
      assert.ok(p99 < P99_CEILING_MS, `${name}: writer p99 ${p99.toFixed(0)} ms`);
      await allReturned(c.gw, name);
    }
  });

  it('one address named by a trusted proxy takes a quarter of the upload lane, not all of it', async () => {
    const attacker = { 'x-forwarded-for': '203.0.113.7' };
    // The attacker spends its share of the replay budget, so its chunked logins stream to the
    // leader, which waits for their bodies: each holds an upload place.
    const held = await spendLargeShare(c.gw, { headers: attacker });
    const logins = await slowLogins(c.gw.port, 20, { chunked: true, headers: attacker });
    try {
      await waitFor(
        async () => (await gatewayHoldings(c.gw.metricsUrl)).uploadsWaiting > 0,
        10_000,
        'the attacker’s logins queueing for the upload lane',
      );
      const h = await gatewayHoldings(c.gw.metricsUrl);
      assert.equal(h.uploadsInUse, 4, `one address holds 4 of the 16 upload places: ${JSON.stringify(h)}`);
      // Another client's 2 MiB write streams too (past the replay cap): it gets a place at once.
      const started = performance.now();
      const r = await request(`${c.gw.url}/v1/secret/data/large`, {
        method: 'POST',
        headers: {
          'x-vault-token': c.token,
          'content-type': 'application/json',
          'x-forwarded-for': '198.51.100.9',
        },
        body: JSON.stringify({ data: { v: 'x'.repeat(2 * MIB) } }),
      });
      const text = await r.body.text();
      assert.equal(r.statusCode, 200, text);
      assert.ok(performance.now() - started < P99_CEILING_MS, 'the large write did not wait for a place');
    } finally {
      held.stop();
      logins.stop();
    }
    await allReturned(c.gw, 'the upload-lane attack');
  });

  it('every byte and place comes back: resets at every stage, upgrades, timeouts, a killed leader, a drain', async () => {
    // A second gateway with a small pool (4 places, 1 for uploads) and a 3 s read timeout.
    const gw = await spawnGateway('gw-small', {
      redisUrl: c.redis.url,
      keys: c.keys,
      env: {
        LEADERWAY_UPSTREAM_CONNECTIONS: '4',
        LEADERWAY_HTTP_READ_TIMEOUT: '3s',
        LEADERWAY_HTTP_READ_HEADER_TIMEOUT: '3s',
        LEADERWAY_SHUTDOWN_TIMEOUT: '1s',
      },
    });
    try {
      await waitFor(async () => (await call(gw.url, '/-/ready')).status === 200, 15_000, 'gw-small ready');

      // 1. Resets at every stage of small, large and chunked requests and of upgrades.
      const stages = [
        '',
        UPGRADE.slice(0, 20),
        UPGRADE.slice(0, -2),
        UPGRADE,
        SMALL.slice(0, 30),
        SMALL,
        SMALL_WHOLE,
        LARGE(100_000),
        LARGE(1.5 * MIB),
        CHUNKED,
      ];
      for (let round = 0; round < 5; round++) {
        await Promise.all(stages.flatMap((b) => [0, 1, 5, 50].map((ms) => sendAndReset(gw.port, b, ms))));
      }
      await allReturned(gw, 'resets at every stage');

      // 2. The leader freezes with the pool full: upgrades and whole bodies wait for a place, and
      // their clients reset. (Before the fix each upgrade took its place once the leader
      // answered, and kept it: the pool was gone for good.)
      const active = await c.active();
      active.pause();
      let gets: Array<Promise<unknown>> = [];
      try {
        gets = Array.from({ length: 4 }, () =>
          request(`${gw.url}/v1/sys/health`).then(
            (r) => r.body.dump(),
            () => undefined,
          ),
        );
        await sleep(150);
        const waiting = await Promise.all([
          ...Array.from({ length: 6 }, () => send(gw.port, UPGRADE)),
          ...Array.from({ length: 3 }, () => send(gw.port, SMALL_WHOLE)),
        ]);
        await waitFor(
          async () => (await gatewayHoldings(gw.metricsUrl)).poolWaiting >= 9,
          5_000,
          'upgrades and writes waiting for a place',
          20,
        );
        for (const s of waiting) s.resetAndDestroy();
        await sleep(100);
      } finally {
        active.resume();
      }
      await Promise.all(gets);
      await allReturned(gw, 'upgrades and writes reset while waiting for a frozen leader');

      // 3. Bodies cut off by the read timeout (3 s) while their clients keep the connection:
      // held whole (small and large), and streaming (an address whose budget share is spent).
      const cut = [
        await spendLargeShare(gw, { addresses: ['127.0.0.2'] }),
        await slowLogins(gw.port, 2, { localAddress: '127.0.0.2', chunked: true }),
        await slowLogins(gw.port, 3, { localAddress: '127.0.0.3' }),
      ];
      await waitFor(
        async () => (await gatewayHoldings(gw.metricsUrl)).uploadsInUse > 0,
        5_000,
        'a streaming login holding the upload lane',
      );
      await allReturned(gw, 'the read timeout');
      for (const a of cut) a.stop();

      // 4. The leader is killed while bodies are held, uploads stream and requests wait.
      const killed = [
        await spendLargeShare(gw, { addresses: ['127.0.0.4'] }),
        await slowLogins(gw.port, 2, { localAddress: '127.0.0.4', chunked: true }),
        await slowLogins(gw.port, 3, { localAddress: '127.0.0.5' }),
      ];
      const upgrades = await Promise.all(Array.from({ length: 3 }, () => send(gw.port, UPGRADE)));
      const old = await c.active();
      await old.stop('SIGKILL');
      const next = await c.active();
      await waitFor(
        async () => ((await call(gw.url, '/-/ready')).body as { leader?: string }).leader === next.name,
        20_000,
        'gw-small following the new leader',
      );
      for (const a of killed) a.stop();
      for (const s of upgrades) s.resetAndDestroy();
      await allReturned(gw, 'the leader killed mid-request');
      const w = await call(gw.url, '/v1/secret/data/after', { token: c.token, body: { data: { v: 1 } } });
      assert.equal(w.status, 200, w.text);

      // 5. A drain while bodies are held and an upload streams: once the listener has closed,
      // the gateway reports what is still held (nothing).
      const drained = [
        await spendLargeShare(gw, { addresses: ['127.0.0.6'] }),
        await slowLogins(gw.port, 2, { localAddress: '127.0.0.6', chunked: true }),
        await slowLogins(gw.port, 3, { localAddress: '127.0.0.7' }),
      ];
      await waitFor(async () => (await gatewayHoldings(gw.metricsUrl)).uploadsInUse > 0, 5_000, 'an upload');
      const code = await gw.stop('SIGTERM');
      for (const a of drained) a.stop();
      assert.equal(code, 0);
      const report = gw.logs().find((l) => String(l.msg).startsWith('requests drained'));
      assert.ok(report, 'the drain was reported');
      assert.equal(report.msg, 'requests drained: nothing held', JSON.stringify(report));
    } finally {
      await gw.stop('SIGKILL');
    }
  });
});
