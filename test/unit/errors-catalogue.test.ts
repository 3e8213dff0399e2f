/**
 * The errors catalogue (shared/errors.ts `ERRORS`) decides, once per code, the status, whether the
 * code means "not served" and the default Retry-After. This keeps the flag from drifting: the
 * same codes as before the catalogue are "not served", nothing else keeps its own list, and
 * docs/errors.md shows every code with its status and flag.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES, ERRORS, type ErrorCode, LwError } from '../../shared/errors';

const ROOT = path.resolve(__dirname, '..', '..');
const CODES = Object.keys(ERRORS) as ErrorCode[];

/**
 * The codes after which a node has stored nothing, so a gateway or standby sends the request
 * again: what dispatch.ts (its former NOT_SERVED_CODES plus storage unavailable) and the cluster
 * listener marked before the catalogue. Changing this list changes what gateways retry.
 */
const NOT_SERVED = [
  'LW_ERR_DRAINING',
  'LW_ERR_FENCED_WRITE',
  'LW_ERR_NOT_ACTIVE',
  'LW_ERR_STORAGE_UNAVAILABLE',
];

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

/** docs/errors.md's code table: code → [status, "not served" cell]. */
function documented(): Map<string, { status: number; notServed: string }> {
  const doc = readFileSync(path.join(ROOT, 'docs', 'errors.md'), 'utf8');
  return new Map(
    [...doc.matchAll(/^\| `(LW_ERR_[A-Z_]+)` \| (\d{3}) \| ([^|]*?) \|/gm)].map((m) => [
      m[1] as string,
      { status: Number(m[2]), notServed: (m[3] as string).trim() },
    ]),
  );
}

describe('the errors catalogue', () => {
  it('"not served" is exactly the codes after which nothing was stored', () => {
    assert.deepEqual(CODES.filter((c) => ERRORS[c].notServed).sort(), NOT_SERVED);
  });

  it('every "not served" code is a 503, the only status a gateway or standby intercepts', () => {
    for (const code of CODES.filter((c) => ERRORS[c].notServed)) assert.equal(ERRORS[code].status, 503, code);
  });

  it("an error carries its code's status, flag and default Retry-After; a given Retry-After wins", () => {
    for (const code of CODES) {
      const e = new LwError(code, 'x');
      assert.equal(e.status, ERRORS[code].status, code);
      assert.equal(e.notServed, ERRORS[code].notServed, code);
      assert.equal(e.retryAfter, (ERRORS[code] as { retryAfterS?: number }).retryAfterS, code);
      assert.equal(new LwError(code, 'x', { retryAfter: 7 }).retryAfter, 7, code);
    }
    assert.equal(new LwError('LW_ERR_STORAGE_UNAVAILABLE', 'x').retryAfter, 1);
    assert.equal(new LwError('LW_ERR_BAD_REQUEST', 'x').retryAfter, undefined);
  });

  it('ERROR_CODES still maps each code to its status', () => {
    assert.deepEqual(ERROR_CODES, Object.fromEntries(CODES.map((c) => [c, ERRORS[c].status])));
  });

  it('docs/errors.md lists every code with its status and "not served" flag, and no other code', () => {
    const rows = documented();
    for (const code of CODES) {
      assert.deepEqual(
        rows.get(code),
        { status: ERRORS[code].status, notServed: ERRORS[code].notServed ? 'yes' : 'no' },
        `${code}: missing from docs/errors.md, or another status or "not served" there`,
      );
    }
    assert.deepEqual(
      [...rows.keys()].filter((c) => !(c in ERRORS)),
      [],
      'docs/errors.md documents codes that no longer exist',
    );
  });

  it('no module marks an answer "not served" with a code of its own choosing', () => {
    const handPicked = ['shared', 'node', 'gateway', 'cli']
      .flatMap(sources)
      .filter((rel) => /NOT_SERVED_HEADER\]\s*:\s*'LW_ERR_/.test(readFileSync(path.join(ROOT, rel), 'utf8')));
    assert.deepEqual(handPicked, [], 'mark an answer "not served" only when its error\'s notServed says so');
  });
});
