/**
 * The response budget (node/api/byte-budget.ts, node/api/response-hold.ts): bytes handed out in
 * arrival order, a large waiter never overtaken, waits bounded, a request waiting only while it
 * holds nothing, and every byte given back however the request ends — answered, refused, or its
 * client gone while it waited.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { ByteBudget } from '../../node/api/byte-budget';
import { fullCollection } from '../../node/api/full-collection';
import { ResponseHold } from '../../node/api/response-hold';
import { Barrier } from '../../node/barrier/barrier';
import { SecureStorage, SMALL_ENTRY_BYTES } from '../../node/barrier/secure-storage';
import { isLwError } from '../../shared/errors';
import { type AnyResponse, sendJson, WRITE_SLICE_CHARS } from '../../shared/http/respond';
import { InmemBackend } from '../../shared/storage/inmem';

/** A stand-in response: 'close' is all a hold listens to. */
function response(): { res: AnyResponse; close(): void } {
  const res = new EventEmitter();
  return { res: res as unknown as AnyResponse, close: () => res.emit('close') };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ByteBudget', () => {
  it('grants what fits at once, then in arrival order as bytes come back', async () => {
    const b = new ByteBudget(10);
    assert.equal(await b.acquire(6, undefined, 1_000), 'granted');
    const order: string[] = [];
    const big = b.acquire(8, undefined, 1_000).then((r) => order.push(`big:${r}`));
    // 3 would fit beside the 6 held, but the 8 came first: nobody overtakes it.
    const small = b.acquire(3, undefined, 1_000).then((r) => order.push(`small:${r}`));
    await tick();
    assert.deepEqual(order, []);
    assert.equal(b.waiting, 2);
    b.release(6);
    await big;
    await tick();
    // 8 + 3 > 10: the small one waits for the big one's bytes.
    assert.deepEqual(order, ['big:granted']);
    assert.equal(b.held, 8);
    b.release(8);
    await small;
    assert.deepEqual(order, ['big:granted', 'small:granted']);
    assert.equal(b.held, 3);
    assert.equal(b.waiting, 0);
  });

  it('bounds a wait: timeout, and a large waiter leaving lets the ones behind it in', async () => {
    const b = new ByteBudget(10);
    await b.acquire(5, undefined, 1_000);
    const big = b.acquire(10, undefined, 20);
    const small = b.acquire(4, undefined, 1_000);
    assert.equal(await big, 'timeout');
    assert.equal(await small, 'granted', 'the 4 fits beside the 5 once the 10 stopped waiting');
    assert.equal(b.held, 9);
    assert.equal(b.waiting, 0);
  });

  it('an aborted waiter leaves the queue and takes nothing; zero bytes never wait', async () => {
    const b = new ByteBudget(4);
    await b.acquire(4, undefined, 1_000);
    const gone = new AbortController();
    const waiting = b.acquire(2, gone.signal, 10_000);
    assert.equal(b.waiting, 1);
    gone.abort();
    assert.equal(await waiting, 'aborted');
    assert.equal(b.waiting, 0);
    assert.equal(await b.acquire(1, gone.signal, 1_000), 'aborted', 'already gone: refused at once');
    assert.equal(await b.acquire(0, undefined, 0), 'granted');
    b.release(4);
    assert.equal(b.held, 0);
    assert.throws(() => b.acquire(5, undefined, 1), RangeError, 'more than the capacity is never asked');
  });

  it('add takes bytes past the capacity without waiting; release lets waiters in once they fit', async () => {
    const b = new ByteBudget(4);
    await b.acquire(3, undefined, 1_000);
    b.add(5);
    assert.equal(b.held, 8);
    const w = b.acquire(4, undefined, 1_000);
    b.release(5);
    await tick();
    assert.equal(b.waiting, 1, '3 held + 4 > 4');
    b.release(3);
    assert.equal(await w, 'granted');
  });
});

describe('ByteBudget collector', () => {
  it('runs once per capacity given back by large holds, before the next waiter is let in', async () => {
    const events: string[] = [];
    const b = new ByteBudget(10, () => events.push('collect'));
    await b.acquire(10, undefined, 1_000);
    const w = b.acquire(10, undefined, 1_000).then(() => events.push('granted'));
    b.release(4);
    assert.deepEqual(events, [], 'less than a budget-full given back: no collection');
    b.release(6);
    await w;
    assert.deepEqual(events, ['collect', 'granted'], 'the waiter starts after the garbage is gone');
    b.release(9);
    assert.deepEqual(events, ['collect', 'granted']);
    for (let i = 0; i < 20; i++) b.release(1);
    assert.deepEqual(events, ['collect', 'granted'], 'small holds (under an eighth) never count');
    b.release(2);
    assert.deepEqual(events, ['collect', 'granted', 'collect']);
  });

  it('fullCollection frees what is unreachable', () => {
    const gc = fullCollection();
    let garbage: number[][] | null = Array.from({ length: 20 }, (_, i) => new Array<number>(250_000).fill(i));
    const before = process.memoryUsage().heapUsed;
    garbage = null;
    gc();
    assert.equal(garbage, null);
    const freed = before - process.memoryUsage().heapUsed;
    assert.ok(freed > 15_000_000, `freed ${freed} bytes`);
  });
});

describe('ResponseHold', () => {
  const options = (capacity: number, maxWaitMs = 1_000) => ({ budget: new ByteBudget(capacity), maxWaitMs });

  it('holds what it admitted until its response closes, then gives everything back', async () => {
    const o = options(10);
    const r = response();
    const hold = new ResponseHold(o, r.res);
    await hold.admit(4);
    // Holding: more is added without waiting, even past the capacity (no hold-and-wait).
    await hold.admit(9);
    assert.equal(hold.held, 13);
    assert.equal(o.budget.held, 13);
    hold.giveBack(3);
    assert.equal(o.budget.held, 10);
    r.close();
    assert.equal(o.budget.held, 0);
    r.close();
    assert.equal(o.budget.held, 0, 'closing twice gives nothing back twice');
    await assert.rejects(hold.admit(1), (e: unknown) => isLwError(e, 'LW_ERR_OVERLOADED'));
  });

  it('takes nothing for a response whose client left before the hold was made', async () => {
    const o = options(10);
    const gone = response();
    (gone.res as unknown as { destroyed: boolean }).destroyed = true;
    const hold = new ResponseHold(o, gone.res);
    await assert.rejects(hold.admit(4), (e: unknown) => isLwError(e, 'LW_ERR_OVERLOADED'));
    assert.equal(o.budget.held, 0, 'no byte taken: its close had already passed');
  });

  it('an entry larger than the whole budget waits for it to be empty and is served alone', async () => {
    const o = options(10);
    const first = response();
    await new ResponseHold(o, first.res).admit(2);
    const r = response();
    const alone = new ResponseHold(o, r.res).admit(25);
    await tick();
    assert.equal(o.budget.waiting, 1);
    first.close();
    await alone;
    assert.equal(o.budget.held, 10, 'it holds the whole budget');
    r.close();
    assert.equal(o.budget.held, 0);
  });

  it('a wait that runs out is 503 with Retry-After, holding nothing', async () => {
    const o = options(4, 20);
    await new ResponseHold(o, response().res).admit(4);
    const late = new ResponseHold(o, response().res);
    await assert.rejects(late.admit(1), (e: unknown) => {
      assert.ok(isLwError(e, 'LW_ERR_OVERLOADED'));
      assert.equal(e.status, 503);
      assert.equal(e.retryAfter, 1);
      return true;
    });
    assert.equal(late.held, 0);
    assert.equal(o.budget.held, 4);
  });

  it('a client gone while its read waits leaves the queue; one gone right after the grant gives it back', async () => {
    const o = options(4);
    const holder = response();
    await new ResponseHold(o, holder.res).admit(4);
    const r = response();
    const waiting = new ResponseHold(o, r.res).admit(2);
    assert.equal(o.budget.waiting, 1);
    r.close();
    await assert.rejects(waiting, (e: unknown) => isLwError(e, 'LW_ERR_OVERLOADED'));
    assert.equal(o.budget.waiting, 0);
    // Granted, but the response closes before the admission's continuation runs.
    const r2 = response();
    const granted = new ResponseHold(o, r2.res).admit(3);
    holder.close();
    r2.close();
    await assert.rejects(granted, (e: unknown) => isLwError(e, 'LW_ERR_OVERLOADED'));
    assert.equal(o.budget.held, 0, 'nothing leaked');
  });
});

describe('SecureStorage.getAdmitted', () => {
  const barrier = new Barrier({
    terms: [{ term: 1, key: Buffer.alloc(32, 7) }],
    activeTerm: 1,
    hmacKey: Buffer.alloc(32, 8),
  });

  it('admits a small entry as small and a large one at its size before fetching it', async () => {
    const s = new SecureStorage(barrier, new InmemBackend());
    await s.put('small', { v: 'x' });
    await s.put('large', { v: 'y'.repeat(SMALL_ENTRY_BYTES * 3) });
    const o = { budget: new ByteBudget(SMALL_ENTRY_BYTES * 4), maxWaitMs: 1_000 };
    const r = response();
    const hold = new ResponseHold(o, r.res);
    assert.deepEqual(await s.getAdmitted(`small`, hold), { v: 'x' });
    const small = hold.held;
    assert.ok(small > 0 && small < 100, `a small entry holds its own size (${small})`);
    const large = await s.getAdmitted<{ v: string }>('large', hold);
    assert.equal(large?.v.length, SMALL_ENTRY_BYTES * 3);
    assert.ok(hold.held > SMALL_ENTRY_BYTES * 3, 'the large entry is held at its stored size');
    assert.equal(await s.getAdmitted('missing', hold), null);
    r.close();
    assert.equal(o.budget.held, 0);
  });

  it('a large read waits while the budget is taken, and is refused once its wait runs out', async () => {
    const s = new SecureStorage(barrier, new InmemBackend());
    await s.put('large', { v: 'z'.repeat(SMALL_ENTRY_BYTES * 2) });
    const o = { budget: new ByteBudget(SMALL_ENTRY_BYTES * 3), maxWaitMs: 30 };
    const other = response();
    await new ResponseHold(o, other.res).admit(SMALL_ENTRY_BYTES * 2);
    const r = response();
    await assert.rejects(s.getAdmitted('large', new ResponseHold(o, r.res)), (e: unknown) =>
      isLwError(e, 'LW_ERR_OVERLOADED'),
    );
    other.close();
    r.close();
    assert.equal(o.budget.held, 0);
  });
});

describe('sendJson in slices', () => {
  it('writes a large answer whole and exact, never splitting a surrogate pair between slices', async () => {
    // '😀' is two UTF-16 units: put one across every slice boundary the writer could cut at.
    const value = `${'a'.repeat(WRITE_SLICE_CHARS - 1)}${'😀'.repeat(WRITE_SLICE_CHARS)}é`;
    const server = createServer((_req, res) => sendJson(res, 200, { value }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const r = await request(`http://127.0.0.1:${port}/`);
      const bytes = Buffer.from(await r.body.arrayBuffer());
      assert.equal(Number(r.headers['content-length']), bytes.length);
      assert.ok(!bytes.includes(Buffer.from('\uFFFD')), 'a replacement character: a pair was split');
      assert.equal((JSON.parse(bytes.toString('utf8')) as { value: string }).value, value);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
