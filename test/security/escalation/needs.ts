/**
 * What each call needs of the caller's ACL, as OpenBao routes it: the capability of the
 * operation (a write needs `create` when its target does not exist yet, `update` when it does),
 * `list` on the directory for LIST, and `sudo` besides on the root paths: sys/auth/*,
 * auth/token/accessors and auth/token/revoke-orphan.
 */
import type { Cap } from './acl';
import type { Call } from './history';
import type { Model } from './model';

/** What a request needs of the caller's ACL: every capability in `caps` on `path`. */
export interface Need {
  path: string;
  caps: Cap[];
}

/** What `call` needs, with the model's view of what exists (null: it needs no token). */
export function needs(m: Model, call: Call): Need | null {
  const write = (path: string, exists: boolean): Need => ({ path, caps: [exists ? 'update' : 'create'] });
  const tok = (name: string, cap: Cap = 'update'): Need => ({ path: `auth/token/${name}`, caps: [cap] });
  switch (call.kind) {
    case 'policy-write':
      return write(`sys/policy/${call.name}`, m.policies.has(call.name));
    case 'policy-delete':
      return { path: `sys/policy/${call.name}`, caps: ['delete'] };
    case 'create':
      return tok(call.orphanPath ? 'create-orphan' : 'create');
    case 'role-write':
      return write(`auth/approle/role/${call.role}`, m.roles.has(call.role));
    case 'role-id-read':
      return { path: `auth/approle/role/${call.role}/role-id`, caps: ['read'] };
    case 'role-id-write':
      return { path: `auth/approle/role/${call.role}/role-id`, caps: ['update'] };
    case 'secret-id':
      return { path: `auth/approle/role/${call.role}/secret-id`, caps: ['update'] };
    case 'revoke-orphan':
      return { path: 'auth/token/revoke-orphan', caps: ['update', 'sudo'] };
    case 'lookup-self':
      return tok('lookup-self', 'read');
    case 'revoke':
    case 'lookup':
    case 'renew':
    case 'revoke-accessor':
    case 'lookup-accessor':
    case 'renew-accessor':
    case 'revoke-self':
    case 'renew-self':
      return tok(call.kind);
    case 'caps-self':
      return { path: 'sys/capabilities-self', caps: ['update'] };
    case 'kv-read':
      return { path: call.path, caps: ['read'] };
    case 'kv-write':
      return write(call.path, m.kv.has(call.path));
    case 'kv-list':
      return { path: 'secret/metadata/', caps: ['list'] };
    case 'auth-enable':
      return { path: `sys/auth/${call.mount}`, caps: ['update', 'sudo'] };
    case 'auth-read':
      return { path: `sys/auth/${call.mount}`, caps: ['read', 'sudo'] };
    case 'auth-disable':
      return { path: `sys/auth/${call.mount}`, caps: ['delete', 'sudo'] };
    case 'accessors':
      return { path: 'auth/token/accessors/', caps: ['list', 'sudo'] };
    case 'ui-mount':
      return { path: `sys/internal/ui/mounts/${call.path}`, caps: ['read'] };
    case 'unwrap':
      // With the token in the body the caller needs `update` there; a wrapping token unwrapping
      // itself is checked by its own rule (checker: wrapping), not by the ACL.
      return call.token === undefined ? null : { path: 'sys/wrapping/unwrap', caps: ['update'] };
    case 'rewrap':
      // Not `default`'s: a caller needs `update` here, whichever token it names (a wrapping token
      // as the caller is refused before: checker rule wrapping).
      return { path: 'sys/wrapping/rewrap', caps: ['update'] };
    case 'wrap-lookup':
    // An unauthenticated path: whatever token is sent is not read.
    case 'login':
    case 'pause':
      return null;
  }
}
