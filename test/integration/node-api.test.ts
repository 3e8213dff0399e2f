/**
 * One node, end to end, as Vault clients and load balancers see it: real `leaderway server`
 * processes on a real Redis. Uninitialized (501) → init (racing nodes: exactly one wins) →
 * active (200) → KV v2 with CAS → token checks → bad input of every kind → wrong seal key →
 * Redis outage and recovery → SIGTERM. Every response is checked for `Cache-Control: no-store`
 * and every error for the `{"errors":[...]}` shape.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { type CallOptions, call, type TestResponse } from '../helpers/http';
import { type Proc, spawnLeaderway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

/** Small, so the 413 tests need only small bodies. */
const MAX_REQUEST_SIZE = 64 * 1024;
/** How long a request may take before we call the node hung (a bound, not a timing assertion). */
const ANSWER_WITHIN_MS = 10_000;
/** How long a node gets to unseal, win the lock or recover (lock TTL is 2 s in spawnNode). */
const SETTLE_MS = 20_000;

/** Asserts the Vault error shape: JSON `{"errors":[string...]}` and nothing else. */
function assertErrorShape(
  r: { status: number; headers: TestResponse['headers']; text: string },
  what: string,
): void {
  assert.match(String(r.headers['content-type']), /^application\/json/, `${what}: JSON error`);
  const body = JSON.parse(r.text) as unknown;
  assert.ok(body !== null && typeof body === 'object' && !Array.isArray(body), `${what}: an object`);
  assert.deepEqual(Object.keys(body), ['errors'], `${what}: only "errors"`);
  const errors = (body as { errors: unknown }).errors;
  assert.ok(
    Array.isArray(errors) && errors.every((e) => typeof e === 'string'),
    `${what}: errors is string[]`,
  );
  assert.ok(!/\n\s+at /.test(r.text), `${what}: no stack trace`);
}

/** `call`, plus the checks every response must pass; fails if the node does not answer. */
async function api(base: string, path: string, o: CallOptions = {}): Promise<TestResponse> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${o.method ?? 'GET'} ${path}: no answer`)), ANSWER_WITHIN_MS);
  });
  try {
    const r = await Promise.race([call(base, path, o), hung]);
    const what = `${o.method ?? 'GET'} ${path} → ${r.status}`;
    assert.equal(r.headers['cache-control'], 'no-store', `${what}: Cache-Control`);
    // sys/health answers 429/501/503 (or any code asked for) with its status body, and KV reads
    // of a deleted or destroyed version answer 404 with the version's metadata (as Vault does):
    // those are not errors.
    const health = path.startsWith('/v1/sys/health');
    const statusBody = health || (isObject(r.body) && 'data' in r.body);
    if (!health) {
      assert.ok(r.status < 500 || r.status === 501 || r.status === 503, `${what}: server error ${r.text}`);
    }
    if (r.status >= 400 && o.method !== 'HEAD' && !statusBody) assertErrorShape(r, what);
    return r;
  } finally {
    clearTimeout(timer);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/**
 * Sends `head` (request line and headers, without the final blank line) and `body` byte for byte
 * over a fresh TCP connection: fetch and undici would normalise `..` or refuse odd requests.
 */
function raw(port: number, head: string, body = '', o: { host?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${head.split('\r\n')[0]}`));
    }, ANSWER_WITHIN_MS);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {}); // a reset after the answer is fine; no answer is caught below
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m || split === -1) {
        reject(
          new Error(`no HTTP response to ${head.split('\r\n')[0]}: ${JSON.stringify(text.slice(0, 200))}`),
        );
        return;
      }
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, split).split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(m[1]), headers, text: text.slice(split + 4) });
    });
    // One write, and no half-close: Node's server drops a half-closed connection's pending
    // response. `connection: close` makes the server close once it has answered.
    const length = body ? `content-length: ${Buffer.byteLength(body)}\r\n` : '';
    const host = o.host === false ? '' : 'host: 127.0.0.1\r\n';
    socket.write(`${head}\r\n${host}connection: close\r\n${length}\r\n${body}`, 'latin1');
  });
}

/** A raw request that must get a 4xx Vault error. */
async function rawRejects(
  port: number,
  head: string,
  status: number | null,
  body = '',
  o: { host?: boolean } = {},
): Promise<RawResponse> {
  const r = await raw(port, head, body, o);
  const what = `${head.split('\r\n')[0]?.slice(0, 80)} → ${r.status}`;
  if (status === null) assert.ok(r.status >= 400 && r.status < 500, `${what}: expected 4xx`);
  else assert.equal(r.status, status, `${what}: ${r.text}`);
  assert.equal(r.headers['cache-control'], 'no-store', `${what}: Cache-Control`);
  assertErrorShape(r, what);
  return r;
}

describe('node API on a real Redis', () => {
  let redis: RedisServer;
  const keys = testKeys();
  const others: Proc[] = [];
  let n1: Proc;
  let n2: Proc;
  let token = '';

  before(async () => {
    redis = await startRedis({ appendonly: true });
    const env = { LEADERWAY_MAX_REQUEST_SIZE: '64KiB' };
    [n1, n2] = await Promise.all([
      spawnNode('n1', { redisUrl: redis.url, keys, env }),
      spawnNode('n2', { redisUrl: redis.url, keys, env }),
    ]);
  });

  after(async () => {
    await Promise.allSettled([n1, n2, ...others].filter(Boolean).map((p) => p.stop('SIGKILL')));
    await redis?.stop();
  });

  it('is uninitialized before init: health 501, init false, sealed, KV refused', async () => {
    const h = await api(n1.url, '/v1/sys/health');
    assert.equal(h.status, 501);
    assert.equal((h.body as { initialized: boolean }).initialized, false);
    assert.equal((await api(n1.url, '/v1/sys/health?uninitcode=218')).status, 218);
    const i = await api(n1.url, '/v1/sys/init');
    assert.equal(i.status, 200);
    assert.deepEqual(i.body, { initialized: false });
    const s = await api(n1.url, '/v1/sys/seal-status');
    assert.equal(s.status, 200);
    assert.equal((s.body as { initialized: boolean }).initialized, false);
    assert.equal((s.body as { sealed: boolean }).sealed, true);
    assert.equal((await api(n1.url, '/v1/sys/leader')).status, 503);
    assert.equal((await api(n1.url, '/v1/secret/data/x', { token: 'hvs.anything' })).status, 503);
  });

  it('inits exactly once when nodes race: one 200 with root_token and empty keys, the rest 400', async () => {
    const targets = [n1, n1, n2, n2];
    const attempts = await Promise.all(
      targets.map((n) => api(n.url, '/v1/sys/init', { method: 'PUT', body: { secret_shares: 1 } })),
    );
    const ok = attempts.filter((r) => r.status === 200);
    const winner = targets[attempts.findIndex((r) => r.status === 200)] as Proc;
    assert.equal(ok.length, 1, `exactly one init succeeds: ${attempts.map((r) => r.status).join(',')}`);
    for (const r of attempts.filter((a) => a.status !== 200)) {
      assert.equal(r.status, 400);
      assert.deepEqual(r.body, { errors: ['Vault is already initialized'] });
    }
    const body = ok[0]?.body as { root_token: string; keys: unknown; keys_base64: unknown };
    assert.deepEqual(body.keys, []);
    assert.deepEqual(body.keys_base64, []);
    assert.match(body.root_token, /^hvs\.[A-Za-z0-9_-]{20,}$/);
    token = body.root_token;
    const again = await api(n2.url, '/v1/sys/init', { method: 'PUT', body: {} });
    assert.equal(again.status, 400);
    assert.deepEqual((await api(winner.url, '/v1/sys/init')).body, { initialized: true });
  });

  it('unseals every node by itself once one has initialized; one active, one standby', async () => {
    const statuses = await Promise.all(
      [n1, n2].map((n) =>
        waitFor(
          async () => {
            const s = (await api(n.url, '/v1/sys/health')).status;
            return s === 200 || s === 429 ? s : null;
          },
          SETTLE_MS,
          `${n.name} unsealed`,
        ),
      ),
    );
    // Both are unsealed; wait until exactly one holds the lock.
    const [active, standby] = await waitFor(
      async () => {
        const [a, b] = await Promise.all([n1, n2].map((n) => api(n.url, '/v1/sys/health')));
        if (a?.status === 200 && b?.status === 429) return [n1, n2] as const;
        if (a?.status === 429 && b?.status === 200) return [n2, n1] as const;
        return null;
      },
      SETTLE_MS,
      `one active node (first seen: ${statuses.join(',')})`,
    );
    const sh = await api(standby.url, '/v1/sys/health');
    assert.equal((sh.body as { standby: boolean }).standby, true);
    assert.equal((await api(standby.url, '/v1/sys/health?standbyok=true')).status, 200);
    assert.equal((await api(standby.url, '/v1/sys/health?standbycode=288')).status, 288);
    const sl = (await api(standby.url, '/v1/sys/leader')).body as Record<string, unknown>;
    assert.equal(sl.is_self, false);
    assert.equal(sl.leader_address, active.url);
    // From here on the tests talk to n1 alone: stop the other one. SIGTERM is a clean exit.
    assert.equal(await n2.stop('SIGTERM'), 0);
    await waitFor(async () => (await api(n1.url, '/v1/sys/health')).status === 200, SETTLE_MS, 'n1 active');
  });

  it('answers sys/health for load balancers: codes, HEAD without a body, bad codes 400', async () => {
    const h = await api(n1.url, '/v1/sys/health');
    assert.equal(h.status, 200);
    const body = h.body as Record<string, unknown>;
    assert.equal(body.initialized, true);
    assert.equal(body.sealed, false);
    assert.equal(body.standby, false);
    assert.equal(typeof body.server_time_utc, 'number');
    assert.equal(typeof body.version, 'string');
    assert.match(String(body.cluster_id), /^[0-9a-f-]{36}$/);
    assert.equal((await api(n1.url, '/v1/sys/health?activecode=299')).status, 299);
    assert.equal((await api(n1.url, '/v1/sys/health?standbyok=true')).status, 200);
    assert.equal((await api(n1.url, '/v1/sys/health?standbycode=288&sealedcode=513')).status, 200);
    for (const q of [
      'activecode=abc',
      'activecode=99',
      'activecode=600',
      'standbycode=2000',
      'sealedcode=-1',
    ]) {
      const bad = await api(n1.url, `/v1/sys/health?${q}`);
      assert.equal(bad.status, 400, q);
    }
    const head = await api(n1.url, '/v1/sys/health', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    const headCode = await api(n1.url, '/v1/sys/health?activecode=204', { method: 'HEAD' });
    assert.equal(headCode.status, 204);
    const headBad = await api(n1.url, '/v1/sys/health?activecode=abc', { method: 'HEAD' });
    assert.equal(headBad.status, 400);
    assert.equal(headBad.text, '');
  });

  it('answers seal-status and sys/leader without a token', async () => {
    const s = (await api(n1.url, '/v1/sys/seal-status')).body as Record<string, unknown>;
    assert.equal(s.initialized, true);
    assert.equal(s.sealed, false);
    assert.equal(s.type, 'static');
    assert.equal(s.storage_type, 'redis');
    const l = await api(n1.url, '/v1/sys/leader');
    assert.equal(l.status, 200);
    const lb = l.body as Record<string, unknown>;
    assert.equal(lb.ha_enabled, true);
    assert.equal(lb.is_self, true);
    assert.equal(lb.leader_address, n1.url);
    assert.equal(lb.leader_cluster_address, `https://127.0.0.1:${n1.clusterPort}`);
    assert.ok(!Number.isNaN(Date.parse(String(lb.active_time))));
  });

  it('stores KV v2 secrets with versions and check-and-set', async () => {
    const put = (data: unknown, options?: unknown) =>
      api(n1.url, '/v1/secret/data/app/db', {
        method: 'PUT',
        token,
        body: options ? { data, options } : { data },
      });
    const w1 = await put({ user: 'u1', password: 'p1' }, { cas: 0 });
    assert.equal(w1.status, 200, w1.text);
    assert.equal((w1.body as { data: { version: number } }).data.version, 1);
    const w2 = await api(n1.url, '/v1/secret/data/app/db', {
      method: 'POST',
      token,
      body: { data: { password: 'p2' }, options: { cas: 1 } },
    });
    assert.equal((w2.body as { data: { version: number } }).data.version, 2);
    const latest = await api(n1.url, '/v1/secret/data/app/db', { token });
    assert.equal(latest.status, 200);
    const lb = latest.body as { data: { data: unknown; metadata: { version: number } } };
    assert.deepEqual(lb.data.data, { password: 'p2' });
    assert.equal(lb.data.metadata.version, 2);
    const v1 = await api(n1.url, '/v1/secret/data/app/db?version=1', { token });
    assert.deepEqual((v1.body as { data: { data: unknown } }).data.data, { user: 'u1', password: 'p1' });
    const missing = await api(n1.url, '/v1/secret/data/app/db?version=7', { token });
    assert.equal(missing.status, 404);

    for (const cas of [0, 1, 3]) {
      const r = await put({ password: 'lost' }, { cas });
      assert.equal(r.status, 400, `cas ${cas}`);
      assert.deepEqual(r.body, { errors: ['check-and-set parameter did not match the current version'] });
    }
    const kept = await api(n1.url, '/v1/secret/data/app/db', { token });
    assert.deepEqual(
      (kept.body as { data: { data: unknown } }).data.data,
      { password: 'p2' },
      'a CAS miss stores nothing',
    );
    // `vault kv patch` sends a merge patch: it merges into the latest version (null removes a
    // key) and must say so in its content type.
    const patchUrl = '/v1/secret/data/patched';
    await api(n1.url, patchUrl, { method: 'PUT', token, body: { data: { password: 'p2', gone: 'y' } } });
    const patchBody = { data: { other: 'x', gone: null }, options: { cas: 1 } };
    const merge = { 'content-type': 'application/merge-patch+json' };
    const plain = await api(n1.url, patchUrl, { method: 'PATCH', token, body: patchBody });
    assert.equal(plain.status, 415, plain.text);
    const patch = await api(n1.url, patchUrl, { method: 'PATCH', token, body: patchBody, headers: merge });
    assert.equal(patch.status, 200, patch.text);
    assert.equal((patch.body as { data: { version: number } }).data.version, 2);
    const patched = await api(n1.url, patchUrl, { token });
    assert.deepEqual((patched.body as { data: { data: unknown } }).data.data, { password: 'p2', other: 'x' });
    const stale = await api(n1.url, patchUrl, { method: 'PATCH', token, body: patchBody, headers: merge });
    assert.equal(stale.status, 400, 'a patch with a stale cas is refused');
    const none = await api(n1.url, '/v1/secret/data/never', {
      method: 'PATCH',
      token,
      body: patchBody,
      headers: merge,
    });
    assert.equal(none.status, 404, 'nothing to patch');
    assert.equal((await api(n1.url, '/v1/secret/metadata/patched', { method: 'DELETE', token })).status, 204);
    for (const bad of [-1, 'x', 1.5, { n: 1 }]) {
      assert.equal((await put({ a: 1 }, { cas: bad })).status, 400, `cas ${JSON.stringify(bad)}`);
    }
    for (const q of ['abc', '-1', '1.5', '1e3', '0x10', '99999999999999999999']) {
      const r = await api(n1.url, `/v1/secret/data/app/db?version=${q}`, { token });
      assert.equal(r.status, 400, `?version=${q}`);
    }
    assert.equal((await put(['not', 'an', 'object'])).status, 400);
    assert.equal(
      (await api(n1.url, '/v1/secret/data/app/db', { method: 'PUT', token, body: {} })).status,
      400,
    );
  });

  it('soft-deletes, undeletes and destroys versions; reads and deletes metadata', async () => {
    const del = await api(n1.url, '/v1/secret/data/app/db', { method: 'DELETE', token });
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    const gone = await api(n1.url, '/v1/secret/data/app/db', { token });
    assert.equal(gone.status, 404);
    const gb = gone.body as { data: { data: unknown; metadata: { deletion_time: string } } };
    assert.equal(gb.data.data, null);
    assert.notEqual(gb.data.metadata.deletion_time, '');
    assert.equal(
      (await api(n1.url, '/v1/secret/data/app/db?version=1', { token })).status,
      200,
      'older versions stay',
    );

    const undel = await api(n1.url, '/v1/secret/undelete/app/db', {
      method: 'POST',
      token,
      body: { versions: [2] },
    });
    assert.equal(undel.status, 204);
    const back = await api(n1.url, '/v1/secret/data/app/db', { token });
    assert.deepEqual((back.body as { data: { data: unknown } }).data.data, { password: 'p2' });

    const destroy = await api(n1.url, '/v1/secret/destroy/app/db', {
      method: 'PUT',
      token,
      body: { versions: [1] },
    });
    assert.equal(destroy.status, 204);
    const destroyed = await api(n1.url, '/v1/secret/data/app/db?version=1', { token });
    assert.equal(destroyed.status, 404);
    assert.equal(
      (destroyed.body as { data: { metadata: { destroyed: boolean } } }).data.metadata.destroyed,
      true,
    );
    const undestroy = await api(n1.url, '/v1/secret/undelete/app/db', {
      method: 'POST',
      token,
      body: { versions: [1] },
    });
    assert.equal(undestroy.status, 204);
    assert.equal(
      (await api(n1.url, '/v1/secret/data/app/db?version=1', { token })).status,
      404,
      'destroy is final',
    );
    const noVersions = await api(n1.url, '/v1/secret/destroy/app/db', { method: 'PUT', token, body: {} });
    assert.equal(noVersions.status, 400);
    const badVersions = await api(n1.url, '/v1/secret/delete/app/db', {
      method: 'PUT',
      token,
      body: { versions: ['x'] },
    });
    assert.equal(badVersions.status, 400);

    const meta = await api(n1.url, '/v1/secret/metadata/app/db', { token });
    assert.equal(meta.status, 200);
    const mb = meta.body as {
      data: { current_version: number; versions: Record<string, { destroyed: boolean }> };
    };
    assert.equal(mb.data.current_version, 2);
    assert.equal(mb.data.versions['1']?.destroyed, true);
    assert.equal(mb.data.versions['2']?.destroyed, false);

    await api(n1.url, '/v1/secret/data/app/web', { method: 'PUT', token, body: { data: { k: 'v' } } });
    await api(n1.url, '/v1/secret/data/top', { method: 'PUT', token, body: { data: { k: 'v' } } });
    const list = await api(n1.url, '/v1/secret/metadata/?list=true', { token });
    assert.equal(list.status, 200);
    assert.deepEqual((list.body as { data: { keys: string[] } }).data.keys, ['app/', 'top']);
    const sub = await api(n1.url, '/v1/secret/metadata/app?list=true', { token });
    assert.deepEqual((sub.body as { data: { keys: string[] } }).data.keys, ['db', 'web']);
    assert.equal((await api(n1.url, '/v1/secret/metadata/nothing/?list=true', { token })).status, 404);

    const md = await api(n1.url, '/v1/secret/metadata/app/db', { method: 'DELETE', token });
    assert.equal(md.status, 204);
    assert.equal((await api(n1.url, '/v1/secret/metadata/app/db', { token })).status, 404);
    assert.equal((await api(n1.url, '/v1/secret/data/app/db?version=2', { token })).status, 404);
    const after = await api(n1.url, '/v1/secret/metadata/app?list=true', { token });
    assert.deepEqual((after.body as { data: { keys: string[] } }).data.keys, ['web']);
  });

  it('serves the raw LIST method exactly as GET ?list=true', async () => {
    const listed = await raw(n1.port, `LIST /v1/secret/metadata/ HTTP/1.1\r\nx-vault-token: ${token}`);
    const viaGet = await api(n1.url, '/v1/secret/metadata/?list=true', { token });
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(
      (JSON.parse(listed.text) as { data: unknown }).data,
      (viaGet.body as { data: unknown }).data,
    );
  });

  it('accepts X-Vault-Token and Authorization: Bearer; anything else is 403 permission denied', async () => {
    assert.equal((await api(n1.url, '/v1/secret/data/top', { token })).status, 200);
    const bearer = await api(n1.url, '/v1/secret/data/top', {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(bearer.status, 200);
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    const nearMisses = [
      undefined,
      '',
      token.slice(0, -1),
      `${token}x`,
      token.slice(0, -1) + last,
      token.toUpperCase(),
      token.replace('hvs.', 's.'),
      'x'.repeat(300),
    ];
    for (const t of nearMisses) {
      const r = await api(
        n1.url,
        '/v1/secret/data/top',
        t === undefined ? {} : { headers: { 'x-vault-token': t } },
      );
      assert.equal(r.status, 403, `token ${JSON.stringify(t?.slice(0, 20))}`);
      assert.deepEqual(r.body, { errors: ['permission denied'] });
    }
    for (const authorization of [
      `Basic ${token}`,
      `Bearer${token}`,
      `Bearer ${token.slice(0, -1)}`,
      'Bearer',
    ]) {
      const r = await api(n1.url, '/v1/secret/data/top', { headers: { authorization } });
      assert.equal(r.status, 403, authorization.slice(0, 12));
      assert.deepEqual(r.body, { errors: ['permission denied'] });
    }
    const write = await api(n1.url, '/v1/secret/data/top', {
      method: 'PUT',
      token: `${token}x`,
      body: { data: { evil: 1 } },
    });
    assert.equal(write.status, 403);
    const kept = await api(n1.url, '/v1/secret/data/top', { token });
    assert.deepEqual((kept.body as { data: { data: unknown } }).data.data, { k: 'v' });
    const lookup = await api(n1.url, '/v1/auth/token/lookup-self', { token });
    assert.equal(lookup.status, 200);
    const data = (lookup.body as { data: { id: string; policies: string[]; accessor: string } }).data;
    assert.equal(data.id, token);
    assert.deepEqual(data.policies, ['root']);
    const byAccessor = await api(n1.url, '/v1/auth/token/lookup-self', { token: data.accessor });
    assert.equal(byAccessor.status, 403, 'the accessor is not a token');
    assert.equal((await api(n1.url, '/v1/auth/token/lookup-self')).status, 403);
    // A duplicated token header is not a token: 403, never 500.
    const dup = await raw(
      n1.port,
      `GET /v1/secret/data/top HTTP/1.1\r\nx-vault-token: ${token}\r\nx-vault-token: ${token}`,
    );
    assert.equal(dup.status, 403);
    assertErrorShape(dup, 'duplicated X-Vault-Token');
  });

  it('rejects malformed bodies with 4xx JSON errors and stores nothing', async () => {
    const url = '/v1/secret/data/bad-input';
    const bad = async (body: string, status: number, headers: Record<string, string> = {}) => {
      const r = await api(n1.url, url, { method: 'PUT', token, body, headers });
      assert.equal(r.status, status, `${body.slice(0, 40)} → ${r.text}`);
      return r;
    };
    await bad('{"data":', 400);
    await bad('{"data":{"a":1}', 400);
    await bad('not json at all', 400);
    await bad('[1,2,3]', 400);
    await bad('"string"', 400);
    await bad('{"data":{"a":1},"options":"cas"}', 400);
    await bad('{"data":{"a":1},"options":[1]}', 400);
    await bad('\u0000\u0001', 400);
    await bad('{"data":{"a":1}}', 415, { 'content-type': 'multipart/form-data; boundary=x' });
    await bad('<data/>', 415, { 'content-type': 'application/xml' });
    // Deep nesting under the size limit: refused before the parser recurses.
    const depth = 20_000;
    await bad(`{"data":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`, 400);
    await bad(`{"data":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}`, 400);
    // Too big: declared with Content-Length, and streamed chunked without one.
    const big = JSON.stringify({ data: { blob: 'x'.repeat(MAX_REQUEST_SIZE + 10) } });
    await bad(big, 413);
    const chunked = await request(`${n1.url}${url}`, {
      method: 'PUT',
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      body: Readable.from([Buffer.from(big.slice(0, 40_000)), Buffer.from(big.slice(40_000))]),
    });
    const chunkedText = await chunked.body.text();
    assert.equal(chunked.statusCode, 413, chunkedText);
    assertErrorShape(
      { status: chunked.statusCode, headers: chunked.headers, text: chunkedText },
      'chunked 413',
    );
    assert.equal((await api(n1.url, url, { token })).status, 404, 'nothing was stored');
    // Just under the limit is fine.
    const fits = JSON.stringify({ data: { blob: 'x'.repeat(MAX_REQUEST_SIZE - 100) } });
    assert.equal((await api(n1.url, url, { method: 'PUT', token, body: fits })).status, 200);
  });

  it('rejects bad paths (raw bytes on the wire) with 4xx JSON errors', async () => {
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nx-vault-token: ${token}`;
    await rawRejects(n1.port, get('/v1/secret/data/../../sys/init'), 400);
    await rawRejects(n1.port, get('/v1/secret/data/./top'), 400);
    await rawRejects(n1.port, get('/v1/secret/data/%2e%2e/top'), 400);
    await rawRejects(n1.port, get('/v1/secret//data/top'), 400);
    await rawRejects(n1.port, get('/v1/secret/data/top//'), 400);
    await rawRejects(n1.port, get('/v1/secret/data/a%00b'), 400);
    await rawRejects(n1.port, get('/v1/secret/data/a%0d%0ab'), 400);
    await rawRejects(n1.port, get('/v1/secret/data/a%2fb'), 400);
    await rawRejects(n1.port, get('/v1/secret/data/%zz'), 400);
    await rawRejects(n1.port, get(`/v1/secret/data/${'a'.repeat(513)}`), 400);
    await rawRejects(n1.port, get(`/v1/secret/data/${'a/'.repeat(3000)}a`), 400);
    // A raw NUL or control byte in the request line: Node's parser refuses it (400 JSON).
    await rawRejects(n1.port, get('/v1/secret/data/a\u0000b'), 400);
    await rawRejects(n1.port, get('/v1/secret/data/a\u0001b'), 400);
    // A 512-byte segment is still fine.
    const ok = await raw(n1.port, get(`/v1/secret/data/${'a'.repeat(512)}`));
    assert.equal(ok.status, 404);
  });

  it('answers unknown endpoints 404 and wrong methods 405', async () => {
    for (const path of [
      '/v1/nope',
      '/v1/sys/nope',
      '/v1/secret/nope/x',
      '/v2/secret/data/top',
      '/',
      '/v1/secret/data/',
    ]) {
      const r = await api(n1.url, path, { token });
      assert.equal(r.status, 404, path);
    }
    const wrong: Array<[string, string]> = [
      ['DELETE', '/v1/sys/health'],
      ['POST', '/v1/sys/leader'],
      ['PUT', '/v1/sys/seal-status'],
      ['DELETE', '/v1/sys/init'],
      ['GET', '/v1/secret/undelete/top'],
      ['DELETE', '/v1/secret/config'],
      ['OPTIONS', '/v1/secret/data/top'],
    ];
    for (const [method, path] of wrong) {
      const r = await api(n1.url, path, { method, token });
      assert.equal(r.status, 405, `${method} ${path}`);
    }
  });

  it('answers huge headers 431 and odd header lines 400, as JSON', async () => {
    const r = await rawRejects(
      n1.port,
      `GET /v1/sys/health HTTP/1.1\r\nx-big: ${'a'.repeat(17 * 1024)}`,
      431,
    );
    assert.match(r.text, /too large/);
    await rawRejects(n1.port, `GET /v1/sys/health HTTP/1.1\r\nx-vault-token: ${'t'.repeat(20 * 1024)}`, 431);
    // HTTP/1.1 without Host: Node's own answer would be a bare 400 without JSON or Cache-Control.
    await rawRejects(n1.port, 'GET /v1/sys/health HTTP/1.1', 400, '', { host: false });
    await rawRejects(n1.port, 'GET /v1/sys/health HTTP/1.1\r\nbad header line', 400);
    await rawRejects(n1.port, 'GET /v1/sys/health HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2', 400);
  });

  it('is still alive and serving after all of the above', async () => {
    assert.equal(n1.child.exitCode, null);
    assert.equal((await api(n1.url, '/v1/sys/health')).status, 200);
    assert.equal((await api(n1.url, '/v1/secret/data/top', { token })).status, 200);
  });

  it('stays sealed, saying why, when started with another seal key', async () => {
    const wrong = await spawnNode('n3-wrong-key', {
      redisUrl: redis.url,
      keys: { ...keys, sealKey: randomBytes(32).toString('base64') },
    });
    others.push(wrong);
    const line = await waitFor(
      () => wrong.logs().find((l) => l.level === 'error' && /seal key/.test(String(l.msg))),
      SETTLE_MS,
      'an error line about the seal key',
    );
    assert.match(String(line.msg), /LEADERWAY_SEAL_KEY/);
    const h = await api(wrong.url, '/v1/sys/health');
    assert.equal(h.status, 503);
    assert.equal((h.body as { sealed: boolean }).sealed, true);
    assert.equal((h.body as { initialized: boolean }).initialized, true);
    assert.equal((await api(wrong.url, '/v1/sys/health?sealedcode=513')).status, 513);
    assert.equal(((await api(wrong.url, '/v1/sys/seal-status')).body as { sealed: boolean }).sealed, true);
    const kv = await api(wrong.url, '/v1/secret/data/top', { token });
    assert.equal(kv.status, 503);
    assert.deepEqual(kv.body, { errors: ['Vault is sealed'] });
    assert.equal((await api(wrong.url, '/v1/sys/init', { method: 'PUT', body: {} })).status, 400);
    assert.equal(wrong.child.exitCode, null, 'still running');
    assert.equal(await wrong.stop('SIGTERM'), 0);
    // The real node was not disturbed.
    assert.equal((await api(n1.url, '/v1/sys/health')).status, 200);
  });

  it('exits 2 naming the variable on a configuration error', async () => {
    const bad = await spawnLeaderway(
      'bad-config',
      ['server'],
      {
        LEADERWAY_LISTEN_ADDR: 'not-an-address',
        LEADERWAY_SEAL_KEY: keys.sealKey,
        LEADERWAY_ADVERTISEMENT_KEY: keys.adKey,
        VAULT_API_ADDR: 'http://127.0.0.1:1',
      },
      { port: 0 },
      { waitListening: false },
    );
    others.push(bad);
    assert.equal(await bad.exited, 2);
    const out = bad.lines.join('\n');
    assert.match(out, /LEADERWAY_LISTEN_ADDR/);
    assert.ok(!out.includes(keys.sealKey), 'the seal key is not printed');
  });

  it('answers 503 JSON while Redis is down and recovers by itself, data intact', async () => {
    const before = await api(n1.url, '/v1/secret/data/outage', {
      method: 'PUT',
      token,
      body: { data: { kept: 'yes' } },
    });
    assert.equal(before.status, 200);
    await redis.kill();
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', { data: { lost: 'no' } }],
    ] as const) {
      const r = await api(n1.url, '/v1/secret/data/outage', { method, token, body });
      assert.equal(r.status, 503, `${method} while Redis is down: ${r.text}`);
    }
    // The load balancer endpoint keeps answering (whatever the node currently thinks it is).
    const h = await api(n1.url, '/v1/sys/health');
    assert.ok([200, 429].includes(h.status), `health while Redis is down: ${h.status}`);
    await redis.start();
    const read = await waitFor(
      async () => {
        const r = await api(n1.url, '/v1/secret/data/outage', { token });
        return r.status === 200 ? r : null;
      },
      SETTLE_MS,
      'KV served again after Redis returned',
    );
    assert.deepEqual((read.body as { data: { data: unknown } }).data.data, { kept: 'yes' });
    const meta = await api(n1.url, '/v1/secret/metadata/outage', { token });
    assert.equal(
      (meta.body as { data: { current_version: number } }).data.current_version,
      1,
      'the refused write stored nothing',
    );
    const w = await api(n1.url, '/v1/secret/data/outage', {
      method: 'PUT',
      token,
      body: { data: { kept: 'again' } },
    });
    assert.equal(w.status, 200);
    assert.equal((await api(n1.url, '/v1/sys/health')).status, 200);
  });

  it('never prints the root token or the seal key', () => {
    for (const p of [n1, n2, ...others]) {
      for (const line of p.lines) {
        assert.ok(!line.includes(token), `${p.name} printed the root token`);
        assert.ok(!line.includes(keys.sealKey), `${p.name} printed the seal key`);
        assert.ok(!line.includes(keys.adKey), `${p.name} printed the advertisement key`);
      }
    }
  });

  it('exits 0 on SIGTERM', async () => {
    assert.equal(await n1.stop('SIGTERM'), 0);
  });
});
