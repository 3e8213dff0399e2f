/**
 * The HA backend on Redis: the lock (`{p}/core/lock`, a PX TTL), the fencing epoch
 * (`{p}/core/lock-epoch`) and the event channel (`{p}/events`). The lock connection has a
 * short command timeout and no offline queue, so a renew is never executed long after its
 * caller gave up; events use a second connection, because a subscribed connection cannot be
 * trusted with lock commands' latency.
 */
import type { HABackend, HAEvent, LockHolder } from '../backend';
import { assertLockValue, normalizeTtlMs, storageUnavailableError } from '../semantics';
import { DEFAULT_START_TIMEOUT_MS, RedisConnection } from './connection';
import { type RedisKeys, redisKeys } from './keys';
import { NO_REPLICATION, type ReplicationSettings, replicasFor, replicated } from './replication';
import type { ScriptedRedis } from './scripts';

/** Default lock command timeout; the HA layer passes ttl/3 so a renew fails before the lease does. */
const DEFAULT_COMMAND_TIMEOUT_MS = 1000;

/** Options for {@link RedisHABackend}. */
export interface RedisHABackendOptions {
  /** `redis://`, `rediss://` or `redis+sentinel://` URL. May hold a password: never logged. */
  url: string;
  /** Key namespace (wrapped as a hash tag). Default `leaderway`. */
  prefix?: string;
  /** Timeout of every lock command; default 1000 ms. */
  commandTimeoutMs?: number;
  /** Replicas an acquisition or renewal must reach before it counts (default: none). */
  replication?: ReplicationSettings;
}

/** Counters for what the backend deliberately swallows. */
export interface RedisHAStats {
  /** Channel messages that were not a valid HAEvent (ignored). */
  malformedEvents: number;
  /** Publishes that failed (publish is best effort). */
  publishFailures: number;
  /** Exceptions thrown by listeners (caught so one listener cannot starve the others). */
  listenerErrors: number;
}

/** Parses a channel message; null unless it is exactly a known HAEvent shape. */
function parseEvent(message: string): HAEvent | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { type, epoch } = parsed as { type?: unknown; epoch?: unknown };
  if (
    (type !== 'released' && type !== 'advertised') ||
    !Number.isSafeInteger(epoch) ||
    (epoch as number) < 0
  ) {
    return null;
  }
  return { type, epoch: epoch as number };
}

/** HA storage on Redis. Works with the same Redis as `RedisBackend` or a separate one. */
export class RedisHABackend implements HABackend {
  readonly kind = 'redis';
  readonly keys: RedisKeys;
  readonly stats: RedisHAStats = { malformedEvents: 0, publishFailures: 0, listenerErrors: 0 };
  private readonly lock: RedisConnection;
  private subscriber: RedisConnection | undefined;
  private readonly listeners = new Set<(event: HAEvent) => void>();
  private closed = false;
  /** Replicas the lock state must reach (0: a single Redis, no WAIT). */
  readonly minReplicas: number;
  /** A lock WAIT leaves the command timeout room: at most half of it. */
  private readonly waitTimeoutMs: number;

  constructor(private readonly opts: RedisHABackendOptions) {
    this.keys = redisKeys(opts.prefix);
    const commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const replication = opts.replication ?? NO_REPLICATION;
    this.minReplicas = replicasFor(replication, opts.url);
    this.waitTimeoutMs = Math.max(1, Math.min(replication.waitTimeoutMs, Math.floor(commandTimeoutMs / 2)));
    this.lock = new RedisConnection({
      url: opts.url,
      connectionName: `leaderway-lock-${this.keys.prefix}`,
      commandTimeoutMs,
    });
  }

  /** Connects the lock connection; rejects with `LW_ERR_STORAGE_UNAVAILABLE` after `timeoutMs`. */
  start(timeoutMs: number = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    return this.lock.start(timeoutMs);
  }

  acquire(value: string, ttlMs: number): Promise<number | null> {
    assertLockValue(value);
    const ttl = normalizeTtlMs(ttlMs);
    return this.lock.run(async (c) => {
      const epoch = await c.lwLockAcquire(this.keys.lock, this.keys.epoch, value, ttl);
      if (epoch <= 0) return null;
      // A lock (and epoch) a failover could lose is not held: give it back, report an error, and
      // the elector tries again.
      if (!(await replicated(c, this.minReplicas, this.waitTimeoutMs))) {
        await c.lwLockRelease(this.keys.lock, value).catch(() => 0);
        throw storageUnavailableError(new Error('lock acquisition not confirmed by replicas'));
      }
      return epoch;
    });
  }

  renew(value: string, ttlMs: number): Promise<boolean> {
    const ttl = normalizeTtlMs(ttlMs);
    return this.lock.run(async (c) => {
      if ((await c.lwLockRenew(this.keys.lock, value, ttl)) !== 1) return false;
      // Unconfirmed, the renewal does not extend the holder's deadline (an error, not a loss):
      // a promoted replica may still have the previous expiry.
      if (!(await replicated(c, this.minReplicas, this.waitTimeoutMs)))
        throw storageUnavailableError(new Error('lock renewal not confirmed by replicas'));
      return true;
    });
  }

  release(value: string): Promise<boolean> {
    return this.lock.run(async (c) => (await c.lwLockRelease(this.keys.lock, value)) === 1);
  }

  holder(): Promise<LockHolder | null> {
    return this.lock.run(async (c) => {
      // One MGET (both keys share the hash slot) so value and epoch are read at one instant.
      const [value, epoch] = await c.mget(this.keys.lock, this.keys.epoch);
      if (value === null || value === undefined) return null;
      return { value, epoch: Number(epoch ?? 0) };
    });
  }

  /**
   * Best effort: resolves whether or not the event reached Redis (failures are counted in
   * `stats.publishFailures`). Events are hints; nobody may depend on receiving one.
   */
  async publish(event: HAEvent): Promise<void> {
    if (this.closed) return;
    const message = JSON.stringify({ type: event.type, epoch: event.epoch });
    try {
      await this.lock.run((c) => c.publish(this.keys.events, message));
    } catch {
      this.stats.publishFailures += 1;
    }
  }

  /**
   * Delivers every event on the channel to `listener` until the returned function is called.
   * The subscriber connection is opened on the first call; events published before its
   * SUBSCRIBE reached Redis are not delivered (pub/sub keeps no history).
   */
  subscribe(listener: (event: HAEvent) => void): () => void {
    if (this.closed) return () => {};
    const wrapped = (event: HAEvent): void => listener(event);
    this.listeners.add(wrapped);
    this.ensureSubscriber();
    return () => {
      this.listeners.delete(wrapped);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await Promise.all([this.lock.close(), this.subscriber?.close()]);
  }

  private ensureSubscriber(): void {
    if (this.subscriber) return;
    const channel = this.keys.events;
    const resubscribe = (c: ScriptedRedis): void => {
      // On every (re)connect, including the first: also covers a SUBSCRIBE lost in flight.
      c.subscribe(channel).catch(() => {});
    };
    const subscriber = new RedisConnection({
      url: this.opts.url,
      connectionName: `leaderway-events-${this.keys.prefix}`,
      commandTimeoutMs: this.opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      onReady: resubscribe,
    });
    subscriber.client.on('message', (from: string, message: string) => {
      if (from === channel) this.deliver(message);
    });
    this.subscriber = subscriber;
    // Connect now; if Redis is down the connection keeps retrying by itself.
    subscriber.start().catch(() => {});
  }

  private deliver(message: string): void {
    const event = parseEvent(message);
    if (!event) {
      this.stats.malformedEvents += 1;
      return;
    }
    for (const listener of [...this.listeners]) {
      try {
        listener({ ...event });
      } catch {
        this.stats.listenerErrors += 1;
      }
    }
  }
}
