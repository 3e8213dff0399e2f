/**
 * answerClientError: a request Node could not parse gets a JSON error, then the connection is
 * closed; a TLS connection whose handshake failed or timed out has no HTTP to answer in and is
 * destroyed at once.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { answerClientError } from '../../shared/http/server';

/** A socket stand-in that records what happened to it. */
function socket(tls: { encrypted?: boolean; _secureEstablished?: boolean } = {}) {
  const s = Object.assign(new PassThrough(), tls);
  const seen = { ended: '', destroyed: false };
  s.end = ((chunk?: unknown) => {
    seen.ended = String(chunk ?? '');
    return s;
  }) as typeof s.end;
  s.destroy = (() => {
    seen.destroyed = true;
    return s;
  }) as typeof s.destroy;
  return { s, seen };
}

const err = (code: string) => Object.assign(new Error(code), { code });

describe('answerClientError', () => {
  it('answers a malformed request with a JSON 400 before closing', () => {
    const { s, seen } = socket();
    answerClientError(err('HPE_INVALID_METHOD'), s);
    assert.match(seen.ended, /^HTTP\/1\.1 400 /);
    assert.match(seen.ended, /"errors":\["malformed request"\]/);
    assert.equal(seen.destroyed, false, 'destroyed later, once the answer had its chance');
  });

  it('destroys a TLS connection whose handshake timed out or failed, answering nothing', () => {
    for (const [code, tls] of [
      ['ERR_TLS_HANDSHAKE_TIMEOUT', { encrypted: true }],
      ['ERR_SSL_WRONG_VERSION_NUMBER', { encrypted: true }],
      ['ECONNABORTED', { encrypted: true, _secureEstablished: false }],
    ] as const) {
      const { s, seen } = socket(tls);
      answerClientError(err(code), s);
      assert.equal(seen.destroyed, true, code);
      assert.equal(seen.ended, '', `${code}: no HTTP written into a TLS handshake`);
    }
  });
});
