/**
 * Tokens, policies and AppRole semantics, through a gateway that trusts the test's own address
 * as a load balancer (so X-Forwarded-For decides the client address the nodes see): what a
 * policy does not allow is 403 and changes nothing; token trees, TTLs, use counts, accessors;
 * AppRole secret-ID limits and CIDR bindings; disabling an auth method revokes its tokens.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import type { CallOptions } from '../helpers/http';
import { waitFor } from '../helpers/procs';
import { vaultApi } from '../helpers/vault-api';

describe('tokens, ACL policies and AppRole', () => {
  let c: GatewayCluster;
  let root = '';
  const { api, token, policy } = vaultApi(
    () => c.gw.url,
    () => root,
  );

  before(async () => {
    c = await startGatewayCluster({ nodes: 2, gatewayEnv: { LEADERWAY_TRUSTED_PROXIES: '127.0.0.1/32' } });
    root = c.token;
  });
  after(async () => {
    await c?.stop();
  });

  it('manages policies: HCL and JSON, root and default built in, 400 for what does not parse', async () => {
    await policy('reader', 'path "secret/data/shared/*" {\n  capabilities = ["read"]\n}\n');
    const json = await api('sys/policies/acl/json-one', {
      method: 'PUT',
      body: { policy: JSON.stringify({ path: { 'secret/data/j/*': { capabilities: ['read'] } } }) },
    });
    assert.equal(json.status, 204, json.text);
    const list = await api('sys/policy');
    assert.deepEqual(list.json.policies, ['default', 'json-one', 'reader', 'root']);
    assert.deepEqual((await api('sys/policies/acl', { method: 'LIST' })).json.data?.keys, list.json.policies);
    assert.match(String((await api('sys/policy/reader')).json.rules), /secret\/data\/shared/);
    assert.match(String((await api('sys/policies/acl/default')).json.data?.policy), /lookup-self/);
    const broken = await api('sys/policy/broken', { method: 'PUT', body: { policy: 'path "x" {' } });
    assert.equal(broken.status, 400);
    assert.match(broken.text, /failed to parse policy/);
    assert.equal(
      (await api('sys/policy/root', { method: 'PUT', body: { policy: 'path "x" {}' } })).status,
      400,
    );
    assert.equal((await api('sys/policy/default', { method: 'DELETE' })).status, 400);
    assert.equal((await api('sys/policy/json-one', { method: 'DELETE' })).status, 204);
    assert.equal((await api('sys/policy/json-one')).status, 404);
  });

  it('enforces policies on every route; what is refused changes nothing', async () => {
    await policy(
      'app',
      [
        'path "secret/data/app/*" {\n  capabilities = ["create", "read", "update"]\n}',
        'path "secret/data/app/locked" {\n  capabilities = ["deny"]\n}',
        'path "secret/metadata/app/*" {\n  capabilities = ["list"]\n}',
        'path "secret/data/+/shared" {\n  capabilities = ["read"]\n}',
      ].join('\n'),
    );
    await api('secret/data/app/locked', { body: { data: { v: 'root wrote this' } } });
    await api('secret/data/team/shared', { body: { data: { v: 's' } } });
    const app = (await token({ policies: ['app'] })).client_token;
    const as = (path: string, o: CallOptions = {}) => api(path, { token: app, ...o });
    assert.equal((await as('secret/data/app/x', { body: { data: { v: 1 } } })).status, 200);
    assert.equal((await as('secret/data/app/x')).status, 200);
    assert.equal((await as('secret/metadata/app/', { method: 'LIST' })).status, 200);
    assert.equal((await as('secret/data/team/shared')).status, 200, '+ matches one segment');
    for (const [path, o] of [
      ['secret/data/app/locked', {}],
      ['secret/data/app/locked', { body: { data: { v: 'app' } } }],
      ['secret/data/other', {}],
      ['secret/data/other', { body: { data: { v: 1 } } }],
      ['secret/metadata/app/x', {}],
      ['secret/data/app/x', { method: 'DELETE' }],
      ['sys/mounts', {}],
      ['sys/policy/app', { method: 'PUT', body: { policy: 'path "*" { capabilities = ["sudo"] }' } }],
      ['sys/step-down', { method: 'PUT' }],
      ['auth/token/accessors', { method: 'LIST' }],
    ] as Array<[string, CallOptions]>) {
      const r = await as(path, o);
      assert.equal(r.status, 403, `${o.method ?? (o.body ? 'POST' : 'GET')} ${path}: ${r.text}`);
      assert.deepEqual(r.body, { errors: ['permission denied'] });
    }
    const locked = await api('secret/data/app/locked');
    assert.deepEqual(
      (locked.json.data as { data: unknown }).data,
      { v: 'root wrote this' },
      'nothing changed',
    );
    assert.equal((await api('secret/data/other')).status, 404, 'nothing was written');
    assert.equal((await api('sys/policy/app')).json.name, 'app');
    // create vs update: a policy granting only update cannot create a new secret
    await policy('updater', 'path "secret/data/upd/*" {\n  capabilities = ["update", "read"]\n}\n');
    await api('secret/data/upd/exists', { body: { data: { v: 1 } } });
    const upd = (await token({ policies: ['updater'] })).client_token;
    assert.equal((await api('secret/data/upd/exists', { token: upd, body: { data: { v: 2 } } })).status, 200);
    assert.equal((await api('secret/data/upd/new', { token: upd, body: { data: { v: 1 } } })).status, 403);
    // capabilities-self
    const capsSelf = await as('sys/capabilities-self', {
      body: { paths: ['secret/data/app/x', 'secret/data/app/locked', 'sys/mounts'] },
    });
    assert.equal(capsSelf.status, 200, capsSelf.text);
    assert.deepEqual(capsSelf.json['secret/data/app/x'], ['create', 'read', 'update']);
    assert.deepEqual(capsSelf.json['secret/data/app/locked'], ['deny']);
    assert.deepEqual(capsSelf.json['sys/mounts'], ['deny']);
    // Without a token every path is 403, so nobody can probe which mounts exist.
    assert.equal((await api('no-such-mount/x', { token: '' })).status, 403);
    assert.equal((await api('no-such-mount/x')).status, 404);
  });

  it('token trees: revoking a parent revokes its children, revoke-orphan keeps them', async () => {
    await policy('kids', 'path "auth/token/create" {\n  capabilities = ["update"]\n}\n');
    const parent = await token({ policies: ['kids', 'reader'] });
    const child = await token({ policies: ['kids', 'reader'] }, parent.client_token);
    const grandchild = await token({ policies: ['reader'] }, child.client_token);
    const alive = async (t: string) => (await api('auth/token/lookup-self', { token: t })).status === 200;
    assert.ok((await alive(child.client_token)) && (await alive(grandchild.client_token)));
    const tooMuch = await api('auth/token/create', {
      token: parent.client_token,
      body: { policies: ['app'] },
    });
    assert.equal(tooMuch.status, 400);
    assert.match(tooMuch.text, /subset of parent/);
    assert.equal((await api('auth/token/revoke', { body: { token: parent.client_token } })).status, 204);
    assert.equal(await alive(parent.client_token), false);
    assert.equal(await alive(child.client_token), false, 'the child went with its parent');
    assert.equal(await alive(grandchild.client_token), false, 'and the grandchild');

    const p2 = await token({ policies: ['kids', 'reader'] });
    const c2 = await token({ policies: ['reader'] }, p2.client_token);
    assert.equal((await api('auth/token/revoke-orphan', { body: { token: p2.client_token } })).status, 204);
    assert.equal(await alive(p2.client_token), false);
    assert.equal(await alive(c2.client_token), true, 'an orphaned child lives on');
    const looked = await api('auth/token/lookup', { body: { token: c2.client_token } });
    assert.equal((looked.json.data as { orphan: boolean }).orphan, true);
  });

  it('TTLs, renewals capped by explicit_max_ttl, use counts, accessors', async () => {
    const short = await token({ policies: ['reader'], ttl: '2s' });
    assert.equal(short.lease_duration, 2);
    assert.equal((await api('auth/token/lookup-self', { token: short.client_token })).status, 200);
    await waitFor(
      async () => (await api('auth/token/lookup-self', { token: short.client_token })).status === 403,
      6_000,
      'the token to expire',
    );
    const capped = await token({ policies: ['reader'], ttl: '1m', explicit_max_ttl: '90s' });
    const renewed = await api('auth/token/renew-self', {
      token: capped.client_token,
      body: { increment: '1h' },
    });
    assert.equal(renewed.status, 200, renewed.text);
    assert.ok((renewed.json.auth?.lease_duration ?? 0) <= 90, `capped at 90s: ${renewed.text}`);
    const fixed = await token({ policies: ['reader'], renewable: false });
    assert.equal((await api('auth/token/renew-self', { token: fixed.client_token, body: {} })).status, 400);
    const periodic = await token({ policies: ['reader'], period: '10m' });
    const pr = await api('auth/token/renew-self', {
      token: periodic.client_token,
      body: { increment: '5s' },
    });
    assert.equal(pr.json.auth?.lease_duration, 600, 'periodic tokens renew to their period');

    const twice = await token({ policies: ['default'], num_uses: 2 });
    assert.equal((await api('auth/token/lookup-self', { token: twice.client_token })).status, 200);
    assert.equal((await api('auth/token/lookup-self', { token: twice.client_token })).status, 200);
    assert.equal(
      (await api('auth/token/lookup-self', { token: twice.client_token })).status,
      403,
      'uses spent',
    );

    const byAccessor = await token({ policies: ['reader'] });
    const la = await api('auth/token/lookup-accessor', { body: { accessor: byAccessor.accessor } });
    assert.equal(la.status, 200);
    assert.equal((la.json.data as { id: string }).id, '', 'lookup by accessor never shows the token');
    const accessors = await api('auth/token/accessors', { method: 'LIST' });
    assert.ok((accessors.json.data?.keys as string[] | undefined)?.includes(byAccessor.accessor));
    assert.equal(
      (await api('auth/token/renew-accessor', { body: { accessor: byAccessor.accessor } })).status,
      200,
    );
    assert.equal(
      (await api('auth/token/revoke-accessor', { body: { accessor: byAccessor.accessor } })).status,
      204,
    );
    assert.equal((await api('auth/token/lookup-self', { token: byAccessor.client_token })).status, 403);
    // sudo: LIST accessors with a policy that has list but not sudo is refused; with sudo it works
    await policy('lister', 'path "auth/token/accessors" {\n  capabilities = ["list"]\n}\n');
    await policy('sudoer', 'path "auth/token/accessors" {\n  capabilities = ["list", "sudo"]\n}\n');
    const lister = (await token({ policies: ['lister'] })).client_token;
    const sudoer = (await token({ policies: ['sudoer'] })).client_token;
    assert.equal((await api('auth/token/accessors', { token: lister, method: 'LIST' })).status, 403);
    assert.equal((await api('auth/token/accessors', { token: sudoer, method: 'LIST' })).status, 200);
  });

  it('AppRole: secret-ID uses and TTL, CIDR bindings from the client address, accessors, disable', async () => {
    assert.equal((await api('sys/auth/approle', { body: { type: 'approle' } })).status, 204);
    assert.equal((await api('sys/auth/other', { body: { type: 'ldap' } })).status, 400);
    assert.ok((await api('sys/auth')).json.data?.['approle/'], 'listed');
    const role = async (name: string, body: Record<string, unknown>) =>
      assert.equal((await api(`auth/approle/role/${name}`, { body })).status, 204);
    const roleId = async (name: string) =>
      String((await api(`auth/approle/role/${name}/role-id`)).json.data?.role_id);
    const secretId = async (name: string, body: Record<string, unknown> = {}) =>
      (await api(`auth/approle/role/${name}/secret-id`, { body })).json.data as {
        secret_id: string;
        secret_id_accessor: string;
      };
    const login = (role_id: string, secret_id: string | undefined, xff?: string) =>
      api('auth/approle/login', {
        token: '',
        body: { role_id, secret_id },
        headers: xff ? { 'x-forwarded-for': xff } : {},
      });

    await role('once', { token_policies: 'reader', secret_id_num_uses: 1, secret_id_ttl: '1h' });
    const once = await secretId('once');
    const first = await login(await roleId('once'), once.secret_id);
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.json.auth?.policies, ['default', 'reader']);
    assert.equal((await login(await roleId('once'), once.secret_id)).status, 403, 'the one use is spent');
    assert.equal((await login(await roleId('once'), 'wrong')).status, 403);
    assert.equal((await login('wrong', once.secret_id)).status, 403);

    await role('short', { token_policies: 'reader', secret_id_ttl: '1s' });
    const short = await secretId('short');
    await new Promise((r) => setTimeout(r, 1_200));
    assert.equal((await login(await roleId('short'), short.secret_id)).status, 403, 'the secret ID expired');

    // CIDR bindings: the gateway trusts the test's address as its load balancer, so the
    // right-most X-Forwarded-For entry is the client (a client-chosen left-most one is not).
    await role('office', {
      token_policies: 'reader',
      secret_id_bound_cidrs: '10.1.2.0/24',
      token_bound_cidrs: ['10.1.2.0/24'],
    });
    const office = await secretId('office');
    const officeId = await roleId('office');
    assert.equal((await login(officeId, office.secret_id, '203.0.113.9')).status, 403);
    assert.equal(
      (await login(officeId, office.secret_id, '10.1.2.3, 203.0.113.9')).status,
      403,
      'forged left-most',
    );
    const inOffice = await login(officeId, office.secret_id, '203.0.113.9, 10.1.2.3');
    assert.equal(inOffice.status, 200, inOffice.text);
    const officeToken = inOffice.json.auth?.client_token as string;
    const use = (xff: string) =>
      api('auth/token/lookup-self', { token: officeToken, headers: { 'x-forwarded-for': xff } });
    assert.equal((await use('10.1.2.77')).status, 200);
    assert.equal((await use('10.9.9.9')).status, 403, 'the token is bound to the office too');
    await role('nosecret', {
      bind_secret_id: false,
      token_policies: 'reader',
      secret_id_bound_cidrs: '10.1.2.0/24',
    });
    assert.equal((await login(await roleId('nosecret'), undefined, '10.1.2.3')).status, 200);
    assert.equal((await api('auth/approle/role/unbound', { body: { bind_secret_id: false } })).status, 400);

    // secret-id lookup/destroy by value and by accessor; LIST roles and accessors
    const s1 = await secretId('once', { metadata: JSON.stringify({ team: 'a' }) });
    const s2 = await secretId('once');
    const lookedUp = await api('auth/approle/role/once/secret-id/lookup', {
      body: { secret_id: s1.secret_id },
    });
    assert.deepEqual((lookedUp.json.data as { metadata: unknown }).metadata, { team: 'a' });
    const accessors = (await api('auth/approle/role/once/secret-id', { method: 'LIST' })).json.data
      ?.keys as string[];
    assert.deepEqual(accessors.sort(), [s1.secret_id_accessor, s2.secret_id_accessor].sort());
    await api('auth/approle/role/once/secret-id/destroy', { body: { secret_id: s1.secret_id } });
    await api('auth/approle/role/once/secret-id-accessor/destroy', {
      body: { secret_id_accessor: s2.secret_id_accessor },
    });
    assert.equal((await login(await roleId('once'), s2.secret_id)).status, 403);
    assert.equal((await api('auth/approle/role/once/secret-id', { method: 'LIST' })).status, 404);
    assert.deepEqual(
      ((await api('auth/approle/role', { method: 'LIST' })).json.data?.keys as string[] | undefined)?.sort(),
      ['nosecret', 'office', 'once', 'short'],
    );
    // Disabling the method revokes what it issued.
    const firstToken = first.json.auth?.client_token as string;
    assert.equal((await api('auth/token/lookup-self', { token: firstToken })).status, 200);
    assert.equal((await api('sys/auth/approle', { method: 'DELETE' })).status, 204);
    assert.equal((await api('auth/token/lookup-self', { token: firstToken })).status, 403);
    assert.equal((await login(officeId, office.secret_id, '10.1.2.3')).status, 403);
  });
});
