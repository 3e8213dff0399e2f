/**
 * Response wrapping, as OpenBao: a request sent with `X-Vault-Wrap-TTL` gets, instead of its
 * answer, a single-use wrapping token whose cubbyhole holds that answer (TokenStore.createWrapping);
 * `sys/wrapping/unwrap` gives it back once (routes/sys-wrapping.ts). One step of dispatch, after
 * the handler: only answers with a body are wrapped (a 204 stays a 204), errors never are.
 */
import { LwError } from '../../shared/errors';
import { RawBody } from '../../shared/http/respond';
import type { TokenEntry } from '../auth/token-store';
import { parseDurationSeconds } from './duration';
import type { AnyRequest } from './request';
import type { Context, Reply } from './route';

const HEADER = 'x-vault-wrap-ttl';

/**
 * The wrap TTL a request asks for, in seconds; null when it asks for none (no header, or 0, as
 * OpenBao). A value that does not parse, or a negative one, is a 400 before anything is done.
 */
export function requestedWrapTtl(raw: AnyRequest): number | null {
  const v = raw.headers[HEADER];
  if (v === undefined) return null;
  const text = (Array.isArray(v) ? v.join(',') : v).trim();
  if (text.startsWith('-')) {
    throw new LwError(
      'LW_ERR_BAD_REQUEST',
      'error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative',
    );
  }
  let ttl: number;
  try {
    ttl = parseDurationSeconds(text, 'wrap ttl');
  } catch (err) {
    throw new LwError(
      'LW_ERR_BAD_REQUEST',
      `error parsing X-Vault-Wrap-TTL header: ${(err as Error).message}`,
    );
  }
  return ttl === 0 ? null : ttl;
}

/** The accessor of what a response hands out (a login's token, an AppRole secret ID), if any. */
function wrappedAccessor(body: Record<string, unknown>): string {
  const auth = body.auth as { accessor?: unknown } | null | undefined;
  if (typeof auth?.accessor === 'string') return auth.accessor;
  const data = body.data as { secret_id_accessor?: unknown } | null | undefined;
  return typeof data?.secret_id_accessor === 'string' ? data.secret_id_accessor : '';
}

/**
 * `reply` as the wrapping answer (200 with `wrap_info`), its body stored in a new wrapping token
 * with a TTL of `ttlS`. Replies without a body, or other than 200, are returned as they are.
 */
export async function wrapReply(c: Context, reply: Reply, ttlS: number): Promise<Reply> {
  if (reply.status !== 200 || reply.body === undefined || reply.body === null) return reply;
  // Not JSON (the Prometheus text of sys/metrics): answering it unwrapped would mislead the client.
  if (reply.body instanceof RawBody || typeof reply.body !== 'object') {
    throw new LwError('LW_ERR_BAD_REQUEST', 'this response cannot be wrapped (remove X-Vault-Wrap-TTL)');
  }
  const body = reply.body as Record<string, unknown>;
  const { token, entry } = await c.svc.tokens.createWrapping(c.storage, ttlS, c.req.path, body);
  return {
    ...wrappedAnswer(token, entry, wrappedAccessor(body)),
    headers: reply.headers,
    after: reply.after,
  };
}

/** The answer that hands out a wrapping token (`wrap_info`, every other field empty). */
export function wrappedAnswer(token: string, entry: TokenEntry, wrappedAccessor = ''): Reply {
  return {
    status: 200,
    body: {
      request_id: '',
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: null,
      wrap_info: {
        token,
        accessor: entry.accessor,
        ttl: entry.creation_ttl ?? 0,
        creation_time: new Date(entry.creation_time * 1000).toISOString(),
        creation_path: entry.path ?? '',
        ...(wrappedAccessor ? { wrapped_accessor: wrappedAccessor } : {}),
      },
      warnings: null,
      auth: null,
    },
  };
}
