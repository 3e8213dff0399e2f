/**
 * Multi-host PostgreSQL URLs, read as libpq reads them:
 * `postgresql://user:pw@db-1:5432,db-2:5432/vault?target_session_attrs=read-write`. node-postgres
 * connects to one host only, so the pools here try the hosts in turn and, when there are several,
 * keep only a session that accepts writes (`SHOW transaction_read_only` is `off`) — what libpq's
 * `target_session_attrs=read-write` does. A standby (before or after a promotion elsewhere)
 * is never written to or listened on: after a failover the nodes follow the new primary by
 * themselves. One host (the operator's endpoint: a managed service's writer address, Patroni's
 * leader Service) is used as given.
 *
 * `target_session_attrs` may be `read-write` or `primary` (both mean a writable session here), or
 * `any` with one host; leaderway writes, so any other value is refused.
 */
import { LwError } from '../../errors';

/** Where the pools connect. */
export interface PgTargets {
  /** One single-host URL per host, in the order given (the parameter removed). */
  urls: string[];
  /** Check each new session and keep only one that accepts writes. */
  writableOnly: boolean;
}

const URL_PARTS = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/i;
const WRITABLE = new Set(['read-write', 'primary']);

function bad(message: string): LwError {
  return new LwError('LW_ERR_CONFIG', `postgresql connection_url: ${message}`);
}

/** Parses a (possibly multi-host) URL; throws LW_ERR_CONFIG for a form leaderway cannot use. */
export function parseTargets(url: string): PgTargets {
  const m = URL_PARTS.exec(url);
  if (!m) throw bad('must be a postgres:// or postgresql:// URL');
  const [, scheme = '', userinfo = '', hostList = '', rest = ''] = m;
  const hosts = hostList.split(',');
  if (hosts.length > 1 && hosts.some((h) => h === '')) throw bad('an empty host in the host list');
  const q = rest.indexOf('?');
  const pathPart = q === -1 ? rest : rest.slice(0, q);
  const params = new URLSearchParams(q === -1 ? '' : rest.slice(q + 1));
  const attrs = params.get('target_session_attrs');
  params.delete('target_session_attrs');
  if (attrs !== null && !WRITABLE.has(attrs) && !(attrs === 'any' && hosts.length === 1)) {
    throw bad('target_session_attrs must be read-write or primary (leaderway writes to the database)');
  }
  const query = params.toString();
  const urls = hosts.map((h) => `${scheme}${userinfo}${h}${pathPart}${query ? `?${query}` : ''}`);
  for (const u of urls) {
    // What the driver will parse (WHATWG URL): refused here, at startup, without echoing the URL
    // (a password in it), rather than thrown later from a reconnect.
    if (!URL.canParse(u)) throw bad('a host, port or part of it is malformed');
  }
  return {
    urls,
    writableOnly: hosts.length > 1 || (attrs !== null && WRITABLE.has(attrs)),
  };
}

/** Is this session's server accepting writes? (A standby answers `on`.) */
export async function acceptsWrites(c: {
  query(text: string): Promise<{ rows: Array<Record<string, unknown>> }>;
}): Promise<boolean> {
  const r = await c.query('SHOW transaction_read_only');
  return r.rows[0]?.['transaction_read_only'] === 'off';
}
