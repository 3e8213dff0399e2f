/**
 * The admission gate in front of a leader pool and the client-gone watch that cancels a request
 * wherever it waits: places are handed out in order, a waiter whose client leaves is dropped
 * from the queue (never reaching the pool), and a wait is bounded.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { ClientGone } from '../../shared/forward/client-gone';
import { Admission } from '../../shared/leader/admission';

/** A stand-in for a server response: 'close', finished or not. */
function response() {
  const res = Object.assign(new EventEmitter(), { writableFinished: false });
  return {
    res,
    leave: () => res.emit('close'),
    finish: () => {
      res.writableFinished = true;
      res.emit('close');
    },
  };
}

describe('Admission and ClientGone', () => {
  it('admits up to the limit, then in order as places are left', async () => {
    const gate = new Admission(2);
    assert.equal(await gate.enter(undefined, 1_000), 'admitted');
    assert.equal(await gate.enter(undefined, 1_000), 'admitted');
    const order: string[] = [];
    const a = gate.enter(undefined, 1_000).then((r) => order.push(`a:${r}`));
    const b = gate.enter(undefined, 1_000).then((r) => order.push(`b:${r}`));
    assert.equal(gate.queued, 2);
    gate.leave();
    gate.leave();
    await Promise.all([a, b]);
    assert.deepEqual(order, ['a:admitted', 'b:admitted']);
    assert.equal(gate.queued, 0);
  });

  it('a waiter whose client leaves is dropped from the queue and never takes a place', async () => {
    const gate = new Admission(1);
    assert.equal(await gate.enter(undefined, 1_000), 'admitted');
    const c = response();
    const gone = new ClientGone(c.res);
    const waiting = gate.enter(gone, 10_000);
    const next = gate.enter(undefined, 10_000);
    assert.equal(gate.queued, 2);
    c.leave();
    assert.equal(await waiting, 'aborted');
    assert.equal(gate.queued, 1);
    gate.leave();
    assert.equal(await next, 'admitted', 'the place went to the next waiter');
    // Already gone: refused at once, even with places free.
    assert.equal(await new Admission(5).enter(gone, 1_000), 'aborted');
  });

  it('a wait is bounded: timeout, and the queue is left clean', async () => {
    const gate = new Admission(1);
    await gate.enter(undefined, 1_000);
    const c = response();
    const gone = new ClientGone(c.res);
    assert.equal(await gate.enter(gone, 20), 'timeout');
    assert.equal(gate.queued, 0);
    // The timed-out waiter no longer listens: the client leaving later changes nothing.
    c.leave();
    assert.equal(gone.aborted, true);
  });

  it('ClientGone: a finished response is not "gone"; the signal is made on demand and fires', () => {
    const done = response();
    const ok = new ClientGone(done.res);
    let called = 0;
    ok.onAbort(() => called++);
    done.finish();
    assert.equal(ok.aborted, false);
    assert.equal(called, 0);

    const left = response();
    const gone = new ClientGone(left.res);
    const signal = gone.signal;
    gone.onAbort(() => called++);
    left.leave();
    left.leave();
    assert.equal(gone.aborted, true);
    assert.equal(signal.aborted, true);
    assert.equal(called, 1, 'called once');
    assert.equal(new ClientGone(left.res).signal.aborted, false, 'a fresh watch has not seen a close');
    // A signal asked for after the client left is already aborted.
    const late = response();
    const g2 = new ClientGone(late.res);
    late.leave();
    assert.equal(g2.signal.aborted, true);
  });
});
