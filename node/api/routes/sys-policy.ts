/**
 * ACL policies: `sys/policy` (list), `sys/policy/:name` (read, write, delete; body `policy` or
 * `rules`), the newer `sys/policies/acl[/:name]` with the same meaning, and
 * `sys/capabilities-self` (what the calling token may do on some paths).
 */
import { LwError } from '../../../shared/errors';
import { isRoot } from '../../auth/token-store';
import { type Context, noContent, ok, type Reply, type Route, sysOk } from '../route';

async function readPolicy(c: Context, field: 'rules' | 'policy'): Promise<Reply> {
  const p = await c.svc.policies.read(c.storage, c.params.name as string);
  if (!p) throw new LwError('LW_ERR_NOT_FOUND', '');
  return sysOk({ name: p.name, [field]: p.text });
}

async function writePolicy(c: Context): Promise<Reply> {
  const b = await c.body();
  const text = b.policy ?? b.rules;
  if (typeof text !== 'string')
    throw new LwError('LW_ERR_BAD_REQUEST', "'policy' parameter not supplied or empty");
  await c.svc.policies.write(c.storage, c.params.name as string, text);
  return noContent();
}

async function deletePolicy(c: Context): Promise<Reply> {
  await c.svc.policies.delete(c.storage, c.params.name as string);
  return noContent();
}

async function capabilitiesSelf(c: Context): Promise<Reply> {
  const b = await c.body();
  const paths = b.paths ?? (b.path === undefined ? undefined : [b.path]);
  if (!Array.isArray(paths) || paths.length === 0 || paths.some((p) => typeof p !== 'string'))
    throw new LwError('LW_ERR_BAD_REQUEST', "'paths' parameter not supplied or empty");
  const acl = isRoot(c.token) ? null : await c.svc.policies.acl(c.storage, c.token.policies);
  const out: Record<string, string[]> = {};
  for (const raw of paths as string[]) {
    const path = raw.replace(/^\/+/, '').replace(/^v1\//, '');
    const caps = acl ? [...acl.capabilities(path)].sort() : ['root'];
    out[raw] = caps.length ? caps : ['deny'];
  }
  // Upstream also answers `capabilities` for the (last) path asked about.
  const last = out[paths[paths.length - 1] as string] ?? ['deny'];
  return sysOk({ ...out, capabilities: last });
}

const policyExists = async (c: Context) =>
  (await c.svc.policies.read(c.storage, c.params.name as string)) !== null;

/** The policy routes, relative to `sys/`. */
export const policyRoutes: readonly Route[] = [
  {
    pattern: /^policy$/,
    ops: {
      read: async (c) => {
        const names = await c.svc.policies.list(c.storage);
        return sysOk({ policies: names, keys: names });
      },
    },
  },
  {
    pattern: /^policy\/(?<name>[^/]+)$/,
    exists: policyExists,
    ops: { read: (c) => readPolicy(c, 'rules'), write: writePolicy, delete: deletePolicy },
  },
  {
    pattern: /^policies\/acl$/,
    ops: { list: async (c) => ok({ keys: await c.svc.policies.list(c.storage) }) },
  },
  {
    pattern: /^policies\/acl\/(?<name>[^/]+)$/,
    exists: policyExists,
    ops: { read: (c) => readPolicy(c, 'policy'), write: writePolicy, delete: deletePolicy },
  },
  { pattern: /^capabilities-self$/, ops: { write: capabilitiesSelf } },
];
