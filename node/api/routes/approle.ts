/**
 * The routes of an AppRole mount (`auth/<path>/...`), with upstream's fields and shapes: roles
 * (list, read, write, delete), `role-id`, `secret-id` (generate, list accessors, lookup,
 * destroy, and the same by accessor), `custom-secret-id` (register a caller-chosen secret ID)
 * and `login` — the one route that needs no token.
 */
import { LwError, MESSAGES } from '../../../shared/errors';
import { sanitizePolicies } from '../../acl/policy';
import {
  AppRole,
  customSecretId,
  type Role,
  type SecretId,
  type SecretIdRequest,
  secretIdBounds,
} from '../../auth/approle';
import { cidrsWithin, parseCidrList } from '../../auth/cidr';
import { MAX_TTL_S } from '../../auth/token-store';
import { formatDuration, parseDurationSeconds } from '../duration';
import type { MountEntry } from '../mounts';
import { type Context, noContent, ok, perMount, type Reply, type Route } from '../route';
import { authBlock, stringList, warningsOf } from './token';

const bad = (message: string) => new LwError('LW_ERR_BAD_REQUEST', message);

const store = perMount((id) => new AppRole(id));

function roleName(c: Context): string {
  const name = c.params.role as string;
  if (!/^[\w.@-]{1,128}$/.test(name)) throw bad('invalid role name');
  return name;
}

async function existingRole(c: Context): Promise<Role> {
  const role = await store(c).role(c.storage, roleName(c));
  if (!role) throw bad(`role "${roleName(c)}" does not exist`);
  return role;
}

function seconds(v: unknown, field: string): number {
  return v === undefined || v === null || v === '' ? 0 : parseDurationSeconds(v, field);
}

function count(v: unknown, field: string): number {
  const n = typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw bad(`invalid ${field}: a non-negative integer`);
  return n;
}

/** Role fields a write may set; legacy names (policies, period, bound_cidr_list) too, as upstream. */
function applyRole(r: Role, b: Record<string, unknown>, mountMaxS: number): void {
  if (b.bind_secret_id !== undefined) {
    if (typeof b.bind_secret_id !== 'boolean') throw bad('invalid bind_secret_id: a boolean');
    r.bind_secret_id = b.bind_secret_id;
  }
  const cidrs = b.secret_id_bound_cidrs ?? b.bound_cidr_list;
  if (cidrs !== undefined) r.secret_id_bound_cidrs = parseCidrList(cidrs, 'secret_id_bound_cidrs');
  if (b.token_bound_cidrs !== undefined)
    r.token_bound_cidrs = parseCidrList(b.token_bound_cidrs, 'token_bound_cidrs');
  if (b.secret_id_num_uses !== undefined)
    r.secret_id_num_uses = count(b.secret_id_num_uses, 'secret_id_num_uses');
  if (b.secret_id_ttl !== undefined) r.secret_id_ttl = seconds(b.secret_id_ttl, 'secret_id_ttl');
  const policies = b.token_policies ?? b.policies;
  if (policies !== undefined) {
    r.token_policies = sanitizePolicies(stringList(policies, 'token_policies'));
    // Refused when written, not only at login: a role that could never log in is a mistake.
    if (r.token_policies.includes('root'))
      throw bad(`invalid token_policies: "root" is not allowed (${MESSAGES.loginRoot})`);
  }
  if (b.token_ttl !== undefined) r.token_ttl = seconds(b.token_ttl, 'token_ttl');
  if (b.token_max_ttl !== undefined) r.token_max_ttl = seconds(b.token_max_ttl, 'token_max_ttl');
  if (b.token_explicit_max_ttl !== undefined)
    r.token_explicit_max_ttl = seconds(b.token_explicit_max_ttl, 'token_explicit_max_ttl');
  const period = b.token_period ?? b.period;
  if (period !== undefined) r.token_period = seconds(period, 'token_period');
  if (b.token_num_uses !== undefined) r.token_num_uses = count(b.token_num_uses, 'token_num_uses');
  if (b.token_no_default_policy !== undefined) r.token_no_default_policy = b.token_no_default_policy === true;
  if (b.token_type !== undefined && b.token_type !== 'default' && b.token_type !== 'service')
    throw new LwError('LW_ERR_UNSUPPORTED', 'only service tokens are supported');
  if (r.token_max_ttl > 0 && r.token_ttl > r.token_max_ttl)
    throw bad('token_ttl must not exceed token_max_ttl');
  // A period this write sets may not pass the mount's limit (upstream refuses the legacy
  // `period` so; `token_period` too here, stricter). A role written before a tune-down keeps its
  // period, capped at each login (TokenStore: OpenBao's CalculateTTL), so unrelated updates pass.
  if (period !== undefined && r.token_period > mountMaxS)
    throw bad(
      `period of "${formatDuration(r.token_period)}" is greater than the backend's maximum lease TTL of "${formatDuration(mountMaxS)}"`,
    );
}

/** The mount's max_lease_ttl, else the system's (upstream's System().MaxLeaseTTL()). */
function mountMaxTtl(c: Context): number {
  return (c.mount as MountEntry).config.max_lease_ttl || MAX_TTL_S;
}

function roleView(r: Role): Record<string, unknown> {
  return {
    bind_secret_id: r.bind_secret_id,
    local_secret_ids: false,
    policies: r.token_policies,
    secret_id_bound_cidrs: r.secret_id_bound_cidrs,
    secret_id_num_uses: r.secret_id_num_uses,
    secret_id_ttl: r.secret_id_ttl,
    token_bound_cidrs: r.token_bound_cidrs,
    token_explicit_max_ttl: r.token_explicit_max_ttl,
    token_max_ttl: r.token_max_ttl,
    token_no_default_policy: r.token_no_default_policy,
    token_num_uses: r.token_num_uses,
    token_period: r.token_period,
    token_policies: r.token_policies,
    token_ttl: r.token_ttl,
    token_type: 'default',
  };
}

function secretView(e: SecretId): Record<string, unknown> {
  return {
    cidr_list: e.cidr_list,
    creation_time: new Date(e.creation_time).toISOString(),
    expiration_time: e.expiration_time ? new Date(e.expiration_time).toISOString() : '0001-01-01T00:00:00Z',
    last_updated_time: new Date(e.last_updated_time).toISOString(),
    metadata: e.metadata,
    secret_id_accessor: e.accessor,
    secret_id_num_uses: e.num_uses,
    secret_id_ttl: e.ttl,
    token_bound_cidrs: e.token_bound_cidrs,
  };
}

/** `metadata` of a secret ID: upstream takes a JSON-encoded string of a string map (or the map). */
function secretMetadata(v: unknown): Record<string, string> {
  if (v === undefined || v === null || v === '') return {};
  let m: unknown = v;
  if (typeof v === 'string') {
    try {
      m = JSON.parse(v);
    } catch {
      throw bad('invalid metadata: a JSON object of strings');
    }
  }
  if (
    m === null ||
    typeof m !== 'object' ||
    Array.isArray(m) ||
    Object.values(m).some((x) => typeof x !== 'string')
  )
    throw bad('invalid metadata: a JSON object of strings');
  return m as Record<string, string>;
}

/** The fields a new secret ID may carry (generated or custom), as the caller sent them. */
function secretIdRequest(b: Record<string, unknown>): SecretIdRequest {
  return {
    metadata: secretMetadata(b.metadata),
    cidrList: parseCidrList(b.cidr_list, 'cidr_list'),
    tokenBoundCidrs: parseCidrList(b.token_bound_cidrs, 'token_bound_cidrs'),
    numUses: b.num_uses === undefined ? undefined : count(b.num_uses, 'num_uses'),
    ttlS: b.ttl === undefined ? undefined : seconds(b.ttl, 'ttl'),
  };
}

/** What upstream answers for a new secret ID, generated or custom. */
function secretIdReply(secretId: string, entry: SecretId): Reply {
  return ok({
    secret_id: secretId,
    secret_id_accessor: entry.accessor,
    secret_id_num_uses: entry.num_uses,
    secret_id_ttl: entry.ttl,
  });
}

async function generate(c: Context): Promise<Reply> {
  const role = await existingRole(c);
  const b = await c.body();
  const { secretId, entry } = await store(c).generateSecret(
    c.storage,
    role,
    secretIdBounds(role, secretIdRequest(b), mountMaxTtl(c)),
  );
  return secretIdReply(secretId, entry);
}

/** custom-secret-id: the caller's own secret ID, bounded by the role exactly as a generated one. */
async function registerCustom(c: Context): Promise<Reply> {
  const b = await c.body();
  // The value is checked before the role is read, as upstream does.
  const secretId = customSecretId(b.secret_id);
  const role = await existingRole(c);
  const entry = await store(c).registerSecret(
    c.storage,
    role,
    secretId,
    secretIdBounds(role, secretIdRequest(b), mountMaxTtl(c)),
  );
  return secretIdReply(secretId, entry);
}

/**
 * Finds a secret ID from the body (`secret_id` or `secret_id_accessor`). By value, an expired one
 * is found only with `expired` (destroy, as upstream, so that value may be registered again).
 */
function secretFrom(byAccessor: boolean, expired = false) {
  return async (c: Context): Promise<{ role: Role; entry: SecretId | null }> => {
    const role = await existingRole(c);
    const b = await c.body();
    const approle = store(c);
    const entry = byAccessor
      ? await approle.secretByAccessor(c.storage, role.name, b.secret_id_accessor)
      : expired
        ? await approle.storedSecret(c.storage, role.name, b.secret_id)
        : await approle.secret(c.storage, role.name, b.secret_id);
    return { role, entry };
  };
}

function lookup(byAccessor: boolean) {
  return async (c: Context): Promise<Reply> => {
    const { entry } = await secretFrom(byAccessor)(c);
    // Upstream answers an unknown secret ID with no content.
    return entry ? ok(secretView(entry)) : noContent();
  };
}

function destroy(byAccessor: boolean) {
  return async (c: Context): Promise<Reply> => {
    const { role, entry } = await secretFrom(byAccessor, true)(c);
    if (entry) await store(c).deleteSecret(c.storage, role.name, entry);
    return noContent();
  };
}

async function login(c: Context): Promise<Reply> {
  const b = await c.body();
  const { role, secret } = await store(c).login(c.storage, b.role_id, b.secret_id, c.clientAddr);
  const mount = c.mount as MountEntry;
  const policies = new Set(role.token_policies);
  if (!role.token_no_default_policy) policies.add('default');
  // A secret ID's token CIDRs narrow the role's; if the role was narrowed after the secret ID
  // was made, the role's own apply.
  const bound =
    secret?.token_bound_cidrs.length && cidrsWithin(secret.token_bound_cidrs, role.token_bound_cidrs)
      ? secret.token_bound_cidrs
      : role.token_bound_cidrs;
  const { token, entry, warnings } = await c.svc.tokens.createForLogin(c.storage, {
    policies: [...policies].sort(),
    parent: null,
    displayName: `approle`,
    meta: { role_name: role.name },
    // The role's token_ttl, else the mount's default_lease_ttl (0: the system default), as upstream.
    ttlS: role.token_ttl || mount.config.default_lease_ttl,
    explicitMaxTtlS: role.token_explicit_max_ttl,
    // The smallest of the role's token_max_ttl and the mount's max_lease_ttl (0: unset).
    maxTtlS: smallestSet(role.token_max_ttl, mount.config.max_lease_ttl),
    periodS: role.token_period,
    renewable: true,
    numUses: role.token_num_uses,
    path: `auth/${mount.path}login`,
    boundCidrs: bound,
  });
  return ok(null, { auth: authBlock(token, entry), ...warningsOf(warnings) });
}

const role = '(?<role>[^/]+)';

/** The AppRole route table. */
export const appRoleRoutes: readonly Route[] = [
  { pattern: /^login$/, unauthenticated: true, ops: { write: login } },
  { pattern: /^role$/, ops: { list: async (c) => listOr404(await store(c).roles(c.storage)) } },
  {
    pattern: new RegExp(`^role/${role}$`),
    exists: async (c) => (await store(c).role(c.storage, roleName(c))) !== null,
    ops: {
      read: async (c) => {
        const r = await store(c).role(c.storage, roleName(c));
        if (!r) throw new LwError('LW_ERR_NOT_FOUND', '');
        return ok(roleView(r));
      },
      write: async (c) => {
        const b = await c.body();
        const maxS = mountMaxTtl(c);
        await store(c).writeRole(c.storage, roleName(c), (r) => applyRole(r, b, maxS));
        return noContent();
      },
      delete: async (c) => {
        await store(c).deleteRole(c.storage, roleName(c));
        return noContent();
      },
    },
  },
  {
    pattern: new RegExp(`^role/${role}/role-id$`),
    ops: {
      read: async (c) => ok({ role_id: (await existingRole(c)).role_id }),
      write: async (c) => {
        const id = (await c.body()).role_id;
        if (typeof id !== 'string' || id === '' || id.length > 256) throw bad('invalid role_id');
        await existingRole(c);
        await store(c).writeRole(c.storage, roleName(c), (r) => {
          r.role_id = id;
        });
        return noContent();
      },
    },
  },
  {
    pattern: new RegExp(`^role/${role}/secret-id$`),
    ops: {
      write: generate,
      list: async (c) => listOr404(await store(c).secretAccessors(c.storage, (await existingRole(c)).name)),
    },
  },
  { pattern: new RegExp(`^role/${role}/custom-secret-id$`), ops: { write: registerCustom } },
  { pattern: new RegExp(`^role/${role}/secret-id/lookup$`), ops: { write: lookup(false) } },
  {
    pattern: new RegExp(`^role/${role}/secret-id/destroy$`),
    ops: { write: destroy(false), delete: destroy(false) },
  },
  { pattern: new RegExp(`^role/${role}/secret-id-accessor/lookup$`), ops: { write: lookup(true) } },
  {
    pattern: new RegExp(`^role/${role}/secret-id-accessor/destroy$`),
    ops: { write: destroy(true), delete: destroy(true) },
  },
];

/** The smallest of the durations that are set (> 0); 0 when none is. */
function smallestSet(...seconds: number[]): number {
  const set = seconds.filter((x) => x > 0);
  return set.length ? Math.min(...set) : 0;
}

function listOr404(keys: string[]): Reply {
  if (keys.length === 0) throw new LwError('LW_ERR_NOT_FOUND', '');
  return ok({ keys });
}
