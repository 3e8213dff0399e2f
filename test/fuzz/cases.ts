/**
 * Seeded generation of bad HTTP requests: random methods, hostile paths (`..`, encodings, NUL,
 * very long), hostile headers (huge, duplicated, invalid, internal, spoofed), hostile bodies
 * (truncated JSON, deep nesting, wrong types, over the size limit, lying lengths, bad chunking),
 * raw garbage, slow senders — plus a few deliberately valid requests, which may succeed.
 */
import { randomBytes } from 'node:crypto';
import type { Rng } from '../chaos/rng';
import type { Case, TargetName } from './case';
import type { Piece } from './raw-http';
import { garbage, valid } from './special-cases';

export type { Case, TargetName } from './case';

/** The body limit the fuzzed nodes are started with (LEADERWAY_MAX_REQUEST_SIZE). */
export const BODY_LIMIT = 64 * 1024;

const METHODS = [
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'LIST',
  'PATCH',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'FOO',
  'get',
  'PROPFIND',
];
const SEGMENTS = [
  'secret',
  'data',
  'metadata',
  'delete',
  'undelete',
  'destroy',
  'config',
  'sys',
  'health',
  'leader',
  'init',
  'seal-status',
  'step-down',
  'ha-status',
  'auth',
  'token',
  'lookup-self',
  'internal',
  'ui',
  'mounts',
  'canary',
  '..',
  '.',
  '%2e%2e',
  '%2E',
  '%00',
  '%zz',
  '%',
  '%2f',
  'a%2Fb',
  '',
  'é',
  '%C3%A9',
  '%FF',
  '%c0%ae',
  '~',
  '*',
  ';',
  '%5c',
  '%0d%0a',
  'a'.repeat(600),
  '日本',
];
const SPECIAL_PATHS = [
  '/',
  '*',
  '/v1',
  '/v1/',
  '/v2/secret',
  '//v1/secret/data/x',
  '/v1//secret',
  '/lw-cluster/echo',
  '/lw-cluster/x',
  '/-/ready',
  '/-/live',
  '/-/nope',
  '/metrics',
  '/-/../v1/secret/data/canary',
  'http://evil.example/v1/secret/data/x',
  `/v1/secret/data/${'a/'.repeat(3000)}`,
  '/v1/sys/health?standbycode=abc',
  '/v1/sys/health?activecode=999999',
];
const QUERIES = [
  '',
  '',
  '',
  '?list=true',
  '?version=abc',
  '?version=-1',
  '?version=99999999999999999999',
  `?${'a=1&'.repeat(2000)}`,
  '?%zz',
  '?version=1&version=2',
];
const CONTENT_TYPES = [
  'application/json',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/x-www-form-urlencoded',
  '\u0000',
  'application/xml',
  'a'.repeat(300),
];
const PUBLIC_READS = [
  '/v1/sys/health',
  '/v1/sys/leader',
  '/v1/sys/seal-status',
  '/v1/sys/init',
  '/-/ready',
  '/-/live',
  '/metrics',
];

function body(r: Rng): { text: string | Buffer; label: string; complete: boolean } {
  const kinds: Array<() => { text: string | Buffer; label: string; complete?: boolean }> = [
    () => ({ text: '{"data":{"a":1}}', label: 'valid write' }),
    () => ({ text: '{"data":{"a":', label: 'truncated json' }),
    () => ({ text: '['.repeat(r.int(65, 20_000)), label: 'deep nesting' }),
    () => ({ text: `${'{"a":'.repeat(70)}1${'}'.repeat(70)}`, label: 'deep objects' }),
    () => ({
      text: r.pick(['{"data":"x"}', '{"data":[]}', '{"data":null}', '[1,2]', '"str"', '42', 'null']),
      label: 'wrong types',
    }),
    () => ({
      text: r.pick([
        '{"data":{},"options":{"cas":"x"}}',
        '{"data":{},"options":{"cas":-1}}',
        '{"data":{},"options":[]}',
        '{"versions":"x"}',
        '{"versions":[-1]}',
        '{"max_versions":-1}',
        '{"cas_required":"yes"}',
      ]),
      label: 'wrong option types',
    }),
    () => ({ text: `{"data":{"a":"${'x'.repeat(BODY_LIMIT + 1_000)}"}}`, label: 'over the limit' }),
    () => ({ text: randomBytes(r.int(1, 2_000)), label: 'binary' }),
    () => ({ text: '\uFEFF{"data":{}}', label: 'bom' }),
    () => ({ text: '{"data":{"a":1}}{"data":{}}', label: 'two documents' }),
    () => ({
      text: '{"__proto__":{"polluted":1},"data":{"constructor":{"prototype":{"x":1}}}}',
      label: 'proto pollution',
    }),
  ];
  const b = r.pick(kinds)();
  return { text: b.text, label: b.label, complete: b.complete ?? true };
}

function path(r: Rng): string {
  if (r.chance(0.25)) return r.pick(SPECIAL_PATHS) + r.pick(QUERIES);
  const n = r.int(0, 6);
  const segs = Array.from({ length: n }, () => r.pick(SEGMENTS));
  let p = `/v1/${segs.join('/')}`;
  if (r.chance(0.05)) p = p.replace('/', '/\u0000');
  if (r.chance(0.05)) p += '\u00ff\u00fe';
  return p + r.pick(QUERIES);
}

/** Builds one case. `token` is the real root token (for near misses and the valid requests). */
export function makeCase(n: number, r: Rng, token: string): Case {
  const target = r.pick<TargetName>(['active', 'standby', 'gateway']);
  const base: Case = {
    n,
    target,
    label: '',
    pieces: [],
    okAllowed: false,
    redirectAllowed: false,
    silenceAllowed: false,
    single: true,
    head: false,
    timeoutMs: 6_000,
  };
  const dice = r.next();
  if (dice < 0.06) return { ...base, ...garbage(r) };
  if (dice < 0.1) return { ...base, ...valid(r, n, token) };
  const method = r.chance(0.02) ? 'M'.repeat(r.int(100, 400)) : r.pick(METHODS);
  const p = path(r);
  const headers: string[] = ['host: fuzz', 'connection: close'];
  const labels = [method, p.slice(0, 40)];
  // Public read endpoints may answer 2xx without a token, whatever the decoration around them.
  let allowOk = (method === 'GET' || method === 'HEAD') && PUBLIC_READS.some((x) => p.includes(x));
  if (r.chance(0.5)) headers.push(`content-type: ${r.pick(CONTENT_TYPES)}`);
  const tok = r.pick(['none', 'none', 'random', 'near', 'huge', 'dup', 'bearer-near']);
  if (tok === 'random') headers.push(`x-vault-token: hvs.${randomBytes(24).toString('base64url')}`);
  if (tok === 'near') headers.push(`x-vault-token: ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`);
  if (tok === 'huge') headers.push(`x-vault-token: ${'t'.repeat(r.int(300, 12_000))}`);
  if (tok === 'dup') headers.push(`x-vault-token: ${token}`, 'x-vault-token: hvs.other');
  if (tok === 'bearer-near') headers.push(`authorization: Bearer ${token.slice(0, -1)}`);
  const extra = r.int(0, 3);
  for (let i = 0; i < extra; i++) {
    const h = r.pick([
      () => `x-forwarded-for: ${r.pick(['203.0.113.1', '1.1.1.1, 2.2.2.2', 'garbage', '::1'])}`,
      () => `x-leaderway-not-served: ${r.pick(['LW_ERR_NOT_ACTIVE', 'x'])}`,
      () => 'x-leaderway-internal: 1',
      () => `x-huge: ${'h'.repeat(r.int(17_000, 40_000))}`,
      () => Array.from({ length: 150 }, (_, j) => `x-many-${j}: ${j}`).join('\r\n'),
      () => 'bad header: x',
      () => 'x\u0001y: z',
      () => 'no-colon-here',
      () => ' obs-fold-continuation',
      () => 'expect: 100-continue',
      () =>
        'upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13',
      () => 'x-vault-no-request-forwarding: 1',
      () => 'transfer-encoding: gzip, chunked',
      () => `host: ${'h'.repeat(300)}`,
      () => 'content-length: 5\r\ncontent-length: 7',
      () => 'x-vault-wrap-ttl: 10s',
      // What decides whether a standby serves a read itself or forwards it (issue 27).
      () => `x-vault-wrap-ttl: ${r.pick(['0', '0s', '-1s', 'abc', '99999999999999999999s'])}`,
      () => `x-vault-forward: ${r.pick(['active-node', '', 'x'])}`,
      () =>
        `x-vault-index: ${r.pick(['', 'garbage', 'a'.repeat(300), `${randomBytes(40).toString('base64')}`, 'AAAA'])}`,
      () => `x-vault-inconsistent: ${r.pick(['forward-active-node', 'fail', ''])}`,
    ])();
    headers.push(h);
    labels.push(h.slice(0, 20));
    if (h.startsWith('x-vault-no-request-forwarding')) base.redirectAllowed = base.target === 'standby';
    // Chunked framing without (valid) chunks: a server may wait for a body that never comes.
    if (h.startsWith('transfer-encoding')) base.silenceAllowed = true;
    if (h.startsWith('upgrade')) allowOk = false;
  }
  let payload: string | Buffer = '';
  if (r.chance(0.55) || method === 'POST' || method === 'PUT') {
    const b = body(r);
    payload = b.text;
    labels.push(b.label);
  }
  const len = Buffer.byteLength(payload);
  const framing = r.pick(['cl', 'cl', 'cl', 'chunked', 'lie-short', 'lie-long', 'bad-chunk']);
  let bodyBytes: Buffer = Buffer.from(payload);
  if (len > 0 || framing !== 'cl') {
    if (framing === 'cl' || framing === 'lie-short')
      headers.push(`content-length: ${framing === 'cl' ? len : Math.max(0, len - 3)}`);
    if (framing === 'lie-long') {
      headers.push(`content-length: ${len + r.int(1, 1_000)}`);
      base.silenceAllowed = true; // the server waits for bytes we never send
      base.timeoutMs = 2_000;
    }
    if (framing === 'chunked' || framing === 'bad-chunk') {
      headers.push('transfer-encoding: chunked');
      const chunk = framing === 'chunked' ? `${len.toString(16)}\r\n` : 'zz\r\n';
      bodyBytes =
        len === 0 && framing === 'chunked'
          ? Buffer.from('0\r\n\r\n')
          : Buffer.concat([Buffer.from(chunk), Buffer.from(payload), Buffer.from('\r\n0\r\n\r\n')]);
    }
    labels.push(framing);
  }
  const head = `${method} ${p} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`;
  const pieces: Piece[] = [{ data: Buffer.from(head, 'latin1') }, { data: bodyBytes }];
  const c: Case = { ...base, label: labels.join(' | '), pieces, okAllowed: allowOk, head: method === 'HEAD' };
  return r.chance(0.03) ? slow(c, r) : c;
}

/** Trickles a case byte by byte (sometimes stopping half-way and hanging up). */
function slow(c: Case, r: Rng): Case {
  const all = Buffer.concat(c.pieces.map((p) => Buffer.from(p.data))).subarray(0, 300);
  const stop = r.chance(0.4) ? r.int(1, all.length - 1) : all.length;
  const gap = r.int(5, 25);
  const pieces: Piece[] = [];
  for (let i = 0; i < stop; i++) pieces.push({ data: all.subarray(i, i + 1), delayMs: gap });
  const cut =
    stop < all.length || all.length < Buffer.concat(c.pieces.map((p) => Buffer.from(p.data))).length;
  return {
    ...c,
    label: `slow ${gap}ms/byte${cut ? ' then silent' : ''} | ${c.label}`,
    pieces,
    silenceAllowed: c.silenceAllowed || cut,
    timeoutMs: stop * gap + (cut ? 1_000 : 6_000),
  };
}
