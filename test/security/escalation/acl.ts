/**
 * The model's own ACL evaluator and CIDR arithmetic, written from OpenBao's rules and not from
 * leaderway's code, so the property test does not trust what it is testing:
 *  - stanzas for one pattern in several policies are merged (capabilities unioned, `deny` wins);
 *  - an exact pattern for the path wins; a LIST (`a/b/`) also takes an exact rule for `a/b`;
 *  - otherwise, of the matching `*` and `+` patterns the most specific counts: the first wildcard
 *    later, then not ending in `*`, then fewer `+`, then longer, then lexically larger.
 */

/** The capabilities the generator grants (no `patch`: no probe needs it). */
export type Cap = 'create' | 'read' | 'update' | 'delete' | 'list' | 'sudo' | 'deny';

/** One `path` stanza of a policy. */
export interface Rule {
  path: string;
  caps: Cap[];
}

interface Pattern {
  pattern: string;
  caps: Set<Cap>;
  glob: boolean;
  /** The segments before any trailing `*` (the last may be a partial segment for a glob). */
  parts: string[];
  firstWildcard: number;
  pluses: number;
}

function compile(pattern: string, caps: Set<Cap>): Pattern {
  const glob = pattern.endsWith('*');
  const parts = (glob ? pattern.slice(0, -1) : pattern).split('/');
  const plusAt = parts.indexOf('+');
  const plusIndex = plusAt === -1 ? -1 : parts.slice(0, plusAt).join('/').length + (plusAt > 0 ? 1 : 0);
  const wild = [plusIndex, glob ? pattern.length - 1 : -1].filter((i) => i >= 0);
  return {
    pattern,
    caps,
    glob,
    parts,
    firstWildcard: wild.length ? Math.min(...wild) : pattern.length,
    pluses: parts.filter((p) => p === '+').length,
  };
}

function matches(p: Pattern, path: string): boolean {
  const segs = path.split('/');
  if (!p.glob && segs.length !== p.parts.length) return false;
  if (p.glob && segs.length < p.parts.length) return false;
  return p.parts.every((part, i) => {
    const seg = segs[i] as string;
    if (part === '+') return seg !== '';
    // A glob's last part is a prefix of its segment (`auth/token/create*` matches create-orphan).
    return p.glob && i === p.parts.length - 1 ? seg.startsWith(part) : seg === part;
  });
}

/** Positive when `a` is more specific than `b` (OpenBao's priority order). */
function specificity(a: Pattern, b: Pattern): number {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard - b.firstWildcard;
  if (a.glob !== b.glob) return a.glob ? -1 : 1;
  if (a.pluses !== b.pluses) return b.pluses - a.pluses;
  if (a.pattern.length !== b.pattern.length) return a.pattern.length - b.pattern.length;
  return a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0;
}

/** The merged ACL of a set of policies. */
export class ModelAcl {
  private readonly patterns: Pattern[];

  constructor(rules: readonly Rule[]) {
    const merged = new Map<string, Set<Cap>>();
    for (const r of rules) {
      const caps = merged.get(r.path) ?? new Set<Cap>();
      for (const c of r.caps) caps.add(c);
      merged.set(r.path, caps);
    }
    this.patterns = [...merged].map(([p, caps]) => compile(p, caps));
  }

  /** What is granted on `path` (empty when denied or unmatched). */
  capabilities(path: string): Set<Cap> {
    const exact = (p: string) =>
      this.patterns.find((r) => r.firstWildcard === r.pattern.length && r.pattern === p);
    let rule = exact(path) ?? (path.endsWith('/') ? exact(path.slice(0, -1)) : undefined);
    if (!rule) {
      const candidates = this.patterns.filter((r) => r.firstWildcard < r.pattern.length && matches(r, path));
      rule = candidates.sort((a, b) => specificity(b, a))[0];
    }
    return !rule || rule.caps.has('deny') ? new Set() : rule.caps;
  }

  /** Whether every capability in `caps` is granted on `path`. */
  allows(path: string, caps: readonly Cap[]): boolean {
    const granted = this.capabilities(path);
    return caps.every((c) => granted.has(c));
  }

  /**
   * OpenBao's `hasMountAccess` (mount ends in `/`): something is granted on the mount path itself,
   * or a rule at or under it grants something — exact and `*` rules whose path starts with the
   * mount, and `+` rules whose leading segments match the mount's (CheckAllowedFromNonExactPaths
   * in its bareMount mode).
   */
  mountAccess(mount: string): boolean {
    if (this.capabilities(mount).size > 0) return true;
    const segs = mount.split('/').slice(0, -1);
    const under = (r: Pattern) =>
      r.pluses === 0
        ? (r.glob ? r.pattern.slice(0, -1) : r.pattern).startsWith(mount)
        : segs.every((seg, i) => {
            const part = r.parts[i];
            const last = r.glob && i === r.parts.length - 1;
            return part === '+' || part === seg || (last && part !== undefined && seg.startsWith(part));
          });
    return this.patterns.some((r) => under(r) && !r.caps.has('deny') && r.caps.size > 0);
  }
}

function ipv4(addr: string): number | null {
  const parts = addr.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    n = n * 256 + Number(p);
  }
  return n;
}

function block(cidr: string): { net: number; bits: number } | null {
  const [addr, bits] = cidr.split('/');
  const net = ipv4(addr ?? '');
  const n = bits === undefined ? 32 : Number(bits);
  return net === null || !Number.isInteger(n) || n < 0 || n > 32 ? null : { net, bits: n };
}

const masked = (n: number, bits: number) => (bits === 0 ? 0 : Math.floor(n / 2 ** (32 - bits)));

/** Whether IPv4 `addr` is inside one of `cidrs`. */
export function inCidrs(cidrs: readonly string[], addr: string): boolean {
  const a = ipv4(addr);
  return (
    a !== null &&
    cidrs.some((c) => {
      const b = block(c);
      return b !== null && masked(a, b.bits) === masked(b.net, b.bits);
    })
  );
}

/** Whether every block of `inner` lies inside some block of `outer`. */
export function cidrSubset(inner: readonly string[], outer: readonly string[]): boolean {
  return inner.every((i) => {
    const b = block(i);
    return (
      b !== null &&
      outer.some((o) => {
        const ob = block(o);
        return ob !== null && b.bits >= ob.bits && masked(b.net, ob.bits) === masked(ob.net, ob.bits);
      })
    );
  });
}
