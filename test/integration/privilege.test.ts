/**
 * The privilege rules end to end, through a gateway in front of two nodes, as a security reviewer
 * tries them with limited tokens: no road from a role writer to root, no token from a
 * restricted-use token, sudo on sys/auth/*, no mount oracle, CIDR-bound children, secret IDs
 * bounded by their role, role IDs owned by one role, and revocation that is final. The gateway
 * trusts the test's address as its load balancer, so X-Forwarded-For picks the client address.
 * Each rule is also tested alone in test/unit/privilege-rules.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { vaultApi } from '../helpers/vault-api';

describe('privilege rules, end to end', () => {
  let c: GatewayCluster;
  let root = '';
  const { api, token, policy } = vaultApi(
    () => c.gw.url,
    () => root,
  );
  const from = (addr: string) => ({ 'x-forwarded-for': addr });
  /** Logs in with a fresh secret ID of the CIDR-bound `office` role, from inside its CIDRs. */
  const officeLogin = async () => {
    const roleId = (await api('auth/approle/role/office/role-id')).json.data?.role_id;
    const secretId = (await api('auth/approle/role/office/secret-id', { body: {} })).json.data?.secret_id;
    return api('auth/approle/login', {
      token: '',
      body: { role_id: roleId, secret_id: secretId },
      headers: from('10.1.2.3'),
    });
  };

  before(async () => {
    c = await startGatewayCluster({ nodes: 2, gatewayEnv: { LEADERWAY_TRUSTED_PROXIES: '127.0.0.1/32' } });
    root = c.token;
    assert.equal((await api('sys/auth/approle', { body: { type: 'approle' } })).status, 204);
    await policy('role-writer', 'path "auth/approle/role/*" { capabilities = ["create", "update", "read"] }');
    await policy('app', 'path "secret/data/app/*" { capabilities = ["read"] }');
    await policy(
      'minter',
      'path "auth/token/create" { capabilities = ["update"] }\npath "auth/token/create-orphan" { capabilities = ["update"] }',
    );
    await policy('sudo-minter', 'path "auth/token/create" { capabilities = ["update", "sudo"] }');
  });
  after(async () => {
    await c?.stop();
  });

  it('a token that may only write AppRole roles cannot reach root', async () => {
    const writer = (await token({ policies: ['role-writer'] })).client_token;
    const asWriter = (path: string, body: Record<string, unknown>) => api(path, { token: writer, body });
    for (const policies of ['root', 'app,root', ['ROOT']]) {
      const r = await asWriter('auth/approle/role/evil', { token_policies: policies });
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, /auth methods cannot create root tokens/);
    }
    assert.equal((await api('auth/approle/role/evil')).status, 404, 'nothing stored');
    // A role with ordinary policies still works for the writer (OpenBao's delegation).
    assert.equal((await asWriter('auth/approle/role/ok', { token_policies: 'app' })).status, 204);
    const bad = await asWriter('auth/approle/role/ok', { token_policies: 'bad name' });
    assert.equal(bad.status, 400, 'policy names are validated');
  });

  it('a restricted-use token creates nothing; periodic tokens and no_parent need sudo', async () => {
    const limited = (await token({ policies: ['minter'], num_uses: 5 })).client_token;
    const r = await api('auth/token/create', { token: limited, body: { policies: ['minter'] } });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.errors, ['restricted use token cannot generate child tokens']);
    const orphan = await api('auth/token/create-orphan', { token: limited, body: {} });
    assert.equal(orphan.status, 400, 'nor an orphan');

    const minter = (await token({ policies: ['minter'] })).client_token;
    const periodic = await api('auth/token/create', { token: minter, body: { period: '1h' } });
    assert.deepEqual(periodic.json.errors, ['root or sudo privileges required to create periodic token']);
    const noParent = await api('auth/token/create', { token: minter, body: { no_parent: true } });
    assert.deepEqual(noParent.json.errors, ['root or sudo privileges required to create orphan token']);
    const sudoer = (await token({ policies: ['sudo-minter'] })).client_token;
    const ok = await token({ period: '1h', policies: ['app'] }, sudoer);
    assert.deepEqual(ok.policies, ['app', 'default'], 'sudo may grant other policies');
    const root2 = await api('auth/token/create', { token: sudoer, body: { policies: ['root'] } });
    assert.deepEqual(root2.json.errors, ['root tokens may not be created without parent token being root']);
  });

  it("a child gets `default` only from a parent that has it, and the parent's CIDRs", async () => {
    const bare = (await token({ policies: ['minter'], no_default_policy: true })).client_token;
    assert.deepEqual((await token({}, bare)).policies, ['minter']);
    const r = await api('auth/token/create', { token: bare, body: { policies: ['default'] } });
    assert.deepEqual(r.json.errors, ['child policies must be subset of parent']);

    assert.equal(
      (
        await api('auth/approle/role/office', {
          body: { token_policies: 'minter', token_bound_cidrs: '10.1.0.0/16', secret_id_num_uses: 0 },
        })
      ).status,
      204,
    );
    const login = await officeLogin();
    assert.equal(login.status, 200, login.text);
    const bound = login.json.auth?.client_token as string;
    const child = await api('auth/token/create', { token: bound, body: {}, headers: from('10.1.2.3') });
    assert.equal(child.status, 200, child.text);
    const childToken = child.json.auth?.client_token as string;
    const self = (addr: string) => api('auth/token/lookup-self', { token: childToken, headers: from(addr) });
    assert.equal((await self('10.1.9.9')).status, 200);
    assert.equal((await self('192.0.2.7')).status, 403, 'never usable where its parent is not');
  });

  it('sys/auth/* needs sudo; listing the methods does not', async () => {
    await policy('auth-admin', 'path "sys/auth/*" { capabilities = ["create", "update", "read", "delete"] }');
    await policy(
      'auth-sudo',
      'path "sys/auth/*" { capabilities = ["create", "update", "read", "delete", "sudo"] }',
    );
    await policy('auth-list', 'path "sys/auth" { capabilities = ["read"] }');
    const admin = (await token({ policies: ['auth-admin', 'auth-list'] })).client_token;
    const sudoer = (await token({ policies: ['auth-sudo'] })).client_token;
    assert.equal((await api('sys/auth/side', { token: admin, body: { type: 'approle' } })).status, 403);
    assert.equal((await api('sys/auth/approle', { token: admin })).status, 403);
    assert.equal((await api('sys/auth/approle', { token: admin, method: 'DELETE' })).status, 403);
    assert.equal((await api('sys/auth', { token: admin })).status, 200);
    assert.equal((await api('sys/auth/side', { token: sudoer, body: { type: 'approle' } })).status, 204);
    assert.equal((await api('sys/auth/side', { token: sudoer, method: 'DELETE' })).status, 204);
  });

  it('sys/internal/ui/mounts/<path> tells a mount only to callers with access to it', async () => {
    const nobody = (await token({ policies: ['minter'] })).client_token;
    const reader = (await token({ policies: ['app'] })).client_token;
    const hidden = await api('sys/internal/ui/mounts/secret/data/app/x', { token: nobody });
    const missing = await api('sys/internal/ui/mounts/nothing-here/x', { token: nobody });
    assert.equal(hidden.status, 403);
    assert.equal(missing.status, 403);
    assert.match(hidden.text, /preflight capability check returned 403/);
    assert.equal(missing.text.replace('nothing-here/x', 'P'), hidden.text.replace('secret/data/app/x', 'P'));
    const seen = await api('sys/internal/ui/mounts/secret/data/app/x', { token: reader });
    assert.equal(seen.status, 200, seen.text);
    assert.equal(seen.json.data?.path, 'secret/');
    // The list shows a caller only the mounts it has access to.
    await policy('ui-lister', 'path "sys/internal/ui/mounts" { capabilities = ["read"] }');
    const lister = (await token({ policies: ['ui-lister', 'app'] })).client_token;
    const listed = (await api('sys/internal/ui/mounts', { token: lister })).json.data as {
      secret: Record<string, unknown>;
      auth: Record<string, unknown>;
    };
    // `default` reaches cubbyhole/ (every token's own), as OpenBao's.
    assert.deepEqual(Object.keys(listed.secret), ['cubbyhole/', 'secret/']);
    // `default` reaches auth/token/ (lookup-self and the like); nothing reaches approle/.
    assert.deepEqual(Object.keys(listed.auth), ['token/']);
    const all = (await api('sys/internal/ui/mounts')).json.data as { auth: Record<string, unknown> };
    assert.ok(all.auth['approle/'], 'root sees every mount');
  });

  it('secret IDs only narrow their role; a role ID belongs to one role', async () => {
    const body = {
      token_policies: 'app',
      secret_id_num_uses: 2,
      secret_id_ttl: '10m',
      secret_id_bound_cidrs: '10.0.0.0/8',
    };
    assert.equal((await api('auth/approle/role/narrow', { body })).status, 204);
    const gen = (b: Record<string, unknown>) => api('auth/approle/role/narrow/secret-id', { body: b });
    assert.equal((await gen({ num_uses: 3 })).status, 400);
    assert.equal((await gen({ num_uses: 0 })).status, 400);
    assert.equal((await gen({ ttl: '1h' })).status, 400);
    assert.equal((await gen({ cidr_list: '192.168.0.0/16' })).status, 400);
    const ok = await gen({ num_uses: 1, ttl: '1m', cidr_list: '10.2.0.0/16' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.data?.secret_id_num_uses, 1);

    // The login token lives no longer than the smallest of token_explicit_max_ttl and token_max_ttl.
    const capped = {
      token_policies: 'app',
      token_explicit_max_ttl: '1h',
      token_max_ttl: '10m',
      token_ttl: '1h',
    };
    assert.equal(
      (await api('auth/approle/role/capped', { body: capped })).status,
      400,
      'token_ttl > token_max_ttl',
    );
    assert.equal(
      (await api('auth/approle/role/capped', { body: { ...capped, token_ttl: '5m' } })).status,
      204,
    );
    const cappedLogin = await api('auth/approle/login', {
      token: '',
      body: {
        role_id: (await api('auth/approle/role/capped/role-id')).json.data?.role_id,
        secret_id: (await api('auth/approle/role/capped/secret-id', { body: {} })).json.data?.secret_id,
      },
    });
    assert.equal(cappedLogin.status, 200, cappedLogin.text);
    const renewed = await api('auth/token/renew-self', {
      token: cappedLogin.json.auth?.client_token,
      body: { increment: '1h' },
    });
    assert.ok((renewed.json.auth?.lease_duration ?? 0) <= 600, `renewed past token_max_ttl: ${renewed.text}`);

    const victimId = (await api('auth/approle/role/ok/role-id')).json.data?.role_id;
    const taken = await api('auth/approle/role/narrow/role-id', { body: { role_id: victimId } });
    assert.equal(taken.status, 400);
    assert.deepEqual(taken.json.errors, ['role_id already in use']);
  });

  it('revocation is final: revoke from anywhere, 403 on lookup, accessors refuse dead tokens', async () => {
    const bound = await token({ policies: ['app'] });
    // The CIDR-bound login token from the office role, revoked from outside its CIDRs.
    const login = await officeLogin();
    const office = login.json.auth as { client_token: string };
    // Looked up and revoked by root from outside the token's CIDRs: they bind its use, nothing else.
    const seen = await api('auth/token/lookup', {
      body: { token: office.client_token },
      headers: from('192.0.2.1'),
    });
    assert.equal(seen.status, 200, seen.text);
    assert.equal(
      (await api('auth/token/revoke', { body: { token: office.client_token }, headers: from('192.0.2.1') }))
        .status,
      204,
    );
    assert.equal(
      (await api('auth/token/lookup-self', { token: office.client_token, headers: from('10.1.2.3') })).status,
      403,
    );

    assert.equal((await api('auth/token/revoke', { body: { token: bound.client_token } })).status, 204);
    const lookup = await api('auth/token/lookup', { body: { token: bound.client_token } });
    assert.equal(lookup.status, 403);
    assert.deepEqual(lookup.json.errors, ['bad token']);
    for (const path of ['auth/token/lookup-accessor', 'auth/token/renew-accessor']) {
      const r = await api(path, { body: { accessor: bound.accessor } });
      assert.equal(r.status, 400, `${path}: ${r.text}`);
    }
    assert.equal((await api('auth/token/revoke', { body: { token: bound.client_token } })).status, 204);

    // Expired (and not yet tidied): renew-accessor does not bring it back.
    const short = await token({ policies: ['app'], ttl: '1s' });
    await new Promise((r) => setTimeout(r, 1_500));
    const renew = await api('auth/token/renew-accessor', { body: { accessor: short.accessor } });
    assert.equal(renew.status, 400, renew.text);
    assert.equal((await api('auth/token/lookup-self', { token: short.client_token })).status, 403);
  });
});
