/**
 * The pieces that let a standby serve reads without ever answering stale (issue 27): its view of
 * storage refuses every write before it reaches the store, its caches are used only under the
 * config stamp they were loaded with, which request it may try at all, and X-Vault-Index.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { PolicyStore } from '../../node/acl/policy-store';
import { MountTable, SECRET_MOUNTS } from '../../node/api/mounts';
import { type AnyRequest, parseRequest } from '../../node/api/request';
import { standbyMayServe } from '../../node/api/standby-reads';
import { type IndexKey, requiredEpoch, vaultIndex } from '../../node/api/vault-index';
import { type TokenEntry, TokenStore } from '../../node/auth/token-store';
import { CONFIG_STAMP_PATH, NO_PREFETCH, standbyView } from '../../node/barrier/config-stamp';
import { initialize } from '../../node/barrier/seal';
import type { SecureStorage } from '../../node/barrier/secure-storage';
import { isLwError } from '../../shared/errors';
import { InmemBackend } from '../../shared/storage/inmem';
import { tokenSpec } from '../helpers/token-spec';

const KEY: IndexKey = { clusterId: 'c-1', hmac: (d) => `${d.length.toString(16).padStart(64, '0')}` };
const realKey = (s: SecureStorage): IndexKey => ({ clusterId: 'c-1', hmac: (d) => s.barrier.hmac(d) });

function request(method: string, url: string, headers: Record<string, string> = {}): AnyRequest {
  return { method, url, headers } as unknown as AnyRequest;
}

describe('standby reads: the read-only view', () => {
  let s: SecureStorage;
  before(async () => {
    s = await initialize(new InmemBackend(), randomBytes(32), () => []);
  });

  it('refuses every write "not active" (not served) and stores nothing', async () => {
    const view = await standbyView(s, NO_PREFETCH);
    for (const write of [
      () => view.put('x/put', { a: 1 }),
      () => view.delete('core/keyring'),
      () => view.batch([{ op: 'put', path: 'x/batch', value: 1 }]),
    ]) {
      await assert.rejects(write(), (e) => isLwError(e, 'LW_ERR_NOT_ACTIVE') && e.notServed);
    }
    assert.equal(await s.get('x/put'), null);
    assert.equal(await s.get('x/batch'), null);
    assert.notEqual(await s.backend.get('core/keyring'), null);
    await s.put('x/read', { v: 1 });
    assert.deepEqual(await view.get('x/read'), { v: 1 }, 'reads go through');
  });

  it('a mount or policy change replaces the stamp, and a cache from another stamp is not used', async () => {
    // The standby's stores (read through its views) and the active's (which write): two nodes.
    const mounts = new MountTable(SECRET_MOUNTS);
    const policies = new PolicyStore();
    const activeMounts = new MountTable(SECRET_MOUNTS);
    const activePolicies = new PolicyStore();
    const stampNow = () => standbyView(s, NO_PREFETCH);
    const warm = await stampNow();
    assert.equal(await mounts.get(warm, 'team/'), null);
    await activePolicies.write(s, 'p', 'path "a" { capabilities = ["read"] }');
    const afterPolicy = await stampNow();
    assert.notEqual(afterPolicy.cacheKey, warm.cacheKey, 'a policy write replaces the stamp');
    await activeMounts.mount(s, 'team/', {
      type: 'kv',
      description: '',
      options: { version: '1' },
      config: { default_lease_ttl: 0, max_lease_ttl: 0, listing_visibility: '' },
      local: false,
      seal_wrap: false,
    });
    const afterMount = await stampNow();
    assert.notEqual(afterMount.cacheKey, afterPolicy.cacheKey, 'a mount replaces the stamp');
    // The cache loaded under the first stamp would still say "no mount"; the new stamp reloads.
    assert.notEqual(await mounts.get(afterMount, 'team/'), null);
    const warmPolicy = await policies.read(afterMount, 'p');
    assert.notEqual(warmPolicy, null);
    await activePolicies.delete(s, 'p');
    const afterDelete = await stampNow();
    assert.notEqual(afterDelete.cacheKey, afterMount.cacheKey, 'a policy delete replaces the stamp');
    assert.equal(await policies.read(afterDelete, 'p'), null, 'the warm policy cache is not used');
    assert.notEqual(await s.get(CONFIG_STAMP_PATH), null, 'stored through the barrier');
  });
});

describe('standby reads: the stamp and the token entry in one round trip', () => {
  /** Counts what reaches the store. */
  function counting(inner: InmemBackend) {
    const calls: string[] = [];
    const note = <T>(call: string, result: T): T => {
      calls.push(call);
      return result;
    };
    const backend = Object.assign(Object.create(inner) as InmemBackend, {
      get: (p: string) => note(`get ${p}`, inner.get(p)),
      getWithin: (p: string, n: number) => note(`getWithin ${p}`, inner.getWithin(p, n)),
      getMany: (ps: readonly string[]) => note(`getMany ${ps.length}`, inner.getMany(ps)),
    });
    return { backend, calls };
  }

  it('reads both with one getMany; the entry answers its first read, later reads go to the store', async () => {
    const inner = new InmemBackend();
    const s0 = await initialize(inner, randomBytes(32), () => []);
    const policies = new PolicyStore();
    await policies.write(s0, 'p', 'path "a" { capabilities = ["read"] }');
    const { token } = await new TokenStore().create(s0, tokenSpec({ policies: ['p'] }));
    const { backend, calls } = counting(inner);
    const s = s0.withBackend(backend);
    const tokens = new TokenStore();
    const hmac = s.barrier.hmac.bind(s.barrier);
    let hmacs = 0;
    s.barrier.hmac = (d: string) => {
      hmacs++;
      return hmac(d);
    };
    const view = await standbyView(s, tokens.prefetch(s, token));
    assert.deepEqual(calls, ['getMany 2'], 'one round trip for stamp and entry');
    assert.equal(
      view.cacheKey,
      `stamp:${await s0.get<string>(CONFIG_STAMP_PATH)}`,
      'caches keyed by the stamp read',
    );
    assert.equal((await tokens.find(view, token))?.policies[0], 'p');
    assert.deepEqual(calls, ['getMany 2'], 'the entry came with the stamp');
    assert.equal(hmacs, 1, "the token's HMAC is computed once");
    // Revoked after the view was made: the next read of the entry sees it gone.
    await tokens.revoke(s0, (await tokens.find(s0, token)) as TokenEntry, false);
    assert.equal(await tokens.find(view, token), null, 'a second read goes to the store');
    assert.equal(calls.length, 2);
  });

  it("the view's getMany answers a prefetched path from the prefetch too, once", async () => {
    const inner = new InmemBackend();
    const s0 = await initialize(inner, randomBytes(32), () => []);
    const { token } = await new TokenStore().create(s0, tokenSpec({ policies: ['default'] }));
    const { backend, calls } = counting(inner);
    const s = s0.withBackend(backend);
    const prefetch = new TokenStore().prefetch(s, token);
    const [path] = prefetch.paths as [string];
    const view = await standbyView(s, prefetch);
    await s0.put('x/other', { v: 1 });
    const [entry, other] = await view.backend.getMany([path, 'x/other']);
    assert.ok(entry && other);
    assert.deepEqual(calls, ['getMany 2', 'getMany 1'], 'only the other path went to the store');
    await view.backend.getMany([path]);
    assert.deepEqual(calls.at(-1), 'getMany 1', 'the second read of it goes to the store');
  });

  it('a stamp is authenticated whenever its stored bytes change (only unchanged bytes are not opened again)', async () => {
    const s = await initialize(new InmemBackend(), randomBytes(32), () => []);
    await new PolicyStore().write(s, 'p', 'path "a" { capabilities = ["read"] }');
    const first = await standbyView(s, NO_PREFETCH);
    assert.equal((await standbyView(s, NO_PREFETCH)).cacheKey, first.cacheKey);
    const sealed = (await s.backend.get(CONFIG_STAMP_PATH)) as Buffer;
    const forged = Buffer.from(sealed);
    forged.writeUInt8(forged.readUInt8(forged.length - 1) ^ 1, forged.length - 1);
    await s.backend.put(CONFIG_STAMP_PATH, forged);
    await assert.rejects(standbyView(s, NO_PREFETCH), 'altered bytes are opened, and refused');
    await new PolicyStore().write(s, 'p', 'path "b" { capabilities = ["read"] }');
    assert.notEqual((await standbyView(s, NO_PREFETCH)).cacheKey, first.cacheKey, 'a new stamp is read');
  });

  it('no token, an absurd one, or nothing stored: the stamp alone, and absent reads as absent', async () => {
    const s = await initialize(new InmemBackend(), randomBytes(32), () => []);
    const tokens = new TokenStore();
    for (const none of [undefined, '', 'x'.repeat(257)]) assert.equal(tokens.prefetch(s, none), NO_PREFETCH);
    const view = await standbyView(s, tokens.prefetch(s, 'hvs.unknown'));
    assert.equal(view.cacheKey, 'stamp:', 'no change made yet: the empty stamp');
    assert.equal(await tokens.find(view, 'hvs.unknown'), null);
    await assert.rejects(view.put('x', 1), (e) => isLwError(e, 'LW_ERR_NOT_ACTIVE'));
  });
});

describe('standby reads: which requests a standby may try', () => {
  const may = (method: string, url: string, headers: Record<string, string> = {}, known = 5) => {
    const raw = request(method, url, headers);
    return standbyMayServe(raw, parseRequest(raw), KEY, known);
  };

  it('reads and lists without a body; nothing else', () => {
    assert.equal(may('GET', '/v1/secret/data/a'), true);
    assert.equal(may('LIST', '/v1/secret/metadata/'), true);
    assert.equal(may('GET', '/v1/secret/metadata/?list=true'), true);
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH']) assert.equal(may(m, '/v1/secret/data/a'), false, m);
    assert.equal(may('GET', '/v1/secret/data/a', { 'content-length': '2' }), false, 'a body');
    assert.equal(may('GET', '/v1/secret/data/a', { 'transfer-encoding': 'chunked' }), false, 'a body');
  });

  it('not when the request asks for wrapping or for the active', () => {
    assert.equal(may('GET', '/v1/secret/data/a', { 'x-vault-wrap-ttl': '60' }), false);
    assert.equal(may('GET', '/v1/secret/data/a', { 'x-vault-wrap-ttl': 'nonsense' }), false);
    assert.equal(may('GET', '/v1/secret/data/a', { 'x-vault-wrap-ttl': '0' }), true, '0 means none');
    assert.equal(may('GET', '/v1/secret/data/a', { 'x-vault-forward': 'active-node' }), false);
  });

  it('X-Vault-Index: served when its term is known here, else the active answers', () => {
    const index = vaultIndex(KEY, 5);
    assert.equal(may('GET', '/v1/secret/data/a', { 'x-vault-index': index }, 5), true);
    assert.equal(may('GET', '/v1/secret/data/a', { 'x-vault-index': index }, 4), false, 'a newer term');
    assert.equal(may('GET', '/v1/secret/data/a', { 'x-vault-index': 'garbage' }), false);
  });
});

describe('X-Vault-Index', () => {
  let s: SecureStorage;
  before(async () => {
    s = await initialize(new InmemBackend(), randomBytes(32), () => []);
  });

  it("is Vault's format and names the term; several are read as the newest", () => {
    const key = realKey(s);
    const a = vaultIndex(key, 3);
    assert.match(Buffer.from(a, 'base64').toString('utf8'), /^v1:c-1:3:0:[0-9a-f]{64}$/);
    assert.equal(requiredEpoch(request('GET', '/', { 'x-vault-index': a }), key), 3);
    const b = vaultIndex(key, 7);
    assert.equal(requiredEpoch(request('GET', '/', { 'x-vault-index': `${a}, ${b}` }), key), 7);
    assert.equal(requiredEpoch(request('GET', '/'), key), 0, 'none: nothing required');
  });

  it('refuses one it did not write: altered, made up, or from another cluster', () => {
    const key = realKey(s);
    const decoded = Buffer.from(vaultIndex(key, 3), 'base64').toString('utf8');
    const altered = Buffer.from(decoded.replace(':3:', ':9:')).toString('base64');
    const other = vaultIndex({ ...key, clusterId: 'c-2' }, 3);
    for (const v of [altered, other, Buffer.from('v1:c-1:3:0:00').toString('base64'), '', '::']) {
      assert.equal(requiredEpoch(request('GET', '/', { 'x-vault-index': v }), key), null, v);
    }
  });
});
