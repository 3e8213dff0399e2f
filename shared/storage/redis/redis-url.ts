/**
 * Turns a configured Redis URL into ioredis connection options. Plain `redis://` and
 * `rediss://` URLs are handed to ioredis as they are; `redis+sentinel://` is parsed here because
 * ioredis has no URL form for Sentinel. Errors never echo the URL: it may carry a password.
 */
import type { RedisOptions } from 'ioredis';
import { LwError } from '../../errors';

/** The port Sentinel listens on when a URL names none. */
const DEFAULT_SENTINEL_PORT = 26379;

/** Where to connect: either a URL ioredis understands or fully parsed options. */
export type RedisTarget = { url: string } | { options: RedisOptions };

/**
 * Parses `url`:
 * - `redis://[[user]:password@]host[:port][/db]` and `rediss://...` (TLS): passed through.
 * - `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/mastername[/db]`: the
 *   credentials authenticate to the primary and replicas; the port defaults to 26379. Query
 *   parameters `sentinel_username` and `sentinel_password` authenticate to the Sentinels.
 * - `rediss+sentinel://...`: the same over TLS, to the Sentinels and to the data servers
 *   (a private CA: `NODE_EXTRA_CA_CERTS`).
 */
export function parseRedisUrl(url: string): RedisTarget {
  if (/^rediss?:\/\//i.test(url)) {
    try {
      new URL(url);
    } catch {
      throw new LwError('LW_ERR_CONFIG', 'invalid redis URL');
    }
    return { url };
  }
  const sentinel = /^(rediss?)\+sentinel:\/\//i.exec(url);
  if (sentinel) return { options: parseSentinelUrl(url, sentinel[1]?.toLowerCase() === 'rediss') };
  throw new LwError(
    'LW_ERR_CONFIG',
    'redis URL must start with redis://, rediss://, redis+sentinel:// or rediss+sentinel://',
  );
}

/** Query parameters a Sentinel URL may carry. */
const SENTINEL_PARAMS = new Set(['sentinel_username', 'sentinel_password']);

function parseSentinelUrl(url: string, tls: boolean): RedisOptions {
  const invalid = (why: string) => new LwError('LW_ERR_CONFIG', `invalid redis+sentinel URL: ${why}`);
  const afterScheme = url.slice(url.indexOf('://') + 3);
  const q = afterScheme.indexOf('?');
  const rest = q === -1 ? afterScheme : afterScheme.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : afterScheme.slice(q + 1));
  for (const k of query.keys()) if (!SENTINEL_PARAMS.has(k)) throw invalid(`unknown parameter ${k}`);
  const slash = rest.indexOf('/');
  if (slash === -1) throw invalid('missing /mastername');
  const authority = rest.slice(0, slash);
  const [name, db, ...extra] = rest.slice(slash + 1).split('/');
  if (!name || extra.length > 0) throw invalid('expected /mastername[/db]');

  const at = authority.lastIndexOf('@');
  const hostList = at === -1 ? authority : authority.slice(at + 1);
  const options: RedisOptions = {
    name: decodeURIComponent(name),
    sentinels: hostList.split(',').map((entry) => parseHostPort(entry, invalid)),
    // Follow a failover the moment the Sentinels announce it (+switch-master). Without this a
    // connection to a frozen or partitioned old primary stays open, and Sentinel waits about
    // 8 s after it returns before demoting it (and its READONLY makes us reconnect). This is for
    // a client made from these options as they are: RedisConnection turns ioredis' detector off
    // and follows failovers with the process's SentinelWatch instead (sentinel-watch.ts).
    failoverDetector: true,
  };
  if (at !== -1) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    const username = colon === -1 ? '' : userinfo.slice(0, colon);
    const password = colon === -1 ? userinfo : userinfo.slice(colon + 1);
    if (username) options.username = decodeURIComponent(username);
    if (password) options.password = decodeURIComponent(password);
  }
  if (db !== undefined && db !== '') {
    if (!/^\d+$/.test(db)) throw invalid('db must be a number');
    options.db = Number(db);
  }
  const sentinelUsername = query.get('sentinel_username');
  const sentinelPassword = query.get('sentinel_password');
  if (sentinelUsername) options.sentinelUsername = sentinelUsername;
  if (sentinelPassword) options.sentinelPassword = sentinelPassword;
  if (tls) {
    options.tls = {};
    options.sentinelTLS = {};
    options.enableTLSForSentinelMode = true;
  }
  return options;
}

function parseHostPort(entry: string, invalid: (why: string) => LwError): { host: string; port: number } {
  // `[v6]:port`, `[v6]`, `host:port` or `host`.
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(entry);
  if (!match?.[1]) throw invalid('bad sentinel address');
  const port = match[2] === undefined ? DEFAULT_SENTINEL_PORT : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid('bad sentinel port');
  return { host: match[1], port };
}
