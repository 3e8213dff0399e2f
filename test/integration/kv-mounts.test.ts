/**
 * What real clients send, through the gateway, a standby (forwarded) and the active node: the
 * raw LIST verb interleaved with other requests on one keep-alive connection; secrets engine
 * mounts (KV v1 and v2 at any path) through sys/mounts; KV v2 metadata, config, subkeys and
 * patch; and clear refusals of namespaces and response wrapping.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Client } from 'undici';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { call } from '../helpers/http';
import type { Proc } from '../helpers/procs';
import { waitFor } from '../helpers/procs';

type Body = { data?: Record<string, unknown>; errors?: string[] } & Record<string, unknown>;

/** One keep-alive connection (undici Client: a single socket) that counts its connects. */
function connection(url: string) {
  const client = new Client(url, { pipelining: 1 });
  let connects = 0;
  client.on('connect', () => connects++);
  return {
    connects: () => connects,
    /** `chunked`: the body goes as a stream of unknown length (Transfer-Encoding: chunked). */
    async send(method: string, path: string, token: string, body?: unknown, chunked = false) {
      const json = body === undefined ? undefined : JSON.stringify(body);
      const r = await client.request({
        method: method as 'GET',
        path,
        headers: {
          'x-vault-token': token,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: json !== undefined && chunked ? Readable.from([json]) : json,
      });
      const text = await r.body.text();
      return { status: r.statusCode, body: (text ? JSON.parse(text) : {}) as Body };
    },
    close: () => client.close(),
  };
}

describe('Vault clients’ requests: raw LIST, mounts, KV v2 completeness, refusals', () => {
  let c: GatewayCluster;
  let targets: Array<[string, () => Promise<Proc>]> = [];

  before(async () => {
    c = await startGatewayCluster();
    targets = c.targets();
  });
  after(async () => {
    await c?.stop();
  });

  it('serves LIST as the first and any later request on one keep-alive connection', async () => {
    for (const [name, target] of targets) {
      const conn = connection((await target()).url);
      try {
        const base = `/v1/secret/data/ka-${name}`;
        const list = `/v1/secret/metadata/ka-${name}/`;
        const first = await conn.send('POST', `${base}/a`, c.token, { data: { v: 1 } });
        assert.equal(first.status, 200, `${name}: ${JSON.stringify(first.body)}`);
        const fresh = connection((await target()).url);
        const asFirst = await fresh.send('LIST', list, c.token);
        await fresh.close();
        assert.equal(asFirst.status, 200, `${name}: LIST as the first request`);
        assert.deepEqual(asFirst.body.data, { keys: ['a'] });
        for (let i = 0; i < 3; i++) {
          const l = await conn.send('LIST', list, c.token);
          assert.equal(l.status, 200, `${name}: ${JSON.stringify(l.body)}`);
          assert.equal((l.body.data?.keys as string[] | undefined)?.length, i + 1);
          const g = await conn.send('GET', `${list}?list=true`, c.token);
          assert.deepEqual(g.body.data, l.body.data, `${name}: LIST and GET ?list=true agree`);
          // A chunked upload between LISTs (a load balancer reusing one backend connection for
          // many clients sends such bodies too) must not cost the later LISTs.
          const chunked = i % 2 === 1;
          const w = await conn.send('POST', `${base}/b${i}`, c.token, { data: { i } }, chunked);
          assert.equal(w.status, 200, `${name}: ${JSON.stringify(w.body)}`);
        }
        const missing = await conn.send('LIST', `/v1/secret/metadata/none-${name}/`, c.token);
        assert.equal(missing.status, 404);
        assert.equal(conn.connects(), 1, `${name}: every request went over one connection`);
      } finally {
        await conn.close();
      }
    }
  });

  it('enables, lists, tunes and disables KV v1 and v2 mounts; every node sees the same table', async () => {
    const t = c.token;
    const enable = await call(c.gw.url, '/v1/sys/mounts/team-a', {
      token: t,
      body: { type: 'kv', options: { version: '2' }, description: 'team a' },
    });
    assert.equal(enable.status, 204, enable.text);
    assert.equal(
      (await call(c.gw.url, '/v1/sys/mounts/plain', { token: t, body: { type: 'kv' } })).status,
      204,
    );
    assert.equal(
      (await call(c.gw.url, '/v1/sys/mounts/nested/v2', { token: t, body: { type: 'kv-v2' } })).status,
      204,
    );
    for (const [name, target] of targets) {
      const list = await call((await target()).url, '/v1/sys/mounts', { token: t });
      assert.equal(list.status, 200, name);
      const data = (list.body as Body).data as Record<string, { type: string; options: { version: string } }>;
      assert.deepEqual(
        Object.keys(data).sort(),
        ['cubbyhole/', 'nested/v2/', 'plain/', 'secret/', 'sys/', 'team-a/'],
        `${name}: ${list.text}`,
      );
      assert.deepEqual(data['team-a/']?.options, { version: '2' });
      assert.deepEqual(data['plain/']?.options, { version: '1' });
      assert.equal((list.body as Record<string, unknown>)['secret/'] !== undefined, true, 'also top level');
    }
    // Refusals: overlapping, reserved, unknown engine, bad version.
    for (const [path, body, message] of [
      ['team-a/sub', { type: 'kv' }, /already in use at team-a\//],
      ['nested', { type: 'kv' }, /already in use at nested\/v2\//],
      ['sys/x', { type: 'kv' }, /reserved/],
      ['auth/x', { type: 'kv' }, /reserved/],
      ['pki', { type: 'pki' }, /plugin not found in the catalog: pki/],
      ['kv3', { type: 'kv', options: { version: '3' } }, /invalid KV version/],
    ] as const) {
      const r = await call(c.gw.url, `/v1/sys/mounts/${path}`, { token: t, body });
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.match(r.text, message);
    }
    // KV v1: the body is the secret; no versions.
    const w = await call(c.gw.url, '/v1/plain/app/db', { token: t, body: { user: 'u', pass: 'p' } });
    assert.equal(w.status, 204, w.text);
    const r = await call(c.gw.url, '/v1/plain/app/db', { token: t });
    assert.deepEqual((r.body as Body).data, { user: 'u', pass: 'p' });
    const l = await call(c.gw.url, '/v1/plain/app/', { token: t, method: 'LIST' });
    assert.deepEqual((l.body as Body).data, { keys: ['db'] });
    // KV v2 at a nested path.
    const nw = await call(c.gw.url, '/v1/nested/v2/data/x', { token: t, body: { data: { n: 1 } } });
    assert.equal(nw.status, 200, nw.text);
    assert.deepEqual(((await call(c.gw.url, '/v1/nested/v2/data/x', { token: t })).body as Body).data?.data, {
      n: 1,
    });
    // The Vault CLI's preflight and tuning.
    const ui = await call(c.gw.url, '/v1/sys/internal/ui/mounts/team-a/data/x', { token: t });
    assert.equal(((ui.body as Body).data as { path: string }).path, 'team-a/');
    assert.equal((await call(c.gw.url, '/v1/sys/internal/ui/mounts/nope/x', { token: t })).status, 403);
    const tune = await call(c.gw.url, '/v1/sys/mounts/team-a/tune', {
      token: t,
      body: { description: 'tuned', max_lease_ttl: '2h' },
    });
    assert.equal(tune.status, 204, tune.text);
    const tuned = await call(c.gw.url, '/v1/sys/mounts/team-a/tune', { token: t });
    assert.equal((tuned.body as Body).description, 'tuned');
    assert.equal((tuned.body as Body).max_lease_ttl, 7200);
    const upgrade = await call(c.gw.url, '/v1/sys/mounts/plain/tune', {
      token: t,
      body: { options: { version: '2' } },
    });
    assert.equal(upgrade.status, 400);
    // Disabling deletes the data: re-enabled, the path is empty.
    assert.equal((await call(c.gw.url, '/v1/sys/mounts/plain', { token: t, method: 'DELETE' })).status, 204);
    assert.equal((await call(c.gw.url, '/v1/plain/app/db', { token: t })).status, 404);
    assert.equal(
      (await call(c.gw.url, '/v1/sys/mounts/plain', { token: t, body: { type: 'kv' } })).status,
      204,
    );
    assert.equal((await call(c.gw.url, '/v1/plain/app/db', { token: t })).status, 404);
    assert.equal((await call(c.gw.url, '/v1/sys/mounts/never', { token: t, method: 'DELETE' })).status, 204);
    assert.equal((await call(c.gw.url, '/v1/sys/mounts/sys', { token: t, method: 'DELETE' })).status, 400);
  });

  it('keeps the mount table across a leader change', async () => {
    const before = await c.active();
    await call(before.url, '/v1/team-a/data/kept', { token: c.token, body: { data: { k: 1 } } });
    assert.equal(
      (await call(before.url, '/v1/sys/step-down', { token: c.token, method: 'PUT' })).status,
      204,
    );
    await waitFor(async () => (await c.active()) !== before, 20_000, 'a new active node');
    const r = await call(c.gw.url, '/v1/team-a/data/kept', { token: c.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((r.body as Body).data?.data, { k: 1 });
  });

  it('KV v2: custom_metadata, metadata patch, config, delete_version_after, subkeys', async () => {
    const t = c.token;
    const api = (path: string, o: Parameters<typeof call>[2] = {}) =>
      call(c.gw.url, `/v1/team-a/${path}`, { token: t, ...o });
    const merge = { 'content-type': 'application/merge-patch+json' };
    await api('data/app', { body: { data: { user: 'u', db: { host: 'h', port: 5432 } } } });
    const meta = await api('metadata/app', {
      body: { max_versions: 3, custom_metadata: { owner: 'team-a', env: 'prod' } },
    });
    assert.equal(meta.status, 204, meta.text);
    const read = await api('metadata/app');
    const md = (read.body as Body).data as Record<string, unknown>;
    assert.deepEqual(md.custom_metadata, { owner: 'team-a', env: 'prod' });
    assert.equal(md.max_versions, 3);
    assert.equal(md.delete_version_after, '0s');
    const dataRead = await api('data/app');
    assert.deepEqual(
      ((dataRead.body as Body).data as { metadata: { custom_metadata: unknown } }).metadata.custom_metadata,
      { owner: 'team-a', env: 'prod' },
    );
    // PATCH merges custom_metadata (null removes a key) and leaves the rest alone.
    const mp = await api('metadata/app', {
      method: 'PATCH',
      headers: merge,
      body: { custom_metadata: { env: null, tier: '1' } },
    });
    assert.equal(mp.status, 204, mp.text);
    const after = (await api('metadata/app')).body as Body;
    assert.deepEqual(after.data?.custom_metadata, { owner: 'team-a', tier: '1' });
    assert.equal(after.data?.max_versions, 3);
    // upstream's limits
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    assert.equal((await api('metadata/app', { body: { custom_metadata: tooMany } })).status, 400);
    assert.equal(
      (await api('metadata/app', { body: { custom_metadata: { k: 'v'.repeat(513) } } })).status,
      400,
    );
    assert.equal((await api('metadata/app', { body: { custom_metadata: { k: 1 } } })).status, 400);
    assert.equal((await api('metadata/app', { body: { delete_version_after: 'soon' } })).status, 400);
    // max_versions trims old versions.
    for (let i = 0; i < 4; i++) await api('data/app', { body: { data: { user: `u${i}` } } });
    const trimmed = (await api('metadata/app')).body as Body;
    assert.deepEqual(Object.keys(trimmed.data?.versions as object).sort(), ['3', '4', '5']);
    // subkeys: the structure without the values.
    await api('data/nested', { body: { data: { a: 1, b: { c: 2, d: { e: 3 } } } } });
    const sk = await api('subkeys/nested');
    assert.deepEqual(((sk.body as Body).data as { subkeys: unknown }).subkeys, {
      a: null,
      b: { c: null, d: { e: null } },
    });
    const sk1 = await api('subkeys/nested?depth=1');
    assert.deepEqual(((sk1.body as Body).data as { subkeys: unknown }).subkeys, { a: null, b: null });
    // Mount config: cas_required applies to every secret.
    assert.equal((await api('config', { body: { cas_required: true, max_versions: 5 } })).status, 204);
    const conf = (await api('config')).body as Body;
    assert.deepEqual(conf.data, { cas_required: true, delete_version_after: '0s', max_versions: 5 });
    const noCas = await api('data/casless', { body: { data: { x: 1 } } });
    assert.equal(noCas.status, 400);
    assert.match(noCas.text, /check-and-set parameter required/);
    assert.equal((await api('data/casless', { body: { data: { x: 1 }, options: { cas: 0 } } })).status, 200);
    assert.equal((await api('config', { body: { cas_required: false } })).status, 204);
    // delete_version_after: the version reads as deleted once it passes.
    await api('metadata/short', { body: { delete_version_after: '1s' } });
    const w = await api('data/short', { body: { data: { x: 1 } } });
    assert.notEqual(((w.body as Body).data as { deletion_time: string }).deletion_time, '');
    assert.equal((await api('data/short')).status, 200);
    await waitFor(async () => (await api('data/short')).status === 404, 5_000, 'the version to expire');
  });

  it('refuses X-Vault-Namespace with a 400 naming the feature; wraps on X-Vault-Wrap-TTL', async () => {
    for (const [name, target] of targets) {
      const url = (await target()).url;
      const ns = await call(url, '/v1/secret/data/ka-gateway/a', {
        token: c.token,
        headers: { 'x-vault-namespace': 'team-a' },
      });
      assert.equal(ns.status, 400, name);
      assert.match(ns.text, /namespaces are not supported/);
      const wrap = await call(url, '/v1/secret/data/ka-gateway/a', {
        token: c.token,
        headers: { 'x-vault-wrap-ttl': '60s' },
      });
      assert.equal(wrap.status, 200, name);
      const info = (wrap.body as { wrap_info: { token: string; creation_path: string } }).wrap_info;
      assert.equal(info.creation_path, 'secret/data/ka-gateway/a', `${name}: wrapped, never in the clear`);
      const unwrapped = await call(url, '/v1/sys/wrapping/unwrap', { token: info.token, method: 'POST' });
      assert.equal(unwrapped.status, 200, name);
      const empty = await call(url, '/v1/secret/data/ka-gateway/a', {
        token: c.token,
        headers: { 'x-vault-namespace': '' },
      });
      assert.equal(empty.status, 200, `${name}: an empty namespace is the root namespace`);
    }
  });
});
