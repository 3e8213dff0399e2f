/**
 * Who may create which token: the rules OpenBao's token store applies on `auth/token/create`
 * and `auth/token/create-orphan` (its `handleCreateCommon`), as one pure decision so each rule is
 * tested in milliseconds (test/unit/token-rules.test.ts). "Sudo" is root, or the `sudo`
 * capability on the create path itself, as upstream's SudoPrivilege decides it.
 *
 * The rules, in upstream's order:
 *  - a parent with a use limit (`num_uses` > 0) creates nothing: it could escape its count;
 *  - `root` only from a root parent, sudo or not;
 *  - without sudo, the policies asked for are a subset of the parent's (`default` included: a
 *    parent without `default` cannot hand it out), and `default` is added only when the parent
 *    has it; with sudo, any policies, `default` added; `no_default_policy` always strips it;
 *  - `no_parent` orphans and periodic tokens need sudo (`create-orphan` is governed by its own
 *    ACL path, as upstream);
 *  - an expiring root token cannot create a root token that never expires.
 * And two that leaderway adds, stricter than upstream, so that no token outlives or outreaches
 * the one that made it without a sudo grant:
 *  - without sudo, `explicit_max_ttl` may not reach past the parent's own hard limit
 *    (`max_expire`), and an orphan's lifetime is capped at it (a child dies with its parent, an
 *    orphan would not);
 *  - the new token is bound to the parent's CIDRs, orphan or not (upstream: children only).
 */
import { LwError } from '../../shared/errors';
import { sanitizePolicies } from '../acl/policy';
import { isRoot, type TokenEntry, type TokenSpec } from './token-store';

/** The fields of a create request, parsed (durations in seconds). */
export interface CreateRequest {
  policies: string[];
  noDefaultPolicy: boolean;
  noParent: boolean;
  ttlS: number;
  explicitMaxTtlS: number;
  periodS: number;
  numUses: number;
  renewable: boolean;
  displayName: string;
  meta: Record<string, string> | null;
}

/** Messages clients see, upstream's where upstream has one. */
export const CREATE_MESSAGES = {
  restrictedUse: 'restricted use token cannot generate child tokens',
  rootFromNonRoot: 'root tokens may not be created without parent token being root',
  subset: 'child policies must be subset of parent',
  orphan: 'root or sudo privileges required to create orphan token',
  periodic: 'root or sudo privileges required to create periodic token',
  nonExpiringRoot: 'expiring root tokens cannot create non-expiring root tokens',
  beyondParent:
    "root or sudo privileges required to create a token with explicit_max_ttl beyond the parent's",
} as const;

const refuse = (message: string) => new LwError('LW_ERR_BAD_REQUEST', message);

/** The policies of the new token, or a 400 naming the rule broken. */
function childPolicies(parent: TokenEntry, r: CreateRequest, sudo: boolean): string[] {
  const asked = sanitizePolicies(r.policies);
  if (asked.includes('root') && !isRoot(parent)) throw refuse(CREATE_MESSAGES.rootFromNonRoot);
  const parentHas = new Set(parent.policies);
  let out: Set<string>;
  if (asked.length === 0) {
    // Inherited as they are: `default` only if the parent has it.
    out = new Set(parent.policies);
  } else if (sudo) {
    out = new Set([...asked, 'default']);
  } else {
    if (!asked.every((p) => parentHas.has(p))) throw refuse(CREATE_MESSAGES.subset);
    out = new Set(asked);
    if (parentHas.has('default')) out.add('default');
  }
  if (r.noDefaultPolicy) out.delete('default');
  return sanitizePolicies([...out]);
}

/**
 * Decides a create request by `parent` (its entry as authenticated, before its use was
 * counted). `sudo`: root, or `sudo` on the create path. `orphanPath`: `create-orphan`.
 * Resolves the spec to store, or throws a 400 naming the rule.
 */
export function decideTokenCreate(
  parent: TokenEntry,
  r: CreateRequest,
  o: { sudo: boolean; orphanPath: boolean; now: number },
): TokenSpec {
  const sudo = o.sudo || isRoot(parent);
  if ((parent.num_uses ?? 0) > 0) throw refuse(CREATE_MESSAGES.restrictedUse);
  const policies = childPolicies(parent, r, sudo);
  if (r.noParent && !sudo) throw refuse(CREATE_MESSAGES.orphan);
  if (r.periodS > 0 && !sudo) throw refuse(CREATE_MESSAGES.periodic);
  const orphan = r.noParent || o.orphanPath;
  let explicitMaxTtlS = r.explicitMaxTtlS;
  const parentMax = parent.max_expire ?? 0;
  if (!sudo && parentMax > 0) {
    const leftS = Math.max(1, Math.floor((parentMax - o.now) / 1000));
    if (explicitMaxTtlS > leftS) throw refuse(CREATE_MESSAGES.beyondParent);
    if (orphan && explicitMaxTtlS === 0) explicitMaxTtlS = leftS;
  }
  const neverExpires = policies.includes('root') && r.ttlS === 0 && explicitMaxTtlS === 0 && r.periodS === 0;
  if (neverExpires && (parent.expire_time ?? 0) > 0) throw refuse(CREATE_MESSAGES.nonExpiringRoot);
  return {
    policies,
    parent: orphan ? null : parent,
    displayName: r.displayName,
    meta: r.meta,
    ttlS: r.ttlS,
    explicitMaxTtlS,
    periodS: r.periodS,
    renewable: r.renewable,
    numUses: r.numUses,
    path: o.orphanPath ? 'auth/token/create-orphan' : 'auth/token/create',
    boundCidrs: [...(parent.bound_cidrs ?? [])],
  };
}
