/**
 * HTTP/1.1 over a raw socket (node:net), for requests no well-behaved client would send:
 * malformed request lines and headers, lying Content-Length, bytes trickled slowly, garbage.
 * One request per connection; the response is read until the server closes or the declared
 * body has arrived.
 */
import * as net from 'node:net';

/** How long to keep reading after a complete response, to catch bytes that should not follow. */
const LINGER_MS = 150;

/** A piece of the request and how long to wait before sending it. */
export interface Piece {
  data: Buffer | string;
  delayMs?: number;
}

/** A parsed response. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Bytes after the response's declared end (a second, unsolicited response would be here). */
  extra: Buffer;
}

export interface RawResult {
  /** Null when the connection closed (or timed out) before a complete status line and headers. */
  response: RawResponse | null;
  /** `closed`, `timeout`, `reset` or `ok`. */
  end: string;
  ms: number;
}

/** Sends `pieces` to 127.0.0.1:`port` and reads one response (bounded by `timeoutMs`). */
export function rawRequest(
  port: number,
  pieces: Array<Piece | Buffer | string>,
  timeoutMs = 15_000,
  lingerMs = LINGER_MS,
): Promise<RawResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (end: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ response: parse(Buffer.concat(chunks)), end, ms: performance.now() - t0 });
    };
    timer = setTimeout(() => finish('timeout'), timeoutMs);
    let lingering = false;
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // Once a whole response is in, linger briefly: a second, unsolicited response must be seen.
      if (!lingering && complete(Buffer.concat(chunks))) {
        lingering = true;
        setTimeout(() => finish('ok'), lingerMs);
      }
    });
    socket.once('close', () => finish('closed'));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      // A server may answer and close before we finished sending (EPIPE/ECONNRESET): keep what came.
      if (chunks.length === 0 && err.code !== 'EPIPE' && err.code !== 'ECONNRESET') finish('reset');
    });
    socket.once('connect', async () => {
      for (const p of pieces) {
        const piece: Piece = typeof p === 'string' || Buffer.isBuffer(p) ? { data: p } : p;
        if (piece.delayMs) await new Promise((r) => setTimeout(r, piece.delayMs));
        if (done || socket.destroyed) return;
        socket.write(piece.data);
      }
    });
  });
}

/** Parses status line, headers and body (after any 1xx interim answers); null while incomplete. */
export function parse(whole: Buffer): RawResponse | null {
  let buf = whole;
  while (/^HTTP\/1\.[01] 1\d\d/.test(buf.subarray(0, 12).toString('latin1'))) {
    const end = buf.indexOf('\r\n\r\n');
    if (end === -1) return null;
    buf = buf.subarray(end + 4);
  }
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd === -1) return null;
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) return null;
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) {
      const k = l.slice(0, i).trim().toLowerCase();
      headers[k] =
        headers[k] === undefined ? l.slice(i + 1).trim() : `${headers[k]}, ${l.slice(i + 1).trim()}`;
    }
  }
  let body = buf.subarray(headEnd + 4);
  let extra: Buffer = Buffer.alloc(0);
  const len = headers['content-length'];
  if (len !== undefined && body.length > Number(len)) {
    extra = body.subarray(Number(len));
    body = body.subarray(0, Number(len));
  }
  if ((headers['transfer-encoding'] ?? '').includes('chunked')) body = unchunk(body);
  return { status: Number(m[1]), headers, body, extra };
}

/** True once a whole response (head and declared body) is in `buf`. */
function complete(buf: Buffer): boolean {
  const r = parse(buf);
  if (!r) return false;
  const len = r.headers['content-length'];
  if (len !== undefined) return r.body.length >= Number(len);
  if (r.status === 204 || r.status === 304) return true;
  return (r.headers['transfer-encoding'] ?? '').includes('chunked') && buf.includes('\r\n0\r\n\r\n');
}

function unchunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const eol = b.indexOf('\r\n', i);
    if (eol === -1) break;
    const size = Number.parseInt(b.subarray(i, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(b.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}
