/**
 * Secrets engine mounts: `sys/mounts` (list), `sys/mounts/:path` (enable, read, disable),
 * `sys/mounts/:path/tune` (read, tune) and `sys/internal/ui/mounts[/:path]` (what the Vault CLI
 * asks before a `kv` command). Only KV is served: type `kv` with options.version 1 or 2,
 * `kv-v1`, `kv-v2`, or `generic` (KV v1's old name, kept as the mount's type, as upstream).
 * Disabling a mount deletes its data, as upstream. Also the views and the tuning rules both
 * mount tables share (sys-auth.ts uses them for auth methods).
 */
import { LwError } from '../../../shared/errors';
import { isRoot } from '../../auth/token-store';
import { purge } from '../../kv/purge';
import { parseDurationSeconds } from '../duration';
import { type KvVersion, type MountEntry, type MountType, mountPath } from '../mounts';
import { type Context, noContent, ok, type Reply, type Route, sysOk } from '../route';

const bad = (message: string) => new LwError('LW_ERR_BAD_REQUEST', message);

/** The pseudo-mount for sys/ that upstream lists too. */
const SYS_MOUNT = {
  type: 'system',
  description: 'system endpoints used for control, policy and debugging',
  accessor: 'system_0000000',
  uuid: '00000000-0000-0000-0000-000000000000',
  config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false },
  options: null,
  local: false,
  seal_wrap: true,
  external_entropy_access: false,
  plugin_version: '',
  running_plugin_version: '',
  running_sha256: '',
};

/** A mount as sys/mounts shows it. */
export function mountView(m: MountEntry): Record<string, unknown> {
  return {
    type: m.type,
    description: m.description,
    accessor: m.accessor,
    uuid: m.uuid,
    config: { ...m.config, force_no_cache: false },
    // Upstream keeps the options a mount was enabled with: none (null) for a `generic` mount.
    options: Object.keys(m.options).length > 0 ? { ...m.options } : null,
    local: m.local,
    seal_wrap: m.seal_wrap,
    external_entropy_access: false,
    plugin_version: '',
    running_plugin_version: `v${m.options.version ?? '1'}.0.0+builtin`,
    running_sha256: '',
  };
}

function optionalObject(v: unknown, field: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(`invalid ${field}`);
  return v as Record<string, unknown>;
}

/** An auth mount as sys/auth shows it. */
export function authView(m: MountEntry): Record<string, unknown> {
  return {
    type: m.type,
    description: m.description,
    accessor: m.accessor,
    uuid: m.uuid,
    config: {
      default_lease_ttl: m.config.default_lease_ttl,
      max_lease_ttl: m.config.max_lease_ttl,
      token_type: 'default-service',
    },
    options: null,
    local: m.local,
    seal_wrap: m.seal_wrap,
    external_entropy_access: false,
    plugin_version: '',
    running_plugin_version: 'v0.0.0+builtin',
    running_sha256: '',
  };
}

/**
 * Types that exist once, where the server put them (OpenBao's singletonMounts): enabling one is
 * 403, whatever the path.
 */
const SINGLETON_TYPES = new Set([
  'cubbyhole',
  'ns_cubbyhole',
  'system',
  'ns_system',
  'token',
  'ns_token',
  'identity',
  'ns_identity',
]);

/** What a `sys/mounts/:path` body asks for: the type to store and the KV version to serve. */
export interface EngineSpec {
  type: Extract<MountType, 'kv' | 'generic'>;
  /** Absent for `generic`: upstream refuses a version for it, and serves it as KV v1. */
  version?: KvVersion;
}

/**
 * The engine a `sys/mounts/:path` body asks for, with OpenBao's handleMount and mount rules:
 * `kv-v1`/`kv-v2` are `kv` with that version; only the KV types take a version; `generic` is
 * KV v1 under its old name; a singleton type is not mountable (403); anything else is not in
 * the catalog.
 */
export function engineSpec(body: Record<string, unknown>): EngineSpec {
  const type = body.type;
  if (typeof type !== 'string' || type === '') throw bad('missing type');
  const options = optionalObject(body.options, 'options');
  const version =
    options.version === undefined || options.version === '' ? undefined : String(options.version);
  for (const [alias, fixed] of [
    ['kv-v1', '1'],
    ['kv-v2', '2'],
  ] as const) {
    if (type !== alias) continue;
    if (version !== undefined && version !== fixed) throw bad(`${alias} mounts are version ${fixed}`);
    return { type: 'kv', version: fixed };
  }
  if (type === 'kv') {
    if (version === undefined || version === '1') return { type: 'kv', version: '1' };
    if (version === '2') return { type: 'kv', version: '2' };
    throw bad(`invalid KV version "${version}": 1 or 2`);
  }
  if (version !== undefined) throw bad(`secrets engine "${type}" does not allow setting a version`);
  if (type === 'generic') return { type: 'generic' };
  if (SINGLETON_TYPES.has(type))
    throw new LwError('LW_ERR_PERMISSION_DENIED', `mount type of "${type}" is not mountable`);
  throw bad(`plugin not found in the catalog: ${type}`);
}

/** A lease TTL field: "" keeps the current value, "system" (upstream's word) resets it to 0. */
function leaseTtl(v: unknown, field: string, current: number): number {
  if (v === undefined || v === null || v === '') return current;
  return v === 'system' ? 0 : parseDurationSeconds(v, field);
}

/**
 * default_lease_ttl / max_lease_ttl / listing_visibility from a mount's `config` (`enabling`) or
 * a tune body, over `base`. A max below the default is refused, in upstream's words for each.
 */
export function mountConfig(
  src: Record<string, unknown>,
  base: MountEntry['config'],
  enabling = false,
): MountEntry['config'] {
  const out = { ...base };
  out.default_lease_ttl = leaseTtl(src.default_lease_ttl, 'default_lease_ttl', base.default_lease_ttl);
  out.max_lease_ttl = leaseTtl(src.max_lease_ttl, 'max_lease_ttl', base.max_lease_ttl);
  if (out.default_lease_ttl > 0 && out.max_lease_ttl > 0 && out.max_lease_ttl < out.default_lease_ttl) {
    throw bad(
      enabling
        ? 'given default lease TTL greater than given max lease TTL'
        : `backend max lease TTL of ${out.max_lease_ttl} would be less than backend default lease TTL of ${out.default_lease_ttl}`,
    );
  }
  if (src.listing_visibility !== undefined) {
    if (
      src.listing_visibility !== '' &&
      src.listing_visibility !== 'hidden' &&
      src.listing_visibility !== 'unauth'
    )
      throw bad('invalid listing_visibility: "", "hidden" or "unauth"');
    out.listing_visibility = src.listing_visibility;
  }
  return out;
}

/** The fields of a mount a tune may change. */
export type Tunable = Pick<MountEntry, 'type' | 'description' | 'config'>;

/**
 * The tuning both tables share (OpenBao's handleTuneWriteCommon): description, the lease TTLs
 * and listing_visibility. `m` is the draft the mount table hands to its `tune`.
 */
export function tuneCommon(m: Tunable, body: Record<string, unknown>): void {
  if (body.description !== undefined && body.description !== null) {
    if (typeof body.description !== 'string') throw bad('invalid description');
    m.description = body.description;
  }
  m.config = mountConfig(body, m.config);
}

async function list(c: Context): Promise<Reply> {
  const data: Record<string, unknown> = {};
  for (const m of await c.svc.mounts.list(c.storage)) data[m.path] = mountView(m);
  data['sys/'] = SYS_MOUNT;
  return sysOk(data);
}

async function enable(c: Context): Promise<Reply> {
  const body = await c.body();
  const spec = engineSpec(body);
  const description = body.description ?? '';
  if (typeof description !== 'string') throw bad('invalid description');
  const config = mountConfig(
    optionalObject(body.config, 'config'),
    { default_lease_ttl: 0, max_lease_ttl: 0, listing_visibility: '' },
    true,
  );
  await c.svc.mounts.mount(c.storage, c.params.path as string, {
    type: spec.type,
    description,
    options: spec.version ? { version: spec.version } : {},
    config,
    local: body.local === true,
    seal_wrap: body.seal_wrap === true,
  });
  return noContent();
}

async function exact(c: Context): Promise<MountEntry> {
  const found = await c.svc.mounts.get(c.storage, c.params.path as string);
  if (!found) throw bad(`no mount at ${mountPath(c.params.path as string)}`);
  return found;
}

async function disable(c: Context): Promise<Reply> {
  const removed = await c.svc.mounts.unmount(c.storage, c.params.path as string);
  // Upstream answers success for a path that is not mounted, so it does not reveal which are.
  if (removed) await purge(c.storage, `kv/${removed.storage_id}/`);
  return noContent();
}

function tuneView(m: MountEntry): Record<string, unknown> {
  return {
    default_lease_ttl: m.config.default_lease_ttl,
    max_lease_ttl: m.config.max_lease_ttl,
    force_no_cache: false,
    description: m.description,
    options: { ...m.options },
    listing_visibility: m.config.listing_visibility,
  };
}

async function tune(c: Context): Promise<Reply> {
  const body = await c.body();
  await c.svc.mounts.tune(c.storage, c.params.path as string, (m) => {
    const options = optionalObject(body.options, 'options');
    if (options.version !== undefined && String(options.version) !== m.options.version) {
      throw bad(
        'changing the KV version of a mount is not supported: enable a new mount and copy the secrets',
      );
    }
    tuneCommon(m, body);
  });
  return noContent();
}

/**
 * sys/internal/ui/mounts/:path — the mount serving a path, to a caller whose policies grant
 * something on or under that mount (upstream's hasMountAccess); 403 with the same message when
 * there is no such mount, so the endpoint cannot be used to list mounts.
 */
async function uiMount(c: Context): Promise<Reply> {
  const path = c.params.path as string;
  const found = await c.svc.mounts.resolve(c.storage, path);
  const visible =
    found !== null &&
    (isRoot(c.token) ||
      (await c.svc.policies.acl(c.storage, c.token.policies)).hasMountAccess(found.mount.path));
  if (!found || !visible) {
    throw new LwError(
      'LW_ERR_PERMISSION_DENIED',
      `preflight capability check returned 403, please ensure client's policies grant access to path "${mountPath(path)}"`,
    );
  }
  return ok({ ...mountView(found.mount), path: found.mount.path });
}

/** sys/internal/ui/mounts — the mounts the caller has access to (upstream filters the same way). */
async function uiMounts(c: Context): Promise<Reply> {
  const acl = isRoot(c.token) ? null : await c.svc.policies.acl(c.storage, c.token.policies);
  const visible = (path: string) => acl === null || acl.hasMountAccess(path);
  const secret: Record<string, unknown> = {};
  for (const m of await c.svc.mounts.list(c.storage)) if (visible(m.path)) secret[m.path] = mountView(m);
  const auth: Record<string, unknown> = {};
  for (const m of await c.svc.auth.list(c.storage)) if (visible(`auth/${m.path}`)) auth[m.path] = authView(m);
  return ok({ secret, auth });
}

/** The mount routes, relative to `sys/`. */
export const mountRoutes: readonly Route[] = [
  { pattern: /^mounts$/, ops: { read: list } },
  {
    pattern: /^mounts\/(?<path>.+)\/tune$/,
    ops: { read: async (c) => sysOk(tuneView(await exact(c))), write: tune },
  },
  {
    pattern: /^mounts\/(?<path>.+)$/,
    ops: { read: async (c) => sysOk(mountView(await exact(c))), write: enable, delete: disable },
  },
  { pattern: /^internal\/ui\/mounts$/, ops: { read: uiMounts } },
  { pattern: /^internal\/ui\/mounts\/(?<path>.+)$/, ops: { read: uiMount } },
];
