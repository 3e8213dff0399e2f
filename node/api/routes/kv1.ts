/**
 * The routes of a KV v1 mount (Vault's plain `kv` engine): read, write (the whole body is the
 * secret), delete and list, at any path inside the mount. The same routes over the calling
 * token's own entries serve `cubbyhole/` (plainKvRoutes).
 */
import { LwError } from '../../../shared/errors';
import { cubbyholeOf } from '../../kv/cubbyhole';
import { Kv1Engine, kv1Root } from '../../kv/kv1-engine';
import { type Context, noContent, ok, perMount, type Route } from '../route';

/** The lease KV v1 reports on reads (Vault's default TTL, 768h); nothing expires here. */
const DEFAULT_LEASE_SECONDS = 768 * 3600;

const NOT_FOUND = () => new LwError('LW_ERR_NOT_FOUND', '');

/** Read, write, delete and list over the entries `engine` picks for a request. */
function plainKvRoutes(
  engine: (c: Context) => Kv1Engine,
  readExtra: Record<string, unknown>,
): readonly Route[] {
  const list = async (c: Context, prefix: string) => {
    const keys = await engine(c).list(c.storage, prefix);
    if (keys.length === 0) throw NOT_FOUND();
    return ok({ keys });
  };
  return [
    { pattern: /^$/, ops: { list: (c) => list(c, '') } },
    {
      pattern: /^(?<path>.+)$/,
      exists: (c) => engine(c).exists(c.storage, c.params.path as string),
      ops: {
        read: async (c) => {
          const data = await engine(c).read(c.storage, c.params.path as string, c.budget);
          if (!data) throw NOT_FOUND();
          return ok(data, readExtra);
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
}

/** The KV v1 route table (one engine per mount). */
export const kvV1Routes = plainKvRoutes(
  perMount((id) => new Kv1Engine(kv1Root(id))),
  { lease_duration: DEFAULT_LEASE_SECONDS },
);

/** The `cubbyhole/` route table: the calling token's own entries, without a lease. */
export const cubbyholeRoutes = plainKvRoutes((c) => new Kv1Engine(cubbyholeOf(c.token.hash)), {});
