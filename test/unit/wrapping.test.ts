/**
 * Response wrapping and the cubbyhole in the token store, on the in-memory backend (real barrier,
 * real storage): a wrapping token holds its response, is spent exactly once — also when two
 * nodes' stores (two locks) spend it at the same moment — and takes its cubbyhole with it; no
 * ordinary token or policy can pose as a wrapping one; the wrap TTL header parses as OpenBao's.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { Acl } from '../../node/acl/acl';
import { parsePolicy } from '../../node/acl/policy';
import { PolicyStore } from '../../node/acl/policy-store';
import type { AnyRequest } from '../../node/api/request';
import { requestedWrapTtl } from '../../node/api/wrapping';
import { isWrapping, TokenStore, WRAPPING_POLICY } from '../../node/auth/token-store';
import { initialize } from '../../node/barrier/seal';
import type { SecureStorage } from '../../node/barrier/secure-storage';
import { cubbyholeEntries, cubbyholeOf } from '../../node/kv/cubbyhole';
import { LwError, MESSAGES } from '../../shared/errors';
import { InmemBackend } from '../../shared/storage/inmem';
import { tokenSpec } from '../helpers/token-spec';

const spec = tokenSpec({ policies: ['app'], ttlS: 3600 });

const invalid = (e: unknown) =>
  e instanceof LwError && e.status === 400 && e.message === MESSAGES.invalidWrappingToken;
const header = (v: string | undefined) =>
  ({ headers: v === undefined ? {} : { 'x-vault-wrap-ttl': v } }) as AnyRequest;

describe('response wrapping in the token store', () => {
  let s: SecureStorage;
  before(async () => {
    s = await initialize(new InmemBackend(), randomBytes(32), () => []);
  });

  it('a wrapping token is OpenBao-shaped and gives its response back once', async () => {
    const tokens = new TokenStore();
    const { token, entry } = await tokens.createWrapping(s, 300, 'secret/data/app', { data: { k: 'v' } });
    assert.ok(isWrapping(entry));
    assert.deepEqual(
      [entry.num_uses, entry.renewable, entry.parent, entry.path, entry.creation_ttl, entry.explicit_max_ttl],
      [1, false, '', 'secret/data/app', 300, 300],
    );
    assert.equal((await tokens.wrappingEntry(s, token)).hash, entry.hash, 'lookup does not spend it');
    const spent = await tokens.spendWrapping(s, token);
    assert.deepEqual(spent.response, { data: { k: 'v' } });
    await assert.rejects(tokens.spendWrapping(s, token), invalid);
    await assert.rejects(tokens.wrappingEntry(s, token), invalid);
    assert.deepEqual(await cubbyholeEntries(s, entry.hash), [], 'the response went with the token');
  });

  it('two nodes spending one token at once: exactly one gets the response', async () => {
    // Two stores are two nodes' locks; only the storage's atomic "spent" mark can decide.
    for (let round = 0; round < 20; round++) {
      const { token } = await new TokenStore().createWrapping(s, 300, 'p', { round });
      const results = await Promise.allSettled([
        new TokenStore().spendWrapping(s, token),
        new TokenStore().spendWrapping(s, token),
        new TokenStore().spendWrapping(s, token),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1, `round ${round}: ${won.length} spends succeeded`);
      for (const r of results) if (r.status === 'rejected') assert.ok(invalid(r.reason), String(r.reason));
    }
  });

  it('rewrap spends the old token and makes a new one with the same response, path and TTL', async () => {
    const tokens = new TokenStore();
    const { token } = await tokens.createWrapping(s, 120, 'auth/approle/role/r/secret-id', { n: 1 });
    const { next } = await tokens.spendWrapping(s, token, true);
    assert.ok(next);
    assert.equal(next.entry.path, 'auth/approle/role/r/secret-id');
    assert.equal(next.entry.creation_ttl, 120, "the spent token's TTL");
    await assert.rejects(tokens.spendWrapping(s, token), invalid);
    assert.deepEqual((await tokens.spendWrapping(s, next.token)).response, { n: 1 });
  });

  it('an expired, ordinary or unknown token is not a wrapping token', async () => {
    const tokens = new TokenStore();
    const plain = await tokens.create(s, spec);
    await assert.rejects(tokens.spendWrapping(s, plain.token), invalid);
    await assert.rejects(tokens.spendWrapping(s, 'hvs.nothing'), invalid);
    await assert.rejects(tokens.spendWrapping(s, undefined), invalid);
    const { token, entry } = await tokens.createWrapping(s, 300, 'p', { x: 1 });
    await s.put(`auth/token/id/${entry.hash}`, { ...entry, expire_time: Date.now() - 1 });
    await assert.rejects(tokens.spendWrapping(s, token), invalid);
  });

  it('no token is created with the wrapping policy, and no policy of that name is written', async () => {
    const tokens = new TokenStore();
    await assert.rejects(
      tokens.create(s, { ...spec, policies: [WRAPPING_POLICY] }),
      /reserved for wrapping tokens/,
    );
    await assert.rejects(tokens.create(s, { ...spec, policies: ['app', WRAPPING_POLICY] }), /reserved/);
    const policies = new PolicyStore();
    await assert.rejects(
      policies.write(s, WRAPPING_POLICY, 'path "*" { capabilities = ["sudo"] }'),
      /cannot update/,
    );
    await assert.rejects(policies.delete(s, WRAPPING_POLICY), /cannot delete/);
    // Even a policy of that name already in storage (written before this rule) grants nothing.
    await s.put(`sys/policy/${WRAPPING_POLICY}`, {
      name: WRAPPING_POLICY,
      text: '',
      policy: { name: WRAPPING_POLICY, paths: [{ path: '*', capabilities: ['sudo', 'read'] }] },
    });
    assert.equal((await policies.acl(s, [WRAPPING_POLICY])).allows('secret/data/x', ['read']), false);
    assert.ok(!(await policies.list(s)).includes(WRAPPING_POLICY), 'not listed, as upstream');
  });

  it('revoking a token deletes its cubbyhole; tidy deletes a cubbyhole whose token is gone', async () => {
    const tokens = new TokenStore();
    const a = await tokens.create(s, spec);
    await s.put(`${cubbyholeOf(a.entry.hash)}x`, { v: 1 });
    await s.put(`${cubbyholeOf(a.entry.hash)}dir/y`, { v: 2 });
    await tokens.revoke(s, a.entry, false);
    assert.deepEqual(await cubbyholeEntries(s, a.entry.hash), []);
    // Written after its token went (the request that spent a one-use token's last use).
    await s.put(`${cubbyholeOf('deadbeef')}late`, { v: 3 });
    const b = await tokens.create(s, spec);
    await s.put(`${cubbyholeOf(b.entry.hash)}keep`, { v: 4 });
    await tokens.tidy(s);
    assert.deepEqual(await cubbyholeEntries(s, 'deadbeef'), []);
    assert.equal((await cubbyholeEntries(s, b.entry.hash)).length, 1, 'a live token keeps its cubbyhole');
  });

  it('min/max_wrapping_ttl: parsed, merged (smallest min, smallest max) and required, as OpenBao', async () => {
    const orchestrator = await parsePolicy(
      'o',
      'path "auth/approle/role/+/secret-id" {\n  capabilities = ["update"]\n  min_wrapping_ttl = "1m"\n  max_wrapping_ttl = "10m"\n}\n',
    );
    assert.deepEqual(orchestrator.paths[0], {
      path: 'auth/approle/role/+/secret-id',
      capabilities: ['update'],
      minWrappingTtl: 60,
      maxWrappingTtl: 600,
    });
    const acl = new Acl([orchestrator]);
    const path = 'auth/approle/role/app/secret-id';
    assert.equal(acl.allows(path, ['update'], null), false, 'unwrapped: refused');
    assert.equal(acl.allows(path, ['update'], 30), false, 'below the minimum');
    assert.equal(acl.allows(path, ['update'], 300), true);
    assert.equal(acl.allows(path, ['update'], 3600), false, 'above the maximum');
    // Another policy on the same path: the smallest of each bound counts.
    const wider = await parsePolicy(
      'w',
      'path "auth/approle/role/+/secret-id" {\n  capabilities = ["update"]\n  min_wrapping_ttl = "10s"\n  max_wrapping_ttl = "2m"\n}\n',
    );
    const merged = new Acl([orchestrator, wider]);
    assert.equal(merged.allows(path, ['update'], 20), true);
    assert.equal(merged.allows(path, ['update'], 300), false);
    await assert.rejects(
      parsePolicy(
        'x',
        'path "a" {\n  capabilities = ["read"]\n  min_wrapping_ttl = "1h"\n  max_wrapping_ttl = "1m"\n}\n',
      ),
      /max_wrapping_ttl cannot be less than min_wrapping_ttl/,
    );
    await assert.rejects(
      parsePolicy('x', 'path "a" {\n  capabilities = ["read"]\n  max_wrapping_ttl = "soon"\n}\n'),
      /error parsing max_wrapping_ttl/,
    );
  });

  it('X-Vault-Wrap-TTL parses as OpenBao: seconds or a duration, 0 is no wrapping, negative is refused', () => {
    assert.equal(requestedWrapTtl(header(undefined)), null);
    assert.equal(requestedWrapTtl(header('0')), null);
    assert.equal(requestedWrapTtl(header('300')), 300);
    assert.equal(requestedWrapTtl(header('5m')), 300);
    assert.throws(() => requestedWrapTtl(header('-5')), /requested wrap ttl cannot be negative/);
    assert.throws(() => requestedWrapTtl(header('soon')), /error parsing X-Vault-Wrap-TTL header/);
  });
});
