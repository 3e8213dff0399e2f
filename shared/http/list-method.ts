/**
 * The raw `LIST` verb on HTTP/1.1 listeners.
 *
 * Vault clients (hvac, node-vault, VaultSharp, vaultrs, the docs' curl examples) send
 * `LIST /v1/... HTTP/1.1`. Node's parser (llhttp) has a fixed method table without LIST and
 * no option to extend it, so such a request never reaches our code. This shim sits between the
 * socket and llhttp: at a message boundary it rewrites the four bytes `LIST` of a request line
 * to `LINK` (a method llhttp knows and Vault never uses), and remembers which message it
 * rewrote, so the request object reports `LIST` again before anyone sees it. No other byte is
 * ever changed, and the rewrite keeps the length, so llhttp frames the connection exactly as it
 * would have framed the original (with LIST in its table).
 *
 * To find message boundaries the shim frames requests itself, conservatively: a request line
 * and header block in canonical form (CRLF line ends, no obs-fold); a body framed by one
 * Content-Length, or by `Transfer-Encoding: chunked` alone (HTTP/1.1, plain hex chunk sizes, no
 * chunk extensions, no trailers); no Upgrade, no CONNECT, no pipelined bytes. Chunked bodies
 * must be framed because proxies in front (load balancers reusing backend connections, the
 * gateway's own pool towards the leader) carry many clients' requests on one connection, so
 * one chunked upload must not cost every later LIST on it. On anything else the shim stops
 * rewriting for the rest of the connection and lets every byte through untouched — the
 * connection then behaves exactly as without the shim (a LIST after that point gets llhttp's
 * 400). `test/fuzz/list-method.test.ts` checks this against llhttp.
 *
 * Cost: llhttp normally reads from the socket in C++; with a 'data' listener installed, Node
 * hands every chunk through JavaScript. BENCHMARKS.md measures what that costs the gateway.
 */
import http from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';

const LIST = Buffer.from('LIST ');
/** The stand-in method: in llhttp's table, never used by Vault clients, same length as LIST. */
export const STAND_IN = 'LINK';
const STAND_IN_BYTES = Buffer.from(STAND_IN);
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** A header block longer than this is not framed (llhttp refuses over 16 KiB anyway). */
const MAX_HEAD_BYTES = 64 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([A-Z]+) [\x21-\x7e]+ HTTP\/1\.([01])$/;
/** A chunk-size line: hex digits only (13 keep it a safe integer), no extensions. */
const CHUNK_SIZE = /^[0-9A-Fa-f]{1,13}$/;
/** The longest chunk-size or chunk-end line we wait for. */
const MAX_LINE = 32;

/** How a message's body is framed, from its header block. */
export type BodyFraming = { length: number } | 'chunked';

type State = 'start' | 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailer' | 'off';

/** Per-connection framing state. Exported for the differential fuzz test. */
export class ListShim {
  private state: State = 'start';
  /** Header block bytes seen so far for the current message (state 'head'). */
  private head: Buffer[] = [];
  private headBytes = 0;
  private bodyLeft = 0;
  /** A chunk-size or CRLF line being read (states 'chunk-size', 'chunk-end', 'trailer'). */
  private line = '';
  /** Messages whose start the shim framed. */
  private started = 0;
  /** Messages llhttp delivered (counted by the request object's constructor). */
  private delivered = 0;
  /** Indices of started messages that were rewritten and not yet delivered. */
  private readonly rewritten: number[] = [];

  /** Whether the shim still rewrites (false once it met something it would not frame). */
  get active(): boolean {
    return this.state !== 'off';
  }

  /** Inspects (and possibly rewrites, in place) the next chunk of the byte stream. */
  onData(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && this.state !== 'off') {
      if (this.state === 'start') i = this.startMessage(chunk, i);
      else if (this.state === 'head') i = this.scanHead(chunk, i);
      else if (this.state === 'body' || this.state === 'chunk-data') i = this.skipBody(chunk, i);
      else i = this.chunkLine(chunk, i);
    }
  }

  /** Called once per message llhttp parsed, in order: whether that message was a LIST. */
  nextDelivered(): boolean {
    const index = this.delivered++;
    if (this.rewritten[0] !== index) return false;
    this.rewritten.shift();
    return true;
  }

  private off(): number {
    this.state = 'off';
    this.head = [];
    return Number.POSITIVE_INFINITY;
  }

  private startMessage(chunk: Buffer, i: number): number {
    // Fewer than five bytes left: cannot tell LIST from LINK, LOCK, ... without waiting.
    const avail = chunk.length - i;
    if (avail < LIST.length) {
      if (LIST.subarray(0, avail).equals(chunk.subarray(i))) return this.off();
    } else if (chunk.compare(LIST, 0, LIST.length, i, i + LIST.length) === 0) {
      this.rewritten.push(this.started);
      STAND_IN_BYTES.copy(chunk, i);
    }
    // A message starts with a method letter; llhttp skips stray CRLFs here, we stop instead.
    const c = chunk[i] as number;
    if (c < 0x41 || c > 0x5a) return this.off();
    this.started++;
    this.state = 'head';
    this.head = [];
    this.headBytes = 0;
    return i;
  }

  private scanHead(chunk: Buffer, i: number): number {
    // The terminator may straddle chunks: search from up to 3 bytes back in what we hold.
    const piece = chunk.subarray(i);
    const held = this.headBytes;
    const joined = held === 0 ? piece : Buffer.concat([...this.head, piece]);
    const end = joined.indexOf(CRLFCRLF, Math.max(0, held - 3));
    if (end === -1) {
      if (joined.length > MAX_HEAD_BYTES) return this.off();
      this.head = [joined];
      this.headBytes = joined.length;
      return chunk.length;
    }
    const consumed = end + CRLFCRLF.length - held;
    const framing = frameHead(joined.toString('latin1', 0, end));
    this.head = [];
    this.headBytes = 0;
    if (framing === null) return this.off();
    if (framing === 'chunked') {
      this.state = 'chunk-size';
      this.line = '';
      return i + consumed;
    }
    this.bodyLeft = framing.length;
    return this.endOfPart(chunk, i + consumed, framing.length > 0 ? 'body' : 'start');
  }

  /** Skips Content-Length body bytes or one chunk's data. */
  private skipBody(chunk: Buffer, i: number): number {
    const take = Math.min(this.bodyLeft, chunk.length - i);
    this.bodyLeft -= take;
    if (this.bodyLeft > 0) return i + take;
    if (this.state === 'chunk-data') {
      this.state = 'chunk-end';
      this.line = '';
      return i + take;
    }
    return this.endOfPart(chunk, i + take, 'start');
  }

  /**
   * Reads a CRLF-terminated line of a chunked body: a chunk size ('chunk-size'), the empty line
   * after a chunk's data ('chunk-end') or the empty line that ends the message ('trailer': a
   * trailer field there is not framed).
   */
  private chunkLine(chunk: Buffer, i: number): number {
    const lf = chunk.indexOf(0x0a, i);
    const end = lf === -1 ? chunk.length : lf + 1;
    this.line += chunk.toString('latin1', i, end);
    if (lf === -1) return this.line.length > MAX_LINE ? this.off() : end;
    const line = this.line;
    this.line = '';
    if (!line.endsWith('\r\n') || line.length - 2 > MAX_LINE) return this.off();
    const content = line.slice(0, -2);
    if (this.state === 'chunk-size') {
      if (!CHUNK_SIZE.test(content)) return this.off();
      this.bodyLeft = Number.parseInt(content, 16);
      this.state = this.bodyLeft > 0 ? 'chunk-data' : 'trailer';
      return end;
    }
    if (content !== '') return this.off();
    if (this.state === 'chunk-end') {
      this.state = 'chunk-size';
      return end;
    }
    return this.endOfPart(chunk, end, 'start');
  }

  /** Moves on after a head or body ended at `at`; bytes of a next message in the same chunk are pipelining. */
  private endOfPart(chunk: Buffer, at: number, next: State): number {
    if (next === 'start' && at < chunk.length) return this.off();
    this.state = next;
    return at;
  }
}

/**
 * Reads a header block (request line and headers, without the final CRLFCRLF) and returns how
 * its body is framed, or null when it is not in the canonical form the shim frames.
 */
export function frameHead(head: string): BodyFraming | null {
  const lines = head.split('\r\n');
  const requestLine = REQUEST_LINE.exec(lines[0] ?? '');
  if (!requestLine || requestLine[1] === 'CONNECT') return null;
  let length: number | null = null;
  let chunked = false;
  for (let k = 1; k < lines.length; k++) {
    const line = lines[k] as string;
    // Bare CR or LF, control characters other than tab, obs-fold: not framed.
    if (/[\r\n\x00-\x08\x0a-\x1f\x7f]/.test(line)) return null;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return null;
    const lower = name.toLowerCase();
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (lower === 'upgrade') return null;
    if (lower === 'transfer-encoding') {
      // Only a single, plain `chunked` on HTTP/1.1; codings, lists and repeats are not framed.
      if (chunked || value.toLowerCase() !== 'chunked' || requestLine[2] !== '1') return null;
      chunked = true;
    }
    if (lower === 'content-length') {
      if (length !== null || !/^\d{1,15}$/.test(value)) return null;
      length = Number(value);
    }
  }
  // Both at once is refused by llhttp (request smuggling): not ours to frame.
  if (chunked) return length === null ? 'chunked' : null;
  return { length: length ?? 0 };
}

const SHIM = Symbol('lw.listShim');
type ShimmedSocket = Socket & { [SHIM]?: ListShim };

/**
 * Request objects that report `LIST` for the messages the shim rewrote. llhttp creates one per
 * message, in order, and sets `method` right after construction; the setter consults the shim.
 */
export class ListAwareIncomingMessage extends http.IncomingMessage {
  constructor(socket: Socket) {
    super(socket);
    const shim = (socket as ShimmedSocket)[SHIM];
    if (shim?.nextDelivered()) (this as unknown as { [IS_LIST]: boolean })[IS_LIST] = true;
  }
}
const IS_LIST = Symbol('lw.isList');
const METHOD = Symbol('lw.method');
Object.defineProperty(ListAwareIncomingMessage.prototype, 'method', {
  configurable: true,
  enumerable: true,
  get(this: { [METHOD]?: string | null }) {
    return this[METHOD];
  },
  set(this: { [METHOD]?: string | null; [IS_LIST]?: boolean }, m: string | null) {
    this[METHOD] = m === STAND_IN && this[IS_LIST] === true ? 'LIST' : m;
  },
});

/** Installs the shim on one HTTP/1.1 connection, after the server set up its parser. */
export function shimConnection(socket: Socket): void {
  const s = socket as ShimmedSocket & { parser?: unknown };
  if (s[SHIM] || !s.parser) return; // HTTP/2 sessions have no llhttp parser: LIST is native there.
  const shim = new ListShim();
  s[SHIM] = shim;
  // Prepended, so it runs before the server's own 'data' listener hands the chunk to llhttp.
  const onData = (chunk: Buffer) => {
    shim.onData(chunk);
    if (!shim.active) socket.off('data', onData);
  };
  socket.prependListener('data', onData);
}

/**
 * Enables raw LIST on a server: `connectionEvent` is 'connection' for plain HTTP and
 * 'secureConnection' for TLS (including an HTTP/2 server with allowHTTP1). The server must have
 * been created with `IncomingMessage: ListAwareIncomingMessage` (HTTP/2: `Http1IncomingMessage`).
 */
export function acceptListMethod(
  server: NetServer,
  connectionEvent: 'connection' | 'secureConnection',
): void {
  server.on(connectionEvent, (socket: Socket) => shimConnection(socket));
}
