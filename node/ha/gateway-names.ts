/**
 * Which gateway certificates may connect, by name (`gateway_allowed_names`,
 * LEADERWAY_GATEWAY_ALLOWED_NAMES): patterns matched against a certificate's DNS and URI subject
 * alternative names. The subject's CN is never read: a CA that signs workloads' certificates puts
 * what it likes there, and TLS itself stopped trusting CNs once SANs existed (RFC 6125).
 *
 * The rules, exactly:
 * - A pattern containing `://` is a URI pattern (a SPIFFE ID such as
 *   `spiffe://example.org/ns/vault/sa/leaderway-gateway`) and is matched against URI SANs; any
 *   other pattern is a DNS pattern, matched against DNS SANs.
 * - `*` stands for one or more characters inside one DNS label (between dots) or one URI path
 *   segment (between slashes). It never crosses a `.` or a `/` and never matches an empty label
 *   or segment, so `*.example.org` matches `gw.example.org` but not `example.org` or
 *   `a.gw.example.org`, and `spiffe://example.org/ns/*` matches one segment after `ns/`.
 * - In a URI pattern `*` may appear only in the path: the scheme and the authority (a SPIFFE
 *   trust domain) are literal, so no pattern admits another trust domain.
 * - DNS names compare case-insensitively; a URI's scheme and authority case-insensitively, its
 *   path exactly (SPIFFE paths are case-sensitive).
 * - Names in certificates are literal: a DNS SAN must be a plain host name (a wildcard
 *   certificate `*.example.org` is no gateway's name) and a URI SAN has no query, fragment or
 *   user info; other SANs are ignored.
 */

/** The pattern the default allows: what `leaderway dev`, make-secrets.sh and the docs issue. */
export const DEFAULT_GATEWAY_NAME = 'leaderway-gateway';

/** A parsed pattern. */
export interface NamePattern {
  /** As the operator wrote it (for logs). */
  readonly text: string;
  readonly kind: 'dns' | 'uri';
  /** URI patterns: `scheme://authority`, lower case. */
  readonly origin: string;
  /** DNS labels or URI path segments; a RegExp where the pattern has a `*`. */
  readonly parts: ReadonlyArray<string | RegExp>;
}

const DNS_LABEL = /^[a-z0-9_*-]+$/;
const HOST_LABEL = /^[a-z0-9_-]+$/;
const SCHEME = /^[a-z][a-z0-9+.-]*$/;
const AUTHORITY = /^[a-z0-9._-]+(:\d+)?$/;
/** A URI SAN we match: scheme://authority[/path], no user info, query, fragment or spaces. */
const URI_NAME = /^([a-z][a-z0-9+.-]*):\/\/([^/?#@\s]+)(\/[^?#\s]*)?$/i;

function part(text: string, lower: boolean): string | RegExp {
  const t = lower ? text.toLowerCase() : text;
  if (!t.includes('*')) return t;
  const body = t
    .split('*')
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.+');
  return new RegExp(`^${body}$`, lower ? 'i' : '');
}

function partMatches(p: string | RegExp, s: string): boolean {
  return typeof p === 'string' ? p === s : p.test(s);
}

/** Parses one pattern. Throws an Error saying what is wrong. */
export function parseNamePattern(raw: string): NamePattern {
  const text = raw.trim();
  if (text === '') throw new Error('an empty pattern');
  if (text.includes('**')) throw new Error(`"${text}": use one * (it matches one or more characters)`);
  const sep = text.indexOf('://');
  if (sep < 0) {
    const labels = text.toLowerCase().split('.');
    if (!labels.every((l) => DNS_LABEL.test(l)))
      throw new Error(`"${text}": a DNS pattern is dot-separated labels of a-z 0-9 - _ and *`);
    return { text, kind: 'dns', origin: '', parts: labels.map((l) => part(l, true)) };
  }
  const scheme = text.slice(0, sep).toLowerCase();
  const rest = text.slice(sep + 3);
  const slash = rest.indexOf('/');
  const authority = (slash < 0 ? rest : rest.slice(0, slash)).toLowerCase();
  const path = slash < 0 ? '' : rest.slice(slash);
  if (!SCHEME.test(scheme) || !AUTHORITY.test(authority))
    throw new Error(`"${text}": a URI pattern needs a literal scheme and authority (no * before the path)`);
  if (/[?#\s]/.test(path)) throw new Error(`"${text}": a URI pattern has no query, fragment or spaces`);
  const segments = path === '' ? [] : path.slice(1).split('/');
  if (segments.some((s) => s === '')) throw new Error(`"${text}": empty path segment`);
  return {
    text,
    kind: 'uri',
    origin: `${scheme}://${authority}`,
    parts: segments.map((s) => part(s, false)),
  };
}

/** Parses a comma-separated list; blank means no pattern. Throws an Error naming the bad one. */
export function parseNamePatterns(list: string): NamePattern[] {
  if (list.trim() === '') return [];
  return list.split(',').map(parseNamePattern);
}

/** A certificate's DNS and URI SANs. */
export interface CertificateNames {
  dns: string[];
  uri: string[];
}

/**
 * Reads the DNS and URI entries of Node's `subjectAltName` string (`DNS:a, URI:b, IP Address:c`;
 * Node quotes a value holding a separator as a JSON string). Whatever does not parse is skipped:
 * it can only fail to match.
 */
export function certificateNames(subjectAltName: string | undefined): CertificateNames {
  const out: CertificateNames = { dns: [], uri: [] };
  const s = subjectAltName ?? '';
  let i = 0;
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon < 0) break;
    const type = s.slice(i, colon);
    let value: string | null = null;
    let next: number;
    if (s[colon + 1] === '"') {
      let j = colon + 2;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(s.slice(colon + 1, j + 1)) as string;
      } catch {
        value = null;
      }
      next = j + 1;
    } else {
      const end = s.indexOf(', ', colon + 1);
      next = end < 0 ? s.length : end;
      value = s.slice(colon + 1, next);
    }
    if (value !== null && type === 'DNS') out.dns.push(value);
    if (value !== null && type === 'URI') out.uri.push(value);
    i = next + 2;
  }
  return out;
}

function dnsMatches(p: NamePattern, name: string): boolean {
  const labels = name.toLowerCase().split('.');
  if (labels.length !== p.parts.length || !labels.every((l) => HOST_LABEL.test(l))) return false;
  return p.parts.every((q, k) => partMatches(q, labels[k] as string));
}

function uriMatches(p: NamePattern, name: string): boolean {
  const m = URI_NAME.exec(name);
  if (!m) return false;
  if (`${(m[1] as string).toLowerCase()}://${(m[2] as string).toLowerCase()}` !== p.origin) return false;
  const path = m[3] ?? '';
  const segments = path === '' ? [] : path.slice(1).split('/');
  if (segments.length !== p.parts.length) return false;
  return p.parts.every((q, k) => partMatches(q, segments[k] as string));
}

/** The first of the certificate's names that a pattern allows, or null when none is allowed. */
export function allowedName(patterns: readonly NamePattern[], names: CertificateNames): string | null {
  for (const p of patterns) {
    const found =
      p.kind === 'dns' ? names.dns.find((n) => dnsMatches(p, n)) : names.uri.find((n) => uriMatches(p, n));
    if (found !== undefined) return found;
  }
  return null;
}
