/**
 * The storage conformance suite: every Backend / HABackend implementation must pass these,
 * the in-memory one and Redis alike. Call inside a `describe`; each test gets fresh state from
 * the factory, and everything the factories return is closed in an `after` hook.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, it } from 'node:test';
import { type ErrorCode, isLwError } from '../../shared/errors';
import type { FencingBackend, HABackend, HAEvent, LockHolder } from '../../shared/storage/backend';
import { withWriteScope } from '../../shared/storage/write-scope';

/** A data backend and an HA backend over the same store (for the lock that fences writes). */
export interface BackendPair {
  backend: FencingBackend;
  ha: HABackend;
}

/** Lock TTL for tests that need the lock to outlive them. */
const LONG_TTL_MS = 10_000;
/** Lock TTL for tests that wait for expiry: long enough for a round trip, short for the suite. */
const SHORT_TTL_MS = 200;
/** How long an event may take to arrive across connections. */
const EVENT_TIMEOUT_MS = 3000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `predicate` until it holds, failing with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if (await predicate()) return;
    } catch {
      // Not yet: e.g. storage still unavailable.
    }
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Asserts that `promise` rejects with an LwError carrying `code`. */
export async function rejectsWithCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isLwError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

/** Closes everything it tracked, even when a test failed half-way. */
export function tracker(): <T extends { close(): Promise<void> }>(x: T) => T {
  const open: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    await Promise.allSettled(open.map((x) => x.close()));
  });
  return (x) => {
    open.push(x);
    return x;
  };
}

/** The data-backend contract, fencing included. */
export function exerciseBackend(make: () => Promise<BackendPair>): void {
  const track = tracker();
  const fresh = async (): Promise<BackendPair> => {
    const pair = await make();
    track(pair.backend);
    track(pair.ha);
    return pair;
  };

  it('round-trips binary values without aliasing, and deletes', async () => {
    const { backend } = await fresh();
    assert.equal(await backend.get('missing'), null);
    const values = {
      nul: Buffer.from([0, 1, 0, 255, 0, 0x0d, 0x0a, 0]),
      empty: Buffer.alloc(0),
      big: randomBytes(1024 * 1024),
    };
    for (const [path, value] of Object.entries(values)) await backend.put(`bin/${path}`, value);
    for (const [path, value] of Object.entries(values))
      assert.deepEqual(await backend.get(`bin/${path}`), value);
    values.nul[0] = 42; // mutating the caller's buffer must not change what is stored
    const read = await backend.get('bin/nul');
    assert.equal(read?.[0], 0);
    if (read) read[1] = 42; // nor mutating a returned one
    assert.equal((await backend.get('bin/nul'))?.[1], 1);
    await backend.delete('bin/nul');
    await backend.delete('bin/never-existed');
    assert.equal(await backend.get('bin/nul'), null);
    assert.deepEqual(await backend.list('bin/'), ['big', 'empty']);
  });

  it('getWithin: a value up to the limit whole (binary safe), the length of a longer one, null when absent', async () => {
    const { backend } = await fresh();
    const small = randomBytes(10);
    const big = randomBytes(11);
    await backend.put('w/small', small);
    await backend.put('w/big', big);
    await backend.put('w/empty', Buffer.alloc(0));
    assert.equal(await backend.getWithin('w/missing', 10), null);
    assert.deepEqual(await backend.getWithin('w/small', 10), small);
    assert.deepEqual(await backend.getWithin('w/empty', 0), Buffer.alloc(0));
    assert.equal(await backend.getWithin('w/big', 10), 11);
    assert.deepEqual(await backend.getWithin('w/big', 11), big);
    // Reads pass through a fenced view unchanged.
    const view = backend.fenced(randomUUID(), new AbortController().signal);
    assert.equal(await view.getWithin('w/big', 0), 11);
    assert.deepEqual(await view.getWithin('w/small', 1024), small);
  });

  it('getMany: values in the order asked (binary safe), null where absent, one read at one instant', async () => {
    const { backend } = await fresh();
    const a = randomBytes(64);
    await backend.put('m/a', a);
    await backend.put('m/empty', Buffer.alloc(0));
    assert.deepEqual(await backend.getMany([]), []);
    assert.deepEqual(await backend.getMany(['m/missing', 'm/a', 'm/empty', 'm/a']), [
      null,
      a,
      Buffer.alloc(0),
      a,
    ]);
    // Reads pass through a fenced view unchanged.
    const view = backend.fenced(randomUUID(), new AbortController().signal);
    assert.deepEqual(await view.getMany(['m/a', 'm/none']), [a, null]);
    // One instant: a batch writing both keys lands before or after the read, never between.
    const pairs = Array.from({ length: 40 }, async (_, i) => {
      const v = Buffer.from(String(i));
      const write = backend.batch([
        { op: 'put', path: 'm/x', value: v },
        { op: 'put', path: 'm/y', value: v },
      ]);
      const [x, y] = await backend.getMany(['m/x', 'm/y']);
      await write;
      assert.deepEqual(x, y, 'getMany saw half a batch');
    });
    await Promise.all(pairs);
  });

  it('lists immediate children: folders once with a trailing slash, sorted', async () => {
    const { backend } = await fresh();
    assert.deepEqual(await backend.list(''), []);
    for (const path of ['l/b', 'l/a', 'l/c/d', 'l/c/e', 'l/c', 'l/z/y/x', 'l/é', 'l/日/x', 'lx', 'l-']) {
      await backend.put(path, Buffer.from(path));
    }
    // Non-ASCII children: a prefix scan bounded by a UTF-8-encoded U+00FF would miss '日'.
    assert.deepEqual(await backend.list('l/'), ['a', 'b', 'c', 'c/', 'z/', 'é', '日/']);
    assert.deepEqual(await backend.list('l/c/'), ['d', 'e']);
    assert.deepEqual(await backend.list(''), ['l-', 'l/', 'lx']);
    assert.deepEqual(await backend.list('nothing/'), []);
    await backend.batch([
      { op: 'delete', path: 'l/c/d' },
      { op: 'delete', path: 'l/c/e' },
    ]);
    assert.deepEqual(await backend.list('l/'), ['a', 'b', 'c', 'z/', 'é', '日/']);
  });

  it('applies batches atomically and honours the ifAbsent guard', async () => {
    const { backend } = await fresh();
    await backend.put('b/old', Buffer.from('old'));
    const first = [
      { op: 'put' as const, path: 'b/init', value: Buffer.from('1') },
      { op: 'put' as const, path: 'b/other', value: Buffer.from('2') },
      { op: 'delete' as const, path: 'b/old' },
    ];
    assert.equal(await backend.batch(first, { ifAbsent: 'b/init' }), true);
    assert.deepEqual(await backend.list('b/'), ['init', 'other']);
    const second = [
      { op: 'put' as const, path: 'b/init', value: Buffer.from('second') },
      { op: 'put' as const, path: 'b/new', value: Buffer.from('second') },
    ];
    assert.equal(await backend.batch(second, { ifAbsent: 'b/init' }), false);
    assert.deepEqual(await backend.get('b/init'), Buffer.from('1'));
    assert.equal(await backend.get('b/new'), null);
    assert.equal(await backend.batch(second), true);
    assert.deepEqual(await backend.get('b/new'), Buffer.from('second'));
    assert.equal(await backend.batch([]), true);
  });

  it('reports each applied write to the request scope, and no refused one', async () => {
    const { backend } = await fresh();
    const applied = async (fn: () => Promise<unknown>) => {
      const scope = withWriteScope(fn);
      await scope.result.catch(() => undefined);
      return scope.applied();
    };
    assert.equal(await applied(() => backend.get('w/a')), false, 'a read');
    assert.equal(await applied(() => backend.put('w/a', Buffer.from('1'))), true, 'a put');
    assert.equal(await applied(() => backend.delete('w/a')), true, 'a delete');
    const guarded = [{ op: 'put' as const, path: 'w/g', value: Buffer.from('1') }];
    assert.equal(await applied(() => backend.batch(guarded, { ifAbsent: 'w/g' })), true, 'a batch');
    assert.equal(
      await applied(() => backend.batch(guarded, { ifAbsent: 'w/g' })),
      false,
      'refused by ifAbsent',
    );
  });

  it('writes through a fenced view while the lock holds its value', async () => {
    const { backend, ha } = await fresh();
    const value = randomUUID();
    assert.ok((await ha.acquire(value, LONG_TTL_MS)) !== null);
    const view = backend.fenced(value, new AbortController().signal);
    await view.put('f/a', Buffer.from('a'));
    assert.equal(
      await view.batch([{ op: 'put', path: 'f/b', value: Buffer.from('b') }], { ifAbsent: 'f/b' }),
      true,
    );
    assert.equal(
      await view.batch([{ op: 'put', path: 'f/b', value: Buffer.from('x') }], { ifAbsent: 'f/b' }),
      false,
    );
    await view.delete('f/a');
    assert.deepEqual(await view.list('f/'), ['b']);
    assert.deepEqual(await backend.get('f/b'), Buffer.from('b'));
  });

  it('refuses fenced writes after the lock expired or changed hands, storing nothing', async () => {
    const { backend, ha } = await fresh();
    const mine = randomUUID();
    assert.ok((await ha.acquire(mine, SHORT_TTL_MS)) !== null);
    const view = backend.fenced(mine, new AbortController().signal);
    await view.put('g/kept', Buffer.from('1'));
    await sleep(SHORT_TTL_MS + 100);
    await rejectsWithCode(view.put('g/after-expiry', Buffer.from('x')), 'LW_ERR_FENCED_WRITE');
    const theirs = randomUUID();
    assert.ok((await ha.acquire(theirs, LONG_TTL_MS)) !== null);
    const ops = [
      { op: 'put' as const, path: 'g/one', value: Buffer.from('1') },
      { op: 'delete' as const, path: 'g/kept' },
    ];
    const fencedOut = withWriteScope(() => view.batch(ops));
    await rejectsWithCode(fencedOut.result, 'LW_ERR_FENCED_WRITE');
    assert.equal(fencedOut.applied(), false, 'a fenced-out write reports nothing applied');
    await rejectsWithCode(view.delete('g/kept'), 'LW_ERR_FENCED_WRITE');
    assert.deepEqual(await backend.list('g/'), ['kept']);
    await backend.fenced(theirs, new AbortController().signal).put('g/theirs', Buffer.from('t'));
    assert.ok(await ha.release(theirs));
    await rejectsWithCode(
      backend.fenced(theirs, new AbortController().signal).put('g/x', Buffer.alloc(1)),
      'LW_ERR_FENCED_WRITE',
    );
    assert.deepEqual(await backend.list('g/'), ['kept', 'theirs']);
  });

  it('refuses fenced writes locally once the signal aborted, though the lock still holds', async () => {
    const { backend, ha } = await fresh();
    const value = randomUUID();
    assert.ok((await ha.acquire(value, LONG_TTL_MS)) !== null);
    const controller = new AbortController();
    const view = backend.fenced(value, controller.signal);
    controller.abort();
    await rejectsWithCode(view.put('h/a', Buffer.from('a')), 'LW_ERR_FENCED_WRITE');
    await rejectsWithCode(view.batch([{ op: 'delete', path: 'h/a' }]), 'LW_ERR_FENCED_WRITE');
    assert.equal((await ha.holder())?.value, value);
    assert.equal(await backend.get('h/a'), null);
  });

  it('rejects every call with LW_ERR_STORAGE_UNAVAILABLE once closed (close is idempotent)', async () => {
    const { backend } = await fresh();
    await backend.close();
    await backend.close();
    await rejectsWithCode(backend.get('x'), 'LW_ERR_STORAGE_UNAVAILABLE');
    await rejectsWithCode(backend.getWithin('x', 1), 'LW_ERR_STORAGE_UNAVAILABLE');
    await rejectsWithCode(backend.getMany(['x']), 'LW_ERR_STORAGE_UNAVAILABLE');
    await rejectsWithCode(backend.put('x', Buffer.from('x')), 'LW_ERR_STORAGE_UNAVAILABLE');
    await rejectsWithCode(backend.list(''), 'LW_ERR_STORAGE_UNAVAILABLE');
  });
}

/** The HA contract, over two independent clients of one store (like two nodes). */
export function exerciseHABackend(make: () => Promise<[HABackend, HABackend]>): void {
  const track = tracker();
  const fresh = async (): Promise<[HABackend, HABackend]> => {
    const [a, b] = await make();
    return [track(a), track(b)];
  };

  /** The holder without a backend's bookkeeping (Redis records the holder's connection too). */
  const lockState = (h: LockHolder | null) => (h ? { value: h.value, epoch: h.epoch } : null);

  it('excludes others while held; epochs strictly increase; only the holder renews or releases', async () => {
    const [a, b] = await fresh();
    const [va, vb] = [randomUUID(), randomUUID()];
    assert.equal(await a.holder(), null);
    const e1 = await a.acquire(va, LONG_TTL_MS);
    assert.ok(e1 !== null && e1 >= 1);
    assert.equal(await b.acquire(vb, LONG_TTL_MS), null);
    assert.equal(await a.acquire(va, LONG_TTL_MS), null, 'acquire is not re-entrant');
    assert.deepEqual(lockState(await b.holder()), { value: va, epoch: e1 });
    assert.equal(await b.renew(vb, LONG_TTL_MS), false);
    assert.equal(await b.release(vb), false);
    assert.equal(await a.renew(va, LONG_TTL_MS), true);
    assert.deepEqual(lockState(await a.holder()), { value: va, epoch: e1 });
    assert.equal(await a.release(va), true);
    assert.equal(await a.release(va), false);
    assert.equal(await b.holder(), null);
    const e2 = await b.acquire(vb, LONG_TTL_MS);
    assert.ok(e2 !== null && e2 > e1);
    assert.deepEqual(lockState(await a.holder()), { value: vb, epoch: e2 });
    assert.equal(await b.release(vb), true);
    const e3 = await a.acquire(randomUUID(), LONG_TTL_MS);
    assert.ok(e3 !== null && e3 > e2);
  });

  it('frees the lock when its TTL runs out, and renew extends the TTL', async () => {
    const [a, b] = await fresh();
    const va = randomUUID();
    const e1 = await a.acquire(va, SHORT_TTL_MS);
    assert.ok(e1 !== null);
    await sleep(SHORT_TTL_MS / 2);
    assert.equal(await a.renew(va, SHORT_TTL_MS * 2), true);
    await sleep(SHORT_TTL_MS);
    assert.equal((await b.holder())?.value, va, 'renew extended the lease');
    await sleep(SHORT_TTL_MS + 100);
    assert.equal(await b.holder(), null);
    assert.equal(await a.renew(va, SHORT_TTL_MS), false, 'an expired lock cannot be renewed');
    const e2 = await b.acquire(randomUUID(), LONG_TTL_MS);
    assert.ok(e2 !== null && e2 > e1);
  });

  it('delivers published events to subscribers on both clients until they unsubscribe', async () => {
    const [a, b] = await fresh();
    const seenA: HAEvent[] = [];
    const seenB: HAEvent[] = [];
    const stopA = a.subscribe((e) => seenA.push(e));
    const stopB = b.subscribe((e) => seenB.push(e));
    // A SUBSCRIBE takes a moment to reach a real server; pub/sub keeps no history, so repeat.
    const first: HAEvent = { type: 'released', epoch: 7 };
    await waitFor(
      async () => {
        await a.publish(first);
        await sleep(50);
        return seenA.length > 0 && seenB.length > 0;
      },
      EVENT_TIMEOUT_MS,
      'the first event on both clients',
    );
    assert.deepEqual(seenB[0], first);
    assert.deepEqual(seenA[0], first);
    stopA();
    const countA = seenA.length;
    const second: HAEvent = { type: 'advertised', epoch: 8 };
    await b.publish(second);
    await waitFor(() => seenB.some((e) => e.epoch === 8), EVENT_TIMEOUT_MS, 'the second event on b');
    assert.equal(seenA.length, countA, 'no delivery after unsubscribe');
    stopB();
  });

  it('rejects lock calls once closed, resolves publish (best effort), close is idempotent', async () => {
    const [a] = await fresh();
    await a.close();
    await a.close();
    await rejectsWithCode(a.acquire(randomUUID(), LONG_TTL_MS), 'LW_ERR_STORAGE_UNAVAILABLE');
    await rejectsWithCode(a.holder(), 'LW_ERR_STORAGE_UNAVAILABLE');
    await a.publish({ type: 'released', epoch: 1 });
  });
}
