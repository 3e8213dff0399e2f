/**
 * The privilege rules, one test each, on the pure decisions and on the stores over the embedded
 * in-memory backend (real barrier, real storage, no server): who may create which token
 * (decideTokenCreate), what a login may issue, which tokens are alive, what a secret ID may
 * carry, role ID ownership, policy names and the ACL cache, and who may see a mount.
 * docs/security-model.md lists each rule with OpenBao's source and the test here that checks it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { Acl } from '../../node/acl/acl';
import { parsePolicy, sanitizePolicies } from '../../node/acl/policy';
import { PolicyStore } from '../../node/acl/policy-store';
import { AppRole, type Role, secretIdBounds } from '../../node/auth/approle';
import { cidrsWithin } from '../../node/auth/cidr';
import { CREATE_MESSAGES, type CreateRequest, decideTokenCreate } from '../../node/auth/token-create';
import { MAX_TTL_S, type TokenEntry, TokenStore } from '../../node/auth/token-store';
import { initialize } from '../../node/barrier/seal';
import type { SecureStorage } from '../../node/barrier/secure-storage';
import { LwError } from '../../shared/errors';
import { InmemBackend } from '../../shared/storage/inmem';
import { tokenSpec } from '../helpers/token-spec';

const NOW = 1_800_000_000_000;

function parent(over: Partial<TokenEntry> = {}): TokenEntry {
  return {
    hash: 'p',
    accessor: 'a',
    policies: ['app', 'default'],
    display_name: 'token',
    creation_time: NOW / 1000,
    meta: null,
    ...over,
  };
}

function ask(over: Partial<CreateRequest> = {}): CreateRequest {
  return {
    policies: [],
    noDefaultPolicy: false,
    noParent: false,
    ttlS: 0,
    explicitMaxTtlS: 0,
    periodS: 0,
    numUses: 0,
    renewable: true,
    displayName: 'token',
    meta: null,
    ...over,
  };
}

const plain = { sudo: false, orphanPath: false, now: NOW };
const sudo = { ...plain, sudo: true };

/** Asserts a 400 with exactly `message`. */
function refused(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof LwError && e.status === 400 && e.message === message);
}

describe('token create rules (decideTokenCreate)', () => {
  it('a parent with a use limit creates nothing, child or orphan, sudo or not', () => {
    const p = parent({ num_uses: 3 });
    refused(() => decideTokenCreate(p, ask(), plain), CREATE_MESSAGES.restrictedUse);
    refused(() => decideTokenCreate(p, ask(), { ...plain, orphanPath: true }), CREATE_MESSAGES.restrictedUse);
    refused(() => decideTokenCreate(p, ask(), sudo), CREATE_MESSAGES.restrictedUse);
    refused(
      () => decideTokenCreate(parent({ policies: ['root'], num_uses: 1 }), ask(), plain),
      CREATE_MESSAGES.restrictedUse,
    );
  });

  it('root only from a root parent, even with sudo on the create path', () => {
    refused(
      () => decideTokenCreate(parent(), ask({ policies: ['root'] }), sudo),
      CREATE_MESSAGES.rootFromNonRoot,
    );
    refused(
      () => decideTokenCreate(parent(), ask({ policies: ['ROOT '] }), sudo),
      CREATE_MESSAGES.rootFromNonRoot,
    );
    const spec = decideTokenCreate(parent({ policies: ['root'] }), ask({ policies: ['root', 'x'] }), plain);
    assert.deepEqual(spec.policies, ['root']);
  });

  it('without sudo: a subset of the parent, `default` only when the parent has it', () => {
    refused(() => decideTokenCreate(parent(), ask({ policies: ['admin'] }), plain), CREATE_MESSAGES.subset);
    assert.deepEqual(decideTokenCreate(parent(), ask({ policies: ['app'] }), plain).policies, [
      'app',
      'default',
    ]);
    const noDefault = parent({ policies: ['app'] });
    assert.deepEqual(decideTokenCreate(noDefault, ask({ policies: ['app'] }), plain).policies, ['app']);
    assert.deepEqual(decideTokenCreate(noDefault, ask(), plain).policies, ['app']);
    refused(
      () => decideTokenCreate(noDefault, ask({ policies: ['default'] }), plain),
      CREATE_MESSAGES.subset,
    );
    // no_default_policy strips it whatever was asked.
    const stripped = decideTokenCreate(
      parent(),
      ask({ policies: ['app', 'default'], noDefaultPolicy: true }),
      plain,
    );
    assert.deepEqual(stripped.policies, ['app']);
    assert.deepEqual(decideTokenCreate(parent(), ask({ noDefaultPolicy: true }), plain).policies, ['app']);
  });

  it('with sudo: any non-root policies, `default` added unless no_default_policy', () => {
    assert.deepEqual(decideTokenCreate(parent(), ask({ policies: ['admin'] }), sudo).policies, [
      'admin',
      'default',
    ]);
    const spec = decideTokenCreate(parent(), ask({ policies: ['admin'], noDefaultPolicy: true }), sudo);
    assert.deepEqual(spec.policies, ['admin']);
  });

  it('no_parent orphans and periodic tokens need sudo; create-orphan is its own ACL path', () => {
    refused(() => decideTokenCreate(parent(), ask({ noParent: true }), plain), CREATE_MESSAGES.orphan);
    refused(() => decideTokenCreate(parent(), ask({ periodS: 3600 }), plain), CREATE_MESSAGES.periodic);
    refused(
      () => decideTokenCreate(parent(), ask({ periodS: 60 }), { ...plain, orphanPath: true }),
      CREATE_MESSAGES.periodic,
    );
    assert.equal(decideTokenCreate(parent(), ask({ noParent: true }), sudo).parent, null);
    assert.equal(decideTokenCreate(parent(), ask({ periodS: 3600 }), sudo).periodS, 3600);
    const orphan = decideTokenCreate(parent(), ask(), { ...plain, orphanPath: true });
    assert.equal(orphan.parent, null);
    assert.equal(orphan.path, 'auth/token/create-orphan');
  });

  it("without sudo, no explicit_max_ttl past the parent's limit, and an orphan is capped by it", () => {
    const p = parent({ max_expire: NOW + 600_000, expire_time: NOW + 60_000 });
    refused(() => decideTokenCreate(p, ask({ explicitMaxTtlS: 3600 }), plain), CREATE_MESSAGES.beyondParent);
    assert.equal(decideTokenCreate(p, ask({ explicitMaxTtlS: 300 }), plain).explicitMaxTtlS, 300);
    assert.equal(decideTokenCreate(p, ask(), { ...plain, orphanPath: true }).explicitMaxTtlS, 600);
    // A child (not an orphan) dies with its parent: nothing to cap.
    assert.equal(decideTokenCreate(p, ask(), plain).explicitMaxTtlS, 0);
    assert.equal(decideTokenCreate(p, ask({ explicitMaxTtlS: 3600 }), sudo).explicitMaxTtlS, 3600);
  });

  it("the new token is bound to the parent's CIDRs, orphan or not", () => {
    const p = parent({ bound_cidrs: ['10.1.0.0/16'] });
    assert.deepEqual(decideTokenCreate(p, ask(), plain).boundCidrs, ['10.1.0.0/16']);
    assert.deepEqual(decideTokenCreate(p, ask(), { ...plain, orphanPath: true }).boundCidrs, ['10.1.0.0/16']);
    assert.deepEqual(decideTokenCreate(parent(), ask(), plain).boundCidrs, []);
  });

  it('an expiring root token cannot create a root token that never expires', () => {
    const p = parent({ policies: ['root'], expire_time: NOW + 60_000 });
    refused(() => decideTokenCreate(p, ask(), plain), CREATE_MESSAGES.nonExpiringRoot);
    assert.equal(decideTokenCreate(p, ask({ ttlS: 30 }), plain).ttlS, 30);
    assert.deepEqual(decideTokenCreate(parent({ policies: ['root'] }), ask(), plain).policies, ['root']);
  });

  it('policy names are validated and normalised', () => {
    assert.throws(
      () => decideTokenCreate(parent(), ask({ policies: ['a\nb'] }), sudo),
      /invalid policy name/,
    );
    assert.throws(() => sanitizePolicies(['ok', 'no spaces']), /invalid policy name/);
    assert.deepEqual(sanitizePolicies([' App', 'app', '', 'b']), ['app', 'b']);
    assert.deepEqual(sanitizePolicies(['x', 'Root']), ['root']);
  });
});

describe('stores over the embedded backend', () => {
  let s: SecureStorage;
  const tokens = new TokenStore();
  const base = tokenSpec();
  before(async () => {
    s = await initialize(new InmemBackend(), randomBytes(32), () => []);
  });

  it('no auth method issues a root token (createForLogin)', async () => {
    await assert.rejects(
      tokens.createForLogin(s, { ...base, policies: ['root'] }),
      /auth methods cannot create root tokens/,
    );
    const { entry } = await tokens.createForLogin(s, { ...base, policies: ['app'] });
    assert.deepEqual(entry.policies, ['app']);
  });

  it('a login token lives no longer than the smallest of explicit max, max TTL and the mount max', async () => {
    const t0 = Date.now();
    const { entry } = await tokens.create(s, {
      ...base,
      policies: ['app'],
      explicitMaxTtlS: 3600,
      maxTtlS: 600,
    });
    assert.ok((entry.max_expire ?? 0) - t0 <= 601_000 && (entry.max_expire ?? 0) - t0 >= 599_000);
    assert.ok((entry.expire_time ?? 0) <= (entry.max_expire ?? 0));
  });

  it("a periodic token's period is capped at each issuance and renewal, not its lifetime (OpenBao's CalculateTTL)", async () => {
    const periodic = await tokens.create(s, { ...base, policies: ['app'], periodS: 60, maxTtlS: 30 });
    assert.deepEqual(
      [
        periodic.entry.creation_ttl,
        periodic.entry.period,
        periodic.entry.period_cap,
        periodic.entry.max_expire,
      ],
      [30, 60, 30, 0],
    );
    assert.deepEqual(periodic.warnings, [
      'period of "1m0s" exceeded the effective max_ttl of "30s"; period value is capped accordingly',
    ]);
    const t0 = Date.now();
    const renewed = await tokens.renew(s, periodic.entry, 0);
    assert.ok((renewed.expire_time ?? 0) - t0 <= 31_000, 'a renewal grants the cap, not the period');
    // Under the cap: no warning, the period itself.
    const fits = await tokens.create(s, { ...base, policies: ['app'], periodS: 20, maxTtlS: 30 });
    assert.deepEqual([fits.entry.creation_ttl, fits.warnings], [20, []]);
    // The system's max bounds every periodic token, root's too (and entries from before period_cap).
    const long = await tokens.create(s, { ...base, policies: ['root'], periodS: MAX_TTL_S * 2 });
    assert.equal(long.entry.creation_ttl, MAX_TTL_S);
    // An entry stored before period_cap: its renewals are capped at the system's max.
    const { period_cap: _, ...old } = long.entry;
    await s.put(`auth/token/id/${old.hash}`, old);
    const t1 = Date.now();
    const oldRenewed = await tokens.renew(s, old, 0);
    assert.equal(oldRenewed.period_cap, undefined, 'the entry as stored before');
    assert.ok((oldRenewed.expire_time ?? 0) - t1 <= MAX_TTL_S * 1000 + 1000);
  });

  it('a child is never usable where its parent is not; a target is found from anywhere', async () => {
    const p = await tokens.create(s, { ...base, policies: ['app'], boundCidrs: ['10.0.0.0/8'] });
    // A child stored without CIDRs (as before the inheritance rule): its parent's still bind it.
    const c = await tokens.create(s, { ...base, policies: ['app'], parent: p.entry });
    assert.equal(await tokens.valid(s, c.entry, '10.1.2.3'), true);
    assert.equal(await tokens.valid(s, c.entry, '192.168.1.1'), false);
    assert.equal((await tokens.alive(s, p.token))?.hash, p.entry.hash);
    await tokens.revoke(s, p.entry, false);
    assert.equal(await tokens.alive(s, c.token), null);
  });

  it('an expired token is not alive by accessor, even before tidy deletes it', async () => {
    const { entry } = await tokens.create(s, { ...base, policies: ['app'], ttlS: 1 });
    assert.ok(await tokens.aliveByAccessor(s, entry.accessor));
    await s.put(`auth/token/id/${entry.hash}`, { ...entry, expire_time: Date.now() - 1 });
    assert.ok(await tokens.findByAccessor(s, entry.accessor));
    assert.equal(await tokens.aliveByAccessor(s, entry.accessor), null);
  });

  it('a renewal moves the expiry only: it gives no use back and revives no spent token', async () => {
    const two = await tokens.create(s, { ...base, policies: ['app'], ttlS: 60, numUses: 2 });
    await tokens.use(s, two.entry);
    const renewed = await tokens.renew(s, two.entry, 120);
    assert.equal(renewed.num_uses, 1, 'the counted use stays counted');
    const one = await tokens.create(s, { ...base, policies: ['app'], ttlS: 60, numUses: 1 });
    await tokens.use(s, one.entry);
    await assert.rejects(tokens.renew(s, one.entry, 120), /token not found/);
    assert.equal(await tokens.find(s, one.token), null, 'the spent token stays revoked');
  });

  it('a renewal racing a revocation never brings the token back', async () => {
    for (let i = 0; i < 20; i++) {
      const t = await tokens.create(s, { ...base, policies: ['app'], ttlS: 60 });
      const renewal = tokens.renew(s, t.entry, 120).catch(() => undefined);
      await tokens.revoke(s, t.entry, false);
      await renewal;
      assert.equal(await tokens.find(s, t.token), null, `round ${i}: revoked, then renewed back`);
    }
  });

  it('a role ID belongs to one role of a mount', async () => {
    const approle = new AppRole('approle-test');
    await approle.writeRole(s, 'a', () => undefined);
    await approle.writeRole(s, 'b', () => undefined);
    const a = await approle.role(s, 'a');
    await assert.rejects(
      approle.writeRole(s, 'b', (r) => {
        r.role_id = a?.role_id as string;
      }),
      /role_id already in use/,
    );
    await approle.writeRole(s, 'a', (r) => {
      r.role_id = 'custom-id';
    });
    assert.equal((await approle.role(s, 'a'))?.role_id, 'custom-id');
  });

  it('two different policy lists never share a cached ACL', async () => {
    const policies = new PolicyStore();
    await policies.write(s, 'a', 'path "x" { capabilities = ["read"] }');
    assert.equal((await policies.acl(s, ['a', 'b'])).allows('x', ['read']), true);
    assert.equal((await policies.acl(s, ['a\nb'])).allows('x', ['read']), false);
  });
});

describe('secret IDs only narrow their role (secretIdBounds)', () => {
  const role: Role = {
    name: 'r',
    role_id: 'id',
    bind_secret_id: true,
    secret_id_bound_cidrs: ['10.0.0.0/8'],
    secret_id_num_uses: 5,
    secret_id_ttl: 600,
    token_policies: ['app'],
    token_ttl: 0,
    token_max_ttl: 0,
    token_explicit_max_ttl: 0,
    token_period: 0,
    token_num_uses: 0,
    token_bound_cidrs: ['10.1.0.0/16'],
    token_no_default_policy: false,
  };
  const req = { metadata: {}, cidrList: [], tokenBoundCidrs: [] };
  /** A mount with no max_lease_ttl of its own: the system's. */
  const MAX = MAX_TTL_S;

  it('takes the role values when unset; narrower values pass', () => {
    assert.deepEqual(secretIdBounds(role, req, MAX), { ...req, numUses: 5, ttlS: 600 });
    const narrow = {
      ...req,
      numUses: 2,
      ttlS: 60,
      cidrList: ['10.9.9.0/24'],
      tokenBoundCidrs: ['10.1.2.3/32'],
    };
    assert.deepEqual(secretIdBounds(role, narrow, MAX), narrow);
  });

  it('refuses more uses, a longer TTL, or unlimited ones, than the role allows', () => {
    refused(
      () => secretIdBounds(role, { ...req, numUses: 6 }, MAX),
      "num_uses cannot be higher than the role's secret_id_num_uses",
    );
    refused(
      () => secretIdBounds(role, { ...req, numUses: 0 }, MAX),
      "num_uses cannot be higher than the role's secret_id_num_uses",
    );
    refused(
      () => secretIdBounds(role, { ...req, ttlS: 601 }, MAX),
      "ttl cannot be longer than the role's secret_id_ttl",
    );
    refused(
      () => secretIdBounds(role, { ...req, ttlS: 0 }, MAX),
      "ttl cannot be longer than the role's secret_id_ttl",
    );
    const open = { ...role, secret_id_num_uses: 0, secret_id_ttl: 0 };
    assert.equal(secretIdBounds(open, { ...req, numUses: 0, ttlS: 0 }, MAX).numUses, 0);
  });

  it("caps the TTL at the mount's max lease TTL, as upstream; no expiry (0) stays 0", () => {
    const open = { ...role, secret_id_ttl: 0 };
    assert.equal(secretIdBounds(open, { ...req, ttlS: 7200 }, 3600).ttlS, 3600);
    assert.equal(secretIdBounds(role, req, 300).ttlS, 300, "the role's secret_id_ttl, capped");
    assert.equal(secretIdBounds(role, { ...req, ttlS: 60 }, 300).ttlS, 60);
    assert.equal(secretIdBounds(open, { ...req, ttlS: 0 }, 300).ttlS, 0);
  });

  it("refuses CIDRs outside the role's", () => {
    refused(
      () => secretIdBounds(role, { ...req, cidrList: ['192.168.0.0/16'] }, MAX),
      "cidr_list must be a subset of the role's secret_id_bound_cidrs",
    );
    refused(
      () => secretIdBounds(role, { ...req, tokenBoundCidrs: ['10.0.0.0/8'] }, MAX),
      "token_bound_cidrs must be a subset of the role's token_bound_cidrs",
    );
  });

  it('refuses a secret ID for a role that does not bind one', () => {
    refused(
      () => secretIdBounds({ ...role, bind_secret_id: false }, req, MAX),
      'bind_secret_id is not set on the role',
    );
  });

  it('cidrsWithin compares blocks, not strings', () => {
    assert.equal(cidrsWithin(['10.1.0.0/16'], ['10.0.0.0/8']), true);
    assert.equal(cidrsWithin(['10.0.0.0/8'], ['10.1.0.0/16']), false);
    assert.equal(cidrsWithin(['10.1.0.0/8'], ['10.1.0.0/16']), false, 'wider, though its address is inside');
    assert.equal(cidrsWithin(['10.1.0.0/16', '11.0.0.1/32'], ['10.0.0.0/8']), false);
    assert.equal(cidrsWithin(['::1/128'], ['10.0.0.0/8']), false);
    assert.equal(cidrsWithin(['::1/128'], ['::/0']), true);
    assert.equal(cidrsWithin([], ['10.0.0.0/8']), false);
    assert.equal(cidrsWithin(['1.2.3.4/32'], []), true);
  });
});

describe('who may see a mount (Acl.hasMountAccess)', () => {
  const acl = async (text: string) => new Acl([await parsePolicy('p', text)]);

  it('grants on or under the mount count; elsewhere, deny and nothing do not', async () => {
    assert.equal(
      (await acl('path "secret/data/app" { capabilities = ["read"] }')).hasMountAccess('secret/'),
      true,
    );
    assert.equal((await acl('path "secret/*" { capabilities = ["list"] }')).hasMountAccess('secret/'), true);
    assert.equal((await acl('path "sec*" { capabilities = ["read"] }')).hasMountAccess('secret/'), true);
    assert.equal((await acl('path "+/data/x" { capabilities = ["read"] }')).hasMountAccess('secret/'), true);
    assert.equal((await acl('path "other/*" { capabilities = ["read"] }')).hasMountAccess('secret/'), false);
    assert.equal((await acl('path "secret/*" { capabilities = ["deny"] }')).hasMountAccess('secret/'), false);
    assert.equal((await acl('path "secret" { capabilities = ["read"] }')).hasMountAccess('secret/'), false);
    assert.equal(
      (await acl('path "sys/internal/ui/mounts/*" { capabilities = ["read"] }')).hasMountAccess('secret/'),
      false,
    );
  });
});
