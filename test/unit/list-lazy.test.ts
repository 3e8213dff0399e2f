/**
 * The lazy raw-LIST path (shared/http/list-method.ts) on real listeners: llhttp reads every
 * connection in C++ until it refuses a `LIST` request line; then the connection is resumed
 * through the framing shim. Checked on the API listener (plain, TLS, PROXY protocol in front of
 * both) and on an HTTP/2 server taking HTTP/1.1 (the cluster listener's shape): LIST as the
 * first request and in the middle of a keep-alive connection, with Content-Length and chunked
 * bodies, each request handled exactly once; a connection that never sends LIST stays with
 * llhttp in C++; what the shim does not frame is answered as before (400). The eager mode the
 * cluster listener uses reads every connection through the shim from its start.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { BlockList, connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import pino from 'pino';
import type { ListenerSettings } from '../../shared/config/listener';
import { acceptListMethod, ListAwareIncomingMessage, refusedListAt } from '../../shared/http/list-method';
import { ApiListener, answerClientError } from '../../shared/http/server';
import { type CertFiles, writeApiCert } from '../helpers/api-cert';

interface Seen {
  method: string;
  url: string;
  body: string;
  /** Whether llhttp still read this connection in C++ (no JavaScript 'data' path). */
  consumed: boolean;
}

function handler(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString();
      const parser = (req.socket as Socket & { parser?: { _consumed?: boolean } }).parser;
      seen.push({ method: req.method ?? '', url: req.url ?? '', body, consumed: parser?._consumed === true });
      const text = `${req.method} ${req.url} ${body}`;
      res.setHeader('content-length', Buffer.byteLength(text));
      res.end(text);
    });
  };
}

interface Reply {
  status: number;
  body: string;
}

/** A raw HTTP/1.1 connection: writes bytes as given, reads Content-Length framed responses. */
class Raw {
  private buf = Buffer.alloc(0);
  private closed = false;
  private wake: (() => void) | null = null;
  private constructor(private readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number, o: { tls?: boolean; proxy?: boolean } = {}): Promise<Raw> {
    const raw = netConnect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject));
    if (o.proxy) raw.write('PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n');
    if (!o.tls) return new Raw(raw);
    const s = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => s.once('secureConnect', resolve).once('error', reject));
    return new Raw(s);
  }

  /** Writes each part as its own write, then reads `n` responses. */
  async send(parts: string[], n: number): Promise<Reply[]> {
    for (const p of parts) {
      this.socket.write(p);
      if (parts.length > 1) await new Promise((r) => setTimeout(r, 20));
    }
    const out: Reply[] = [];
    while (out.length < n) {
      const r = this.take();
      if (r) {
        out.push(r);
        continue;
      }
      if (this.closed) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 3_000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return out;
  }

  private take(): Reply | null {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end === -1) return null;
    const head = this.buf.toString('latin1', 0, end);
    const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buf.length < end + 4 + length) return null;
    const body = this.buf.toString('utf8', end + 4, end + 4 + length);
    this.buf = this.buf.subarray(end + 4 + length);
    return { status: Number(head.slice(9, 12)), body };
  }

  /** Whether the server closed the connection. */
  get ended(): boolean {
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

const req = (method: string, url: string, body = '', extra = '') =>
  `${method} ${url} HTTP/1.1\r\nHost: h\r\n${extra}${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`;
const chunked = (method: string, url: string, chunks: string[]) =>
  `${method} ${url} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${chunks
    .map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`)
    .join('')}0\r\n\r\n`;

/** The scenarios every listener shape must pass. */
async function scenarios(port: number, seen: Seen[], o: { tls?: boolean; proxy?: boolean }) {
  // A connection without LIST stays with llhttp in C++.
  seen.length = 0;
  let c = await Raw.open(port, o);
  let r = await c.send([req('GET', '/a')], 1);
  r.push(...(await c.send([req('PUT', '/b', 'body')], 1)));
  assert.deepEqual(
    r.map((x) => x.body),
    ['GET /a ', 'PUT /b body'],
  );
  assert.deepEqual(
    seen.map((s) => s.consumed),
    [true, true],
    'no LIST: llhttp reads the socket in C++',
  );
  c.close();

  // LIST as the first request, then the connection goes on (and is read in JavaScript).
  seen.length = 0;
  c = await Raw.open(port, o);
  r = await c.send([req('LIST', '/v1/secret/')], 1);
  r.push(...(await c.send([req('GET', '/after')], 1)));
  r.push(...(await c.send([req('LIST', '/again')], 1)));
  assert.deepEqual(
    r.map((x) => [x.status, x.body]),
    [
      [200, 'LIST /v1/secret/ '],
      [200, 'GET /after '],
      [200, 'LIST /again '],
    ],
  );
  assert.deepEqual(
    seen.map((s) => s.consumed),
    [false, false, false],
  );
  c.close();

  // LIST with a body in the middle of a keep-alive connection, then chunked LIST: each once.
  seen.length = 0;
  c = await Raw.open(port, o);
  r = [];
  r.push(...(await c.send([req('GET', '/1')], 1)));
  r.push(...(await c.send([req('POST', '/2', 'x'.repeat(3000))], 1)));
  r.push(...(await c.send([req('LIST', '/3', '{"a":1}')], 1)));
  r.push(...(await c.send([chunked('LIST', '/4', ['ab', 'LIST / HTTP/1.1\r\n'])], 1)));
  r.push(...(await c.send([req('GET', '/5')], 1)));
  assert.deepEqual(
    r.map((x) => [x.status, x.body.slice(0, 40)]),
    [
      [200, 'GET /1 '],
      [200, `POST /2 ${'x'.repeat(32)}`],
      [200, 'LIST /3 {"a":1}'],
      [200, 'LIST /4 abLIST / HTTP/1.1\r\n'],
      [200, 'GET /5 '],
    ],
  );
  assert.deepEqual(
    seen.map((s) => `${s.method} ${s.url}`),
    ['GET /1', 'POST /2', 'LIST /3', 'LIST /4', 'GET /5'],
    'every request handled exactly once',
  );
  c.close();

  // LIST whose head and body arrive in separate writes.
  seen.length = 0;
  c = await Raw.open(port, o);
  const split = req('LIST', '/split', 'hello');
  r = await c.send([split.slice(0, 20), split.slice(20, -3), split.slice(-3)], 1);
  assert.deepEqual(
    r.map((x) => x.body),
    ['LIST /split hello'],
  );
  c.close();

  // Pipelined in one write: a GET then a LIST (llhttp parsed the GET; the LIST is resumed).
  seen.length = 0;
  c = await Raw.open(port, o);
  r = await c.send([req('GET', '/p1') + req('LIST', '/p2', 'b')], 2);
  assert.deepEqual(
    r.map((x) => x.body),
    ['GET /p1 ', 'LIST /p2 b'],
  );
  assert.deepEqual(
    seen.map((s) => `${s.method} ${s.url}`),
    ['GET /p1', 'LIST /p2'],
  );
  c.close();

  // Pipelined LISTs in one write: the shim frames no pipelining, as before — the second is
  // refused (400, and the connection closed) and never handled.
  seen.length = 0;
  c = await Raw.open(port, o);
  r = await c.send([req('LIST', '/q1') + req('LIST', '/q2')], 2);
  assert.equal(r.at(-1)?.status, 400);
  assert.ok(!seen.some((s) => s.url === '/q2'));
  c.close();

  // Not a LIST at a message start: answered 400, as before, and nothing is handled.
  for (const bad of ['UNLIST / HTTP/1.1\r\nHost: h\r\n\r\n', 'LIS\r\n\r\n', 'LISTEN / HTTP/1.1\r\n\r\n']) {
    seen.length = 0;
    c = await Raw.open(port, o);
    r = await c.send([bad], 1);
    assert.equal(r[0]?.status, 400, JSON.stringify(bad));
    assert.match(r[0]?.body ?? '', /malformed request/);
    assert.equal(seen.length, 0);
    c.close();
  }
}

describe('lazy raw LIST on real listeners', () => {
  let dir: string;
  let cert: CertFiles;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lw-list-'));
    cert = await writeApiCert(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const tls of [false, true]) {
    for (const proxy of [false, true]) {
      it(`API listener, ${tls ? 'TLS' : 'plain'}${proxy ? ', PROXY protocol' : ''}`, async () => {
        const seen: Seen[] = [];
        const settings: ListenerSettings = {
          listen: { host: '127.0.0.1', port: 0 },
          tls: tls
            ? {
                ...cert,
                minVersion: 'TLSv1.2',
                ciphers: undefined,
                clientCaFile: null,
                requireClientCert: false,
              }
            : null,
          proxyProtocol: proxy ? { behavior: 'use_always', authorized: new BlockList() } : null,
          timeouts: { idleMs: 5_000, readHeaderMs: 5_000, readMs: 10_000, writeMs: 0 },
          unauthenticatedMetrics: false,
        };
        const listener = new ApiListener(settings, handler(seen), { log: pino({ level: 'silent' }) });
        await listener.listen();
        try {
          await scenarios(listener.address().port, seen, { tls, proxy });
        } finally {
          await listener.closeGracefully(() => 0, 0);
        }
      });
    }
  }

  it("keeps Node's connection tracking after a resume: header timeout, idle close", async () => {
    const seen: Seen[] = [];
    const settings: ListenerSettings = {
      listen: { host: '127.0.0.1', port: 0 },
      tls: null,
      proxyProtocol: null,
      timeouts: { idleMs: 5_000, readHeaderMs: 300, readMs: 10_000, writeMs: 0 },
      unauthenticatedMetrics: false,
    };
    const listener = new ApiListener(settings, handler(seen), { log: pino({ level: 'silent' }) });
    await listener.listen();
    const { port } = listener.address();
    try {
      // A resumed connection that stalls in its next header block gets the read-header timeout.
      const slow = await Raw.open(port);
      assert.deepEqual(
        (await slow.send([req('LIST', '/t')], 1)).map((x) => x.status),
        [200],
      );
      const started = Date.now();
      // (After an answered request the connection is closed without another answer: answerClientError.)
      const timedOut = await slow.send(['GET /stall HTTP/1.1\r\nHost: h\r\n'], 1);
      assert.deepEqual(timedOut, []);
      assert.equal(slow.ended, true);
      assert.ok(Date.now() - started < 2_900, 'closed by the connections check, not by the client');
      slow.close();
      // A resumed connection at rest is idle: a graceful close ends it at once.
      const idle = await Raw.open(port);
      assert.deepEqual(
        (await idle.send([req('LIST', '/i')], 1)).map((x) => x.status),
        [200],
      );
      const closing = Date.now();
      await listener.closeGracefully(() => 0, 5_000);
      assert.ok(Date.now() - closing < 1_000, 'the idle resumed connection was closed at once');
      idle.close();
    } finally {
      await listener.closeGracefully(() => 0, 0);
    }
  });

  it('HTTP/2 server taking HTTP/1.1 (the cluster listener)', async () => {
    const seen: Seen[] = [];
    const server = http2.createSecureServer(
      {
        allowHTTP1: true,
        Http1IncomingMessage: ListAwareIncomingMessage,
        cert: readFileSync(cert.certFile),
        key: readFileSync(cert.keyFile),
      },
      handler(seen) as never,
    );
    acceptListMethod(server);
    server.on('clientError', answerClientError);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await scenarios((server.address() as { port: number }).port, seen, { tls: true });
    } finally {
      server.close();
    }
  });

  it('eager: every HTTP/1.1 connection read through the shim from its start (the cluster listener)', async () => {
    const seen: Seen[] = [];
    const server = http2.createSecureServer(
      {
        allowHTTP1: true,
        Http1IncomingMessage: ListAwareIncomingMessage,
        cert: readFileSync(cert.certFile),
        key: readFileSync(cert.keyFile),
      },
      handler(seen) as never,
    );
    acceptListMethod(server, 'secureConnection');
    server.on('clientError', answerClientError);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const c = await Raw.open((server.address() as { port: number }).port, { tls: true });
      const r = await c.send([req('GET', '/a')], 1);
      r.push(...(await c.send([req('LIST', '/b', '{}')], 1)));
      r.push(...(await c.send([req('PUT', '/c', 'body')], 1)));
      assert.deepEqual(
        r.map((x) => [x.status, x.body]),
        [
          [200, 'GET /a '],
          [200, 'LIST /b {}'],
          [200, 'PUT /c body'],
        ],
      );
      assert.deepEqual(
        seen.map((x) => x.consumed),
        [false, false, false],
        'read in JavaScript from the first request',
      );
      c.close();
    } finally {
      server.close();
    }
  });
});

describe('refusedListAt', () => {
  const at = (raw: string, bytesParsed: number, code = 'HPE_INVALID_METHOD') =>
    refusedListAt({ code, bytesParsed, rawPacket: Buffer.from(raw, 'latin1') });
  it('finds a LIST at the chunk start or after a message end, nothing else', () => {
    assert.equal(at('LIST / HTTP/1.1\r\n', 2), 0);
    assert.equal(at('GET / HTTP/1.1\r\n\r\nLIST / HTTP/1.1\r\n', 20), 18);
    assert.equal(at('\r\nLIST / HTTP/1.1\r\n', 4), 2);
    assert.equal(at('UNLIST / HTTP/1.1\r\n', 4), -1, 'UNLINK has LI inside it');
    assert.equal(at('xLIST / HTTP/1.1\r\n', 3), -1, 'after a body byte: pipelining');
    assert.equal(at('LIST', 2), -1, 'the space not seen yet');
    assert.equal(at('IST / HTTP/1.1\r\n', 1), -1, 'began in an earlier read');
    assert.equal(at('LISTEN / HTTP/1.1\r\n', 2), -1);
    assert.equal(at('LIST / HTTP/1.1\r\n', 2, 'HPE_INVALID_URL'), -1);
  });
});
