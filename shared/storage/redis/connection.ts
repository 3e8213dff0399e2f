/**
 * One ioredis connection as the storage backends want it: fail fast while Redis is away,
 * reconnect by itself when it returns, and never let a command argument (a secret value) leak
 * into an error.
 */
import Redis, { type RedisOptions } from 'ioredis';
import { isLwError } from '../../errors';
import { storageUnavailableError } from '../semantics';
import { noReplicasError, refusedForMissingReplicas } from './no-replicas';
import { parseRedisUrl } from './redis-url';
import { defineScripts, type ScriptedRedis } from './scripts';
import { type SentinelWatch, sentinelWatchFor } from './sentinel-watch';

/** Reconnect delay grows by this per attempt... */
const RECONNECT_STEP_MS = 50;
/**
 * ...up to this cap, so a node is back within a quarter second of Redis (or, behind Sentinel, of
 * the promoted replica): the time between the end of a failover and the first served request.
 * Exported for the test that holds it to this (test/unit/sentinel-watch.test.ts).
 */
export const RECONNECT_MAX_DELAY_MS = 250;

/** ioredis' reconnect delay for the `times`-th attempt in a row. */
export function reconnectDelayMs(times: number): number {
  return Math.min(times * RECONNECT_STEP_MS, RECONNECT_MAX_DELAY_MS);
}

/**
 * Which reply errors mean "this server is no longer the primary", so the connection must ask the
 * Sentinels again: READONLY (a demoted primary, now a replica). The command is not resent (1, not
 * 2): a write must never run later than its caller was told.
 */
export function reconnectOnReplyError(err: Error): boolean {
  return err.message.startsWith('READONLY');
}

/** A TCP connect that takes longer is abandoned and retried (a black-holed host never answers). */
const CONNECT_TIMEOUT_MS = 2000;
/** How long `start()` waits for the first connection by default. */
export const DEFAULT_START_TIMEOUT_MS = 5000;

/** How to open a connection. */
export interface ConnectionOptions {
  url: string;
  /** Shown in `CLIENT LIST`, so an operator can tell the connections apart. */
  connectionName: string;
  /** Every command rejects after this long. */
  commandTimeoutMs: number;
  /** Re-issue SUBSCRIBE ourselves on every (re)connect instead of trusting ioredis' memory. */
  onReady?: (client: ScriptedRedis) => void;
  /**
   * ioredis' ready check: INFO after connecting, to wait while Redis loads its data and, behind
   * Sentinel, to refuse a server that is not the primary (default true). A reader (a gateway)
   * goes without, so its Redis user needs no INFO: a command sent while Redis loads is refused
   * (LOADING) and retried like any outage, and a replica it reached by mistake serves it reads
   * no staler than a failover would (it never writes).
   */
  readyCheck?: boolean;
  /** A write the primary refused with NOREPLICAS (min-replicas-to-write), for a metric. */
  onNoReplicas?(): void;
}

/**
 * Copies an error without ioredis' `command` property (which holds the command arguments, and
 * so stored values). Server and client error messages themselves carry no arguments.
 */
export function sanitizeError(err: unknown): Error {
  if (!(err instanceof Error)) return new Error('non-Error rejection from redis client');
  const safe = new Error(err.message);
  safe.name = err.name;
  if (err.stack) safe.stack = err.stack;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') Object.assign(safe, { code });
  return safe;
}

/** The cause of a command refused on a primary the Sentinels are replacing (never sent). */
const DEPOSED = new Error('the Redis primary is being replaced by a Sentinel failover');

/** Redis refused the SELECT ioredis sends for a URL's database number. */
function refusedSelect(err: unknown): boolean {
  return err instanceof Error && /^NOPERM\b.*'select'/i.test(err.message);
}

/** A self-healing connection. Every failure surfaces as `LW_ERR_STORAGE_UNAVAILABLE`. */
export class RedisConnection {
  readonly client: ScriptedRedis;
  /** The last connection error, sanitized: the `cause` of start() failures. */
  private lastError: Error | undefined;
  /**
   * Redis refused this connection's SELECT: the URL names a database the user may not select
   * (leaderway's Redis users grant no SELECT). ioredis would carry on in database 0 — another
   * cluster's data, perhaps — so the connection is dropped and counts as unusable until a
   * handshake passes without a refusal (the URL or the user fixed).
   */
  private refusal: Error | null = null;
  private closed = false;
  private endTimer: NodeJS.Timeout | undefined;
  /** Stops following Sentinel failovers (Sentinel URLs only). */
  private readonly unfollow: (() => void) | undefined;
  /** The process's Sentinel watch (Sentinel URLs only). */
  private readonly watch: SentinelWatch | undefined;
  /** Settles the `start()` calls still waiting, so close() never leaves one hanging. */
  private readonly startWaiters = new Set<(err?: Error) => void>();
  private readonly onNoReplicas: (() => void) | undefined;

  constructor(opts: ConnectionOptions) {
    this.onNoReplicas = opts.onNoReplicas;
    const target = parseRedisUrl(opts.url);
    const options: RedisOptions = {
      lazyConnect: true,
      connectionName: opts.connectionName,
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: CONNECT_TIMEOUT_MS,
      // While disconnected, reject at once: callers answer 503 and retry, and a queued lock
      // renew must never reach Redis long after its caller gave up.
      enableOfflineQueue: false,
      // Fail in-flight commands when the connection drops instead of resending them later:
      // a resent write could land after the caller was told it failed.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
      retryStrategy: reconnectDelayMs,
      // After a Sentinel failover the old master turns replica: reconnect to find the new one.
      reconnectOnError: reconnectOnReplyError,
      enableReadyCheck: opts.readyCheck ?? true,
      // No CLIENT SETINFO on connect: our Redis users need not allow it (ioredis would ignore the
      // refusal, but every refusal fills Redis' ACL LOG).
      disableClientInfo: true,
    };
    let client: Redis;
    if ('url' in target) {
      client = new Redis(target.url, options);
    } else {
      // Failovers are followed by the process's SentinelWatch (sentinel-watch.ts says why), not
      // by ioredis' detector, which drops connections already on the new primary.
      client = new Redis({ ...target.options, ...options, failoverDetector: false });
      const { watch, release } = sentinelWatchFor(target.options);
      const stop = watch.follow(client);
      this.watch = watch;
      this.unfollow = () => {
        stop();
        release();
      };
    }
    this.client = defineScripts(client);
    // Without an 'error' listener ioredis prints every reconnect failure to stderr.
    client.on('error', (err: unknown) => {
      this.lastError = sanitizeError(err);
      if (refusedSelect(err)) {
        this.refusal = this.lastError;
        client.disconnect(true);
      }
    });
    // Each handshake starts clean; the refusal, if any, arrives before 'ready'.
    client.on('connect', () => {
      this.refusal = null;
      // Reached a primary the Sentinels are replacing (a Sentinel that has not switched yet still
      // names it): leave before the handshake, which a frozen old primary would never answer, and
      // ask again (sentinel-watch.ts says why nothing may be written there).
      if (this.watch?.isDeposed(client)) client.disconnect(true);
    });
    client.on('ready', () => {
      // Deposed during the handshake.
      if (this.watch?.isDeposed(client)) {
        client.disconnect(true);
        return;
      }
      if (!this.refusal) opts.onReady?.(this.client);
    });
    // A connector failure (e.g. no sentinel reachable) ends the client for good; revive it.
    client.on('end', () => {
      if (this.closed) return;
      clearTimeout(this.endTimer);
      this.endTimer = setTimeout(() => this.kick(), RECONNECT_MAX_DELAY_MS);
      this.endTimer.unref();
    });
  }

  /** True once connected and ready for commands. */
  get ready(): boolean {
    return this.client.status === 'ready' && !this.refusal && !this.watch?.isDeposed(this.client);
  }

  /**
   * Resolves once connected, or rejects with `LW_ERR_STORAGE_UNAVAILABLE` after `timeoutMs`.
   * Reconnection continues in the background either way, so a connection that starts while
   * Redis is down recovers by itself.
   */
  async start(timeoutMs: number = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    if (this.closed) throw storageUnavailableError();
    if (this.ready) return;
    this.kick();
    await new Promise<void>((resolve, reject) => {
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.startWaiters.delete(finish);
        if (err) reject(err);
        else resolve();
      };
      const onReady = (): void => {
        if (!this.refusal) finish();
      };
      const timer = setTimeout(() => finish(storageUnavailableError(this.lastError)), timeoutMs);
      this.client.on('ready', onReady);
      this.startWaiters.add(finish);
    });
  }

  /** Runs `fn` on the client, mapping any failure that is not already an LwError. */
  async run<T>(fn: (client: ScriptedRedis) => Promise<T>): Promise<T> {
    if (this.closed) throw storageUnavailableError();
    if (this.refusal) throw storageUnavailableError(this.refusal);
    if (this.watch?.isDeposed(this.client)) throw storageUnavailableError(DEPOSED);
    this.kick();
    try {
      return await fn(this.client);
    } catch (err) {
      if (isLwError(err)) throw err;
      if (refusedForMissingReplicas(err)) {
        this.onNoReplicas?.();
        throw noReplicasError(sanitizeError(err));
      }
      throw storageUnavailableError(sanitizeError(err));
    }
  }

  /** Closes the socket at once; in-flight commands reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.endTimer);
    this.unfollow?.();
    for (const finish of [...this.startWaiters]) finish(storageUnavailableError());
    this.client.disconnect();
  }

  /** Starts connecting if the client is idle (never connected, or given up). */
  private kick(): void {
    if (this.closed) return;
    const status = this.client.status;
    if (status === 'wait' || status === 'end') this.client.connect().catch(() => {});
  }
}
