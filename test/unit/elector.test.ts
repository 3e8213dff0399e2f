/**
 * The elector against the in-memory HA backend, with real timers and a TTL of a few hundred
 * milliseconds: one term at a time, a release wakes a standby at once, a lost lock ends the term,
 * step-down keeps the node out for its cooldown, a failed activation gives the lock back, and
 * store errors are ridden out.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import pino from 'pino';
import { type ElectorStatus, LeaderElector } from '../../node/ha/leader-elector';
import type { HeldLock } from '../../shared/storage/held-lock';
import { InmemHABackend, InmemStore } from '../../shared/storage/inmem';

/** Short enough for milliseconds-long tests, over the held lock's 50 ms drift margin. */
const TTL_MS = 150;
/** The elector's retry period while another node holds the lock is 1 s ± 20 %. */
const RETRY_MIN_MS = 800;

const log = pino({ level: 'silent' });
const running: LeaderElector[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

/** An elector on `store`, recording what it is told. */
function node(store: InmemStore, opts: { failActivation?: boolean } = {}) {
  const rec = {
    statuses: [] as ElectorStatus[],
    terms: [] as { lock: HeldLock; endedBy?: string }[],
    active: false,
  };
  const ha = new InmemHABackend(store);
  const elector = new LeaderElector({
    ha,
    ttlMs: TTL_MS,
    livenessGraceMs: 0,
    log,
    onActive: async (lock) => {
      rec.terms.push({ lock });
      rec.active = true;
      if (opts.failActivation) throw new Error('mount table unreadable');
    },
    // As the node's active session does: release the lock and announce it to the standbys.
    onStandby: async (reason) => {
      const term = rec.terms.at(-1);
      if (term) term.endedBy = reason;
      rec.active = false;
      if (!term) return;
      const held = term.lock.isValid();
      await term.lock.release();
      if (held) await ha.publish({ type: 'released', epoch: term.lock.epoch });
    },
    onStatus: (s) => rec.statuses.push(s),
  });
  running.push(elector);
  return { elector, rec };
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 1_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('LeaderElector (in-memory HA backend, real timers)', () => {
  it('one of two nodes is active; on close the other takes over at once, with a higher epoch', async () => {
    const store = new InmemStore();
    const a = node(store);
    const b = node(store);
    a.elector.start();
    await waitFor('a active', () => a.rec.active);
    b.elector.start();
    // Over several renewals, b never becomes active while a holds the lock.
    const until = performance.now() + TTL_MS * 2;
    while (performance.now() < until) {
      assert.ok(!b.rec.active, 'two active nodes');
      await new Promise((r) => setTimeout(r, 5));
    }
    const closedAt = performance.now();
    await a.elector.close();
    await waitFor('b active', () => b.rec.active);
    // The release is announced on the HA channel: b does not wait out its retry period.
    assert.ok(performance.now() - closedAt < RETRY_MIN_MS / 2, 'standby waited for its retry period');
    assert.equal(a.rec.terms[0]?.endedBy, 'shutdown');
    assert.ok((b.rec.terms[0]?.lock.epoch ?? 0) > (a.rec.terms[0]?.lock.epoch ?? 0));
    assert.deepEqual(a.rec.statuses, ['contending', 'active', 'closed']);
  });

  it('a lock it cannot renew ends the term by its deadline, and it contends again', async () => {
    const store = new InmemStore();
    const a = node(store);
    a.elector.start();
    await waitFor('a active', () => a.rec.active);
    store.setAvailable(false);
    await waitFor('term over', () => !a.rec.active, TTL_MS * 2);
    assert.equal(a.rec.terms[0]?.endedBy, 'deadline');
    // The store's copy of the lock outlives the holder's deadline by the drift margin.
    await new Promise((r) => setTimeout(r, TTL_MS));
    store.setAvailable(true);
    await waitFor('active again', () => a.rec.active);
    assert.equal(a.rec.terms.length, 2);
  });

  it('a lock taken by someone else (renew refused) ends the term', async () => {
    const store = new InmemStore();
    const a = node(store);
    a.elector.start();
    await waitFor('a active', () => a.rec.active);
    const ha = new InmemHABackend(store);
    const value = a.rec.terms[0]?.lock.value ?? '';
    assert.ok(await ha.release(value));
    assert.notEqual(await ha.acquire('intruder', 10_000), null);
    await waitFor('term over', () => !a.rec.active);
    assert.equal(a.rec.terms[0]?.endedBy, 'renew-refused');
    // Let it reach its retry sleep before afterEach closes it: close() wakes a sleep already
    // entered, but one entered just after close() waits its full period (sleep() listens for
    // 'abort' on a signal that has already aborted).
    await new Promise((r) => setTimeout(r, 25));
  });

  it('step-down ends the term, releases the lock and sits out the cooldown', async () => {
    const store = new InmemStore();
    const a = node(store);
    a.elector.start();
    await waitFor('a active', () => a.rec.active);
    const cooldownMs = 200;
    const stepped = performance.now();
    a.elector.stepDown(cooldownMs);
    await waitFor('term over', () => !a.rec.active);
    assert.equal(a.rec.terms[0]?.endedBy, 'step-down');
    await waitFor('lock released', () => a.rec.statuses.at(-1) === 'cooldown');
    assert.equal(await new InmemHABackend(store).holder(), null);
    await waitFor('a active again', () => a.rec.active);
    assert.ok(performance.now() - stepped >= cooldownMs - 5, 'contended again before the cooldown ended');
  });

  it('a failed activation ends the term at once and gives the lock back', async () => {
    const store = new InmemStore();
    const a = node(store, { failActivation: true });
    const b = node(store);
    a.elector.start();
    await waitFor('a tried', () => a.rec.terms.length > 0);
    assert.equal(a.rec.terms[0]?.endedBy, 'activation-failed');
    b.elector.start();
    await waitFor('b active', () => b.rec.active);
  });

  it('store errors while contending are retried; it wins once the store is back', async () => {
    const store = new InmemStore();
    store.setAvailable(false);
    const a = node(store);
    a.elector.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(a.rec.terms.length, 0);
    store.setAvailable(true);
    await waitFor('a active', () => a.rec.active, 500);
  });

  it('close() releases the lock, is idempotent, and the elector stays closed', async () => {
    const store = new InmemStore();
    const a = node(store);
    a.elector.start();
    await waitFor('a active', () => a.rec.active);
    await Promise.all([a.elector.close(), a.elector.close()]);
    await a.elector.close();
    assert.equal(await new InmemHABackend(store).holder(), null);
    assert.equal(a.rec.terms.length, 1);
    assert.equal(a.rec.statuses.at(-1), 'closed');
  });
});
