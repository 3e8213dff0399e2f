/**
 * The HA backend on Redis: the lock (`{p}/core/lock`, a PX TTL), the fencing epoch
 * (`{p}/core/lock-epoch`) and the event channel (`{p}/events`). The lock connection has a
 * short command timeout and no offline queue, so a renew is never executed long after its
 * caller gave up; events use a second connection, because a subscribed connection cannot be
 * trusted with lock commands' latency.
 */
import type { HABackend, HAEvent, HolderLiveness, LockHolder } from '../backend';
import { EventFanout, encodeEvent, type HAEventStats } from '../ha-events';
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
  /** Called once if Redis refuses the commands holder liveness needs (CLIENT ID / CLIENT LIST). */
  onLivenessUnavailable?(reason: string): void;
  /**
   * A process that only reads the lock and the events (a gateway): its connections skip what
   * only a lock holder needs — the INFO ready check, the connection identity (CLIENT ID, INFO)
   * — so its Redis user needs none of those commands.
   */
  reader?: boolean;
}

/**
 * After our own lock connection (re)connects, a missing holder connection is no evidence for
 * this long: a Redis restart or failover reconnects every node at about the same time, and the
 * holder re-records its new connection within a reconnect delay.
 */
const RECONNECT_SETTLE_MS = 2_000;

/** Our lock connection as Redis knows it. */
interface ConnIdentity {
  runId: string;
  clientId: string;
  readyAt: number;
}

/** Counters for what the backend deliberately swallows. */
export type RedisHAStats = HAEventStats;

/** HA storage on Redis. Works with the same Redis as `RedisBackend` or a separate one. */
export class RedisHABackend implements HABackend {
  readonly kind = 'redis';
  readonly keys: RedisKeys;
  private readonly fanout = new EventFanout();
  readonly stats: RedisHAStats = this.fanout.stats;
  private readonly lock: RedisConnection;
  private subscriber: RedisConnection | undefined;
  private closed = false;
  /** The lock connection's identity (null until known, or while reconnecting). */
  private self: ConnIdentity | null = null;
  /** Why liveness is unavailable (Redis refused CLIENT), once it is. */
  private livenessRefused: string | null = null;
  /** The value of the lock we hold, so a reconnect re-records our connection. */
  private heldValue: string | null = null;
  /** The identity lookup after the latest (re)connect; lock commands wait for it (one RTT). */
  private identifying: Promise<void> = Promise.resolve();
  /** The lock connection was ready once already: the next 'ready' is a reconnect. */
  private lockReadyBefore = false;
  readonly liveness: HolderLiveness = {
    check: (holder) => this.checkHolder(holder),
    takeOver: (holder, record, value, ttlMs) => this.takeOver(holder, record, value, ttlMs),
  };
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
      readyCheck: !opts.reader,
      onReady: (c) => {
        if (!opts.reader) this.identifying = this.identify(c);
        // Back after an outage or a failover: whoever waits for an event re-reads now, not at
        // its next poll (see RECONNECT_HINTS in ha-events.ts).
        if (this.lockReadyBefore) this.hintAfterReconnect();
        this.lockReadyBefore = true;
      },
    });
    this.lock.client.on('close', () => {
      this.self = null;
    });
  }

  /** Connects the lock connection; rejects with `LW_ERR_STORAGE_UNAVAILABLE` after `timeoutMs`. */
  start(timeoutMs: number = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    return this.lock.start(timeoutMs);
  }

  acquire(value: string, ttlMs: number): Promise<number | null> {
    return this.take(value, ttlMs, null);
  }

  renew(value: string, ttlMs: number): Promise<boolean> {
    const ttl = normalizeTtlMs(ttlMs);
    return this.lock.run(async (c) => {
      const k = this.keys;
      await this.identifying;
      if ((await c.lwLockRenew(k.lock, k.lockConn, value, ttl, this.record(value))) !== 1) {
        if (this.heldValue === value) this.heldValue = null;
        return false;
      }
      // Unconfirmed, the renewal does not extend the holder's deadline (an error, not a loss):
      // a promoted replica may still have the previous expiry.
      if (!(await replicated(c, this.minReplicas, this.waitTimeoutMs)))
        throw storageUnavailableError(new Error('lock renewal not confirmed by replicas'));
      return true;
    });
  }

  release(value: string): Promise<boolean> {
    if (this.heldValue === value) this.heldValue = null;
    return this.lock.run(
      async (c) => (await c.lwLockRelease(this.keys.lock, this.keys.lockConn, value)) === 1,
    );
  }

  /** Acquires (`expected` null) or takes over from `expected`, confirmed by replicas. */
  private take(
    value: string,
    ttlMs: number,
    expected: { value: string; record: string } | null,
  ): Promise<number | null> {
    assertLockValue(value);
    const ttl = normalizeTtlMs(ttlMs);
    return this.lock.run(async (c) => {
      const k = this.keys;
      await this.identifying;
      const epoch = await c.lwLockAcquire(
        k.lock,
        k.epoch,
        k.lockConn,
        value,
        ttl,
        this.record(value),
        expected?.value ?? '',
        expected?.record ?? '',
      );
      if (epoch <= 0) return null;
      // A lock (and epoch) a failover could lose is not held: give it back, report an error, and
      // the elector tries again.
      if (!(await replicated(c, this.minReplicas, this.waitTimeoutMs))) {
        await c.lwLockRelease(k.lock, k.lockConn, value).catch(() => 0);
        throw storageUnavailableError(new Error('lock acquisition not confirmed by replicas'));
      }
      this.heldValue = value;
      return epoch;
    });
  }

  /** The connection record for `value`: `<value>|<run id>|<client id>`, '' while unknown. */
  private record(value: string): string {
    return this.self ? `${value}|${this.self.runId}|${this.self.clientId}` : '';
  }

  /**
   * Learns the lock connection's identity on every (re)connect, and re-records it for a lock
   * we hold, so standbys do not take the closed old connection for a crash.
   */
  private async identify(c: ScriptedRedis): Promise<void> {
    try {
      const [clientId, server] = await Promise.all([c.client('ID'), c.info('server')]);
      const runId = /run_id:(\w+)/.exec(String(server))?.[1];
      if (!runId) throw new Error('INFO server has no run_id');
      this.self = { runId, clientId: String(clientId), readyAt: performance.now() };
      const held = this.heldValue;
      if (held) await c.lwLockTouch(this.keys.lock, this.keys.lockConn, held, this.record(held));
    } catch (err) {
      const message = (err as Error).message;
      // Only a refusal switches liveness off; a dropped connection is retried on the next ready.
      if (
        /NOPERM|unknown command|unknown subcommand|disabled|renamed/i.test(message) &&
        !this.livenessRefused
      ) {
        this.livenessRefused = message.slice(0, 200);
        this.opts.onLivenessUnavailable?.(this.livenessRefused);
      }
    }
  }

  private async checkHolder(
    holder: LockHolder,
  ): Promise<{ state: 'alive' | 'gone' | 'unknown'; record: string }> {
    const self = this.self;
    if (this.livenessRefused || !self) return { state: 'unknown', record: '' };
    const stored = await this.lock.run((c) => c.get(this.keys.lockConn));
    // A record left by an earlier holder (a node of an older release writes none) is not this
    // holder's.
    if (!stored?.startsWith(`${holder.value}|`)) return { state: 'unknown', record: '' };
    const [, runId, clientId] = stored.split('|');
    // Recorded on another server (a failover, a restart): the holder has not re-recorded yet.
    if (runId !== self.runId || !clientId || !/^\d+$/.test(clientId))
      return { state: 'unknown', record: stored };
    if (performance.now() - self.readyAt < RECONNECT_SETTLE_MS) return { state: 'unknown', record: stored };
    const listed = await this.lock.run((c) => c.client('LIST', 'ID', clientId));
    return { state: String(listed).trim() === '' ? 'gone' : 'alive', record: stored };
  }

  private takeOver(holder: LockHolder, record: string, value: string, ttlMs: number): Promise<number | null> {
    if (!record) return Promise.resolve(null);
    return this.take(value, ttlMs, { value: holder.value, record });
  }

  holder(): Promise<LockHolder | null> {
    return this.lock.run(async (c) => {
      // One MGET (both keys share the hash slot) so value and epoch are read at one instant.
      // (Gateways read this too: their Redis user may read these two keys and nothing else.)
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
    const message = encodeEvent(event);
    try {
      await this.lock.run((c) => c.publish(this.keys.events, message));
    } catch {
      this.stats.publishFailures += 1;
    }
  }

  /**
   * Delivers every event on the channel to `listener` until the returned function is called.
   * The subscriber connection is opened on the first call; events published before its
   * SUBSCRIBE reached Redis are not delivered (pub/sub keeps no history); after a reconnect, the
   * listener gets RECONNECT_HINTS instead.
   */
  subscribe(listener: (event: HAEvent) => void): () => void {
    if (this.closed) return () => {};
    const remove = this.fanout.add(listener);
    this.ensureSubscriber();
    return remove;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fanout.clear();
    await Promise.all([this.lock.close(), this.subscriber?.close()]);
  }

  private ensureSubscriber(): void {
    if (this.subscriber) return;
    const channel = this.keys.events;
    let readyBefore = false;
    const resubscribe = (c: ScriptedRedis): void => {
      // On every (re)connect, including the first: also covers a SUBSCRIBE lost in flight.
      c.subscribe(channel).catch(() => {});
      if (readyBefore) this.hintAfterReconnect();
      readyBefore = true;
    };
    const subscriber = new RedisConnection({
      url: this.opts.url,
      connectionName: `leaderway-events-${this.keys.prefix}`,
      commandTimeoutMs: this.opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      readyCheck: !this.opts.reader,
      onReady: resubscribe,
    });
    subscriber.client.on('message', (from: string, message: string) => {
      if (from === channel) this.fanout.deliverMessage(message);
    });
    this.subscriber = subscriber;
    // Connect now; if Redis is down the connection keeps retrying by itself.
    subscriber.start().catch(() => {});
  }

  private hintAfterReconnect(): void {
    if (!this.closed) this.fanout.hint();
  }
}
