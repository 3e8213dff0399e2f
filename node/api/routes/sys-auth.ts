/**
 * Auth methods: `sys/auth` (list), `sys/auth/:path` (enable, read, disable). The token store is
 * always at `token/`; AppRole can be enabled at any other path. Disabling a method deletes its
 * data and revokes every token it issued, as upstream.
 */
import { LwError } from '../../../shared/errors';
import { purge } from '../../kv/purge';
import { type MountEntry, mountPath } from '../mounts';
import { type Context, noContent, type Reply, type Route, sysOk } from '../route';

const bad = (message: string) => new LwError('LW_ERR_BAD_REQUEST', message);

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

async function list(c: Context): Promise<Reply> {
  const data: Record<string, unknown> = {};
  for (const m of await c.svc.auth.list(c.storage)) data[m.path] = authView(m);
  return sysOk(data);
}

async function enable(c: Context): Promise<Reply> {
  const b = await c.body();
  if (b.type !== 'approle') {
    throw bad(
      b.type === 'token'
        ? 'the token auth method is always enabled at token/'
        : `plugin not found in the catalog: ${String(b.type)}`,
    );
  }
  const description = b.description ?? '';
  if (typeof description !== 'string') throw bad('invalid description');
  await c.svc.auth.mount(c.storage, c.params.path as string, {
    type: 'approle',
    description,
    options: {},
    config: { default_lease_ttl: 0, max_lease_ttl: 0, listing_visibility: '' },
    local: b.local === true,
    seal_wrap: b.seal_wrap === true,
  });
  return noContent();
}

async function read(c: Context): Promise<Reply> {
  const m = await c.svc.auth.get(c.storage, c.params.path as string);
  if (!m) throw bad(`no auth method at ${mountPath(c.params.path as string)}`);
  return sysOk(authView(m));
}

async function disable(c: Context): Promise<Reply> {
  const removed = await c.svc.auth.unmount(c.storage, c.params.path as string);
  if (removed) {
    const loginPath = `auth/${removed.path}`;
    await c.svc.tokens.tidy(c.storage, (e) => (e.path ?? '').startsWith(loginPath));
    await purge(c.storage, `auth/${removed.storage_id}/`);
  }
  return noContent();
}

/** The auth method routes, relative to `sys/`. */
export const authMountRoutes: readonly Route[] = [
  { pattern: /^auth$/, ops: { read: list } },
  // OpenBao's system backend lists `auth/*` among its root paths: enabling, reading, tuning
  // or disabling an auth method needs sudo (listing them, `sys/auth`, does not).
  { pattern: /^auth\/(?<path>.+)$/, sudo: true, ops: { read, write: enable, delete: disable } },
];
