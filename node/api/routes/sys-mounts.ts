/**
 * Secrets engine mounts: `sys/mounts` (list), `sys/mounts/:path` (enable, read, disable),
 * `sys/mounts/:path/tune` (read, tune) and `sys/internal/ui/mounts[/:path]` (what the Vault CLI
 * asks before a `kv` command). Only KV is served: type `kv` with options.version 1 or 2, or
 * `kv-v2`. Disabling a mount deletes its data, as upstream.
 */
import { LwError } from '../../../shared/errors';
import { isRoot } from '../../auth/token-store';
import { purge } from '../../kv/purge';
import { parseDurationSeconds } from '../duration';
import { type KvVersion, type MountEntry, mountPath } from '../mounts';
import { type Context, noContent, ok, type Reply, type Route, sysOk } from '../route';
import { authView } from './sys-auth';

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
    options: { ...m.options },
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

/** The engine type and KV version a `sys/mounts/:path` body asks for. */
function engineVersion(body: Record<string, unknown>): KvVersion {
  const type = body.type;
  if (typeof type !== 'string' || type === '') throw bad('missing type');
  const options = optionalObject(body.options, 'options');
  const version =
    options.version === undefined || options.version === '' ? undefined : String(options.version);
  if (type === 'kv-v2') {
    if (version !== undefined && version !== '2') throw bad('kv-v2 mounts are version 2');
    return '2';
  }
  if (type !== 'kv') throw bad(`plugin not found in the catalog: ${type}`);
  if (version === undefined || version === '1') return '1';
  if (version === '2') return '2';
  throw bad(`invalid KV version "${version}": 1 or 2`);
}

/** default_lease_ttl / max_lease_ttl / listing_visibility from a mount's `config` or a tune body. */
function mountConfig(src: Record<string, unknown>, base: MountEntry['config']): MountEntry['config'] {
  const out = { ...base };
  for (const field of ['default_lease_ttl', 'max_lease_ttl'] as const) {
    const v = src[field];
    // Vault takes "system" (and "") as "inherit the system default", which is none here.
    if (v === undefined || v === '' || v === 'system') continue;
    out[field] = parseDurationSeconds(v, field);
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

async function list(c: Context): Promise<Reply> {
  const data: Record<string, unknown> = {};
  for (const m of await c.svc.mounts.list(c.storage)) data[m.path] = mountView(m);
  data['sys/'] = SYS_MOUNT;
  return sysOk(data);
}

async function enable(c: Context): Promise<Reply> {
  const body = await c.body();
  const version = engineVersion(body);
  const description = body.description ?? '';
  if (typeof description !== 'string') throw bad('invalid description');
  const config = mountConfig(optionalObject(body.config, 'config'), {
    default_lease_ttl: 0,
    max_lease_ttl: 0,
    listing_visibility: '',
  });
  await c.svc.mounts.mount(c.storage, c.params.path as string, {
    type: 'kv',
    description,
    options: { version },
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
    if (body.description !== undefined && body.description !== null) {
      if (typeof body.description !== 'string') throw bad('invalid description');
      m.description = body.description;
    }
    m.config = mountConfig(body, m.config);
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
