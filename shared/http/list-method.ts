/**
 * The raw `LIST` verb on HTTP/1.1 listeners.
 *
 * Vault clients (hvac, node-vault, VaultSharp, vaultrs, the docs' curl examples) send
 * `LIST /v1/... HTTP/1.1`. Node's parser (llhttp) has a fixed method table without LIST and
 * no option to extend it, so such a request never reaches our code unaided.
 *
 * Lazily: llhttp reads every connection in C++ exactly as without this module, until it refuses
 * a request line with `HPE_INVALID_METHOD`. The server's 'clientError' then carries the chunk
 * (`err.rawPacket`) and where llhttp stopped in it (`err.bytesParsed`, two bytes into `LIST`).
 * When that is a `LIST ` at a message start (`refusedListAt`), the connection is resumed instead
 * of answered (`resumeRefusedList`): the same parser is re-initialised in place (so Node's
 * per-connection state — pipelined responses, timeouts, the connections list — carries on), the
 * connection moves to JavaScript reads with the framing shim below, and the refused bytes are put
 * back in front of the socket. Everything before them was parsed once, and nothing after them was
 * parsed at all: no byte is processed twice. Connections that never send LIST cost nothing.
 *
 * The framing shim (`ListShim`), from then on: at a message boundary it rewrites the four bytes
 * `LIST` of a request line to `LINK` (a method llhttp knows and Vault never uses), and
 * remembers which message it rewrote, so the request object reports `LIST` again before anyone
 * sees it. No other byte is ever changed, and the rewrite keeps the length, so llhttp frames the
 * connection exactly as it would have framed the original (with LIST in its table).
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
 * 400). A connection is resumed at most once. `test/fuzz/list-method.test.ts` checks the shim
 * and the resume decision against llhttp; `test/unit/list-lazy.test.ts` checks real servers.
 *
 * Cost: none until a connection sends LIST; after that, Node hands that connection's chunks
 * through JavaScript (BENCHMARKS.md, list-shim section). A listener can instead read every
 * connection through the shim from its start (`acceptListMethod`'s `eager`): the node's cluster
 * listener does, for what that does to its memory under large writes (see there).
 */
import http from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';

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

/**
 * Where the `LIST ` that llhttp refused starts in `err.rawPacket`, or -1 when the error is not
 * a refused LIST at a message start. llhttp reports the refusal at the `S` (it read `LI` as the
 * start of LINK), so the method began two bytes before — unless more of it came earlier: only
 * `UNLINK` has `LI` inside it, and the byte before a method is never a letter. The byte before
 * must therefore be the LF ending the previous message (or a CRLF llhttp skipped) or the chunk's
 * start. (A `UN` ending the previous read cannot be seen: `UN` + `LIST` in two reads is served
 * as LIST.)
 */
export function refusedListAt(err: { code?: unknown; bytesParsed?: unknown; rawPacket?: unknown }): number {
  if (err.code !== 'HPE_INVALID_METHOD') return -1;
  const raw = err.rawPacket;
  const parsed = err.bytesParsed;
  if (!Buffer.isBuffer(raw) || typeof parsed !== 'number') return -1;
  const at = parsed - 2;
  if (at < 0 || at + LIST.length > raw.length) return -1;
  if (raw.compare(LIST, 0, LIST.length, at, at + LIST.length) !== 0) return -1;
  if (at > 0 && raw[at - 1] !== 0x0a) return -1;
  return at;
}

/** Node's HTTP parser object as the server set it up on a connection (node:_http_server). */
interface NodeParser {
  constructor: { REQUEST: number; kLenientAll: number; kLenientNone: number };
  initialize(
    type: number,
    resource: object,
    maxHeaderSize: number,
    lenient: number,
    connections?: object,
  ): void;
  remove(): void;
}
type HttpSocket = ShimmedSocket & {
  parser?: NodeParser | null;
  server?: NetServer & { maxHeaderSize?: number; insecureHTTPParser?: boolean } & Record<symbol, unknown>;
};

/** Whether this process parses HTTP leniently (Node's --insecure-http-parser). */
const LENIENT_PROCESS = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].includes(
  '--insecure-http-parser',
);

/**
 * Resumes a connection whose LIST request line llhttp refused (see the top of this file).
 * Returns false, leaving the error to be answered, when it is not such a refusal or the
 * connection cannot be resumed (already resumed once, ending, or not Node's HTTP/1 parser).
 */
export function resumeRefusedList(
  err: { code?: unknown; bytesParsed?: unknown; rawPacket?: unknown },
  socket: Duplex,
): boolean {
  const at = refusedListAt(err);
  if (at < 0) return false;
  const s = socket as HttpSocket;
  const parser = s.parser;
  const server = s.server;
  if (!parser || !server || s[SHIM] || s.destroyed || s.readableEnded || !s.readable) return false;
  if (typeof parser.initialize !== 'function' || typeof parser.remove !== 'function') return false;
  try {
    reinitialize(parser, server, socket);
  } catch {
    // Node's internals changed under us: the parser may be half reset, so the connection goes.
    socket.destroy();
    return true;
  }
  attachShim(s);
  // The refused bytes first: through the shim (which rewrites this LIST) and then to llhttp,
  // in order before anything the socket reads next, and only while the socket is not paused.
  socket.unshift(Buffer.from((err.rawPacket as Buffer).subarray(at)));
  return true;
}

/**
 * Reads the connection through a new framing shim from now on. A 'data' listener moves the
 * connection to JavaScript reads (Node's socket wrapper takes the socket back from the parser);
 * prepended, it runs before the server's own listener hands each chunk to llhttp.
 */
function attachShim(socket: ShimmedSocket): void {
  const shim = new ListShim();
  socket[SHIM] = shim;
  const onData = (chunk: Buffer) => {
    shim.onData(chunk);
    if (!shim.active) socket.off('data', onData);
  };
  socket.prependListener('data', onData);
}

/**
 * The connection's parser, re-initialised exactly as Node's connection listener did: llhttp
 * leaves its error state, and every callback Node bound to it (and to this connection) stays.
 * It leaves the server's connections list first, as Node's freeParser does: the list is ordered
 * by message start, which initialize() resets before adding it again.
 */
function reinitialize(parser: NodeParser, server: NonNullable<HttpSocket['server']>, socket: Duplex): void {
  parser.remove();
  const connections = Object.getOwnPropertySymbols(server).find(
    (k) => k.description === 'http.server.connections',
  );
  const Parser = parser.constructor;
  parser.initialize(
    Parser.REQUEST,
    { type: 'HTTPINCOMINGMESSAGE', socket },
    server.maxHeaderSize || 0,
    (server.insecureHTTPParser ?? LENIENT_PROCESS) ? Parser.kLenientAll : Parser.kLenientNone,
    connections === undefined ? undefined : (server[connections] as object | undefined),
  );
}

/** Set on a client error that `acceptListMethod` resumed as a LIST: there is nothing to answer. */
const RESUMED = Symbol('lw.listResumed');

/** Whether `acceptListMethod` resumed the connection this client error came from. */
export function listResumed(err: object): boolean {
  return (err as { [RESUMED]?: boolean })[RESUMED] === true;
}

/**
 * Enables raw LIST on a server (plain HTTP, TLS, or an HTTP/2 server with allowHTTP1): refused
 * LIST request lines are resumed (`resumeRefusedList`) before any other 'clientError' listener
 * runs, which must ignore errors for which `listResumed` is true. The server must have been
 * created with `IncomingMessage: ListAwareIncomingMessage` (HTTP/2: `Http1IncomingMessage`).
 *
 * With `eager` — the event a connection is ready on: 'connection' for plain HTTP,
 * 'secureConnection' for TLS — every HTTP/1.1 connection is read through the framing shim from
 * its start instead, in JavaScript, and none is ever resumed (a LIST after the shim stopped
 * rewriting gets llhttp's 400, as lazily). The listener must be added after the server's own
 * (which sets up the connection's parser): call this after creating the server.
 */
export function acceptListMethod(server: NetServer, eager?: 'connection' | 'secureConnection'): void {
  server.prependListener('clientError', (err: Error & { [RESUMED]?: boolean }, socket: Duplex) => {
    if (resumeRefusedList(err as Parameters<typeof resumeRefusedList>[0], socket)) err[RESUMED] = true;
  });
  if (eager) {
    server.on(eager, (socket: Socket) => {
      const s = socket as HttpSocket;
      // HTTP/2 sessions have no llhttp parser: LIST is native there.
      if (!s[SHIM] && s.parser) attachShim(s);
    });
  }
}
