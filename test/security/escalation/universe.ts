/**
 * The universe the generator draws from: few names, so calls collide often — five policies,
 * three roles, a handful of paths (exact, `*` and `+`) on KV, policies, token creation, AppRole
 * and the sudo paths, CIDR blocks that nest and addresses inside and outside them.
 */
import type { Cap } from './acl';
import type { Call } from './history';

/** Policy paths: exact, `*` and `+`, on KV, policies, token creation, AppRole and sudo paths. */
export const POLICY_PATHS = [
  'secret/data/a',
  'secret/data/b/*',
  'secret/data/+/x',
  'secret/*',
  'secret/metadata/',
  'sys/policy/*',
  'sys/policy/p1',
  'auth/token/create',
  'auth/token/create-orphan',
  'auth/token/create*',
  'auth/token/*',
  'auth/token/lookup',
  'auth/token/revoke',
  'auth/token/revoke-orphan',
  'auth/token/renew-accessor',
  'auth/token/lookup-accessor',
  'auth/token/accessors',
  'auth/approle/role/*',
  'auth/approle/role/r1',
  'auth/approle/role/+/secret-id',
  'auth/approle/role/+/role-id',
  'sys/auth/*',
  'sys/auth/x1',
  'sys/internal/ui/mounts/*',
];
/** Concrete paths for capabilities-self. */
export const PROBE_PATHS = [
  'secret/data/a',
  'secret/data/b/x',
  'sys/policy/p2',
  'auth/token/create',
  'auth/token/create-orphan',
  'auth/token/revoke-orphan',
  'auth/approle/role/r1',
  'auth/approle/role/r2/secret-id',
  'sys/auth/x1',
];
/** Policy names the generator writes and asks for (never `default`, whose rules the model fixes). */
export const POLICIES = ['p1', 'p2', 'p3', 'p4', 'p5'];
/** AppRole role names. */
export const ROLES = ['r1', 'r2', 'r3'];
/**
 * CIDR blocks for bindings: some nest (10.1.2.0/24 in 10.1.0.0/16 in 10.0.0.0/8), some do not;
 * one is loopback, so a bound token can also be used (or refused) straight at a node — a standby
 * serving the read — where the address is the socket's, not a header's.
 */
export const CIDRS = [
  '10.1.0.0/16',
  '10.1.2.0/24',
  '10.2.0.0/16',
  '10.0.0.0/8',
  '192.0.2.0/24',
  '127.0.0.0/29',
];
/**
 * Client addresses, inside and outside those blocks: claimed through the gateway (X-Forwarded-For),
 * and the loopback ones also used as the source address of requests straight to a node.
 */
export const ADDRS = [
  '10.1.2.3',
  '10.1.9.9',
  '10.2.0.9',
  '192.0.2.10',
  '198.51.100.7',
  '127.0.0.2',
  '127.0.0.9',
];
/** Capabilities a random stanza grants (`deny` is added separately, rarely). */
export const CAPS: Cap[] = ['create', 'read', 'update', 'delete', 'list', 'sudo'];
/** TTLs, seconds: 2-4 s expire within a run; 4,000,000 s asks for more than 768h. */
export const TTLS = [2, 3, 4, 30, 3600, 4_000_000];
/** Explicit and max TTLs, seconds: 2,880,000 s (800h) asks for more than 768h. */
export const MAX_TTLS = [3, 10, 3600, 2_880_000];

/**
 * How often a random step is a rewrap or a lookup (drawn apart from WEIGHTS, from the
 * generator's wrapping stream, so adding them did not reshuffle the other calls).
 */
export const WRAPPING_CALLS = 0.03;

/** How often each kind of call comes (relative weights; rewrap and lookup: WRAPPING_CALLS). */
export const WEIGHTS: Array<[Call['kind'], number]> = [
  ['policy-write', 7],
  ['policy-delete', 1],
  ['create', 18],
  ['role-write', 7],
  ['role-id-read', 3],
  ['role-id-write', 3],
  ['secret-id', 7],
  ['login', 10],
  ['revoke', 2],
  ['revoke-self', 1],
  ['revoke-accessor', 2],
  ['revoke-orphan', 2],
  ['renew', 2],
  ['renew-self', 2],
  ['renew-accessor', 2],
  ['lookup', 3],
  ['lookup-self', 3],
  ['lookup-accessor', 2],
  ['caps-self', 3],
  ['kv-read', 5],
  ['kv-write', 3],
  ['kv-list', 2],
  ['auth-enable', 2],
  ['auth-read', 2],
  ['auth-disable', 2],
  ['accessors', 2],
  ['ui-mount', 3],
  ['unwrap', 2],
  ['pause', 2],
];
