/**
 * The checker must catch what it claims to catch: each anomaly below is planted in a tiny
 * synthetic history and must be reported; the clean history and the legitimate indeterminate
 * cases (stored or not) must pass.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkHistory, type KeyState } from './checker';
import type { Op, WriteData } from './history';

let nextId = 1;
let clock = 1_000;

function data(id: number): WriteData {
  return { c: 'c1', o: id, s: `lwsecret-${id}` };
}

function w(o: Partial<Op> & { outcome: Op['outcome'] }): Op {
  const id = o.id ?? nextId++;
  clock += 10;
  const start = o.start ?? clock;
  return {
    id,
    client: 'c1',
    via: 'gw1',
    kind: 'write',
    key: 'k',
    start,
    end: o.end ?? start + 5,
    status: o.outcome === 'ok' ? 200 : 0,
    data: data(id),
    ...o,
  };
}

function r(version: number, seen: WriteData | null, at: { start: number; end: number }): Op {
  return {
    id: nextId++,
    client: 'c2',
    via: 'gw2',
    kind: 'read',
    key: 'k',
    start: at.start,
    end: at.end,
    outcome: 'ok',
    status: seen ? 200 : 404,
    version,
    readData: seen,
  };
}

function state(versions: Array<[number, WriteData | null]>): Map<string, KeyState> {
  const current = versions.length ? Math.max(...versions.map(([v]) => v)) : 0;
  return new Map([
    ['k', { currentVersion: current, oldestVersion: 1, versions: new Map(versions), missing: [] }],
  ]);
}

function violations(ops: Op[], st: Map<string, KeyState>): string[] {
  return checkHistory(ops, st).violations;
}

describe('chaos checker', () => {
  it('accepts a clean history, and indeterminate writes whether or not they were stored', () => {
    const a = w({ outcome: 'ok', version: 1 });
    const b = w({ outcome: 'info' }); // stored
    const c = w({ outcome: 'info' }); // not stored
    const d = w({ kind: 'cas', cas: 2, outcome: 'ok', version: 3 });
    const read = r(3, d.data as WriteData, { start: d.end + 1, end: d.end + 5 });
    const res = checkHistory(
      [a, b, c, d, read],
      state([
        [1, a.data!],
        [2, b.data!],
        [3, d.data!],
      ]),
    );
    assert.deepEqual(res.violations, []);
    assert.equal(res.stats.verifiedWrites, 2);
    assert.equal(res.stats.indeterminateStored, 1);
  });

  it('catches a lost acknowledged write (current version below it, or overwritten)', () => {
    const a = w({ outcome: 'ok', version: 1 });
    const b = w({ outcome: 'ok', version: 2 });
    assert.match(violations([a, b], state([[1, a.data!]])).join('\n'), /lost: current version is 1/);
    const c = w({ outcome: 'info' });
    assert.match(
      violations(
        [a, b, c],
        state([
          [1, a.data!],
          [2, c.data!],
        ]),
      ).join('\n'),
      /overwritten by op/,
    );
  });

  it('catches a version acknowledged twice, and a write applied twice', () => {
    const a = w({ outcome: 'ok', version: 1 });
    const b = w({ outcome: 'ok', version: 1 });
    assert.match(violations([a, b], state([[1, a.data!]])).join('\n'), /acknowledged twice/);
    const c = w({ outcome: 'info' });
    assert.match(
      violations(
        [c],
        state([
          [1, c.data!],
          [2, c.data!],
        ]),
      ).join('\n'),
      /applied more than once/,
    );
  });

  it('catches a CAS acknowledged against a stale version', () => {
    const a = w({ outcome: 'ok', version: 1 });
    const b = w({ kind: 'cas', cas: 0, outcome: 'ok', version: 2 });
    assert.match(
      violations(
        [a, b],
        state([
          [1, a.data!],
          [2, b.data!],
        ]),
      ).join('\n'),
      /sent cas=0/,
    );
  });

  it('catches a definitely failed write that is stored, and data nobody wrote', () => {
    const a = w({ outcome: 'fail', status: 400 });
    assert.match(violations([a], state([[1, a.data!]])).join('\n'), /definitely failed/);
    const ghost = { c: 'zz', o: 999_999, s: 'lwsecret-x' };
    assert.match(violations([], state([[1, ghost]])).join('\n'), /no client wrote/);
    const b = w({ outcome: 'ok', version: 1 });
    assert.match(violations([b], state([[1, ghost]])).join('\n'), /no client wrote/);
  });

  it('catches stale reads, reads of failed writes and reads from the future', () => {
    const a = w({ outcome: 'ok', version: 1 });
    const b = w({ outcome: 'ok', version: 2 });
    const st = state([
      [1, a.data!],
      [2, b.data!],
    ]);
    const stale = r(1, a.data!, { start: b.end + 1, end: b.end + 3 });
    assert.match(violations([a, b, stale], st).join('\n'), /stale read/);
    const f = w({ outcome: 'fail', status: 400 });
    const sawFailed = r(2, f.data!, { start: f.end + 1, end: f.end + 2 });
    assert.match(violations([a, b, f, sawFailed], st).join('\n'), /definitely failed/);
    const late = w({ outcome: 'info', start: 50_000, end: 50_010 });
    const early = r(3, late.data!, { start: 40_000, end: 40_005 });
    assert.match(violations([a, b, late, early], st).join('\n'), /started after the read ended/);
  });

  it('catches a standby serving a read older than a write acknowledged through a gateway, and names both', () => {
    const a = w({ outcome: 'ok', version: 1 });
    const b = w({ outcome: 'ok', version: 2, via: 'gw1' });
    const st = state([
      [1, a.data!],
      [2, b.data!],
    ]);
    const onStandby = {
      ...r(1, a.data!, { start: b.end + 1, end: b.end + 4 }),
      client: 's1',
      via: 'standby:n2',
    };
    const found = violations([a, b, onStandby], st);
    assert.equal(found.length, 1);
    assert.match(
      found[0] ?? '',
      new RegExp(
        `stale read op ${onStandby.id} \\(s1 via standby:n2\\) saw version 1, 1 ms after write op ${b.id} \\(via gw1\\)`,
      ),
    );
    // The same read overlapping the write may see either version.
    const overlapping = { ...onStandby, id: nextId++, start: b.end - 1 };
    assert.deepEqual(violations([a, b, overlapping], st), []);
  });

  it('catches non-monotonic reads across nodes: a read on one standby older than one completed on another', () => {
    const a = w({ outcome: 'ok', version: 1 });
    const b = w({ outcome: 'info' }); // stored at 2, never acknowledged: only a read can reveal it
    const st = state([
      [1, a.data!],
      [2, b.data!],
    ]);
    const first = { ...r(2, b.data!, { start: b.end + 10, end: b.end + 20 }), via: 'standby:n2' };
    const later = { ...r(1, a.data!, { start: first.end + 1, end: first.end + 5 }), via: 'standby:n3' };
    assert.deepEqual(violations([a, b, first], st), []);
    const found = violations([a, b, first, later], st);
    assert.equal(found.length, 1);
    assert.match(
      found[0] ?? '',
      new RegExp(`op ${later.id} \\(c2 via standby:n3\\) .* after read op ${first.id} \\(via standby:n2\\)`),
    );
    // Reads that overlap are not ordered: either may be older.
    const concurrent = { ...later, start: first.end - 1 };
    assert.deepEqual(violations([a, b, first, concurrent], st), []);
  });

  it('catches a deleted version when no delete was ever sent, and missing version data', () => {
    const a = w({ outcome: 'ok', version: 1 });
    assert.match(violations([a], state([[1, null]])).join('\n'), /no delete was sent/);
    const st = state([[1, a.data!]]);
    st.get('k')!.missing.push(2);
    st.get('k')!.currentVersion = 2;
    assert.match(violations([a], st).join('\n'), /data is missing/);
  });
});
