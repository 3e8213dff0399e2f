/**
 * The data backend on Redis. Every write goes through `batch.lua`, which checks the fence (the
 * lock value) and the ifAbsent guard and applies the writes in one atomic step, keeping the
 * path index (`{p}/index`) in step with the data keys.
 */
import { isLwError, LwError } from '../../errors';
import type { Backend, FencingBackend, WriteOp } from '../backend';
import { FencedView, type FenceTarget, fencedWriteError } from '../fenced-view';
import { immediateChildren } from '../semantics';
import { noteApplied } from '../write-scope';
import { DEFAULT_START_TIMEOUT_MS, RedisConnection } from './connection';
import { type RedisKeys, redisKeys } from './keys';
import {
  NO_REPLICATION,
  notReplicatedError,
  type ReplicationSettings,
  replicasFor,
  replicated,
} from './replication';
import type { RedisArg } from './scripts';

/** Default per-command timeout: a data request should fail over to a 503 well before clients time out. */
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/** A write's command timeout outlasts its WAIT by this much. */
const WAIT_SLACK_MS = 1000;

/** The upper bound of a ZRANGEBYLEX prefix scan: 0xFF never occurs in UTF-8, so it sorts last. */
const LEX_MAX_BYTE = Buffer.from([0xff]);

/**
 * ioredis' rejections for a command that was sent but not answered: it timed out, or the
 * connection dropped with it in flight. Redis may still run it. (A reply error is an answer; a
 * command refused while disconnected was never sent.)
 */
const UNANSWERED = /^Command timed out$|^Connection is closed\.$|max retries per request/i;

/** batch.lua replies. */
const BATCH_APPLIED = 1;
const BATCH_GUARD_EXISTS = 0;
const BATCH_FENCED = -1;

/** Options for {@link RedisBackend}. */
export interface RedisBackendOptions {
  /** `redis://`, `rediss://` or `redis+sentinel://` URL. May hold a password: never logged. */
  url: string;
  /** Key namespace (wrapped as a hash tag). Default `leaderway`. */
  prefix?: string;
  /** Per-command timeout; default 2000 ms (raised to outlast a WAIT). */
  commandTimeoutMs?: number;
  /** Replicas a write must reach before it is acknowledged (default: none). */
  replication?: ReplicationSettings;
  /** A write WAIT did not confirm in time (for a metric). */
  onUnreplicated?(): void;
  /** A write the primary refused with NOREPLICAS (for a metric). */
  onNoReplicas?(): void;
  /** A process that only reads (a gateway): no INFO ready check (see ConnectionOptions.readyCheck). */
  reader?: boolean;
}

/**
 * Data storage on Redis, with fencing (the lock lives in the same Redis, so the lock check and
 * the write can be one script). Construct it while Redis is down if need be: calls reject with
 * `LW_ERR_STORAGE_UNAVAILABLE` until it comes back, and the connection heals by itself.
 */
export class RedisBackend implements FencingBackend, FenceTarget {
  readonly kind = 'redis';
  readonly keys: RedisKeys;
  private readonly conn: RedisConnection;
  /** Replicas every write must reach (0: a single Redis, no WAIT). */
  readonly minReplicas: number;
  private readonly waitTimeoutMs: number;

  private readonly onUnreplicated: (() => void) | undefined;

  constructor(opts: RedisBackendOptions) {
    this.keys = redisKeys(opts.prefix);
    this.onUnreplicated = opts.onUnreplicated;
    const replication = opts.replication ?? NO_REPLICATION;
    this.minReplicas = replicasFor(replication, opts.url);
    this.waitTimeoutMs = replication.waitTimeoutMs;
    this.conn = new RedisConnection({
      url: opts.url,
      connectionName: `leaderway-data-${this.keys.prefix}`,
      readyCheck: !opts.reader,
      onNoReplicas: opts.onNoReplicas,
      commandTimeoutMs: Math.max(
        opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
        this.minReplicas > 0 ? this.waitTimeoutMs + WAIT_SLACK_MS : 0,
      ),
    });
  }

  /**
   * Connects; resolves once ready or rejects with `LW_ERR_STORAGE_UNAVAILABLE` after
   * `timeoutMs` (default 5 s). Optional: the first call connects too, but fails while doing so.
   */
  start(timeoutMs: number = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    return this.conn.start(timeoutMs);
  }

  /** True while connected. */
  get connected(): boolean {
    return this.conn.ready;
  }

  get(path: string): Promise<Buffer | null> {
    return this.conn.run((c) => c.getBuffer(this.keys.data(path)));
  }

  getWithin(path: string, maxBytes: number): Promise<Buffer | number | null> {
    return this.conn.run((c) => c.lwGetWithin(this.keys.data(path), maxBytes));
  }

  /** One MGET: Redis runs a command whole, so the values are of one instant. */
  getMany(paths: readonly string[]): Promise<(Buffer | null)[]> {
    if (paths.length === 0) return Promise.resolve([]);
    return this.conn.run((c) => c.mgetBuffer(...paths.map((p) => this.keys.data(p))));
  }

  async put(path: string, value: Buffer): Promise<void> {
    await this.batch([{ op: 'put', path, value }]);
  }

  async delete(path: string): Promise<void> {
    await this.batch([{ op: 'delete', path }]);
  }

  list(prefix: string): Promise<string[]> {
    return this.conn.run(async (c) => {
      // Buffers, so the 0xFF bound is one raw byte and not UTF-8 encoded as C3 BF.
      const min = prefix === '' ? '-' : Buffer.from(`[${prefix}`);
      const max = prefix === '' ? '+' : Buffer.concat([Buffer.from(`[${prefix}`), LEX_MAX_BYTE]);
      return immediateChildren(prefix, await c.zrangebylex(this.keys.index, min, max));
    });
  }

  batch(ops: WriteOp[], opts: { ifAbsent?: string } = {}): Promise<boolean> {
    return this.runBatch(ops, opts.ifAbsent, undefined);
  }

  /** @internal Used by the fenced view. */
  fencedBatch(ops: WriteOp[], opts: { ifAbsent?: string }, fence: string): Promise<boolean> {
    return this.runBatch(ops, opts.ifAbsent, fence);
  }

  /** A view whose writes are refused unless `{p}/core/lock` holds `lockValue`. No new connection. */
  fenced(lockValue: string, signal: AbortSignal): Backend {
    return new FencedView(this, lockValue, signal);
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  private async runBatch(
    ops: WriteOp[],
    ifAbsent: string | undefined,
    fence: string | undefined,
  ): Promise<boolean> {
    const { keys, args } = this.batchArguments(ops, ifAbsent, fence);
    let reply: number;
    let confirmed = true;
    let applied = false;
    try {
      reply = await this.conn.run(async (c) => {
        const r = await c.lwBatch(keys.length, ...keys, ...args);
        if (r === BATCH_APPLIED) {
          // Stored: from here on, whatever fails (the WAIT, its connection) leaves the outcome
          // unknown, never "not done" — a gateway must not send this write again.
          applied = true;
          noteApplied();
          // Sent right behind the batch on the same connection, so it covers it.
          confirmed = await replicated(c, this.minReplicas, this.waitTimeoutMs);
        }
        return r;
      });
    } catch (err) {
      if (applied) {
        this.onUnreplicated?.();
        throw notReplicatedError(this.minReplicas);
      }
      // A write that timed out or lost its connection after being sent may still run in Redis
      // (it sits in Redis' input buffer): the caller must not report it as "not done".
      const cause = isLwError(err, 'LW_ERR_STORAGE_UNAVAILABLE')
        ? (err.cause as Error | undefined)
        : undefined;
      if (cause && UNANSWERED.test(cause.message)) {
        throw new LwError(
          'LW_ERR_OUTCOME_UNKNOWN',
          'storage did not confirm the write; its outcome is unknown: check before retrying',
          { cause: err, retryAfter: 1 },
        );
      }
      throw err;
    }
    switch (reply) {
      case BATCH_APPLIED:
        if (!confirmed) {
          this.onUnreplicated?.();
          throw notReplicatedError(this.minReplicas);
        }
        return true;
      case BATCH_GUARD_EXISTS:
        return false;
      case BATCH_FENCED:
        throw fencedWriteError();
      default:
        throw new LwError('LW_ERR_INTERNAL', 'unexpected reply from the storage batch script');
    }
  }

  /** Builds KEYS and ARGV as documented at the top of `scripts/batch.lua`. */
  private batchArguments(
    ops: WriteOp[],
    ifAbsent: string | undefined,
    fence: string | undefined,
  ): { keys: string[]; args: RedisArg[] } {
    const keys = [this.keys.index, this.keys.lock];
    const args: RedisArg[] = [
      fence === undefined ? '0' : '1',
      fence ?? '',
      ifAbsent === undefined ? '0' : '1',
    ];
    if (ifAbsent !== undefined) keys.push(this.keys.data(ifAbsent));
    for (const op of ops) {
      keys.push(this.keys.data(op.path));
      if (op.op === 'put') {
        if (!Buffer.isBuffer(op.value)) throw new TypeError('storage values must be Buffers');
        args.push('P', op.path, op.value);
      } else {
        args.push('D', op.path, '');
      }
    }
    return { keys, args };
  }
}
