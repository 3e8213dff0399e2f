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
 *   credentials authenticate to the master (not to the sentinels); the port defaults to 26379.
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
  if (/^redis\+sentinel:\/\//i.test(url)) return { options: parseSentinelUrl(url) };
  throw new LwError('LW_ERR_CONFIG', 'redis URL must start with redis://, rediss:// or redis+sentinel://');
}

function parseSentinelUrl(url: string): RedisOptions {
  const invalid = (why: string) => new LwError('LW_ERR_CONFIG', `invalid redis+sentinel URL: ${why}`);
  const rest = url.slice('redis+sentinel://'.length);
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
