/**
 * The one errors module, enforced (in the manner of fastify's error-code tests): every code is
 * used somewhere, maps to a real 4xx/5xx status, and is documented with that status in
 * docs/errors.md; and no module but shared/http/respond.ts builds an error body or writes an
 * error response by hand.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES, LwError } from '../../shared/errors';
import { rawErrorResponse } from '../../shared/http/respond';

const ROOT = path.resolve(__dirname, '..', '..');
const PRODUCT_DIRS = ['shared', 'node', 'gateway', 'cli'];
const ERRORS_MODULE = path.join('shared', 'errors.ts');
const RESPOND_MODULE = path.join('shared', 'http', 'respond.ts');

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

const files = PRODUCT_DIRS.flatMap(sources).map((rel) => ({
  rel,
  text: readFileSync(path.join(ROOT, rel), 'utf8'),
}));

describe('the errors module', () => {
  it('every code is used outside the errors module', () => {
    const unused = Object.keys(ERROR_CODES).filter(
      (code) => !files.some((f) => f.rel !== ERRORS_MODULE && f.text.includes(`'${code}'`)),
    );
    assert.deepEqual(unused, [], 'remove these codes or use them');
  });

  it('every code maps to a real client or server error status', () => {
    for (const [code, status] of Object.entries(ERROR_CODES)) {
      assert.ok(status >= 400 && status <= 599, `${code}: ${status}`);
      assert.ok(STATUS_CODES[status], `${code}: ${status} is not an HTTP status`);
      assert.equal(new LwError(code as keyof typeof ERROR_CODES, 'x').status, status);
    }
  });

  it('every code is documented in docs/errors.md with its status', () => {
    const doc = readFileSync(path.join(ROOT, 'docs', 'errors.md'), 'utf8');
    const rows = new Map(
      [...doc.matchAll(/^\| `(LW_ERR_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1] as string, Number(m[2])]),
    );
    for (const [code, status] of Object.entries(ERROR_CODES)) {
      assert.equal(rows.get(code), status, `${code} is missing from docs/errors.md or has another status`);
    }
    assert.deepEqual(
      [...rows.keys()].filter((c) => !(c in ERROR_CODES)),
      [],
      'docs/errors.md documents codes that no longer exist',
    );
  });

  it('no other module builds an error body or raw error response', () => {
    const handBuilt = files
      .filter((f) => f.rel !== RESPOND_MODULE)
      .flatMap((f) =>
        f.text
          .split('\n')
          .map((line, i) => ({ line, at: `${f.rel}:${i + 1}` }))
          .filter(({ line }) => /\berrors\s*:\s*\[|"errors"|HTTP\/1\.1 [45]\d\d/.test(line))
          .map(({ at }) => at),
      );
    assert.deepEqual(handBuilt, [], 'build error answers with sendError or rawErrorResponse');
  });

  it('the raw form is a complete HTTP/1.1 answer with the same body', () => {
    const raw = rawErrorResponse(new LwError('LW_ERR_NO_LEADER', 'no leader', { retryAfter: 1 }));
    const [head, body] = raw.split('\r\n\r\n') as [string, string];
    assert.match(head, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(head, /\r\nretry-after: 1(\r\n|$)/);
    assert.match(head, /\r\nconnection: close(\r\n|$)/);
    assert.match(head, new RegExp(`\\r\\ncontent-length: ${Buffer.byteLength(body)}(\\r\\n|$)`));
    assert.deepEqual(JSON.parse(body), { errors: ['no leader'] });
  });
});
