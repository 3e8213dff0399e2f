/**
 * `sys/wrapping/*`, as OpenBao (node/api/wrapping.ts makes wrapping tokens):
 *  - `wrap`: wraps the request body; needs X-Vault-Wrap-TTL.
 *  - `unwrap`: the wrapped response, once. The wrapping token is the body's `token` (the caller
 *    then needs `update` here, which `default` grants) or the caller's own token.
 *  - `lookup`: creation path, time and TTL of a live wrapping token, without spending it; needs
 *    no other token (as OpenBao: a recipient checks where a token came from before using it).
 *  - `rewrap`: spends a wrapping token for a new one holding the same response.
 * A token that is not a live, unspent wrapping token is a 400, the same for every reason.
 */
import { LwError } from '../../../shared/errors';
import { isWrapping } from '../../auth/token-store';
import { type Context, ok, type Reply, type Route, sysOk } from '../route';
import { wrappedAnswer } from '../wrapping';

/** The wrapping token a request names: the body's `token`, else the caller's own token. */
async function wrappingToken(c: Context): Promise<string> {
  const body = await c.body();
  if (body.token === undefined) return c.rawToken;
  if (typeof body.token !== 'string' || body.token === '') {
    throw new LwError(
      'LW_ERR_PERMISSION_DENIED',
      'error validating wrapping token: empty token in request body',
    );
  }
  // Stricter than OpenBao: a wrapping token sent as the caller unwraps itself only (it must not
  // be spent to open another).
  if (isWrapping(c.token) && body.token !== c.rawToken) {
    throw new LwError('LW_ERR_BAD_REQUEST', 'a wrapping token can only unwrap itself');
  }
  return body.token;
}

async function unwrap(c: Context): Promise<Reply> {
  const { response } = await c.svc.tokens.spendWrapping(c.storage, await wrappingToken(c));
  return { status: 200, body: response };
}

async function lookup(c: Context): Promise<Reply> {
  const e = await c.svc.tokens.wrappingEntry(c.storage, await wrappingToken(c));
  return sysOk({
    creation_path: e.path ?? '',
    creation_time: new Date(e.creation_time * 1000).toISOString(),
    creation_ttl: e.creation_ttl ?? 0,
  });
}

async function rewrap(c: Context): Promise<Reply> {
  const { next } = await c.svc.tokens.spendWrapping(c.storage, await wrappingToken(c), true);
  if (!next) throw new LwError('LW_ERR_INTERNAL', 'rewrap made no token');
  return wrappedAnswer(next.token, next.entry);
}

/** The wrapping routes, relative to `sys/`. */
export const wrappingRoutes: readonly Route[] = [
  {
    pattern: /^wrapping\/wrap$/,
    ops: {
      write: async (c) => {
        if (c.wrapTtl === null) {
          throw new LwError('LW_ERR_BAD_REQUEST', 'endpoint requires response wrapping to be used');
        }
        return ok(await c.body());
      },
    },
  },
  { pattern: /^wrapping\/unwrap$/, acceptsWrappingToken: true, ops: { write: unwrap } },
  { pattern: /^wrapping\/lookup$/, unauthenticated: true, ops: { write: lookup, read: lookup } },
  { pattern: /^wrapping\/rewrap$/, ops: { write: rewrap } },
];
