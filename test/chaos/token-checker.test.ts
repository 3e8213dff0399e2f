/**
 * The token checker must catch what it claims: a token (or a child of a token) accepted after an
 * acknowledged revocation, or after its expiry; and must accept what is legitimate — uses before
 * the revocation was acknowledged, uses kept alive by renewals (acknowledged or indeterminate).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkTokens, type TokenOp } from './token-checker';

let id = 1;
function op(
  kind: TokenOp['kind'],
  token: string,
  start: number,
  end: number,
  o: Partial<TokenOp> = {},
): TokenOp {
  return { id: id++, client: 't', via: 'gw1', kind, token, start, end, outcome: 'ok', status: 200, ...o };
}
const created = (token: string, at: number, leaseS: number, parent?: string) =>
  op('create', token, at, at + 5, { leaseS, ...(parent ? { parent } : {}) });

describe('token checker', () => {
  it('passes a clean history', () => {
    const r = checkTokens([
      created('t1', 0, 10),
      op('use', 't1', 100, 110),
      op('revoke', 't1', 200, 210),
      op('use', 't1', 300, 310, { outcome: 'fail', status: 403 }),
      // A use overlapping the revocation may go either way.
      op('use', 't1', 205, 215),
    ]);
    assert.deepEqual(r.violations, []);
    assert.equal(r.stats.accepted, 2);
    assert.equal(r.stats.refused, 1);
  });

  it('catches a token accepted after its revocation was acknowledged', () => {
    const r = checkTokens([created('t1', 0, 10), op('revoke', 't1', 200, 210), op('use', 't1', 300, 310)]);
    assert.equal(r.violations.length, 1);
    assert.match(r.violations[0] ?? '', /t1: use op \d+ \(via gw1\) accepted 90 ms after its revocation/);
  });

  it("catches a child accepted after its parent's revocation", () => {
    const r = checkTokens([
      created('p', 0, 10),
      created('c', 10, 10, 'p'),
      op('revoke', 'p', 200, 210),
      op('use', 'c', 300, 310),
    ]);
    assert.equal(r.violations.length, 1);
    assert.match(r.violations[0] ?? '', /c: .* after its ancestor p's revocation/);
  });

  it('catches a token accepted after it expired, or after its parent expired', () => {
    const expired = checkTokens([created('t1', 0, 2), op('use', 't1', 3_100, 3_110)]);
    assert.equal(expired.violations.length, 1);
    assert.match(expired.violations[0] ?? '', /accepted \d+ ms after it expired/);
    const parent = checkTokens([
      created('p', 0, 2),
      created('c', 100, 60, 'p'),
      op('use', 'c', 3_200, 3_210),
    ]);
    assert.equal(parent.violations.length, 1);
    assert.match(parent.violations[0] ?? '', /after its ancestor p expired/);
  });

  it('catches a revoked token accepted by a standby, wherever the revocation went, and names the standby', () => {
    const r = checkTokens([
      created('t1', 0, 10),
      op('revoke', 't1', 200, 210, { via: 'standby:n2' }),
      op('use', 't1', 211, 220, { outcome: 'fail', status: 403, via: 'gw2' }),
      op('use', 't1', 211, 221, { outcome: 'fail', status: 403, via: 'active:n1' }),
      op('use', 't1', 212, 222, { via: 'standby:n3' }),
    ]);
    assert.equal(r.violations.length, 1);
    assert.match(
      r.violations[0] ?? '',
      /t1: use op \d+ \(via standby:n3\) accepted 2 ms after its revocation/,
    );
    assert.equal(r.stats.afterRevocation, 3);
    assert.equal(r.stats.direct, 2);
    assert.equal(r.stats.directStandby, 1);
  });

  it('catches a live token refused 403 (a node answering as if its creation had not happened)', () => {
    const r = checkTokens([
      created('t1', 0, 10),
      op('use', 't1', 6, 20, { outcome: 'fail', status: 403, via: 'standby:n2' }),
    ]);
    assert.equal(r.violations.length, 1);
    assert.match(
      r.violations[0] ?? '',
      /t1: use op \d+ \(via standby:n2\) refused 403 1 ms after its creation was acknowledged .* 9980 ms before it could expire/,
    );
    assert.equal(r.stats.mustAccept, 1);
    // A child is live only while its parent is.
    const child = checkTokens([
      created('p', 0, 10),
      created('c', 10, 60, 'p'),
      op('use', 'c', 100, 110, { outcome: 'fail', status: 403, via: 'standby:n3' }),
    ]);
    assert.equal(child.violations.length, 1);
    assert.match(child.violations[0] ?? '', /c: use op \d+ \(via standby:n3\) refused 403/);
  });

  it('accepts a refusal whenever the token may be dead: creation not yet acknowledged, revocation sent, expiry near or unknown', () => {
    const refused = (token: string, start: number, end: number) =>
      op('use', token, start, end, { outcome: 'fail', status: 403, via: 'standby:n2' });
    const r = checkTokens([
      // Begun before its creation was acknowledged.
      created('a', 0, 10),
      refused('a', 4, 12),
      // A revocation sent (even indeterminate) before the use ended, of it or of its parent.
      created('b', 0, 10),
      op('revoke', 'b', 100, 130, { outcome: 'info', status: 0 }),
      refused('b', 90, 120),
      created('p', 0, 10),
      created('c', 10, 60, 'p'),
      op('revoke', 'p', 100, 110),
      refused('c', 105, 115),
      // Within a second (lease rounding) of its earliest expiry.
      created('d', 0, 3),
      refused('d', 2_000, 2_010),
      // An acknowledged renewal that shortened the lease, and an indeterminate one (unknown).
      created('e', 0, 10),
      op('renew', 'e', 100, 110, { leaseS: 1 }),
      refused('e', 200, 210),
      created('f', 0, 10),
      op('renew', 'f', 100, 110, { outcome: 'info', status: 0, leaseS: 4 }),
      refused('f', 200, 210),
      // Not a refusal of the token: unavailable (indeterminate), or refused for another reason.
      created('g', 0, 10),
      op('use', 'g', 100, 110, { outcome: 'info', status: 503, via: 'standby:n2' }),
      op('use', 'g', 100, 110, { outcome: 'fail', status: 0, error: 'ECONNREFUSED', via: 'standby:n2' }),
    ]);
    assert.deepEqual(r.violations, []);
    assert.equal(r.stats.mustAccept, 2);
  });

  it('lets renewals extend the bound, acknowledged or indeterminate, but not failed ones', () => {
    const renewed = checkTokens([
      created('t1', 0, 2),
      op('renew', 't1', 1_500, 1_510, { leaseS: 4 }),
      op('renew', 't1', 5_000, 5_010, { outcome: 'info', status: 0, leaseS: 4 }),
      op('use', 't1', 8_000, 8_010),
    ]);
    assert.deepEqual(renewed.violations, []);
    const failed = checkTokens([
      created('t1', 0, 2),
      op('renew', 't1', 1_500, 1_510, { outcome: 'fail', status: 403, leaseS: 4 }),
      op('use', 't1', 4_000, 4_010),
    ]);
    assert.equal(failed.violations.length, 1);
  });
});
