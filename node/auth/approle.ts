/**
 * AppRole, as upstream's `approle` auth method: roles with a role ID and secret IDs; logging in
 * with both yields an orphan token with the role's policies and limits. One AppRole mount's data
 * lives under `auth/<storage id>/` through the barrier:
 *   `role/<name>`                            the role (with its role ID)
 *   `role-id/<hmac(role id)>`                → the role's name (login finds the role)
 *   `secret-id/<role>/<hmac(secret id)>`     a secret ID: expiry, uses left, CIDRs, metadata
 *   `secret-id-accessor/<hmac(accessor)>`    → the secret ID's HMAC (lookup/destroy by accessor)
 * Neither a role ID nor a secret ID appears in a key; both are compared as HMACs.
 */
import { randomUUID } from 'node:crypto';
import { LwError, MESSAGES } from '../../shared/errors';
import type { JsonWriteOp, SecureStorage } from '../barrier/secure-storage';
import { KeyedMutex } from '../kv/keyed-mutex';
import { cidrsContain, cidrsWithin } from './cidr';

/** A role, as stored. Durations in seconds. */
export interface Role {
  name: string;
  role_id: string;
  bind_secret_id: boolean;
  secret_id_bound_cidrs: string[];
  secret_id_num_uses: number;
  secret_id_ttl: number;
  token_policies: string[];
  token_ttl: number;
  token_max_ttl: number;
  token_explicit_max_ttl: number;
  token_period: number;
  token_num_uses: number;
  token_bound_cidrs: string[];
  token_no_default_policy: boolean;
}

/** A secret ID, as stored. Times in ms since the epoch (expiration 0: never). */
export interface SecretId {
  hash: string;
  accessor: string;
  creation_time: number;
  expiration_time: number;
  last_updated_time: number;
  /** Uses left (0: unlimited). */
  num_uses: number;
  ttl: number;
  cidr_list: string[];
  token_bound_cidrs: string[];
  metadata: Record<string, string>;
}

const denied = () => new LwError('LW_ERR_PERMISSION_DENIED', MESSAGES.permissionDenied);
const bad = (message: string) => new LwError('LW_ERR_BAD_REQUEST', message);

/**
 * The longest secret ID a login accepts, and so the longest custom one that may be registered
 * (upstream takes up to 4,096 bytes, but one longer than a login reads could never be used).
 */
export const MAX_SECRET_ID_LENGTH = 256;

/** The messages a custom secret ID is refused with (400). */
export const SECRET_ID_MESSAGES = {
  missing: 'missing secret_id',
  notString: 'invalid secret_id: a string',
  tooLong: `secret_id is longer than the maximum of ${MAX_SECRET_ID_LENGTH} characters`,
  duplicate: 'SecretID is already registered',
} as const;

/**
 * The `secret_id` of a custom-secret-id request, checked before the role is read (upstream's
 * handleRoleSecretIDCommon): present and not empty, a string (upstream would turn a number into
 * one; refused here, as no client sends one on purpose), and no longer than a login accepts.
 */
export function customSecretId(v: unknown): string {
  if (v === undefined || v === null || v === '') throw bad(SECRET_ID_MESSAGES.missing);
  if (typeof v !== 'string') throw bad(SECRET_ID_MESSAGES.notString);
  if (v.length > MAX_SECRET_ID_LENGTH) throw bad(SECRET_ID_MESSAGES.tooLong);
  return v;
}

/** What a new secret ID (generated or custom) carries; unset fields take the role's. */
export interface SecretIdRequest {
  metadata: Record<string, string>;
  cidrList: string[];
  tokenBoundCidrs: string[];
  numUses?: number;
  ttlS?: number;
}

/**
 * A secret ID may only narrow its role (upstream's handleRoleSecretIDCommon): no more uses than
 * `secret_id_num_uses` and no longer than `secret_id_ttl` when the role sets them (0, unlimited,
 * is then refused too), CIDRs inside the role's `secret_id_bound_cidrs` and `token_bound_cidrs`.
 * Resolves the request with the role's values filled in and its TTL capped at the mount's max
 * lease TTL (`mountMaxS`); throws 400 naming the field.
 */
export function secretIdBounds(role: Role, r: SecretIdRequest, mountMaxS: number): Required<SecretIdRequest> {
  if (!role.bind_secret_id) throw bad('bind_secret_id is not set on the role');
  const numUses = r.numUses ?? role.secret_id_num_uses;
  if (role.secret_id_num_uses > 0 && (numUses === 0 || numUses > role.secret_id_num_uses))
    throw bad("num_uses cannot be higher than the role's secret_id_num_uses");
  const ttlS = r.ttlS ?? role.secret_id_ttl;
  if (role.secret_id_ttl > 0 && (ttlS === 0 || ttlS > role.secret_id_ttl))
    throw bad("ttl cannot be longer than the role's secret_id_ttl");
  if (r.cidrList.length > 0 && !cidrsWithin(r.cidrList, role.secret_id_bound_cidrs))
    throw bad("cidr_list must be a subset of the role's secret_id_bound_cidrs");
  if (r.tokenBoundCidrs.length > 0 && !cidrsWithin(r.tokenBoundCidrs, role.token_bound_cidrs))
    throw bad("token_bound_cidrs must be a subset of the role's token_bound_cidrs");
  // No longer than the mount allows (upstream's deriveSecretIDTTL): 0, no expiry, stays 0 there too.
  return { ...r, numUses, ttlS: Math.min(ttlS, mountMaxS) };
}

/** One AppRole mount. */
export class AppRole {
  private readonly root: string;
  /** Serialises secret-ID uses, so a secret ID with N uses logs in at most N times. */
  private readonly uses = new KeyedMutex();

  constructor(storageId: string) {
    this.root = `auth/${storageId}/`;
  }

  private rolePath(name: string): string {
    return `${this.root}role/${name}`;
  }
  private roleIdPath(s: SecureStorage, roleId: string): string {
    return `${this.root}role-id/${s.barrier.hmac(`role-id:${roleId}`)}`;
  }
  private secretPath(role: string, hash: string): string {
    return `${this.root}secret-id/${role}/${hash}`;
  }
  private accessorPath(s: SecureStorage, accessor: string): string {
    return `${this.root}secret-id-accessor/${s.barrier.hmac(`secret-id-accessor:${accessor}`)}`;
  }

  role(s: SecureStorage, name: string): Promise<Role | null> {
    return s.get<Role>(this.rolePath(name));
  }

  async roles(s: SecureStorage): Promise<string[]> {
    return (await s.list(`${this.root}role/`)).filter((k) => !k.endsWith('/'));
  }

  /** Creates or updates a role; a new role gets a random role ID. */
  async writeRole(s: SecureStorage, name: string, update: (r: Role) => void): Promise<void> {
    const existing = await this.role(s, name);
    const role: Role = existing ?? {
      name,
      role_id: randomUUID(),
      bind_secret_id: true,
      secret_id_bound_cidrs: [],
      secret_id_num_uses: 0,
      secret_id_ttl: 0,
      token_policies: [],
      token_ttl: 0,
      token_max_ttl: 0,
      token_explicit_max_ttl: 0,
      token_period: 0,
      token_num_uses: 0,
      token_bound_cidrs: [],
      token_no_default_policy: false,
    };
    const before = role.role_id;
    update(role);
    if (role.role_id !== before || !existing) {
      // One role per role ID: otherwise a writer of one role could take over another's logins.
      const owner = await s.get<{ name: string }>(this.roleIdPath(s, role.role_id));
      if (owner && owner.name !== name) throw bad('role_id already in use');
    }
    if (
      !role.bind_secret_id &&
      role.secret_id_bound_cidrs.length === 0 &&
      role.token_bound_cidrs.length === 0
    ) {
      throw new LwError('LW_ERR_BAD_REQUEST', 'at least one constraint should be enabled on the role');
    }
    const ops: JsonWriteOp[] = [
      { op: 'put', path: this.rolePath(name), value: role },
      { op: 'put', path: this.roleIdPath(s, role.role_id), value: { name } },
    ];
    if (existing && before !== role.role_id) ops.push({ op: 'delete', path: this.roleIdPath(s, before) });
    await s.batch(ops);
  }

  /** Deletes a role, its role-ID index and all its secret IDs. */
  async deleteRole(s: SecureStorage, name: string): Promise<void> {
    const role = await this.role(s, name);
    if (!role) return;
    for (const hash of await s.list(`${this.root}secret-id/${name}/`)) {
      const sid = await s.get<SecretId>(this.secretPath(name, hash));
      if (sid) await this.deleteSecret(s, name, sid);
    }
    await s.batch([
      { op: 'delete', path: this.rolePath(name) },
      { op: 'delete', path: this.roleIdPath(s, role.role_id) },
    ]);
  }

  /** Generates a secret ID for a role. */
  async generateSecret(
    s: SecureStorage,
    role: Role,
    o: Required<SecretIdRequest>,
  ): Promise<{ secretId: string; entry: SecretId }> {
    const secretId = randomUUID();
    return { secretId, entry: await this.registerSecret(s, role, secretId, o) };
  }

  /**
   * Stores `secretId` (generated, or the caller's own from custom-secret-id) for a role, with
   * bounds already checked by secretIdBounds. A value the role already has stored, live or
   * expired, is refused (400, upstream's registerSecretIDEntry): it would otherwise take over
   * that secret ID and leave its accessor naming the new one. The check and the write are one
   * atomic step (the batch's ifAbsent), so of two racing registrations exactly one wins. The
   * same value for another role is another secret ID, as upstream (each role its own index).
   */
  async registerSecret(
    s: SecureStorage,
    role: Role,
    secretId: string,
    o: Required<SecretIdRequest>,
  ): Promise<SecretId> {
    const hash = s.barrier.hmac(`secret-id:${secretId}`);
    const now = Date.now();
    const ttl = o.ttlS;
    const entry: SecretId = {
      hash,
      accessor: randomUUID(),
      creation_time: now,
      expiration_time: ttl > 0 ? now + ttl * 1000 : 0,
      last_updated_time: now,
      num_uses: o.numUses,
      ttl,
      cidr_list: o.cidrList,
      token_bound_cidrs: o.tokenBoundCidrs,
      metadata: o.metadata,
    };
    const path = this.secretPath(role.name, hash);
    const stored = await s.batch(
      [
        { op: 'put', path, value: entry },
        { op: 'put', path: this.accessorPath(s, entry.accessor), value: { role: role.name, hash } },
      ],
      { ifAbsent: path },
    );
    if (!stored) throw bad(SECRET_ID_MESSAGES.duplicate);
    return entry;
  }

  /** A role's secret ID by its value (null when unknown or expired). */
  async secret(s: SecureStorage, role: string, secretId: unknown): Promise<SecretId | null> {
    const e = await this.storedSecret(s, role, secretId);
    return e && !(e.expiration_time > 0 && e.expiration_time <= Date.now()) ? e : null;
  }

  /**
   * A role's secret ID by its value, expired or not (null when unknown): destroy finds an expired
   * one too, as upstream, so its value may be registered again.
   */
  async storedSecret(s: SecureStorage, role: string, secretId: unknown): Promise<SecretId | null> {
    if (typeof secretId !== 'string' || secretId === '' || secretId.length > MAX_SECRET_ID_LENGTH)
      return null;
    return s.get<SecretId>(this.secretPath(role, s.barrier.hmac(`secret-id:${secretId}`)));
  }

  /** A role's secret ID by its accessor (null when unknown). */
  async secretByAccessor(s: SecureStorage, role: string, accessor: unknown): Promise<SecretId | null> {
    if (typeof accessor !== 'string' || accessor === '' || accessor.length > 256) return null;
    const ref = await s.get<{ role: string; hash: string }>(this.accessorPath(s, accessor));
    if (!ref || ref.role !== role) return null;
    return s.get<SecretId>(this.secretPath(role, ref.hash));
  }

  /** Accessors of a role's live secret IDs. */
  async secretAccessors(s: SecureStorage, role: string): Promise<string[]> {
    const out: string[] = [];
    for (const hash of await s.list(`${this.root}secret-id/${role}/`)) {
      const e = await s.get<SecretId>(this.secretPath(role, hash));
      if (e) out.push(e.accessor);
    }
    return out.sort();
  }

  async deleteSecret(s: SecureStorage, role: string, e: SecretId): Promise<void> {
    await s.batch([
      { op: 'delete', path: this.secretPath(role, e.hash) },
      { op: 'delete', path: this.accessorPath(s, e.accessor) },
    ]);
  }

  /**
   * Checks a login: the role ID names a role, the secret ID (when the role binds one) is live,
   * has a use left and admits the client address, as do the role's CIDRs. Consumes one use.
   * Any failure is 403 permission denied, whatever the reason (no oracle for valid IDs).
   */
  async login(
    s: SecureStorage,
    roleId: unknown,
    secretId: unknown,
    clientAddr: string,
  ): Promise<{ role: Role; secret: SecretId | null }> {
    if (typeof roleId !== 'string' || roleId === '' || roleId.length > 256) throw denied();
    const ref = await s.get<{ name: string }>(this.roleIdPath(s, roleId));
    const role = ref ? await this.role(s, ref.name) : null;
    if (!role || role.role_id !== roleId) throw denied();
    if (role.secret_id_bound_cidrs.length && !cidrsContain(role.secret_id_bound_cidrs, clientAddr))
      throw denied();
    if (!role.bind_secret_id) return { role, secret: null };
    const found = await this.secret(s, role.name, secretId);
    if (!found) throw denied();
    const secret = await this.uses.run(found.hash, async () => {
      const current = await this.secret(s, role.name, secretId);
      if (!current) throw denied();
      if (current.cidr_list.length && !cidrsContain(current.cidr_list, clientAddr)) throw denied();
      if (current.num_uses === 1) await this.deleteSecret(s, role.name, current);
      else if (current.num_uses > 1) {
        await s.put(this.secretPath(role.name, current.hash), {
          ...current,
          num_uses: current.num_uses - 1,
          last_updated_time: Date.now(),
        });
      }
      return current;
    });
    return { role, secret };
  }
}
