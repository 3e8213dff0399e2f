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
    assert.match(r.violations[0] ?? '', /t1: use op \d+ accepted 90 ms after its revocation/);
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
