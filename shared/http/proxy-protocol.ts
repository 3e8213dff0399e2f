/**
 * PROXY protocol v1 and v2 on an API listener (gateway or node), with OpenBao's settings:
 *  - `use_always`: a header, from any peer, gives the client address (no header: the peer's);
 *  - `allow_authorized`: a header from a peer in `proxy_protocol_authorized_addrs` gives the
 *    client address; one from another peer is read and ignored;
 *  - `deny_unauthorized`: only peers in `proxy_protocol_authorized_addrs` may connect at all:
 *    another peer's connection is closed as it is accepted, before a byte is read, header or not
 *    (OpenBao's listener gives go-proxyproto a policy that REJECTs it). Probes and scrapers must
 *    then come from an authorized address (or use the metrics listener, which has no PROXY
 *    protocol).
 * The header is read off the raw TCP connection before anything else (TLS included), bounded in
 * size and time; a malformed one closes the connection. What follows is handed, unchanged, to
 * the server's own connection handling. The address it carries becomes the socket's
 * `remoteAddress` (and the TLS socket's), so forwarding headers, logs, traces and CIDR bindings
 * all see the client.
 *
 * The parser is ours: proxy-protocol-js (used by the tests to build headers) refuses valid
 * `PROXY UNKNOWN` lines and accepts invalid addresses and ports. `test/fuzz/proxy-protocol.test.ts`
 * checks it against that library's encoder and against garbage.
 */
import { type BlockList, isIP, type Server, type Socket } from 'node:net';

/** OpenBao's proxy_protocol_behavior values. */
export const PROXY_BEHAVIORS = ['use_always', 'allow_authorized', 'deny_unauthorized'] as const;
export type ProxyBehavior = (typeof PROXY_BEHAVIORS)[number];

export interface ProxyProtocolSettings {
  behavior: ProxyBehavior;
  authorized: BlockList;
}

/** v2's 12-byte signature. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** v1's longest line, CRLF included (the spec's 107 bytes). */
const V1_MAX = 107;
/** v2's address block is 36 bytes at most; TLVs may follow. Larger headers are refused. */
const V2_MAX_LENGTH = 2048;

/** A parsed header: a client address, or "use the peer's" (LOCAL, UNKNOWN, UNSPEC, UNIX). */
export type ProxyHeader = { address: string; port: number } | { address: null };

/** What the bytes so far say. */
export type ParseResult =
  | { state: 'more' }
  | { state: 'none' }
  | { state: 'header'; header: ProxyHeader; length: number }
  | { state: 'error'; reason: string };

function startsLike(buf: Buffer, prefix: Buffer): 'yes' | 'no' | 'maybe' {
  const n = Math.min(buf.length, prefix.length);
  if (buf.compare(prefix, 0, n, 0, n) !== 0) return 'no';
  return buf.length >= prefix.length ? 'yes' : 'maybe';
}

function port(s: string): number | null {
  if (!/^(0|[1-9]\d{0,4})$/.test(s)) return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

function parseV1(buf: Buffer): ParseResult {
  const end = buf.indexOf('\r\n');
  if (end === -1)
    return buf.length >= V1_MAX ? { state: 'error', reason: 'v1 line too long' } : { state: 'more' };
  if (end + 2 > V1_MAX) return { state: 'error', reason: 'v1 line too long' };
  const line = buf.toString('latin1', 0, end);
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { state: 'header', header: { address: null }, length: end + 2 };
  const [, proto, src, dst, sport, dport, ...rest] = parts;
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (
    family === 0 ||
    rest.length > 0 ||
    isIP(src ?? '') !== family ||
    isIP(dst ?? '') !== family ||
    port(sport ?? '') === null ||
    port(dport ?? '') === null
  ) {
    return { state: 'error', reason: 'malformed v1 header' };
  }
  return {
    state: 'header',
    header: { address: src as string, port: port(sport as string) as number },
    length: end + 2,
  };
}

function parseV2(buf: Buffer): ParseResult {
  if (buf.length < 16) return { state: 'more' };
  const verCmd = buf[12] as number;
  const famProto = buf[13] as number;
  const len = buf.readUInt16BE(14);
  if (verCmd >> 4 !== 2) return { state: 'error', reason: 'unsupported v2 version' };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { state: 'error', reason: 'unknown v2 command' };
  if (len > V2_MAX_LENGTH) return { state: 'error', reason: 'v2 header too long' };
  if (buf.length < 16 + len) return { state: 'more' };
  const length = 16 + len;
  const family = famProto >> 4;
  if (cmd === 0 || family === 0 || family === 3)
    return { state: 'header', header: { address: null }, length };
  if (family === 1) {
    if (len < 12) return { state: 'error', reason: 'short v2 IPv4 address block' };
    const a = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
    return { state: 'header', header: { address: a, port: buf.readUInt16BE(24) }, length };
  }
  if (family === 2) {
    if (len < 36) return { state: 'error', reason: 'short v2 IPv6 address block' };
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(16 + i * 2).toString(16));
    // An IPv4-mapped address (::ffff:a.b.c.d) is written as Node reports one, so that code that
    // strips `::ffff:` finds the IPv4 address (compacted hex groups would give `a09:909`).
    const mapped = groups.slice(0, 6).join(':') === '0:0:0:0:0:ffff';
    const address = mapped ? `::ffff:${buf[28]}.${buf[29]}.${buf[30]}.${buf[31]}` : compactIPv6(groups);
    return { state: 'header', header: { address, port: buf.readUInt16BE(48) }, length };
  }
  return { state: 'error', reason: 'unknown v2 address family' };
}

/** `0:0:0:0:0:0:0:1` → `::1`, as Node reports addresses. */
function compactIPv6(groups: string[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best === -1) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Parses the start of a connection: a v1 or v2 header, no header, or not enough bytes yet. */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (buf.length === 0) return { state: 'more' };
  const v2 = startsLike(buf, V2_SIGNATURE);
  if (v2 === 'yes') return parseV2(buf);
  const v1 = startsLike(buf, V1_PREFIX);
  if (v1 === 'yes') return parseV1(buf);
  if (v1 === 'maybe' || v2 === 'maybe') return { state: 'more' };
  return { state: 'none' };
}

/** What happened on a connection, for metrics and logs (never the addresses). */
export type ProxyOutcome = 'used' | 'ignored' | 'absent' | 'local' | 'refused' | 'malformed' | 'timeout';

const PROXIED = Symbol('lw.proxiedAddress');
type Proxied = Socket & { [PROXIED]?: { address: string; port: number } };

function setPeer(socket: Socket, peer: { address: string; port: number }): void {
  (socket as Proxied)[PROXIED] = peer;
  Object.defineProperty(socket, 'remoteAddress', { value: peer.address, configurable: true });
  Object.defineProperty(socket, 'remotePort', { value: peer.port, configurable: true });
  Object.defineProperty(socket, 'remoteFamily', {
    value: isIP(peer.address) === 6 ? 'IPv6' : 'IPv4',
    configurable: true,
  });
}

function authorized(list: BlockList, addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  const family = isIP(a);
  return family !== 0 && list.check(a, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Puts PROXY protocol in front of `server`'s connection handling: every connection is held until
 * its header (or the absence of one) is known, then handed to the listeners the server had.
 * Call after every other 'connection' listener is in place. `tls` servers also get the address on
 * their TLS sockets. A peer must send its header (or its first bytes) within `headerTimeoutMs`
 * (the listener's read-header timeout), or its connection is destroyed.
 */
export function acceptProxyProtocol(
  server: Server,
  settings: ProxyProtocolSettings,
  { tls, headerTimeoutMs }: { tls: boolean; headerTimeoutMs: number },
  onOutcome: (o: ProxyOutcome) => void = () => undefined,
): void {
  const handlers = server.listeners('connection') as Array<(s: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    if (settings.behavior === 'deny_unauthorized' && !authorized(settings.authorized, socket.remoteAddress)) {
      onOutcome('refused');
      socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => finish({ state: 'error', reason: 'timeout' }), headerTimeoutMs);
    timer.unref();
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const r = parseProxyHeader(chunks.length === 1 ? chunk : Buffer.concat(chunks));
      if (r.state !== 'more') finish(r);
    };
    const onGone = () => finish({ state: 'error', reason: 'closed' });
    const finish = (r: Exclude<ParseResult, { state: 'more' }>) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onGone);
      socket.off('error', onGone);
      if (r.state === 'error') {
        onOutcome(r.reason === 'timeout' ? 'timeout' : 'malformed');
        socket.destroy();
        return;
      }
      socket.pause();
      const all = Buffer.concat(chunks);
      const rest = r.state === 'header' ? all.subarray(r.length) : all;
      if (r.state === 'header') {
        // Under deny_unauthorized only authorized peers got this far.
        const trusted =
          settings.behavior === 'use_always' || authorized(settings.authorized, socket.remoteAddress);
        if (r.header.address === null) onOutcome('local');
        else if (trusted) {
          setPeer(socket, { address: r.header.address, port: r.header.port });
          onOutcome('used');
        } else onOutcome('ignored');
      } else onOutcome('absent');
      if (rest.length > 0) socket.unshift(rest);
      for (const h of handlers) h.call(server, socket);
      // Plain HTTP reads on in JavaScript from here (TLS reads the handle itself).
      if (!tls) socket.resume();
    };
    socket.on('data', onData);
    socket.once('close', onGone);
    socket.once('error', onGone);
  });
  if (tls) {
    // A TLS socket reports its own peer: give it the address its raw connection carried. `_parent`
    // is the raw socket a TLS server wraps.
    server.prependListener('secureConnection', (s: Socket & { _parent?: Proxied }) => {
      const peer = s._parent?.[PROXIED];
      if (peer) setPeer(s, peer);
    });
  }
}
