/**
 * One ioredis connection as the storage backends want it: fail fast while Redis is away,
 * reconnect by itself when it returns, and never let a command argument (a secret value) leak
 * into an error.
 */
import Redis, { type RedisOptions } from 'ioredis';
import { isLwError } from '../../errors';
import { storageUnavailableError } from '../semantics';
import { parseRedisUrl } from './redis-url';
import { defineScripts, type ScriptedRedis } from './scripts';

/** Reconnect delay grows by this per attempt... */
const RECONNECT_STEP_MS = 50;
/**
 * ...up to this cap, so a node is back within a quarter second of Redis (or, behind Sentinel, of
 * the promoted replica): the time between the end of a failover and the first served request.
 */
const RECONNECT_MAX_DELAY_MS = 250;
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
  /** Settles the `start()` calls still waiting, so close() never leaves one hanging. */
  private readonly startWaiters = new Set<(err?: Error) => void>();

  constructor(opts: ConnectionOptions) {
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
      retryStrategy: (times) => Math.min(times * RECONNECT_STEP_MS, RECONNECT_MAX_DELAY_MS),
      // After a Sentinel failover the old master turns replica: reconnect to find the new one.
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
      enableReadyCheck: opts.readyCheck ?? true,
      // No CLIENT SETINFO on connect: our Redis users need not allow it (ioredis would ignore the
      // refusal, but every refusal fills Redis' ACL LOG).
      disableClientInfo: true,
    };
    const client =
      'url' in target ? new Redis(target.url, options) : new Redis({ ...target.options, ...options });
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
    });
    client.on('ready', () => {
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
    return this.client.status === 'ready' && !this.refusal;
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
    this.kick();
    try {
      return await fn(this.client);
    } catch (err) {
      if (isLwError(err)) throw err;
      throw storageUnavailableError(sanitizeError(err));
    }
  }

  /** Closes the socket at once; in-flight commands reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.endTimer);
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
