/**
 * The policy checker must catch a node answering as if an acknowledged policy change had not
 * happened — in either direction — and name the target; and must accept reads that overlap a
 * change, and reads after an indeterminate change until a later one is acknowledged.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPolicy, type PolicyOp, type PolicyState } from './policy-checker';

let id = 1;
const set = (state: PolicyState, start: number, end: number, o: Partial<PolicyOp> = {}): PolicyOp => ({
  id: id++,
  kind: 'set',
  state,
  via: 'gw1',
  start,
  end,
  outcome: 'ok',
  status: 204,
  ...o,
});
const read = (seen: PolicyState, start: number, end: number, via = 'standby:n2'): PolicyOp => ({
  id: id++,
  kind: 'read',
  state: seen,
  via,
  start,
  end,
  outcome: 'ok',
  status: seen === 'allow' ? 200 : 403,
});

describe('policy checker', () => {
  it('passes a clean history: reads after each change see it, overlapping reads either', () => {
    const r = checkPolicy([
      read('allow', 0, 5, 'gw1'),
      set('deny', 10, 20),
      read('allow', 15, 25), // overlaps the change
      read('deny', 21, 30),
      set('allow', 40, 50),
      read('deny', 45, 55, 'gw2'), // overlaps
      read('allow', 51, 60, 'active:n1'),
    ]);
    assert.deepEqual(r.violations, []);
    assert.equal(r.stats.checked, 3);
    assert.equal(r.stats.checkedDirect, 2);
  });

  it('catches a standby allowing a read after a deny was acknowledged', () => {
    const s = set('deny', 10, 20, { via: 'standby:n3' });
    const stale = read('allow', 22, 30);
    const r = checkPolicy([s, stale]);
    assert.equal(r.violations.length, 1);
    assert.match(
      r.violations[0] ?? '',
      new RegExp(
        `read op ${stale.id} \\(via standby:n2\\) was allowed \\(200\\) 2 ms after set op ${s.id} \\(via standby:n3\\) to deny`,
      ),
    );
  });

  it('catches a node refusing a read after a grant was acknowledged, and one refusing under the initial grant', () => {
    const r = checkPolicy([set('deny', 10, 20), set('allow', 30, 40), read('deny', 41, 50, 'standby:n4')]);
    assert.equal(r.violations.length, 1);
    assert.match(
      r.violations[0] ?? '',
      /\(via standby:n4\) was refused \(403\) 1 ms after set op \d+ .* to allow/,
    );
    const initial = checkPolicy([read('deny', 0, 5, 'gw2')]);
    assert.equal(initial.violations.length, 1);
    assert.match(initial.violations[0] ?? '', /\(via gw2\) was refused .* still as set up \(allow\)/);
  });

  it('lets an indeterminate change show until a later change is acknowledged, and ignores failed ones', () => {
    const ops = [
      set('deny', 10, 20, { outcome: 'info', status: 0 }),
      read('deny', 25, 30), // may have been applied
      read('allow', 26, 31), // or not
      set('allow', 100, 110, { outcome: 'fail', status: 400 }),
      set('deny', 200, 210), // the retry, acknowledged
      read('deny', 211, 220),
    ];
    assert.deepEqual(checkPolicy(ops).violations, []);
    // Once the retry is acknowledged, the state is known again.
    const r = checkPolicy([...ops, read('allow', 212, 222)]);
    assert.equal(r.violations.length, 1);
    assert.match(r.violations[0] ?? '', /was allowed .* to deny/);
  });
});
