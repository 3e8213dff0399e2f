/**
 * OpenBao parity details (issue 24), on the pure checks and the stores over the embedded
 * in-memory backend (real barrier, real storage, no server). End to end:
 * test/integration/vault-parity.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { LEGACY_POLICY, parsePolicy } from '../../node/acl/policy';
import { authTuneView, tuneAuth } from '../../node/api/routes/sys-auth';
import { engineSpec, mountConfig, type Tunable } from '../../node/api/routes/sys-mounts';
import {
  AppRole,
  customSecretId,
  MAX_SECRET_ID_LENGTH,
  type Role,
  SECRET_ID_MESSAGES,
  secretIdBounds,
} from '../../node/auth/approle';
import { DEFAULT_TTL_S, MAX_TTL_S } from '../../node/auth/token-store';
import { initialize } from '../../node/barrier/seal';
import type { SecureStorage } from '../../node/barrier/secure-storage';
import { CAS_MESSAGES, checkCas, parseCas } from '../../node/kv/kv-engine';
import { LwError } from '../../shared/errors';
import { InmemBackend } from '../../shared/storage/inmem';

/** Asserts a 400 with exactly `message`. */
function refused(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof LwError && e.status === 400 && e.message === message);
}

/** Asserts an LwError with `status` and exactly `message`. */
function refusedWith(fn: () => unknown, status: number, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof LwError && e.status === status && e.message === message);
}

async function refusedAsync(p: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof LwError && e.status === 400 && e.message === message);
}

describe('AppRole custom secret IDs', () => {
  let s: SecureStorage;
  const approle = new AppRole('approle-parity');
  const bounds = { metadata: {}, cidrList: [], tokenBoundCidrs: [], numUses: 0, ttlS: 0 };

  /** Writes role `name` (binding a secret ID, no other bound) and returns it. */
  const role = async (name: string): Promise<Role> => {
    await approle.writeRole(s, name, () => {});
    return (await approle.role(s, name)) as Role;
  };

  before(async () => {
    s = await initialize(new InmemBackend(), randomBytes(32), () => []);
  });

  it('the value must be a non-empty string no longer than a login accepts', () => {
    for (const v of [undefined, null, '']) refused(() => customSecretId(v), SECRET_ID_MESSAGES.missing);
    refused(() => customSecretId(12345), SECRET_ID_MESSAGES.notString);
    refused(() => customSecretId(['a']), SECRET_ID_MESSAGES.notString);
    refused(() => customSecretId('x'.repeat(MAX_SECRET_ID_LENGTH + 1)), SECRET_ID_MESSAGES.tooLong);
    assert.equal(customSecretId('x'.repeat(MAX_SECRET_ID_LENGTH)), 'x'.repeat(MAX_SECRET_ID_LENGTH));
  });

  it('the longest value accepted logs in', async () => {
    const r = await role('longest');
    const value = 'L'.repeat(MAX_SECRET_ID_LENGTH);
    await approle.registerSecret(s, r, customSecretId(value), bounds);
    const login = await approle.login(s, r.role_id, value, '127.0.0.1');
    assert.equal(login.secret?.hash, s.barrier.hmac(`secret-id:${value}`));
  });

  it('a value the role already has is refused, and the first one stays as it was', async () => {
    const r = await role('dup');
    const first = await approle.registerSecret(s, r, 'same-value', { ...bounds, numUses: 2 });
    await refusedAsync(
      approle.registerSecret(s, r, 'same-value', { ...bounds, numUses: 9 }),
      SECRET_ID_MESSAGES.duplicate,
    );
    assert.deepEqual(await approle.secretAccessors(s, 'dup'), [first.accessor]);
    assert.deepEqual(await approle.secretByAccessor(s, 'dup', first.accessor), first);
  });

  it('of racing registrations of one value exactly one wins', async () => {
    const r = await role('race');
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => approle.registerSecret(s, r, 'raced', bounds)),
    );
    assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1);
    assert.equal((await approle.secretAccessors(s, 'race')).length, 1);
  });

  it('the same value for another role is another secret ID', async () => {
    const a = await role('one');
    const b = await role('two');
    await approle.registerSecret(s, a, 'shared-value', bounds);
    await approle.registerSecret(s, b, 'shared-value', bounds);
    assert.equal((await approle.login(s, a.role_id, 'shared-value', '127.0.0.1')).role.name, 'one');
    assert.equal((await approle.login(s, b.role_id, 'shared-value', '127.0.0.1')).role.name, 'two');
  });

  it('is bounded by the role like a generated one (secretIdBounds)', async () => {
    await approle.writeRole(s, 'bounded', (x) => {
      x.secret_id_num_uses = 2;
      x.secret_id_ttl = 60;
    });
    const r = (await approle.role(s, 'bounded')) as Role;
    const req = { metadata: {}, cidrList: [], tokenBoundCidrs: [] };
    const e = await approle.registerSecret(s, r, 'bounded-value', secretIdBounds(r, req, MAX_TTL_S));
    assert.equal(e.num_uses, 2);
    assert.equal(e.ttl, 60);
  });
});

describe('legacy policy syntax (policy = "read" | "write" | "sudo" | "deny")', () => {
  /** The capabilities a one-path policy grants on `p`, parsed from `text`. */
  const caps = async (text: string) => (await parsePolicy('p', text)).paths.map((r) => r.capabilities);

  it('maps each value to the capabilities OpenBao maps it to, in HCL and in JSON', async () => {
    const expected: Record<string, string[]> = {
      read: ['list', 'read'],
      write: ['create', 'delete', 'list', 'read', 'update'],
      sudo: ['create', 'delete', 'list', 'read', 'sudo', 'update'],
      deny: ['deny'],
    };
    for (const [policy, want] of Object.entries(expected)) {
      assert.deepEqual(await caps(`path "secret/*" { policy = "${policy}" }`), [want], policy);
      assert.deepEqual(await caps(JSON.stringify({ path: { 'secret/*': { policy } } })), [want], policy);
      assert.deepEqual([...(LEGACY_POLICY[policy] ?? [])].sort(), want);
    }
  });

  it('write does not grant patch (the old form predates it)', async () => {
    assert.ok(!(await caps('path "a" { policy = "write" }'))[0]?.includes('patch'));
  });

  it('is added to capabilities given beside it; deny stands alone', async () => {
    const both = 'path "a" {\n  policy = "read"\n  capabilities = ["patch", "read"]\n}';
    assert.deepEqual(await caps(both), [['list', 'patch', 'read']]);
    const deny = 'path "a" {\n  policy = "deny"\n  capabilities = ["read", "sudo"]\n}';
    assert.deepEqual(await caps(deny), [['deny']]);
    const denyInList = 'path "a" {\n  policy = "write"\n  capabilities = ["deny"]\n}';
    assert.deepEqual(await caps(denyInList), [['deny']]);
  });

  it('refuses an unknown value, and still refuses keys leaderway does not enforce', async () => {
    for (const [text, message] of [
      ['path "a" { policy = "admin" }', 'path "a": invalid policy "admin"'],
      ['path "a" { policy = 3 }', 'path "a": invalid policy 3'],
      [
        'path "a" {\n  policy = "read"\n  allowed_parameters = { x = [] }\n}',
        'path "a": "allowed_parameters" is not supported by leaderway (only capabilities are enforced)',
      ],
      [
        'path "a" {\n  policy = "read"\n  required_parameters = ["x"]\n}',
        'path "a": "required_parameters" is not supported by leaderway (only capabilities are enforced)',
      ],
      ['path "a" { policy = "" }', 'path "a": capabilities must be a list of strings'],
    ]) {
      await refusedAsync(parsePolicy('p', text as string), `failed to parse policy: ${message}`);
    }
  });
});

describe('KV v2 check-and-set (checkCas)', () => {
  it("answers a mismatch, a missing required cas and a malformed one with OpenBao's messages", () => {
    refused(() => checkCas(1, 2, false), CAS_MESSAGES.mismatch);
    refused(() => checkCas(0, 2, true), CAS_MESSAGES.mismatch);
    refused(() => checkCas(undefined, 2, true), CAS_MESSAGES.required);
    checkCas(undefined, 2, false);
    checkCas(2, 2, true);
    checkCas('2', 2, true);
    checkCas(0, 0, true);
  });

  it('a negative integer can match no version: a mismatch, as upstream', () => {
    refused(() => checkCas(-1, 0, false), CAS_MESSAGES.mismatch);
    refused(() => checkCas('-3', 0, false), CAS_MESSAGES.mismatch);
  });

  it('refuses anything but an integer, where upstream would truncate 1.5 or read true, "" or null', () => {
    for (const v of [1.5, true, false, null, '', 'abc', '0x1', '+1', '1e2', ' 1', '01', {}, [1], 2 ** 60]) {
      refused(() => parseCas(v), CAS_MESSAGES.invalid);
      refused(() => checkCas(v, 1, false), CAS_MESSAGES.invalid);
    }
    assert.equal(parseCas('17'), 17);
    assert.equal(parseCas(0), 0);
  });
});

describe('mount type generic, and types no one may mount (engineSpec)', () => {
  it('generic is KV v1 under its own name; kv-v1 and kv-v2 are kv with a version', () => {
    assert.deepEqual(engineSpec({ type: 'generic' }), { type: 'generic' });
    assert.deepEqual(engineSpec({ type: 'generic', options: { version: '' } }), { type: 'generic' });
    assert.deepEqual(engineSpec({ type: 'kv-v1' }), { type: 'kv', version: '1' });
    assert.deepEqual(engineSpec({ type: 'kv-v2' }), { type: 'kv', version: '2' });
    assert.deepEqual(engineSpec({ type: 'kv' }), { type: 'kv', version: '1' });
  });

  it('only the KV types take a version', () => {
    for (const type of ['generic', 'pki', 'cubbyhole']) {
      refused(
        () => engineSpec({ type, options: { version: '2' } }),
        `secrets engine "${type}" does not allow setting a version`,
      );
    }
    refused(() => engineSpec({ type: 'kv-v1', options: { version: 2 } }), 'kv-v1 mounts are version 1');
  });

  it('a singleton type is 403 not mountable, as OpenBao', () => {
    for (const type of ['cubbyhole', 'system', 'token', 'identity', 'ns_cubbyhole']) {
      refusedWith(() => engineSpec({ type }), 403, `mount type of "${type}" is not mountable`);
    }
    refused(() => engineSpec({ type: 'pki' }), 'plugin not found in the catalog: pki');
  });
});

describe('lease TTLs of a mount (mountConfig)', () => {
  const base = { default_lease_ttl: 60, max_lease_ttl: 600, listing_visibility: '' };

  it('"" keeps a value, "system" resets it to 0', () => {
    assert.deepEqual(mountConfig({ default_lease_ttl: '', max_lease_ttl: 'system' }, base), {
      ...base,
      max_lease_ttl: 0,
    });
  });

  it('refuses a max below the default, in the words of a tune and of an enable', () => {
    refused(
      () => mountConfig({ max_lease_ttl: '30s' }, base),
      'backend max lease TTL of 30 would be less than backend default lease TTL of 60',
    );
    refused(
      () => mountConfig({ default_lease_ttl: '2h', max_lease_ttl: '1h' }, base, true),
      'given default lease TTL greater than given max lease TTL',
    );
  });
});

describe('auth method tuning (tuneAuth, authTuneView)', () => {
  const mount = (type: 'approle' | 'token'): Tunable => ({
    type,
    description: '',
    config: { default_lease_ttl: 0, max_lease_ttl: 0, listing_visibility: '' },
  });

  it('takes what leaderway enforces: description, listing_visibility, an AppRole max_lease_ttl', () => {
    const m = mount('approle');
    tuneAuth(m, { description: 'apps', max_lease_ttl: '1h', listing_visibility: 'hidden', token_type: '' });
    assert.deepEqual(m, {
      type: 'approle',
      description: 'apps',
      config: { default_lease_ttl: 0, max_lease_ttl: 3600, listing_visibility: 'hidden' },
    });
    tuneAuth(m, { max_lease_ttl: 'system', token_type: 'default-service', options: {}, plugin_version: '' });
    assert.equal(m.config.max_lease_ttl, 0);
  });

  it('refuses by name what nothing would enforce', () => {
    const unsupported = (
      body: Record<string, unknown>,
      message: string,
      type: 'approle' | 'token' = 'approle',
    ) => refused(() => tuneAuth(mount(type), body), message);
    unsupported(
      { default_lease_ttl: '1h' },
      "the token store's lease TTLs cannot be tuned by leaderway: give ttl or explicit_max_ttl when creating a token",
      'token',
    );
    unsupported(
      { max_lease_ttl: `${MAX_TTL_S + 1}s` },
      `max_lease_ttl may not exceed the system maximum of ${MAX_TTL_S} seconds`,
    );
    unsupported(
      { max_lease_ttl: '1h' },
      "the token store's lease TTLs cannot be tuned by leaderway: give ttl or explicit_max_ttl when creating a token",
      'token',
    );
    for (const field of [
      'audit_non_hmac_request_keys',
      'passthrough_request_headers',
      'allowed_response_headers',
    ]) {
      unsupported({ [field]: ['x'] }, `${field} cannot be tuned on auth methods by leaderway`);
    }
    unsupported(
      { user_lockout_config: { lockout_threshold: '3' } },
      'user_lockout_config cannot be tuned on auth methods by leaderway',
    );
    unsupported({ options: { x: 'y' } }, 'options cannot be tuned on auth methods by leaderway');
    unsupported(
      { token_type: 'batch' },
      'token_type: leaderway issues service tokens only (default-service)',
    );
    unsupported({ token_type: 'bogus' }, "invalid value for 'token_type'");
    unsupported(
      { token_type: 'service' },
      "'token_type' cannot be set for 'token' or 'ns_token' auth mounts",
      'token',
    );
  });

  it("reads the TTLs in force, the system's where the mount sets none, as OpenBao", () => {
    const m = mount('approle');
    assert.deepEqual(authTuneView({ ...m, description: 'd' }), {
      description: 'd',
      default_lease_ttl: DEFAULT_TTL_S,
      max_lease_ttl: MAX_TTL_S,
      force_no_cache: false,
      token_type: 'default-service',
    });
    const tuned = { ...m, config: { default_lease_ttl: 0, max_lease_ttl: 60, listing_visibility: 'unauth' } };
    assert.deepEqual(authTuneView(tuned), {
      description: '',
      default_lease_ttl: DEFAULT_TTL_S,
      max_lease_ttl: 60,
      force_no_cache: false,
      token_type: 'default-service',
      listing_visibility: 'unauth',
    });
  });
});
