/**
 * ACL policies in storage: `sys/policy/<name>` holds the text as written and its parsed form
 * (parsed once, at write time, so reading a policy never needs the HCL parser). `root` is built
 * in and cannot be changed; `default` is built in, may be rewritten, never deleted. The active
 * node keeps the policies and the ACLs built from them in memory for its term (TermCache).
 */
import { LwError } from '../../shared/errors';
import { WRAPPING_POLICY } from '../auth/token-store';
import { newStamp } from '../barrier/config-stamp';
import type { SecureStorage } from '../barrier/secure-storage';
import { TermCache } from '../barrier/term-cache';
import { Acl } from './acl';
import { type ParsedPolicy, parsePolicy, policyName } from './policy';

const PREFIX = 'sys/policy/';

/** A stored policy. */
interface StoredPolicy {
  name: string;
  text: string;
  policy: ParsedPolicy;
}

/** Upstream's default policy, as far as leaderway has the endpoints it grants. */
const DEFAULT_TEXT = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Allow the Vault CLI to learn which engine serves a path
path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a response-wrapping token
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token given in the request body
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}
`;

const DEFAULT_POLICY: StoredPolicy = {
  name: 'default',
  text: DEFAULT_TEXT,
  policy: {
    name: 'default',
    paths: [
      { path: 'auth/token/lookup-self', capabilities: ['read'] },
      { path: 'auth/token/renew-self', capabilities: ['update'] },
      { path: 'auth/token/revoke-self', capabilities: ['update'] },
      { path: 'sys/capabilities-self', capabilities: ['update'] },
      { path: 'sys/internal/ui/mounts/*', capabilities: ['read'] },
      { path: 'cubbyhole/*', capabilities: ['create', 'read', 'update', 'delete', 'list'] },
      { path: 'sys/wrapping/wrap', capabilities: ['update'] },
      { path: 'sys/wrapping/lookup', capabilities: ['update'] },
      { path: 'sys/wrapping/unwrap', capabilities: ['update'] },
    ],
  },
};

/** The wrapping tokens' policy: no rules (see dispatch for what a wrapping token may do). */
const WRAPPING: StoredPolicy = {
  name: WRAPPING_POLICY,
  text: '# Response-wrapping tokens may only be unwrapped (sys/wrapping/unwrap).\n',
  policy: { name: WRAPPING_POLICY, paths: [] },
};

/** The policies of the active node. */
export class PolicyStore {
  private readonly cache = new TermCache<Map<string, StoredPolicy | null>>(async () => new Map());
  private readonly acls = new TermCache<Map<string, Acl>>(async () => new Map());

  private async stored(s: SecureStorage, name: string): Promise<StoredPolicy | null> {
    // Built in and empty: a wrapping token is good for unwrapping only (dispatch), whatever storage holds.
    if (name === WRAPPING_POLICY) return WRAPPING;
    const cache = await this.cache.get(s);
    if (cache.has(name)) return cache.get(name) ?? null;
    const found = (await s.get<StoredPolicy>(PREFIX + name)) ?? (name === 'default' ? DEFAULT_POLICY : null);
    cache.set(name, found);
    return found;
  }

  /** Every policy name, `root` and `default` included (not the wrapping policy, as upstream), sorted. */
  async list(s: SecureStorage): Promise<string[]> {
    const stored = (await s.list(PREFIX)).filter((k) => !k.endsWith('/') && k !== WRAPPING_POLICY);
    const names = new Set(['default', 'root', ...stored]);
    return [...names].sort();
  }

  /** A policy's text (`root` has none), or null when there is no such policy. */
  async read(s: SecureStorage, rawName: string): Promise<{ name: string; text: string } | null> {
    const name = policyName(rawName);
    if (name === 'root') return { name, text: '' };
    const p = await this.stored(s, name);
    return p ? { name: p.name, text: p.text } : null;
  }

  /** Parses and stores a policy (HCL or JSON). Throws 400 for `root` or a policy that does not parse. */
  async write(s: SecureStorage, rawName: string, text: string): Promise<void> {
    const name = policyName(rawName);
    if (name === 'root' || name === WRAPPING_POLICY)
      throw new LwError('LW_ERR_BAD_REQUEST', `cannot update "${name}" policy`);
    const policy = await parsePolicy(name, text);
    await s.batch([
      { op: 'put', path: PREFIX + name, value: { name, text, policy } satisfies StoredPolicy },
      newStamp(),
    ]);
    await this.forget(s, name);
  }

  /** Deletes a policy (absent is fine, as upstream). Throws 400 for `root` and `default`. */
  async delete(s: SecureStorage, rawName: string): Promise<void> {
    const name = policyName(rawName);
    if (name === 'root' || name === 'default' || name === WRAPPING_POLICY)
      throw new LwError('LW_ERR_BAD_REQUEST', `cannot delete "${name}" policy`);
    await s.batch([{ op: 'delete', path: PREFIX + name }, newStamp()]);
    await this.forget(s, name);
  }

  private async forget(s: SecureStorage, name: string): Promise<void> {
    (await this.cache.get(s)).delete(name);
    (await this.acls.get(s)).clear();
  }

  /** The ACL of a token with these policies (unknown names grant nothing, as upstream). */
  async acl(s: SecureStorage, names: readonly string[]): Promise<Acl> {
    // JSON of the sorted, distinct names: no two different lists share a key, whatever the
    // names hold (a name with a newline in it could otherwise pose as two).
    const key = JSON.stringify([...new Set(names)].sort());
    const acls = await this.acls.get(s);
    let acl = acls.get(key);
    if (!acl) {
      const policies: ParsedPolicy[] = [];
      for (const n of names) {
        const p = n === 'root' ? null : await this.stored(s, n);
        if (p) policies.push(p.policy);
      }
      acl = new Acl(policies);
      acls.set(key, acl);
    }
    return acl;
  }
}
