/**
 * OpenBao parity details (issue 24) end to end, through a gateway in front of one node: what an
 * unmodified client sends and what it gets back. The pure rules are tested alone in
 * test/unit/vault-parity.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { vaultApi } from '../helpers/vault-api';

describe('OpenBao parity details, end to end', () => {
  let c: GatewayCluster;
  let root = '';
  const { api, token, policy } = vaultApi(
    () => c.gw.url,
    () => root,
  );

  before(async () => {
    c = await startGatewayCluster({ nodes: 1 });
    root = c.token;
    assert.equal((await api('sys/auth/approle', { body: { type: 'approle' } })).status, 204);
  });
  after(async () => {
    await c?.stop();
  });

  describe('AppRole custom-secret-id', () => {
    const roleIdOf = async (role: string) =>
      (await api(`auth/approle/role/${role}/role-id`)).json.data?.role_id as string;
    const custom = (role: string, body: Record<string, unknown>) =>
      api(`auth/approle/role/${role}/custom-secret-id`, { body });
    const login = async (role: string, secretId: string) =>
      api('auth/approle/login', { token: '', body: { role_id: await roleIdOf(role), secret_id: secretId } });
    const accessors = async (role: string) =>
      ((await api(`auth/approle/role/${role}/secret-id`, { method: 'LIST' })).json.data?.keys ??
        []) as string[];

    before(async () => {
      const push = { secret_id_num_uses: 3, secret_id_ttl: '1h', secret_id_bound_cidrs: '127.0.0.0/8' };
      assert.equal((await api('auth/approle/role/push', { body: push })).status, 204);
      assert.equal((await api('auth/approle/role/other', { body: {} })).status, 204);
    });

    it('registers the caller’s value, answers as OpenBao, and the value logs in', async () => {
      const r = await custom('push', { secret_id: 'my-own-secret', metadata: '{"team":"a"}' });
      assert.equal(r.status, 200, r.text);
      const d = r.json.data as Record<string, unknown>;
      assert.deepEqual(Object.keys(d).sort(), [
        'secret_id',
        'secret_id_accessor',
        'secret_id_num_uses',
        'secret_id_ttl',
      ]);
      assert.equal(d.secret_id, 'my-own-secret');
      assert.match(String(d.secret_id_accessor), /^[0-9a-f-]{36}$/);
      assert.equal(d.secret_id_num_uses, 3, "the role's secret_id_num_uses");
      assert.equal(d.secret_id_ttl, 3600, "the role's secret_id_ttl");
      assert.ok((await accessors('push')).includes(String(d.secret_id_accessor)));
      const looked = await api('auth/approle/role/push/secret-id/lookup', {
        body: { secret_id: 'my-own-secret' },
      });
      assert.deepEqual(looked.json.data?.metadata, { team: 'a' });

      const l = await login('push', 'my-own-secret');
      assert.equal(l.status, 200, l.text);
      assert.ok(l.json.auth?.client_token);
    });

    it('refuses a missing, empty, non-string or too long value before reading the role', async () => {
      for (const [role, body] of [
        ['push', {}],
        ['push', { secret_id: '' }],
        ['no-such-role', { secret_id: '' }],
      ] as const) {
        const r = await custom(role, body);
        assert.equal(r.status, 400, r.text);
        assert.deepEqual(r.json.errors, ['missing secret_id']);
      }
      const n = await custom('push', { secret_id: 42 });
      assert.deepEqual([n.status, n.json.errors], [400, ['invalid secret_id: a string']]);
      const long = await custom('push', { secret_id: 'x'.repeat(257) });
      assert.deepEqual(
        [long.status, long.json.errors],
        [400, ['secret_id is longer than the maximum of 256 characters']],
      );
      assert.equal((await custom('push', { secret_id: 'y'.repeat(256) })).status, 200);
      assert.equal((await login('push', 'y'.repeat(256))).status, 200, 'the longest accepted value logs in');
    });

    it('refuses a value the role already has; the first one keeps working', async () => {
      const first = await custom('push', { secret_id: 'twice' });
      assert.equal(first.status, 200, first.text);
      const before = await accessors('push');
      const again = await custom('push', { secret_id: 'twice', num_uses: 1 });
      assert.deepEqual([again.status, again.json.errors], [400, ['SecretID is already registered']]);
      assert.deepEqual(await accessors('push'), before, 'nothing stored');
      assert.equal((await login('push', 'twice')).status, 200);
      // Another role's index is its own, as upstream.
      assert.equal((await custom('other', { secret_id: 'twice' })).status, 200);
      assert.equal((await login('other', 'twice')).status, 200);
    });

    it('is bounded by the role exactly like a generated one', async () => {
      const before = await accessors('push');
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ num_uses: 4 }, "num_uses cannot be higher than the role's secret_id_num_uses"],
        [{ num_uses: 0 }, "num_uses cannot be higher than the role's secret_id_num_uses"],
        [{ ttl: '2h' }, "ttl cannot be longer than the role's secret_id_ttl"],
        [{ cidr_list: '10.0.0.0/8' }, "cidr_list must be a subset of the role's secret_id_bound_cidrs"],
      ];
      for (const [extra, message] of cases) {
        const r = await custom('push', { secret_id: 'bounded', ...extra });
        assert.deepEqual([r.status, r.json.errors], [400, [message]], JSON.stringify(extra));
      }
      assert.deepEqual(await accessors('push'), before, 'nothing stored');

      const one = await custom('push', {
        secret_id: 'once',
        num_uses: 1,
        ttl: '10m',
        cidr_list: '127.0.0.1/32',
      });
      assert.deepEqual([one.json.data?.secret_id_num_uses, one.json.data?.secret_id_ttl], [1, 600]);
      assert.equal((await login('push', 'once')).status, 200);
      assert.equal((await login('push', 'once')).status, 403, 'its one use is spent');

      const bound = { bind_secret_id: false, secret_id_bound_cidrs: '127.0.0.0/8' };
      assert.equal((await api('auth/approle/role/unbound', { body: bound })).status, 204);
      const r = await custom('unbound', { secret_id: 'whatever' });
      assert.deepEqual([r.status, r.json.errors], [400, ['bind_secret_id is not set on the role']]);
    });

    it('an expired value stays registered until destroyed by value, then may be reused', async () => {
      assert.equal((await api('auth/approle/role/short', { body: { secret_id_ttl: 1 } })).status, 204);
      assert.equal((await custom('short', { secret_id: 'brief' })).status, 200);
      await new Promise((r) => setTimeout(r, 1_200));
      assert.equal((await login('short', 'brief')).status, 403, 'expired');
      const again = await custom('short', { secret_id: 'brief' });
      assert.deepEqual([again.status, again.json.errors], [400, ['SecretID is already registered']]);
      const destroy = await api('auth/approle/role/short/secret-id/destroy', {
        body: { secret_id: 'brief' },
      });
      assert.equal(destroy.status, 204);
      assert.deepEqual(await accessors('short'), [], 'destroyed, accessor too');
      assert.equal((await custom('short', { secret_id: 'brief' })).status, 200);
      assert.equal((await login('short', 'brief')).status, 200);
    });
  });
  describe('legacy policy syntax', () => {
    it('policy = "write" grants create/read/update/delete/list, not patch; sudo adds sudo', async () => {
      await policy('legacy-write', 'path "secret/data/legacy/*" {\n  policy = "write"\n}\n');
      await policy('legacy-sudo', '{"path": {"auth/token/accessors": {"policy": "sudo"}}}');
      const t = (await token({ policies: ['legacy-write', 'legacy-sudo'] })).client_token;
      const w = await api('secret/data/legacy/a', { token: t, body: { data: { v: 1 } } });
      assert.equal(w.status, 200, w.text);
      assert.deepEqual((await api('secret/data/legacy/a', { token: t })).json.data?.data, { v: 1 });
      const patch = await api('secret/data/legacy/a', {
        token: t,
        method: 'PATCH',
        headers: { 'content-type': 'application/merge-patch+json' },
        body: { data: { v: 2 } },
      });
      assert.equal(patch.status, 403, 'write does not include patch');
      assert.equal((await api('auth/token/accessors', { token: t, method: 'LIST' })).status, 200, 'sudo');
      const caps = await api('sys/capabilities-self', {
        token: t,
        body: { paths: ['secret/data/legacy/x'] },
      });
      assert.deepEqual(caps.json.data?.capabilities, ['create', 'delete', 'list', 'read', 'update']);
    });

    it('refuses an unknown value with the path named', async () => {
      const r = await api('sys/policy/legacy-bad', {
        method: 'PUT',
        body: { policy: 'path "a" { policy = "all" }' },
      });
      assert.deepEqual(
        [r.status, r.json.errors],
        [400, ['failed to parse policy: path "a": invalid policy "all"']],
      );
    });
  });

  describe('mount type generic', () => {
    it('mounts as KV v1, listed as generic with no options, as OpenBao', async () => {
      assert.equal(
        (await api('sys/mounts/old', { body: { type: 'generic', description: 'legacy' } })).status,
        204,
      );
      const listed = (await api('sys/mounts')).json.data?.['old/'] as Record<string, unknown>;
      assert.equal(listed.type, 'generic');
      assert.equal(listed.options, null);
      assert.match(String(listed.accessor), /^generic_[0-9a-f]{8}$/);
      assert.equal((await api('old/app', { body: { password: 'p1' } })).status, 204, 'a KV v1 write');
      const read = await api('old/app');
      assert.deepEqual(read.json.data, { password: 'p1' });
      assert.deepEqual((await api('old', { method: 'LIST' })).json.data?.keys, ['app']);
      const ui = await api('sys/internal/ui/mounts/old/app');
      assert.deepEqual([ui.json.data?.type, ui.json.data?.options], ['generic', null]);
      assert.equal((await api('sys/mounts/old', { method: 'DELETE' })).status, 204);
    });

    it('refuses a version for generic, and the singleton cubbyhole type (403)', async () => {
      const v2 = await api('sys/mounts/old2', { body: { type: 'generic', options: { version: '2' } } });
      assert.deepEqual(
        [v2.status, v2.json.errors],
        [400, ['secrets engine "generic" does not allow setting a version']],
      );
      const cub = await api('sys/mounts/mycubby', { body: { type: 'cubbyhole' } });
      assert.deepEqual([cub.status, cub.json.errors], [403, ['mount type of "cubbyhole" is not mountable']]);
      assert.equal((await api('sys/mounts')).json.data?.['mycubby/'], undefined);
    });
  });

  describe('KV v2 check-and-set answers', () => {
    const write = (path: string, options: Record<string, unknown>) =>
      api(`secret/data/${path}`, { body: { data: { x: 1 }, options } });

    it("mismatch, required and malformed cas, with OpenBao's messages", async () => {
      assert.equal((await write('cas-a', { cas: 0 })).status, 200);
      const cases: Array<[unknown, string]> = [
        [0, 'check-and-set parameter did not match the current version'],
        [-1, 'check-and-set parameter did not match the current version'],
        ['abc', 'error parsing check-and-set parameter'],
        [1.5, 'error parsing check-and-set parameter'],
        [null, 'error parsing check-and-set parameter'],
        [true, 'error parsing check-and-set parameter'],
      ];
      for (const [cas, message] of cases) {
        const r = await write('cas-a', { cas });
        assert.deepEqual([r.status, r.json.errors], [400, [message]], JSON.stringify(cas));
      }
      assert.equal((await write('cas-a', { cas: '1' })).status, 200, 'a decimal string is a version');
      assert.equal((await api('secret/metadata/cas-a', { body: { cas_required: true } })).status, 204);
      const missing = await api('secret/data/cas-a', { body: { data: { x: 2 } } });
      assert.deepEqual(
        [missing.status, missing.json.errors],
        [400, ['check-and-set parameter required for this call']],
      );
    });

    it('a patch of a missing secret is 404 before its cas is looked at, as upstream', async () => {
      const r = await api('secret/data/cas-none', {
        method: 'PATCH',
        headers: { 'content-type': 'application/merge-patch+json' },
        body: { data: { x: 1 }, options: { cas: 'abc' } },
      });
      assert.equal(r.status, 404, r.text);
    });
  });

  describe('token store answers for tokens it cannot act on', () => {
    it('lookup: 403 bad token for a revoked one; no token in the body looks up the caller', async () => {
      const t = await token({ policies: ['default'] });
      assert.equal((await api('auth/token/revoke', { body: { token: t.client_token } })).status, 204);
      const r = await api('auth/token/lookup', { body: { token: t.client_token } });
      assert.deepEqual([r.status, r.json.errors], [403, ['bad token']]);
      for (const o of [{ body: {} }, { body: { token: '' } }, {}]) {
        const self = await api('auth/token/lookup', o);
        assert.equal(self.status, 200, self.text);
        assert.equal(self.json.data?.id, root);
      }
    });

    it('renew, revoke and revoke-orphan: missing, unknown and revoked tokens', async () => {
      for (const path of ['renew', 'revoke', 'revoke-orphan']) {
        const r = await api(`auth/token/${path}`, { body: {} });
        assert.deepEqual([r.status, r.json.errors], [400, ['missing token ID']], path);
      }
      const t = await token({ policies: ['default'] });
      assert.equal((await api('auth/token/revoke', { body: { token: t.client_token } })).status, 204);
      const renew = await api('auth/token/renew', { body: { token: t.client_token } });
      assert.deepEqual([renew.status, renew.json.errors], [400, ['token not found']]);
      assert.equal((await api('auth/token/revoke', { body: { token: t.client_token } })).status, 204);
      const orphan = await api('auth/token/revoke-orphan', { body: { token: t.client_token } });
      assert.deepEqual([orphan.status, orphan.json.errors], [400, ['token to revoke not found']]);
    });

    it('by accessor: revoked is "invalid accessor", expired is bad token / token not found', async () => {
      const gone = await token({ policies: ['default'] });
      assert.equal((await api('auth/token/revoke', { body: { token: gone.client_token } })).status, 204);
      for (const path of ['lookup-accessor', 'renew-accessor', 'revoke-accessor']) {
        const missing = await api(`auth/token/${path}`, { body: {} });
        assert.deepEqual([missing.status, missing.json.errors], [400, ['missing accessor']], path);
      }
      for (const path of ['lookup-accessor', 'renew-accessor']) {
        const r = await api(`auth/token/${path}`, { body: { accessor: gone.accessor } });
        assert.deepEqual([r.status, r.json.errors], [400, ['invalid accessor']], path);
      }
      const unknown = await api('auth/token/revoke-accessor', { body: { accessor: gone.accessor } });
      assert.deepEqual([unknown.status, unknown.json.warnings], [200, ['No token found with this accessor']]);

      const short = await token({ policies: ['default'], ttl: '1s' });
      await new Promise((r) => setTimeout(r, 1_100));
      const looked = await api('auth/token/lookup-accessor', { body: { accessor: short.accessor } });
      assert.deepEqual([looked.status, looked.json.errors], [403, ['bad token']]);
      for (const path of ['renew-accessor', 'revoke-accessor']) {
        const r = await api(`auth/token/${path}`, { body: { accessor: short.accessor } });
        assert.deepEqual([r.status, r.json.errors], [400, ['token not found']], path);
      }
    });
  });

  describe('sys/auth/:path/tune', () => {
    const tune = (path: string, body?: Record<string, unknown>, as = root) =>
      api(`sys/auth/${path}/tune`, body ? { body, token: as } : { token: as });

    it('reads the tunables OpenBao reports, with the TTLs in force', async () => {
      const r = await tune('approle');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.data, {
        description: '',
        default_lease_ttl: 2_764_800,
        max_lease_ttl: 2_764_800,
        force_no_cache: false,
        token_type: 'default-service',
      });
      assert.equal((await tune('token')).json.data?.max_lease_ttl, 2_764_800);
    });

    it('a tuned max_lease_ttl caps AppRole logins; description and listing_visibility are kept', async () => {
      assert.equal(
        (
          await api('auth/approle/role/tuned', {
            body: { bind_secret_id: false, secret_id_bound_cidrs: '127.0.0.0/8' },
          })
        ).status,
        204,
      );
      const roleId = (await api('auth/approle/role/tuned/role-id')).json.data?.role_id;
      const login = () => api('auth/approle/login', { token: '', body: { role_id: roleId } });
      assert.equal((await login()).json.auth?.lease_duration, 2_764_800);
      const w = await tune('approle', {
        max_lease_ttl: '1h',
        description: 'apps',
        listing_visibility: 'hidden',
      });
      assert.equal(w.status, 204, w.text);
      assert.equal((await login()).json.auth?.lease_duration, 3600);
      const read = (await tune('approle')).json.data;
      assert.deepEqual(
        [read?.max_lease_ttl, read?.description, read?.listing_visibility],
        [3600, 'apps', 'hidden'],
      );
      const listed = (await api('sys/auth')).json.data?.['approle/'] as {
        description: string;
        config: Record<string, unknown>;
      };
      assert.deepEqual([listed.description, listed.config.max_lease_ttl], ['apps', 3600]);
      // The mount's max lease TTL also caps secret IDs (OpenBao's deriveSecretIDTTL) and refuses
      // a token_period beyond it (OpenBao's role write).
      assert.equal(
        (await api('auth/approle/role/capped', { body: { token_policies: 'default' } })).status,
        204,
      );
      const sid = await api('auth/approle/role/capped/secret-id', { body: { ttl: '2h' } });
      assert.equal(sid.json.data?.secret_id_ttl, 3600, sid.text);
      const looked = await api('auth/approle/role/capped/secret-id/lookup', {
        body: { secret_id: sid.json.data?.secret_id },
      });
      assert.equal(looked.json.data?.secret_id_ttl, 3600, 'stored capped, not only answered');
      const never = await api('auth/approle/role/capped/secret-id', { body: {} });
      assert.equal(never.json.data?.secret_id_ttl, 0, 'no expiry stays no expiry, as OpenBao');
      const period = await api('auth/approle/role/capped', { body: { token_period: '2h' } });
      assert.equal(period.status, 400);
      assert.deepEqual(period.json.errors, [
        `period of "2h0m0s" is greater than the backend's maximum lease TTL of "1h0m0s"`,
      ]);
      assert.equal((await api('auth/approle/role/capped', { body: { period: '30m' } })).status, 204);
      // A role whose period was allowed before the mount was tuned down keeps it, and every login
      // and renewal is capped at the new limit with OpenBao's warning (its CalculateTTL).
      assert.equal((await tune('approle', { max_lease_ttl: '3h' })).status, 204);
      const periodic = { bind_secret_id: false, secret_id_bound_cidrs: '127.0.0.0/8', token_period: '2h' };
      assert.equal((await api('auth/approle/role/periodic', { body: periodic })).status, 204);
      assert.equal((await tune('approle', { max_lease_ttl: '1h' })).status, 204);
      const pid = (await api('auth/approle/role/periodic/role-id')).json.data?.role_id;
      const plogin = await api('auth/approle/login', { token: '', body: { role_id: pid } });
      assert.equal(plogin.json.auth?.lease_duration, 3600, plogin.text);
      assert.deepEqual(plogin.json.warnings, [
        'period of "2h0m0s" exceeded the effective max_ttl of "1h0m0s"; period value is capped accordingly',
      ]);
      const renewed = await api('auth/token/renew-self', {
        token: plogin.json.auth?.client_token as string,
        body: {},
      });
      assert.equal(renewed.json.auth?.lease_duration, 3600, 'a renewal is capped too');
      assert.equal(
        (await api('auth/approle/role/periodic', { body: { token_policies: 'default' } })).status,
        204,
        'an update that sets no period passes',
      );
      // A role without token_ttl gets the mount's default_lease_ttl, as OpenBao's CalculateTTL.
      assert.equal((await tune('approle', { default_lease_ttl: '10m' })).status, 204);
      assert.equal((await login()).json.auth?.lease_duration, 600);
      assert.equal(
        (await tune('approle', { max_lease_ttl: 'system', default_lease_ttl: 'system' })).status,
        204,
      );
      assert.equal((await login()).json.auth?.lease_duration, 2_764_800);
    });

    it("refuses what leaderway would not enforce, and unknown mounts, in OpenBao's words", async () => {
      const cases: Array<[string, Record<string, unknown>, string]> = [
        [
          'approle',
          { max_lease_ttl: '30s', default_lease_ttl: '1m' },
          'backend max lease TTL of 30 would be less than backend default lease TTL of 60',
        ],
        [
          'approle',
          { audit_non_hmac_request_keys: ['x'] },
          'audit_non_hmac_request_keys cannot be tuned on auth methods by leaderway',
        ],
        [
          'token',
          { max_lease_ttl: '1h' },
          "the token store's lease TTLs cannot be tuned by leaderway: give ttl or explicit_max_ttl when creating a token",
        ],
        [
          'token',
          { token_type: 'batch' },
          "'token_type' cannot be set for 'token' or 'ns_token' auth mounts",
        ],
        ['nope', {}, 'tune of path "auth/nope/" failed: no mount entry found'],
      ];
      for (const [path, body, message] of cases) {
        const r = await tune(path, body);
        assert.deepEqual([r.status, r.json.errors], [400, [message]], `${path} ${JSON.stringify(body)}`);
      }
      const read = await tune('nope');
      assert.deepEqual(
        [read.status, read.json.errors],
        [400, ['cannot fetch sysview for path "auth/nope/"']],
      );
      assert.equal((await tune('approle')).json.data?.max_lease_ttl, 2_764_800, 'nothing was changed');
    });

    it('is a sudo path, as OpenBao lists auth/* among its root paths', async () => {
      await policy('tuner', 'path "sys/auth/approle/tune" {\n  capabilities = ["read", "update"]\n}\n');
      await policy(
        'tuner-sudo',
        'path "sys/auth/approle/tune" {\n  capabilities = ["read", "update", "sudo"]\n}\n',
      );
      const plain = (await token({ policies: ['tuner'] })).client_token;
      const sudo = (await token({ policies: ['tuner-sudo'] })).client_token;
      assert.equal((await tune('approle', undefined, plain)).status, 403);
      assert.equal((await tune('approle', { description: 'x' }, plain)).status, 403);
      assert.equal((await tune('approle', undefined, sudo)).status, 200);
      assert.equal((await tune('approle', { description: 'by sudo' }, sudo)).status, 204);
      // The enable route does not take `approle/tune` for a mount path.
      assert.equal((await api('sys/auth')).json.data?.['approle/tune/'], undefined);
    });

    it('an AppRole enabled with config takes it under the same rules', async () => {
      const bad = await api('sys/auth/approle2', {
        body: { type: 'approle', config: { default_lease_ttl: '3h', max_lease_ttl: '2h' } },
      });
      assert.equal(bad.status, 400, bad.text);
      const good = await api('sys/auth/approle2', {
        body: { type: 'approle', config: { max_lease_ttl: '2h' } },
      });
      assert.equal(good.status, 204, good.text);
      assert.equal((await tune('approle2')).json.data?.max_lease_ttl, 7200);
      assert.equal((await api('sys/auth/approle2', { method: 'DELETE' })).status, 204);
    });
  });
});
