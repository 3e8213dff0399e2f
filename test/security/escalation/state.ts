/**
 * The model's vocabulary: its timing constants, OpenBao's default policy and system max TTL, the
 * shapes of what it tracks (tokens, roles, secret IDs) and two AppRole rules it needs in several
 * places. All times are ms since the epoch, on the client's clock.
 */
import { cidrSubset, type Rule } from './acl';
import type { RoleFields } from './history';

/** Clock slack after an expected expiry before "still accepted" is a violation. */
export const SLACK_MS = 2_000;
/** Lease seconds in responses are rounded: the true expiry may be up to this much later. */
export const ROUND_MS = 1_000;
/** OpenBao's system max TTL (768h): no non-root token lives longer. */
export const SYSTEM_MAX_S = 768 * 3600;

/** OpenBao's default policy, as far as leaderway has the endpoints it names. */
export const DEFAULT_RULES: Rule[] = [
  { path: 'auth/token/lookup-self', caps: ['read'] },
  { path: 'auth/token/renew-self', caps: ['update'] },
  { path: 'auth/token/revoke-self', caps: ['update'] },
  { path: 'sys/capabilities-self', caps: ['update'] },
  { path: 'sys/internal/ui/mounts/*', caps: ['read'] },
  { path: 'cubbyhole/*', caps: ['create', 'read', 'update', 'delete', 'list'] },
  { path: 'sys/wrapping/wrap', caps: ['update'] },
  { path: 'sys/wrapping/lookup', caps: ['update'] },
  { path: 'sys/wrapping/unwrap', caps: ['update'] },
];

/** A token as the model knows it. Times in ms. */
export interface ModelToken {
  label: string;
  policies: string[];
  /** The parent's label while it has one (null: an orphan). */
  parent: string | null;
  /** Where it came from: the init root token, auth/token/create*, an AppRole login, a wrapped answer. */
  source: 'init' | 'token' | 'approle' | 'wrap';
  /** Uses it was issued with (0: unlimited). */
  numUses: number;
  /** Answers to its requests that certainly spent a use (2xx, 400): a lower bound. */
  used: number;
  /** When the answer to its last use came (it is dead to any later request). */
  spentAt?: number;
  /** Upper bound of its expiry (Infinity: never expires, or unknown after a lost renewal). */
  expiry: number;
  /** Lower bound of its expiry (two-sided checks need it certainly alive). */
  expiryLow: number;
  /** Upper bound of the end of its max lifetime (Infinity: none). */
  maxEnd: number;
  /** Where it may be used from (empty: anywhere). */
  cidrs: string[];
  /** When a revocation of it (or, cascading, of an ancestor) was acknowledged. */
  revokedAt?: number;
}

/** An AppRole role: its fields after every acknowledged write, merged, and its last writer. */
export interface ModelRole {
  name: string;
  /** Unknown until read or written. */
  roleId?: string;
  fields: Required<RoleFields>;
  /** The token label of the last acknowledged write. */
  writer: string;
}

/** A secret ID, as its generation was answered. */
export interface ModelSecret {
  label: string;
  role: string;
  /** Logins it allows (0: unlimited), and 2xx logins it made. */
  numUses: number;
  used: number;
  /** Upper bound of its expiry (Infinity: never). */
  expiresAt: number;
  cidrList: string[];
  tokenBoundCidrs: string[];
  /** When its mount was disabled, which destroyed it. */
  deadAt?: number;
}

/** A role's fields before any write. */
export const NO_ROLE: Required<RoleFields> = {
  token_policies: [],
  token_no_default_policy: false,
  token_num_uses: 0,
  token_ttl: 0,
  token_max_ttl: 0,
  token_explicit_max_ttl: 0,
  token_period: 0,
  token_bound_cidrs: [],
  secret_id_num_uses: 0,
  secret_id_ttl: 0,
  secret_id_bound_cidrs: [],
};

/** The longest life an AppRole token may have from its role: OpenBao's CalculateTTL. */
export function approleMaxS(f: Required<RoleFields>): number {
  const set = (n: number) => (n > 0 ? n : Number.POSITIVE_INFINITY);
  // Periodic tokens renew forever unless an explicit max caps them; max_ttl only caps their period.
  if (f.token_period > 0) return set(f.token_explicit_max_ttl);
  return Math.min(SYSTEM_MAX_S, set(f.token_explicit_max_ttl), set(f.token_max_ttl));
}

/**
 * Where an AppRole login's token may be used: the secret ID's token CIDRs, else the role's. When
 * the role was narrowed after the secret ID was made (its CIDRs no longer inside the role's),
 * OpenBao keeps the secret ID's and leaderway applies the role's: either block is accepted then.
 */
export function loginCidrs(secret: string[], role: string[]): string[] {
  if (secret.length === 0) return role;
  return role.length === 0 || cidrSubset(secret, role) ? secret : [...secret, ...role];
}

/** The policy of wrapping tokens (grants nothing: a wrapping token is good for its own unwrap only). */
export const WRAPPING_POLICY = 'response-wrapping';
