/**
 * Header handling for proxying (gateway) and forwarding (standby): hop-by-hop headers are
 * dropped (RFC 9110 §7.6.1, including any named in `Connection`), internal headers a client
 * might forge are dropped, and the X-Forwarded-* headers are set.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import { CLIENT_ADDR_HEADER, INTERNAL_HEADER_PREFIX, NOT_SERVED_HEADER } from './internal-headers';

/** Headers that apply to one connection only and must not be forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
  // The proxy answers `100 Continue` itself (Node does, before the handler runs); the upstream
  // client (undici) refuses to send the header at all.
  'expect',
]);

const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);

/** What the forwarding headers should say about the client. */
export interface ForwardedInfo {
  /** The peer address of this hop. */
  remoteAddress: string;
  proto: 'http' | 'https';
  host: string;
  /** Keep the client's own X-Forwarded-* (it is a trusted proxy) and append to it. */
  trustClientForwarded: boolean;
  /** Whether an address in X-Forwarded-For is a trusted proxy too (default: none is). */
  isTrusted?: (addr: string) => boolean;
}

/**
 * The client's address: the peer, unless the peer is a trusted proxy — then the right-most
 * X-Forwarded-For entry that is not a trusted proxy (entries left of it are the client's own
 * claims, which anyone can write), or the left-most if every entry is trusted.
 */
export function clientAddressOf(priorFor: string | undefined, fwd: ForwardedInfo): string {
  if (!fwd.trustClientForwarded || !priorFor) return fwd.remoteAddress;
  const hops = priorFor
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (!fwd.isTrusted?.(hop)) return hop;
  }
  return hops[0] ?? fwd.remoteAddress;
}

/** Groups of an IPv6 address; an embedded IPv4 address (`::ffff:1.2.3.4`) counts as two. */
function groupCount(groups: string[]): number {
  let n = 0;
  for (const g of groups) n += g.includes('.') ? 2 : 1;
  return n;
}

/**
 * Whose limits a client address counts against (the gateway's per-client caps): an IPv4 address
 * itself (an IPv4-mapped IPv6 one too), an IPv6 address its /64 — a host is commonly given a
 * whole /64, so counting each address apart would let one client take 2^64 shares. Anything
 * else (an unparsable X-Forwarded-For entry) counts as itself.
 */
export function addressGroup(addr: string): string {
  if (addr.startsWith('::ffff:') && isIPv4(addr.slice(7))) return addr.slice(7);
  const bare = addr.split('%')[0] as string;
  if (!isIPv6(bare)) return addr;
  const [head = '', tail] = bare.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? 0 : 8 - groupCount(h) - groupCount(t);
  const groups = [...h, ...Array<string>(zeros).fill('0'), ...t].slice(0, 4);
  return `${groups.map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/**
 * The headers to send upstream, as a flat array for undici (`[name, value, name, value...]`).
 * One pass over the incoming headers; no per-header allocation beyond the output.
 */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  fwd: ForwardedInfo,
  extra?: Record<string, string>,
): string[] {
  const connectionListed = listedInConnection(incoming.connection);
  const out: string[] = [];
  let priorFor: string | undefined;
  let priorProto: string | undefined;
  let priorHost: string | undefined;
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ':' http2 pseudo-header */) continue;
    if (HOP_BY_HOP.has(name) || connectionListed?.has(name) || name.startsWith(INTERNAL_HEADER_PREFIX))
      continue;
    if (FORWARDED.has(name)) {
      if (!fwd.trustClientForwarded) continue;
      const v = Array.isArray(value) ? value.join(', ') : value;
      if (name === 'x-forwarded-for') priorFor = v;
      else if (name === 'x-forwarded-proto') priorProto = v;
      else if (name === 'x-forwarded-host') priorHost = v;
      else out.push(name, v);
      continue;
    }
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  out.push('x-forwarded-for', priorFor ? `${priorFor}, ${fwd.remoteAddress}` : fwd.remoteAddress);
  out.push(CLIENT_ADDR_HEADER, clientAddressOf(priorFor, fwd));
  out.push('x-forwarded-proto', priorProto ?? fwd.proto);
  out.push('x-forwarded-host', priorHost ?? fwd.host);
  if (extra) for (const k in extra) out.push(k, extra[k] as string);
  return out;
}

/** Response headers to pass back to the client (hop-by-hop and internal ones removed). */
export function downstreamHeaders(
  upstream: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const listed = listedInConnection(upstream.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value !== undefined && passesDownstream(name, listed)) out[name] = value;
  }
  return out;
}

/** Whether a response header goes back to the client: not hop-by-hop (nor named in Connection), not internal. */
function passesDownstream(name: string, listed: Set<string> | undefined): boolean {
  return !HOP_BY_HOP.has(name) && !listed?.has(name) && !name.startsWith(INTERNAL_HEADER_PREFIX);
}

/** What a proxy needs from a response's raw header list (as undici hands it over). */
export interface RawResponseHeaders {
  /** The headers to pass on, flat (`[name, value, ...]`), hop-by-hop and internal ones removed. */
  pass: string[];
  /** The node's "not served" code (NOT_SERVED_HEADER), if it sent one. */
  notServed: string | undefined;
  location: string | undefined;
}

/**
 * One pass over undici's raw response headers (`[name, value, ...]` as Buffers): the flat list
 * to pass back (`writeHead` takes it as is) and the two values the proxy decides on. Cheaper than
 * building a header object and filtering it into another.
 */
export function rawResponseHeaders(raw: ReadonlyArray<Buffer | string>): RawResponseHeaders {
  const all: string[] = [];
  let notServed: string | undefined;
  let location: string | undefined;
  let connection: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as Buffer | string).toString('latin1').toLowerCase();
    const value = (raw[i + 1] as Buffer | string).toString('latin1');
    if (name === NOT_SERVED_HEADER) notServed = value;
    else if (name === 'location') location = value;
    else if (name === 'connection') connection = connection ? `${connection},${value}` : value;
    all.push(name, value);
  }
  const listed = listedInConnection(connection);
  const pass: string[] = [];
  for (let i = 0; i < all.length; i += 2) {
    const name = all[i] as string;
    if (passesDownstream(name, listed)) pass.push(name, all[i + 1] as string);
  }
  return { pass, notServed, location };
}

function listedInConnection(v: string | string[] | undefined): Set<string> | undefined {
  if (!v) return undefined;
  const s = (Array.isArray(v) ? v.join(',') : v).toLowerCase();
  if (s === 'keep-alive' || s === 'close') return undefined;
  return new Set(s.split(',').map((x) => x.trim()));
}
