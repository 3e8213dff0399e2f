/**
 * ACL policies as Vault writes them, in HCL or JSON:
 *
 *     path "secret/data/app/*" { capabilities = ["read", "list"] }
 *     path "secret/+/team"      { capabilities = ["deny"] }
 *     path "secret/data/old/*"  { policy = "write" }
 *
 * The older `policy = "read" | "write" | "sudo" | "deny"` form is mapped to capabilities as
 * OpenBao maps it (LEGACY_POLICY), added to any `capabilities` given beside it; `deny` anywhere
 * leaves a path with `deny` alone, as upstream stores it.
 *
 * `*` (only at the end) matches any rest of the path, `+` matches one whole segment.
 * `min_wrapping_ttl` / `max_wrapping_ttl` require response wrapping within those bounds. Keys a
 * policy may carry upstream that leaderway does not enforce (allowed_parameters,
 * denied_parameters, required_parameters, control groups, MFA) are refused rather than ignored:
 * ignoring `denied_parameters` would grant more than the author meant.
 */
import { HclError, parseHcl } from '../../shared/config/hcl';
import { LwError } from '../../shared/errors';
import { parseDurationSeconds } from '../api/duration';

/** Capabilities, as upstream names them. */
export const CAPABILITIES = ['create', 'read', 'update', 'patch', 'delete', 'list', 'sudo', 'deny'] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** One `path` stanza. */
export interface PathRule {
  path: string;
  capabilities: Capability[];
  /**
   * Response wrapping a request on this path must ask for (seconds; absent: no bound), as
   * OpenBao's min_wrapping_ttl / max_wrapping_ttl: either one makes wrapping required here.
   */
  minWrappingTtl?: number;
  maxWrappingTtl?: number;
}

/** A parsed policy, as stored next to its text. */
export interface ParsedPolicy {
  name: string;
  paths: PathRule[];
}

/**
 * The capabilities each legacy `policy` value stands for, as OpenBao's parsePaths maps them.
 * `write` does not include `patch` (the old form predates it); `deny` replaces whatever the
 * `capabilities` list says instead of adding to it.
 */
export const LEGACY_POLICY: Readonly<Record<string, readonly Capability[]>> = {
  deny: ['deny'],
  read: ['read', 'list'],
  write: ['create', 'read', 'update', 'delete', 'list'],
  sudo: ['create', 'read', 'update', 'delete', 'list', 'sudo'],
};

/** The keys a path stanza may have: the ones leaderway enforces. */
const PATH_KEYS = new Set(['capabilities', 'policy', 'min_wrapping_ttl', 'max_wrapping_ttl']);

const bad = (message: string) => new LwError('LW_ERR_BAD_REQUEST', `failed to parse policy: ${message}`);

/** Policy names: what upstream accepts, lower-cased. */
export function policyName(raw: string): string {
  const name = raw.toLowerCase();
  if (!/^[a-z0-9][a-z0-9_.@-]{0,127}$/.test(name)) {
    throw new LwError(
      'LW_ERR_BAD_REQUEST',
      'invalid policy name: letters, digits, "_", "-", "." and "@" only',
    );
  }
  return name;
}

/**
 * A list of policy names as a token or a role carries it, as OpenBao's SanitizePolicies makes it:
 * trimmed, lower-cased, empty names dropped, duplicates removed, sorted, and `root` alone when
 * present (a root token needs nothing else). Unlike OpenBao, every name must also be a valid
 * policy name (policyName): a name no policy can have is refused rather than stored, so a
 * token's policy list and the ACL cached for it can never be ambiguous.
 */
export function sanitizePolicies(names: readonly string[]): string[] {
  const set = new Set<string>();
  for (const raw of names) {
    const trimmed = raw.trim();
    if (trimmed !== '') set.add(policyName(trimmed));
  }
  return set.has('root') ? ['root'] : [...set].sort();
}

function checkPattern(path: string): void {
  if (path === '') throw bad('a path may not be empty');
  const star = path.indexOf('*');
  if (star !== -1 && star !== path.length - 1) throw bad(`"*" may appear only at the end of a path: ${path}`);
  for (const seg of path.split('/')) {
    if (seg.includes('+') && seg !== '+') throw bad(`"+" must be a whole path segment: ${path}`);
  }
}

/** The legacy `policy` value of a path stanza as capabilities (none when absent or ""). */
function legacyCapabilities(path: string, policy: unknown): readonly Capability[] {
  if (policy === undefined || policy === '') return [];
  const caps =
    typeof policy === 'string' && Object.hasOwn(LEGACY_POLICY, policy) ? LEGACY_POLICY[policy] : undefined;
  if (!caps) throw bad(`path "${path}": invalid policy ${JSON.stringify(policy)}`);
  return caps;
}

function rule(path: string, body: unknown): PathRule {
  checkPattern(path);
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw bad(`path "${path}" needs a body`);
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!PATH_KEYS.has(key))
      throw bad(`path "${path}": "${key}" is not supported by leaderway (only capabilities are enforced)`);
  }
  const legacy = legacyCapabilities(path, b.policy);
  // Without a legacy policy the list is required; beside one it may be left out.
  const caps = b.capabilities === undefined && legacy.length > 0 ? [] : b.capabilities;
  if (!Array.isArray(caps) || caps.some((c) => typeof c !== 'string'))
    throw bad(`path "${path}": capabilities must be a list of strings`);
  for (const c of caps) {
    if (!(CAPABILITIES as readonly string[]).includes(c))
      throw bad(`path "${path}": unknown capability "${c}"`);
  }
  const all = new Set([...(caps as Capability[]), ...legacy]);
  // `deny` stands alone, as upstream stores it (the ACL lets deny win either way).
  const capabilities: Capability[] = all.has('deny') ? ['deny'] : [...all].sort();
  return { path: path.replace(/^\//, ''), capabilities, ...wrappingTtls(b) };
}

/** A stanza's min/max_wrapping_ttl, as OpenBao parses and checks them. */
function wrappingTtls(b: Record<string, unknown>): Pick<PathRule, 'minWrappingTtl' | 'maxWrappingTtl'> {
  const ttl = (field: 'min_wrapping_ttl' | 'max_wrapping_ttl'): number => {
    if (b[field] === undefined) return 0;
    try {
      return parseDurationSeconds(b[field], field);
    } catch (err) {
      throw bad(`error parsing ${field}: ${(err as Error).message}`);
    }
  };
  const min = ttl('min_wrapping_ttl');
  const max = ttl('max_wrapping_ttl');
  if (min > 0 && max > 0 && max < min) throw bad('max_wrapping_ttl cannot be less than min_wrapping_ttl');
  return { ...(min > 0 ? { minWrappingTtl: min } : {}), ...(max > 0 ? { maxWrappingTtl: max } : {}) };
}

/**
 * Parses a policy document. HCL (`path "x" { ... }`) and JSON (`{"path": {"x": {...}}}`) are
 * both accepted, as upstream. Throws 400 naming what is wrong (with HCL's line and column).
 */
export async function parsePolicy(name: string, text: string): Promise<ParsedPolicy> {
  if (text.trim() === '') throw bad('the policy is empty');
  let doc: Record<string, unknown>;
  try {
    doc = text.trim().startsWith('{')
      ? (JSON.parse(text) as Record<string, unknown>)
      : await parseHcl(text, `policy ${name}`);
  } catch (err) {
    if (err instanceof SyntaxError || err instanceof HclError) throw bad(err.message);
    throw err;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw bad('the top level must be an object');
  const paths: PathRule[] = [];
  for (const [key, value] of Object.entries(doc)) {
    if (key !== 'path') throw bad(`"${key}" is not supported by leaderway (only path stanzas)`);
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw bad('"path" needs labelled blocks');
    for (const [p, bodies] of Object.entries(value as Record<string, unknown>)) {
      // HCL gives each labelled block as a list of bodies; JSON gives the body itself.
      for (const body of Array.isArray(bodies) ? bodies : [bodies]) paths.push(rule(p, body));
    }
  }
  paths.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { name, paths };
}
