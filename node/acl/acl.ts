/**
 * The ACL of a token: its policies merged, answering "which capabilities on this path?".
 *
 * Upstream's rules: stanzas for the same path pattern in several policies are merged (their
 * capabilities unioned; `deny` anywhere wins and leaves nothing). For a request path, of all the
 * patterns that match, only the most specific one counts — upstream's priority order:
 *   1. the pattern whose first `+` or `*` comes later wins (an exact path has none: it wins);
 *   2. a pattern not ending in `*` beats one that does;
 *   3. fewer `+` segments win;
 *   4. the longer pattern wins;
 *   5. the lexicographically larger pattern wins.
 * A path's wrapping TTL bounds merge as upstream's do: the smallest minimum and the smallest
 * maximum of the policies that set one.
 */
import type { Capability, ParsedPolicy, PathRule } from './policy';

/** A path's wrapping TTL bounds, seconds (0: none). */
interface WrapBounds {
  min: number;
  max: number;
}

interface CompiledRule {
  pattern: string;
  regex: RegExp;
  caps: Set<Capability>;
  wrap: WrapBounds;
  /** Index of the first `+` or `*` (the pattern's length when it has none). */
  firstWildcard: number;
  glob: boolean;
  pluses: number;
}

function compile(pattern: string, caps: Set<Capability>, wrap: WrapBounds): CompiledRule {
  const glob = pattern.endsWith('*');
  const body = glob ? pattern.slice(0, -1) : pattern;
  const source = body
    .split('/')
    .map((seg) => (seg === '+' ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  const plus = pattern.search(/(^|\/)\+(\/|$)/);
  const firstPlus = plus === -1 ? -1 : pattern.indexOf('+', plus);
  const firsts = [firstPlus, glob ? pattern.length - 1 : -1].filter((i) => i >= 0);
  return {
    pattern,
    regex: new RegExp(`^${source}${glob ? '' : '$'}`),
    caps,
    wrap,
    firstWildcard: firsts.length ? Math.min(...firsts) : pattern.length,
    glob,
    pluses: pattern.split('/').filter((s) => s === '+').length,
  };
}

/** Positive when `a` has priority over `b`. */
function priority(a: CompiledRule, b: CompiledRule): number {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard - b.firstWildcard;
  if (a.glob !== b.glob) return a.glob ? -1 : 1;
  if (a.pluses !== b.pluses) return b.pluses - a.pluses;
  if (a.pattern.length !== b.pattern.length) return a.pattern.length - b.pattern.length;
  return a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0;
}

/** A token's merged policies. */
export class Acl {
  private readonly rules: CompiledRule[];
  /** Rules without a wildcard, by path. */
  private readonly exact: Map<string, CompiledRule>;

  constructor(policies: readonly ParsedPolicy[]) {
    const merged = new Map<string, { caps: Set<Capability>; wrap: WrapBounds }>();
    for (const p of policies) {
      for (const r of p.paths) {
        const m = merged.get(r.path) ?? { caps: new Set<Capability>(), wrap: { min: 0, max: 0 } };
        for (const c of r.capabilities) m.caps.add(c);
        mergeWrap(m.wrap, r);
        merged.set(r.path, m);
      }
    }
    // Highest priority first, so the first match is the one that counts.
    this.rules = [...merged].map(([p, m]) => compile(p, m.caps, m.wrap)).sort((a, b) => priority(b, a));
    this.exact = new Map(
      this.rules.filter((r) => r.firstWildcard === r.pattern.length).map((r) => [r.pattern, r]),
    );
  }

  /**
   * The capabilities granted on `path` (empty when denied or unmatched). List requests come as a
   * directory (`a/b/`); as upstream, an exact rule for the path without its slash (`a/b`) wins.
   */
  capabilities(path: string): Set<Capability> {
    const rule = this.ruleFor(path);
    if (!rule || rule.caps.has('deny')) return new Set();
    return rule.caps;
  }

  /** The rule that counts for `path`, if any. */
  private ruleFor(path: string): CompiledRule | undefined {
    const exact = path.endsWith('/') ? this.exact.get(path.slice(0, -1)) : undefined;
    return exact ?? this.rules.find((r) => r.regex.test(path));
  }

  /**
   * Whether the ACL grants anything on the mount at `mountPath` (ending in `/`) or on any path
   * under it — upstream's hasMountAccess, which decides whether a caller may learn that the
   * mount exists (sys/internal/ui/mounts).
   */
  hasMountAccess(mountPath: string): boolean {
    return this.rules.some(
      (r) =>
        !r.caps.has('deny') && r.caps.size > 0 && (r.regex.test(mountPath) || mayMatchUnder(r, mountPath)),
    );
  }

  /**
   * Whether every capability in `needed` is granted on `path`, to a request asking for a wrap
   * TTL of `wrapTtl` seconds (null: none) — within the path's wrapping bounds if it has any.
   */
  allows(path: string, needed: readonly Capability[], wrapTtl: number | null = null): boolean {
    const caps = this.capabilities(path);
    if (!needed.every((c) => caps.has(c))) return false;
    const { min, max } = this.ruleFor(path)?.wrap ?? { min: 0, max: 0 };
    if (min === 0 && max === 0) return true;
    if (wrapTtl === null || (max > 0 && wrapTtl > max) || wrapTtl < min) return false;
    return max === 0 || min <= max;
  }
}

/** Merges a stanza's wrapping bounds into a path's: the smallest set minimum and maximum. */
function mergeWrap(into: WrapBounds, r: PathRule): void {
  const min = r.minWrappingTtl ?? 0;
  const max = r.maxWrappingTtl ?? 0;
  if (min > 0 && (into.min === 0 || min < into.min)) into.min = min;
  if (max > 0 && (into.max === 0 || max < into.max)) into.max = max;
}

/**
 * Whether `rule` matches some path that starts with `prefix` (a mount path ending in `/`):
 * segment by segment, each whole segment of the prefix must be matched by the rule's (equal,
 * or `+`), and the rule must go on past the prefix — or end in a `*` whose partial segment the
 * prefix's segment begins with.
 */
function mayMatchUnder(rule: CompiledRule, prefix: string): boolean {
  const body = rule.glob ? rule.pattern.slice(0, -1) : rule.pattern;
  const ruleSegs = body.split('/');
  const mountSegs = prefix.split('/').slice(0, -1);
  for (let i = 0; i < mountSegs.length; i++) {
    const seg = mountSegs[i] as string;
    const r = ruleSegs[i];
    if (r === undefined) return false;
    if (rule.glob && i === ruleSegs.length - 1) return seg.startsWith(r);
    if (r !== '+' && r !== seg) return false;
  }
  return ruleSegs.length > mountSegs.length || rule.glob;
}
