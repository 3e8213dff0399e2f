/**
 * Redis key naming. The cluster prefix is wrapped in a hash tag (`{leaderway}`) so every key of
 * one cluster hashes to the same slot: the Lua scripts touch the lock, the index and data keys
 * together, which Redis Cluster only allows within one slot.
 *
 * Layout for prefix `p`:
 * - `{p}/d/<path>`       the value stored at `<path>`
 * - `{p}/index`          sorted set of every stored path (score 0, member = path) for `list()`
 * - `{p}/core/lock`      the HA lock (value = holder's lock value, with a PX TTL)
 * - `{p}/core/lock-epoch` the fencing epoch counter (INCR on every acquisition, never expires)
 * - `{p}/core/lock-conn` the holder's lock connection (`<value>|<run id>|<client id>`, same TTL)
 * - `{p}/events`         the pub/sub channel for HA events
 */
import { LwError } from '../../errors';

/** The prefix used when none is configured. */
export const DEFAULT_PREFIX = 'leaderway';

/** Longest accepted prefix: it is repeated in every key, so keep keys short. */
const MAX_PREFIX_LENGTH = 64;

/** No `{` or `}` (they would break the hash tag) and nothing needing quoting in tooling. */
const PREFIX_PATTERN = /^[A-Za-z0-9._:-]+$/;

/** The keys of one cluster. */
export interface RedisKeys {
  /** The validated prefix, without braces. */
  readonly prefix: string;
  /** `{prefix}`: every key below starts with it. */
  readonly tag: string;
  readonly index: string;
  readonly lock: string;
  readonly epoch: string;
  readonly lockConn: string;
  readonly events: string;
  /** The key holding the value stored at `path`. */
  data(path: string): string;
}

/** Throws `LW_ERR_CONFIG` unless `prefix` is a usable key prefix. */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > MAX_PREFIX_LENGTH) {
    throw new LwError('LW_ERR_CONFIG', `redis prefix must be 1 to ${MAX_PREFIX_LENGTH} characters`);
  }
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new LwError('LW_ERR_CONFIG', 'redis prefix may only contain letters, digits and . _ : -');
  }
}

/** The key names for `prefix` (validated). */
export function redisKeys(prefix: string = DEFAULT_PREFIX): RedisKeys {
  validatePrefix(prefix);
  const tag = `{${prefix}}`;
  const dataPrefix = `${tag}/d/`;
  return {
    prefix,
    tag,
    index: `${tag}/index`,
    lock: `${tag}/core/lock`,
    epoch: `${tag}/core/lock-epoch`,
    lockConn: `${tag}/core/lock-conn`,
    events: `${tag}/events`,
    data: (path: string) => dataPrefix + path,
  };
}
