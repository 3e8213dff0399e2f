/**
 * Fuzz cases that are not mutated requests: raw garbage (random bytes, a TLS hello, an HTTP/2
 * preface, bare line feeds...) and the deliberately valid requests, which may succeed.
 */
import { randomBytes } from 'node:crypto';
import type { Rng } from '../chaos/rng';
import type { Case } from './case';

export function garbage(r: Rng): Partial<Case> {
  const kind = r.pick(['random', 'tls', 'h2', 'version', 'blank', 'long-line', 'lf-only', 'nul']);
  const data: Record<string, Buffer | string> = {
    random: randomBytes(r.int(1, 4_000)),
    tls: Buffer.from('16030100a5010000a10303' + '00'.repeat(32) + '0000', 'hex'),
    h2: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    version: 'GET /v1/sys/health HTTP/9.9\r\nhost: x\r\n\r\n',
    blank: '\r\n\r\n\r\n',
    'long-line': `GET /${'a'.repeat(100_000)}`,
    'lf-only': 'GET /v1/sys/health HTTP/1.1\nhost: x\nconnection: close\n\n',
    nul: 'GET /v1/sys/health HTTP/1.1\r\nhost: x\u0000y\r\nconnection: close\r\n\r\n',
  };
  return {
    label: `garbage ${kind}`,
    single: false,
    pieces: [{ data: data[kind] as Buffer | string }],
    // An incomplete line may simply wait for more; the parser answers everything else.
    silenceAllowed: kind === 'random' || kind === 'long-line' || kind === 'blank',
    okAllowed: kind === 'lf-only',
    timeoutMs: 3_000,
  };
}

/** A deliberately valid request: reads, and writes under `fuzz-ok/` (the only data fuzz may change). */
export function valid(r: Rng, n: number, token: string): Partial<Case> {
  const kind = r.pick(['read-canary', 'write', 'list', 'lookup']);
  const req: Record<string, string> = {
    'read-canary': 'GET /v1/secret/data/canary HTTP/1.1',
    write: `POST /v1/secret/data/fuzz-ok/${n} HTTP/1.1`,
    list: 'LIST /v1/secret/metadata/ HTTP/1.1',
    lookup: 'GET /v1/auth/token/lookup-self HTTP/1.1',
  };
  const b = kind === 'write' ? '{"data":{"fuzz":true}}' : '';
  const text = `${req[kind]}\r\nhost: fuzz\r\nconnection: close\r\nx-vault-token: ${token}\r\ncontent-type: application/json\r\ncontent-length: ${b.length}\r\n\r\n${b}`;
  return { label: `valid ${kind}`, pieces: [{ data: text }], okAllowed: true };
}
