/**
 * The routes of a KV v1 mount (Vault's plain `kv` engine): read, write (the whole body is the
 * secret), delete and list, at any path inside the mount.
 */
import { LwError } from '../../../shared/errors';
import { Kv1Engine } from '../../kv/kv1-engine';
import { type Context, noContent, ok, perMount, type Route } from '../route';

/** The lease KV v1 reports on reads (Vault's default TTL, 768h); nothing expires here. */
const DEFAULT_LEASE_SECONDS = 768 * 3600;

const engine = perMount((id) => new Kv1Engine(id));

const NOT_FOUND = () => new LwError('LW_ERR_NOT_FOUND', '');

/** The KV v1 route table. */
export const kvV1Routes: readonly Route[] = [
  { pattern: /^$/, ops: { list: (c) => list(c, '') } },
  {
    pattern: /^(?<path>.+)$/,
    exists: (c) => engine(c).exists(c.storage, c.params.path as string),
    ops: {
      read: async (c) => {
        const data = await engine(c).read(c.storage, c.params.path as string, c.budget);
        if (!data) throw NOT_FOUND();
        return ok(data, { lease_duration: DEFAULT_LEASE_SECONDS });
      },
      list: (c) => list(c, c.params.path as string),
      write: async (c) => {
        const body = await c.body();
        if (Object.keys(body).length === 0) throw new LwError('LW_ERR_BAD_REQUEST', 'missing data fields');
        await engine(c).write(c.storage, c.params.path as string, body);
        return noContent();
      },
      delete: async (c) => {
        await engine(c).delete(c.storage, c.params.path as string);
        return noContent();
      },
    },
  },
];

async function list(c: Context, prefix: string) {
  const keys = await engine(c).list(c.storage, prefix);
  if (keys.length === 0) throw NOT_FOUND();
  return ok({ keys });
}
