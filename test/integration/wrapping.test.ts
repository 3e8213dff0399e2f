/**
 * Cubbyhole and response wrapping end to end: two real nodes on a real Redis, through the gateway
 * and through a standby (which forwards), as a trusted orchestrator and an application use them.
 * A wrapped answer is a single-use token whose response comes back exactly once — under
 * concurrent unwraps, and across a kill -9 of the active node — and a wrapping token opens
 * nothing else. The store-level rules are tested alone in test/unit/wrapping.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawRedis } from '../helpers/cluster';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { vaultApi } from '../helpers/vault-api';

const INVALID = 'wrapping token is not valid or does not exist';

describe('cubbyhole and response wrapping, end to end', () => {
  let c: GatewayCluster;
  let root = '';
  const { api, token, policy } = vaultApi(
    () => c.gw.url,
    () => root,
  );
  /** The same client, aimed at one node. */
  const at = (url: string) =>
    vaultApi(
      () => url,
      () => root,
    ).api;
  const wrap = (ttl: string) => ({ 'x-vault-wrap-ttl': ttl });
  const wrapped = async (path: string, o: Parameters<typeof api>[1] = {}, call = api) => {
    const r = await call(path, { ...o, headers: { ...o.headers, ...wrap('5m') } });
    assert.equal(r.status, 200, r.text);
    const info = r.json.wrap_info as { token: string; accessor: string; ttl: number; creation_path: string };
    assert.ok(info?.token, r.text);
    assert.equal(r.json.data, null, 'the answer is not in the clear');
    return { info, text: r.text };
  };

  before(async () => {
    c = await startGatewayCluster({ nodes: 2 });
    root = c.token;
    assert.equal((await api('sys/auth/approle', { body: { type: 'approle' } })).status, 204);
    const role = await api('auth/approle/role/app', {
      body: { token_policies: 'default', secret_id_num_uses: 1 },
    });
    assert.equal(role.status, 204, role.text);
    assert.equal((await api('secret/data/app', { body: { data: { password: 'p4ss' } } })).status, 200);
  });
  after(async () => {
    await c?.stop();
  });

  it('each token has its own cubbyhole, mounted for good, gone with the token', async () => {
    const a = (await token({ policies: ['default'] })).client_token;
    const b = (await token({ policies: ['default'] })).client_token;
    assert.equal((await api('cubbyhole/note', { token: a, body: { v: 'mine' } })).status, 204);
    assert.equal((await api('cubbyhole/note', { token: a })).json.data?.v, 'mine');
    assert.equal((await api('cubbyhole/note', { token: b })).status, 404, 'another token sees nothing');
    assert.equal((await api('cubbyhole/note')).status, 404, 'nor does root');
    assert.deepEqual((await api('cubbyhole', { method: 'LIST', token: a })).json.data?.keys, ['note']);
    const mounts = (await api('sys/mounts')).json;
    assert.equal((mounts['cubbyhole/'] as { type: string })?.type, 'cubbyhole');
    assert.equal((await api('sys/mounts/cubbyhole', { method: 'DELETE' })).status, 400);
    assert.equal((await api('sys/mounts/cubbyhole/x', { body: { type: 'kv' } })).status, 400);
    await api('auth/token/revoke-self', { token: a, method: 'POST' });
    const again = await api('auth/token/lookup', { body: { token: a } });
    assert.equal(again.status, 403, 'revoked');
    // The cubbyhole went with the token: nothing under its storage prefix remains.
    assert.equal((await api('cubbyhole/note', { token: b, body: { v: 'b' } })).status, 204);
    const redis = await rawRedis(c.redis.url);
    try {
      const keys = await redis.keys('*cubbyhole/*');
      const owners = new Set(keys.map((k) => k.split('cubbyhole/')[1]?.split('/')[0]));
      assert.equal(owners.size, 1, `only b's cubbyhole remains (${owners.size})`);
    } finally {
      redis.disconnect();
    }
  });

  it('a wrapped read comes back once; lookup tells its creation path without spending it', async () => {
    const { info } = await wrapped('secret/data/app');
    assert.equal(info.creation_path, 'secret/data/app');
    assert.equal(info.ttl, 300);
    const look = await api('sys/wrapping/lookup', { token: '', body: { token: info.token } });
    assert.equal(look.status, 200, look.text);
    assert.equal(look.json.data?.creation_path, 'secret/data/app');
    assert.equal(look.json.data?.creation_ttl, 300);
    // The application holds only the wrapping token (hvac's Client(token=wrapping).sys.unwrap()).
    const first = await api('sys/wrapping/unwrap', { token: info.token, method: 'POST' });
    assert.equal(first.status, 200, first.text);
    assert.deepEqual((first.json.data as { data: unknown }).data, { password: 'p4ss' });
    const second = await api('sys/wrapping/unwrap', { token: info.token, method: 'POST' });
    assert.equal(second.status, 400);
    assert.deepEqual(second.json.errors, [INVALID]);
    assert.deepEqual(
      (await api('sys/wrapping/lookup', { token: '', body: { token: info.token } })).json.errors,
      [INVALID],
    );
  });

  it('a wrapped secret ID through a standby: unwrap with a token in the body, then log in', async () => {
    const standby = await c.standby();
    const { info } = await wrapped('auth/approle/role/app/secret-id', { body: {} }, at(standby.url));
    assert.equal(info.creation_path, 'auth/approle/role/app/secret-id');
    const app = (await token({ policies: ['default'] })).client_token;
    const r = await api('sys/wrapping/unwrap', { token: app, body: { token: info.token } });
    assert.equal(r.status, 200, r.text);
    const secretId = r.json.data?.secret_id as string;
    assert.equal((r.json.wrap_info as unknown) ?? null, null);
    const roleId = (await api('auth/approle/role/app/role-id')).json.data?.role_id;
    const login = await api('auth/approle/login', {
      token: '',
      body: { role_id: roleId, secret_id: secretId },
    });
    assert.equal(login.status, 200, login.text);
    const spent = await api('sys/wrapping/unwrap', { token: '', body: { token: info.token } });
    assert.deepEqual(spent.json.errors, [INVALID], 'the wrapping token is checked first, as OpenBao');
    const fresh = await wrapped('secret/data/app');
    const none = await api('sys/wrapping/unwrap', { token: '', body: { token: fresh.info.token } });
    assert.equal(none.status, 403, 'a body token needs a caller allowed to unwrap');
    assert.equal((await api('sys/wrapping/unwrap', { token: fresh.info.token, method: 'POST' })).status, 200);
  });

  it('a wrapping token opens nothing but its own unwrap', async () => {
    const { info } = await wrapped('secret/data/app');
    for (const [path, body] of [
      ['cubbyhole/response', undefined],
      ['auth/token/lookup-self', undefined],
      ['secret/data/app', undefined],
      ['sys/wrapping/rewrap', { token: info.token }],
      ['auth/token/create', {}],
    ] as const) {
      const r = await api(path, { token: info.token, body });
      assert.equal(r.status, 403, `${path}: ${r.text}`);
    }
    const other = await wrapped('secret/data/app');
    const cross = await api('sys/wrapping/unwrap', { token: info.token, body: { token: other.info.token } });
    assert.equal(cross.status, 400, 'one wrapping token does not open another');
    assert.equal(
      (await api('sys/wrapping/unwrap', { token: info.token, method: 'POST' })).status,
      200,
      'unspent',
    );
  });

  it('rewrap, wrap, short TTLs and bad headers', async () => {
    const { info } = await wrapped('secret/data/app');
    const re = await api('sys/wrapping/rewrap', { body: { token: info.token } });
    assert.equal(re.status, 200, re.text);
    const next = re.json.wrap_info as { token: string; creation_path: string };
    assert.equal(next.creation_path, 'secret/data/app');
    assert.equal((await api('sys/wrapping/unwrap', { token: info.token, method: 'POST' })).status, 400);
    assert.equal((await api('sys/wrapping/unwrap', { token: next.token, method: 'POST' })).status, 200);

    const plain = await api('sys/wrapping/wrap', { body: { a: 1 } });
    assert.deepEqual(plain.json.errors, ['endpoint requires response wrapping to be used']);
    const w = await wrapped('sys/wrapping/wrap', { body: { a: 1 } });
    assert.equal(w.info.creation_path, 'sys/wrapping/wrap');
    const un = await api('sys/wrapping/unwrap', { token: w.info.token, method: 'POST' });
    assert.deepEqual(un.json.data, { a: 1 });

    for (const bad of ['-1', 'soon']) {
      const r = await api('secret/data/app', { headers: wrap(bad) });
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, /error parsing X-Vault-Wrap-TTL header/);
    }
    assert.equal(
      (await api('secret/data/app', { headers: wrap('0') })).json.wrap_info,
      null,
      '0: not wrapped',
    );
    const gone = await api('secret/data/app', { headers: wrap('1') });
    await sleep(1_300);
    const late = await api('sys/wrapping/unwrap', {
      token: (gone.json.wrap_info as { token: string }).token,
      method: 'POST',
    });
    assert.equal(late.status, 400, 'expired with its TTL');
    // 204 answers stay 204: nothing to wrap.
    assert.equal(
      (await api('secret/data/other', { body: { data: { x: 1 } }, headers: wrap('5m') })).status,
      200,
    );
    assert.equal(
      (
        await api('sys/policy/p1', {
          method: 'PUT',
          body: { policy: 'path "x" { capabilities = ["read"] }' },
          headers: wrap('5m'),
        })
      ).status,
      204,
    );
  });

  it('a policy can require wrapping within bounds (min/max_wrapping_ttl)', async () => {
    await policy(
      'orchestrator',
      'path "auth/approle/role/app/secret-id" {\n  capabilities = ["update"]\n  min_wrapping_ttl = "1m"\n  max_wrapping_ttl = "10m"\n}\n',
    );
    const o = (await token({ policies: ['orchestrator'] })).client_token;
    const ask = (ttl?: string) =>
      api('auth/approle/role/app/secret-id', { token: o, body: {}, headers: ttl ? wrap(ttl) : {} });
    assert.equal((await ask()).status, 403, 'in the clear: refused');
    assert.equal((await ask('30s')).status, 403, 'below the minimum');
    assert.equal((await ask('1h')).status, 403, 'above the maximum');
    const ok = await ask('5m');
    assert.equal(ok.status, 200, ok.text);
    assert.equal((ok.json.wrap_info as { ttl: number }).ttl, 300);
  });

  it('twenty concurrent unwraps through the gateway and the standby: exactly one gets the secret', async () => {
    const standby = await c.standby();
    const { info } = await wrapped('secret/data/app');
    const tries = Array.from({ length: 20 }, (_, i) =>
      at(i % 2 ? standby.url : c.gw.url)('sys/wrapping/unwrap', { token: info.token, method: 'POST' }),
    );
    const statuses = (await Promise.all(tries)).map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, ...Array(19).fill(400)]);
  });

  it('a wrapping token made before a kill -9 of the active unwraps exactly once after it', async () => {
    const { info } = await wrapped('auth/approle/role/app/secret-id', { body: {} });
    const active = await c.active();
    await active.stop('SIGKILL');
    // The gateway holds the request until the other node is active.
    const first = await api('sys/wrapping/unwrap', { token: info.token, method: 'POST' });
    assert.equal(first.status, 200, first.text);
    assert.ok(first.json.data?.secret_id);
    const second = await api('sys/wrapping/unwrap', { token: info.token, method: 'POST' });
    assert.deepEqual(second.json.errors, [INVALID]);
  });
});
