/**
 * The lock logic, deterministically: tryLock, renewals, the holder's deadline and expiry on the
 * in-memory backend driven by a manual clock, and the takeover rule of holder liveness. A change
 * to any of these rules fails here, in milliseconds, not in a process test with sleeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HolderWatch } from '../../node/ha/holder-watch';
import type { Clock } from '../../shared/storage/clock';
import { tryLock } from '../../shared/storage/held-lock';
import { InmemHABackend, InmemStore } from '../../shared/storage/inmem';

/** A clock that moves only when told; `advance` runs due timers in order, letting promises settle. */
class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(id: unknown): void {
    this.timers.delete(id as number);
  }

  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const next = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!next || next[1].at > end) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
    await new Promise((r) => setImmediate(r));
  }
}

const TTL = 3_000;
/** The holder's margin: 10 % of the TTL (at least 50 ms). */
const DRIFT = 300;

function setup() {
  const clock = new ManualClock();
  const store = new InmemStore(clock);
  return { clock, store, a: new InmemHABackend(store), b: new InmemHABackend(store) };
}

describe('tryLock and the held lock (manual clock, in-memory backend)', () => {
  it('takes a free lock once; the epoch rises with every acquisition', async () => {
    const { clock, a, b } = setup();
    const l1 = await tryLock(a, 'v1', TTL, {}, clock);
    assert.ok(l1);
    assert.equal(await tryLock(b, 'v2', TTL, {}, clock), null, 'held: nobody else gets it');
    await l1.release();
    const l2 = await tryLock(b, 'v2', TTL, {}, clock);
    assert.ok(l2 && l2.epoch > l1.epoch);
    await l2.release();
  });

  it('renews every third of the TTL and stays valid as long as renewals succeed', async () => {
    const { clock, a, b } = setup();
    const lock = await tryLock(a, 'v1', TTL, {}, clock);
    assert.ok(lock);
    await clock.advance(5 * TTL);
    assert.ok(lock.isValid());
    assert.equal((await b.holder())?.value, 'v1', 'the store still has it: renewed');
    assert.equal(await tryLock(b, 'v2', TTL, {}, clock), null);
    await lock.release();
  });

  it('when renewals fail, gives up at last renew sent + TTL − margin, before the store expires it', async () => {
    const { clock, store, a, b } = setup();
    const reasons: string[] = [];
    const errors: unknown[] = [];
    const lock = await tryLock(
      a,
      'v1',
      TTL,
      { onLost: (r) => reasons.push(r), onRenewError: (e) => errors.push(e) },
      clock,
    );
    assert.ok(lock);
    await clock.advance(TTL / 3); // one good renewal at t = 1000
    store.setAvailable(false);
    await clock.advance(TTL - DRIFT - 1); // t = 3699: just before 1000 + 3000 − 300
    assert.ok(lock.isValid(), 'valid until its deadline');
    assert.ok(errors.length >= 2, 'retried after each error');
    await clock.advance(1);
    assert.equal(lock.isValid(), false);
    assert.deepEqual(reasons, ['deadline']);
    store.setAvailable(true);
    assert.equal((await b.holder())?.value, 'v1', 'the store still holds it: the holder gave up first');
    await clock.advance(DRIFT);
    assert.equal(await b.holder(), null, 'then it expires');
    assert.ok(await tryLock(b, 'v2', TTL, {}, clock));
  });

  it('a renewal refused (someone else holds it) ends the term at once', async () => {
    const { clock, a, b } = setup();
    const reasons: string[] = [];
    const lock = await tryLock(a, 'v1', TTL, { onLost: (r) => reasons.push(r) }, clock);
    assert.ok(lock);
    // The store loses the lock behind the holder's back (a restore, a failover) and another
    // node takes it: the next renewal is refused and the term ends then, not at the deadline.
    assert.equal(await b.release('v1'), true);
    assert.ok(await tryLock(b, 'v2', TTL, {}, clock));
    await clock.advance(TTL / 3);
    assert.deepEqual(reasons, ['renew-refused']);
    assert.equal(lock.isValid(), false);
    assert.equal((await a.holder())?.value, 'v2', 'the holder never touched the new lock');
  });
});

describe('HolderWatch: when a standby may take the lock over', () => {
  const GRACE = 300;

  it('only after the same record was seen gone, without a break, for the whole grace', () => {
    const w = new HolderWatch(GRACE);
    assert.equal(w.observe('v1|r|7', 'gone', 0), false, 'first sighting starts the grace');
    assert.equal(w.observe('v1|r|7', 'gone', 150), false);
    assert.equal(w.observe('v1|r|7', 'gone', 299), false);
    assert.equal(w.observe('v1|r|7', 'gone', 300), true);
  });

  it('alive or unknown in between starts over', () => {
    for (const state of ['alive', 'unknown'] as const) {
      const w = new HolderWatch(GRACE);
      w.observe('v1|r|7', 'gone', 0);
      w.observe('v1|r|7', state, 200);
      assert.equal(w.observe('v1|r|7', 'gone', 400), false, `${state} reset the grace`);
      assert.equal(w.observe('v1|r|7', 'gone', 700), true);
    }
  });

  it('a new record (the holder re-recorded its connection, or a new holder) starts over', () => {
    const w = new HolderWatch(GRACE);
    w.observe('v1|r|7', 'gone', 0);
    assert.equal(w.observe('v1|r|9', 'gone', 350), false, 'the holder reconnected');
    assert.equal(w.observe('v2|r|9', 'gone', 700), false, 'another holder');
    assert.equal(w.observe('v2|r|9', 'gone', 1000), true);
    w.reset();
    assert.equal(w.observe('v2|r|9', 'gone', 1001), false, 'after an attempt, a fresh grace');
  });
});
