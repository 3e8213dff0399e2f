/**
 * Differential fuzz of the raw-LIST shim (shared/http/list-method.ts) against llhttp itself —
 * the very parser Node's servers use, driven directly. Seeded generated request streams (valid
 * and malformed, LIST hidden in URLs, header values and bodies, chunked bodies, pipelining,
 * upgrades, bare LFs, split at random points) go through the shim; then:
 *  - the shim changed no byte except `LIST` → `LINK` method tokens;
 *  - every byte it changed is where llhttp begins a message, and llhttp reads LINK there
 *    (so no body or header byte is ever rewritten: no smuggling);
 *  - llhttp frames the shimmed stream exactly as it frames the reference stream (every LIST
 *    message start replaced by LINK): same messages, URLs, headers and bodies, up to the first
 *    LIST the shim declined to rewrite;
 *  - the request objects report LIST exactly for the messages that were LIST;
 *  - on clean keep-alive traffic (one message per write, chunked bodies included) every LIST is
 *    delivered as LIST;
 *  - the lazy path as the server runs it (llhttp reads each chunk until it refuses a LIST;
 *    `refusedListAt` picks the refused bytes, which a re-initialised parser reads through a new
 *    shim): the messages delivered are a prefix of the reference, each once, LIST reported
 *    exactly for LIST, and never fewer than the always-on shim delivered.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frameHead, ListShim, refusedListAt } from '../../shared/http/list-method';
import { type Rng, rng } from '../chaos/rng';

interface ParserCtor {
  new (): RefParser;
  REQUEST: number;
  kOnMessageBegin: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}
interface RefParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | Error;
  [k: number]: unknown;
}
const common = require('node:_http_common') as { HTTPParser: ParserCtor; methods: string[] };
const { HTTPParser, methods } = common;

const SEED = 20_261_129;
const STREAMS = 3_000;

interface Parsed {
  begin: number;
  method: string;
  url: string;
  headers: string[];
  body: string;
}

/** Parses `bytes` with llhttp one byte at a time, so each message's first byte offset is known. */
function llhttp(bytes: Buffer): { messages: Parsed[]; error: string | null } {
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, 0, 0);
  const messages: Parsed[] = [];
  let offset = 0;
  let current: Parsed | undefined;
  p[HTTPParser.kOnMessageBegin] = () => {
    current = { begin: offset, method: '', url: '', headers: [], body: '' };
    messages.push(current);
  };
  p[HTTPParser.kOnHeadersComplete] = (
    _maj: number,
    _min: number,
    headers: string[],
    method: number,
    url: string,
  ) => {
    if (current) Object.assign(current, { method: methods[method], url, headers });
    return 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => {
    if (current) current.body += b.toString('latin1');
  };
  p[HTTPParser.kOnMessageComplete] = () => undefined;
  for (offset = 0; offset < bytes.length; offset++) {
    const r = p.execute(bytes.subarray(offset, offset + 1));
    if (r instanceof Error) return { messages, error: (r as Error & { code?: string }).code ?? 'error' };
  }
  return { messages, error: null };
}

/** One generated message and where its method starts in the stream. */
interface Generated {
  text: string;
  isList: boolean;
}

const NASTY = [
  'LIST ',
  'LIST /v1/x HTTP/1.1\r\n\r\n',
  '\r\n\r\nLIST ',
  'GET / HTTP/1.1\r\n',
  'list ',
  '\r\n0\r\n\r\nLIST /v1/s HTTP/1.1\r\nHost: h\r\n\r\n',
  '\r\n',
];

function nasty(r: Rng): string {
  let s = '';
  const n = r.int(0, 3);
  for (let i = 0; i < n; i++) s += r.chance(0.5) ? r.pick(NASTY) : String.fromCharCode(r.int(0x20, 0x7e));
  return s;
}

function message(r: Rng, weird: boolean): Generated {
  const method = r.pick(['LIST', 'LIST', 'LIST', 'GET', 'POST', 'PUT', 'DELETE', 'LINK', 'LOCK', 'HEAD']);
  const nl = weird && r.chance(0.1) ? '\n' : '\r\n';
  const url = `/v1/secret/metadata/${r.chance(0.3) ? 'LIST%20' : ''}${r.int(0, 999)}/${r.chance(0.5) ? '' : '?list=true'}`;
  let text = `${method} ${url} HTTP/1.${weird && r.chance(0.05) ? 0 : 1}${nl}Host: h${nl}`;
  const headerCount = r.int(0, 3);
  for (let i = 0; i < headerCount; i++) text += `X-H${i}: v${nasty(r).replace(/[\r\n]/g, '')}${nl}`;
  if (weird && r.chance(0.05)) text += ` folded${nl}`;
  if (weird && r.chance(0.05)) text += `Upgrade: websocket${nl}Connection: upgrade${nl}`;
  const bodyKind = r.pick(['none', 'none', 'length', 'length', 'chunked']);
  let body = '';
  if (bodyKind === 'length') {
    body = nasty(r) + 'x'.repeat(r.int(0, 20)) + nasty(r);
    const declared = weird && r.chance(0.05) ? `${body.length}, ${body.length}` : String(body.length);
    text += `Content-Length: ${declared}${nl}`;
    if (weird && r.chance(0.05)) text += `content-length: ${body.length}${nl}`;
  } else if (bodyKind === 'chunked') {
    const chunks = r.int(0, 3);
    for (let i = 0; i < chunks; i++) {
      const data = nasty(r) + 'y'.repeat(r.int(1, 20));
      // A weird stream may lie about the size (a smuggling attempt hides a message in the data).
      const lie = weird && r.chance(0.1) ? r.pick([-2, -1, 1]) : 0;
      const size = Math.max(1, data.length + lie).toString(16);
      const sizeText =
        weird && r.chance(0.1)
          ? r.pick([`${size};ext=1`, `0${size}`, `${size} `, 'zz', size.toUpperCase()])
          : size;
      body += `${sizeText}\r\n${data}${weird && r.chance(0.05) ? '\n' : '\r\n'}`;
    }
    body += weird && r.chance(0.1) ? '0\r\nX-Trailer: t\r\n\r\n' : '0\r\n\r\n';
    text += `${weird && r.chance(0.1) ? r.pick(['Transfer-Encoding: gzip, chunked', 'transfer-encoding: CHUNKED', 'Transfer-Encoding: chunked\r\nContent-Length: 3']) : 'Transfer-Encoding: chunked'}${nl}`;
  }
  text += `${nl}${body}`;
  if (weird && r.chance(0.05)) text = `\r\n${text}`;
  return { text, isList: method === 'LIST' };
}

/** A stream and its reference (every LIST message start replaced by LINK). */
function stream(r: Rng, weird: boolean): { bytes: Buffer; reference: Buffer; messages: Generated[] } {
  const messages = Array.from({ length: r.int(1, 6) }, () => message(r, weird));
  const bytes = Buffer.from(messages.map((m) => m.text).join(''), 'latin1');
  const reference = Buffer.from(bytes);
  let at = 0;
  for (const m of messages) {
    const start = at + (m.text.startsWith('\r\n') ? 2 : 0);
    if (m.isList) reference.write('LINK', start, 'latin1');
    at += Buffer.byteLength(m.text, 'latin1');
  }
  return { bytes, reference, messages };
}

/** The original bytes cut where `parts` were cut (the shim rewrote `parts` in place). */
function cutLike(parts: Buffer[], bytes: Buffer): Buffer[] {
  let at = 0;
  return parts.map((p) => {
    const c = Buffer.from(bytes.subarray(at, at + p.length));
    at += p.length;
    return c;
  });
}

/** Cuts a stream into chunks: per message (clean keep-alive), or at random points. */
function chunks(r: Rng, s: { bytes: Buffer; messages: Generated[] }, perMessage: boolean): Buffer[] {
  const out: Buffer[] = [];
  if (perMessage) {
    let at = 0;
    for (const m of s.messages) {
      const len = Buffer.byteLength(m.text, 'latin1');
      out.push(Buffer.from(s.bytes.subarray(at, at + len)));
      at += len;
    }
    return out;
  }
  let at = 0;
  while (at < s.bytes.length) {
    const len = r.chance(0.3) ? r.int(1, 6) : r.int(1, 200);
    out.push(Buffer.from(s.bytes.subarray(at, at + len)));
    at += len;
  }
  return out;
}

/**
 * Runs `parts` through a fresh shim (in place) and checks what must hold for any input:
 *  1. only LIST → LINK changed, four bytes at a time;
 *  2. every change is where llhttp begins a message, and llhttp reads LINK there;
 *  4. the request objects, delivered in order, report LIST exactly for the rewritten messages.
 */
function shimAndCheck(parts: Buffer[], original: Buffer, ctx: string) {
  const shim = new ListShim();
  for (const c of parts) shim.onData(c);
  const out = Buffer.concat(parts);
  const changed: number[] = [];
  for (let i = 0; i < out.length; i++) {
    if (out[i] === original[i]) continue;
    // LIST and LINK share their first two letters: the window starts two bytes back.
    const at = i - 2;
    assert.equal(original.toString('latin1', at, at + 4), 'LIST', ctx);
    assert.equal(out.toString('latin1', at, at + 4), 'LINK', ctx);
    changed.push(at);
    i = at + 3;
  }
  const shimmed = llhttp(out);
  const begins = new Map(shimmed.messages.map((m) => [m.begin, m]));
  for (const at of changed) {
    const m = begins.get(at);
    assert.ok(m, `${ctx}: rewrite at ${at} is not a message start`);
    // '' when llhttp refused the message's head later on (the connection is closed then).
    assert.ok(m.method === 'LINK' || m.method === '', ctx);
  }
  const got = shimmed.messages.filter((m) => m.method !== '');
  for (const m of got) assert.equal(shim.nextDelivered(), changed.includes(m.begin), ctx);
  return { shim, changed, shimmed, got };
}

/**
 * The lazy path as a server runs it: llhttp executes whole chunks; when it refuses one and
 * `refusedListAt` finds the LIST, the parser is re-initialised and reads the refused bytes and
 * everything after through a new shim. Messages are reported as the request objects would
 * report them (LIST for a rewritten LINK).
 */
function lazy(parts: Buffer[]): { messages: Parsed[]; error: string | null; resumed: boolean } {
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, 0, 0);
  const messages: Parsed[] = [];
  let current: Parsed | undefined;
  let shim: ListShim | null = null;
  p[HTTPParser.kOnMessageBegin] = () => {
    current = { begin: -1, method: '', url: '', headers: [], body: '' };
  };
  p[HTTPParser.kOnHeadersComplete] = (
    _maj: number,
    _min: number,
    headers: string[],
    method: number,
    url: string,
  ) => {
    if (!current) return 0;
    let name = methods[method] as string;
    // ListAwareIncomingMessage: every message after the shim exists asks it, in order.
    if (shim?.nextDelivered() && name === 'LINK') name = 'LIST';
    Object.assign(current, { method: name, url, headers });
    messages.push(current);
    return 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => {
    if (current) current.body += b.toString('latin1');
  };
  p[HTTPParser.kOnMessageComplete] = () => undefined;
  const code = (e: Error) => (e as Error & { code?: string }).code ?? 'error';
  for (const part of parts) {
    let chunk = Buffer.from(part);
    if (shim) shim.onData(chunk);
    while (chunk.length > 0) {
      const r = p.execute(chunk);
      if (!(r instanceof Error)) {
        // After an Upgrade head llhttp stops; read on, as the reference does.
        if (typeof r !== 'number' || r <= 0 || r >= chunk.length) break;
        chunk = chunk.subarray(r);
        continue;
      }
      const e = r as Error & { bytesParsed?: number };
      const at = shim ? -1 : refusedListAt({ code: code(e), bytesParsed: e.bytesParsed, rawPacket: chunk });
      if (at < 0) return { messages, error: code(e), resumed: shim !== null };
      p.initialize(HTTPParser.REQUEST, {}, 0, 0);
      shim = new ListShim();
      chunk = Buffer.from(chunk.subarray(at));
      shim.onData(chunk);
    }
  }
  return { messages, error: null, resumed: shim !== null };
}

describe('raw LIST shim: differential fuzz against llhttp', () => {
  it('frames exactly as llhttp, rewrites only method tokens, reports LIST only for LIST', () => {
    const r = rng(SEED);
    let rewrites = 0;
    let cleanLists = 0;
    let passThroughs = 0;
    let resumes = 0;
    for (let n = 0; n < STREAMS; n++) {
      const weird = r.chance(0.5);
      const perMessage = !weird && r.chance(0.7);
      const s = stream(r, weird);
      const parts = chunks(r, s, perMessage);
      const ctx = `stream ${n}: ${JSON.stringify(s.bytes.toString('latin1'))}`;
      const { shim, changed, shimmed, got } = shimAndCheck(parts, s.bytes, ctx);
      if (!shim.active) passThroughs++;
      rewrites += changed.length;

      // 3. Same framing as the reference, up to the first LIST left alone.
      const ref = llhttp(s.reference);
      const want = ref.messages.filter((m) => m.method !== '');
      assert.ok(got.length <= want.length, ctx);
      got.forEach((m, i) => {
        const w = want[i] as Parsed;
        assert.deepEqual(
          { url: m.url, headers: m.headers, body: m.body, begin: m.begin },
          { url: w.url, headers: w.headers, body: w.body, begin: w.begin },
          ctx,
        );
      });
      if (got.length < want.length || (shimmed.error && !ref.error)) {
        assert.equal(shim.active, false, `${ctx}: framing diverged while the shim was active`);
      }

      // 5. Clean keep-alive traffic: every LIST is delivered as LIST.
      if (perMessage) {
        assert.equal(shim.active, true, ctx);
        assert.equal(shimmed.error, null, ctx);
        const lists = s.messages.filter((m) => m.isList).length;
        assert.equal(changed.length, lists, ctx);
        cleanLists += lists;
      }

      // 6. The lazy path on the same chunks (cut afresh from the original bytes): a prefix of the
      // reference, each message once, LIST exactly where the original had LIST; never fewer
      // messages than the always-on shim; on clean traffic, every message.
      const lazyParts = cutLike(parts, s.bytes);
      const l = lazy(lazyParts);
      if (l.resumed) resumes++;
      assert.ok(l.messages.length <= want.length, `${ctx}: lazy delivered more than the reference`);
      l.messages.forEach((m, i) => {
        const w = want[i] as Parsed;
        const wasList = s.bytes.toString('latin1', w.begin, w.begin + 4) === 'LIST';
        assert.deepEqual(
          { method: m.method, url: m.url, headers: m.headers, body: m.body },
          { method: wasList ? 'LIST' : w.method, url: w.url, headers: w.headers, body: w.body },
          `${ctx}: lazy message ${i}`,
        );
      });
      assert.ok(l.messages.length >= got.length, `${ctx}: lazy delivered fewer than the shim`);
      if (perMessage) {
        assert.equal(l.error, null, ctx);
        assert.equal(l.messages.length, want.length, ctx);
      }
    }
    // The generator must exercise both sides, or this test could not fail.
    console.log(
      `# list shim fuzz: ${STREAMS} streams, ${rewrites} rewrites, ${cleanLists} clean LISTs, ${passThroughs} pass-throughs`,
    );
    assert.ok(rewrites > 1_000, `only ${rewrites} rewrites`);
    assert.ok(cleanLists > 500, `only ${cleanLists} clean LISTs`);
    assert.ok(passThroughs > 200, `only ${passThroughs} pass-throughs`);
    console.log(`# lazy path: ${resumes} streams resumed after a refused LIST`);
    assert.ok(resumes > 1_000, `only ${resumes} lazy resumes`);
  });

  it('never rewrites a LIST hidden behind a framing llhttp refuses (smuggling attempts)', () => {
    const chunked = 'POST /v1/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n';
    const list = 'LIST /v1/s HTTP/1.1\r\nHost: h\r\n\r\n';
    const attempts: string[][] = [
      // chunk data longer than its size: llhttp wants CRLF where "X" is
      [`${chunked}3\r\nabcX\r\n0\r\n\r\n`, list],
      // a trailer field, then the end: we do not frame trailers
      [`${chunked}3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n`, list],
      // a chunk extension
      [`${chunked}3;x=y\r\nabc\r\n0\r\n\r\n`, list],
      // a bare LF after the data
      [`${chunked}3\r\nabc\n0\r\n\r\n`, list],
      // Content-Length and Transfer-Encoding together
      [
        `POST /v1/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        list,
      ],
      // two Content-Lengths that disagree
      ['POST /v1/a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n', list],
      // an obs-folded Content-Length
      ['POST /v1/a HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n 36\r\n\r\n', list],
      // a body shorter than declared, the rest of it looking like a request
      ['POST /v1/a HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\nab', list],
    ];
    for (const pieces of attempts) {
      const parts = pieces.map((p) => Buffer.from(p, 'latin1'));
      const original = Buffer.concat(parts);
      shimAndCheck(parts, original, JSON.stringify(pieces));
    }
    // The lazy path never turns UNLIST (llhttp reads UNLI as UNLINK) into LIST.
    const unlist = 'UNLIST /v1/s HTTP/1.1\r\nHost: h\r\n\r\n';
    const get = 'GET /v1/a HTTP/1.1\r\nHost: h\r\n\r\n';
    for (const pieces of [[unlist], [get + unlist], [get, unlist]]) {
      const l = lazy(pieces.map((p) => Buffer.from(p, 'latin1')));
      assert.deepEqual(
        { methods: l.messages.map((m) => m.method), error: l.error, resumed: l.resumed },
        {
          methods: pieces.join('').startsWith('GET') ? ['GET'] : [],
          error: 'HPE_INVALID_METHOD',
          resumed: false,
        },
        JSON.stringify(pieces),
      );
    }
  });

  it('reads only canonical header blocks', () => {
    assert.deepEqual(frameHead('GET / HTTP/1.1\r\nHost: a'), { length: 0 });
    assert.deepEqual(frameHead('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12 '), { length: 12 });
    assert.equal(frameHead('POST / HTTP/1.1\r\ncontent-length: 1\r\nContent-Length: 1'), null);
    assert.equal(frameHead('POST / HTTP/1.1\r\nTransfer-Encoding: chunked'), 'chunked');
    assert.equal(frameHead('POST / HTTP/1.0\r\nTransfer-Encoding: chunked'), null);
    assert.equal(frameHead('POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked'), null);
    assert.equal(frameHead('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1'), null);
    assert.equal(frameHead('GET / HTTP/1.1\r\nUpgrade: websocket'), null);
    assert.equal(frameHead('CONNECT a:1 HTTP/1.1\r\nHost: a'), null);
    assert.equal(frameHead('GET / HTTP/1.1\r\nHost: a\r\n folded'), null);
    assert.equal(frameHead('GET / HTTP/1.1\r\nHost: a\nX: b'), null);
    assert.equal(frameHead('GET / HTTP/2.0\r\nHost: a'), null);
    assert.equal(frameHead('POST / HTTP/1.1\r\nContent-Length: -1'), null);
  });
});
