/**
 * A pool of PostgreSQL connections (node-postgres) as the storage backends want it: fail fast
 * while the server is away, heal by itself when it returns, never run a statement long after its
 * caller gave up, and never let a statement parameter (a secret value) leak into an error.
 */
import {
  type Client,
  DatabaseError,
  Pool,
  type PoolClient,
  type PoolConfig,
  type QueryConfig,
  type QueryResult,
} from 'pg';
import { isLwError, LwError } from '../../errors';
import { storageUnavailableError } from '../semantics';
import { noteApplied } from '../write-scope';
import { acceptsWrites, type PgTargets, parseTargets } from './hosts';

/** A TCP connect (or a wait for a free pooled connection) that takes longer is abandoned. */
const CONNECT_TIMEOUT_MS = 2000;
/** How long `start()` waits for the first connection by default. */
export const DEFAULT_START_TIMEOUT_MS = 5000;
/** Pause between connection attempts in `start()`. */
const START_RETRY_MS = 100;
/**
 * The server cancels a statement after the client's timeout plus this: a statement whose caller
 * already gave up (and whose connection was destroyed) does not keep its row locks for long.
 */
const SERVER_TIMEOUT_SLACK_MS = 500;

/**
 * A session's `application_name`: `leaderway-<role>`, and `/<process id>` when given (the node
 * id, not secret), so pg_stat_activity, the server's log and audit triggers tell each process's
 * pools apart. The server keeps the first 63 bytes.
 */
export function sessionName(role: 'data' | 'lock' | 'events', processId?: string): string {
  return processId ? `leaderway-${role}/${processId}` : `leaderway-${role}`;
}

/** How to open a pool. */
export interface PgPoolOptions {
  /**
   * `postgres://` / `postgresql://` URL, possibly with several hosts (hosts.ts). May hold a
   * password: never logged.
   */
  url: string;
  /** Shown in `pg_stat_activity.application_name`, so an operator can tell the pools apart. */
  applicationName: string;
  /** Every statement rejects after this long (client side); the server cancels it soon after. */
  statementTimeoutMs: number;
  /** Connections at most (OpenBao's `max_parallel`). */
  max: number;
  /** A connect, or a wait for a free pooled connection, gives up after this (default 2 s). */
  connectTimeoutMs?: number;
  /**
   * Idle connections are closed after this (0: never). The lock pool keeps its connection open:
   * standbys read the holder's liveness from it (a closed one looks like a crash).
   */
  idleTimeoutMs: number;
  /**
   * Sessions in node-postgres' pipeline mode, so {@link sendTogether} sends several statements in
   * one socket write. Default off: every caller awaits each statement anyway.
   */
  pipeline?: boolean;
}

/** A statement and its parameters. */
export interface Statement {
  text: string;
  values?: unknown[];
}

/**
 * Runs `statements` on `c` in order. On a pipelining session (PgPoolOptions.pipeline) they are
 * sent together, in one socket write, without waiting for each answer: each is still its own
 * extended-protocol message with its own Sync, so one that fails does not stop the server running
 * the next (inside a transaction those fail too, 25P02). Otherwise one at a time, stopping at the
 * first failure. Resolves every result in order; rejects with the first failure once every
 * statement is settled — answered, or its connection destroyed by a client timeout (node-postgres
 * does that in pipeline mode) — so none is left in flight on a connection back in the pool.
 * Send together only statements that may all run whatever the earlier ones answer: never a write
 * that depends on a check, nor a COMMIT behind a write whose failure must leave "nothing stored".
 *
 * `timeoutMs`: each statement's own client timeout (the pool's). node-postgres starts a
 * statement's timer when it is queued, so the i-th of those sent together is given i + 1 times it
 * (it waits for the ones before it, as it would have one at a time); the server's
 * statement_timeout still bounds each statement on its own.
 */
export async function sendTogether(
  c: Client,
  statements: readonly Statement[],
  timeoutMs?: number,
): Promise<QueryResult[]> {
  if (!c.pipeline) {
    const out: QueryResult[] = [];
    for (const s of statements) out.push(await c.query(s.text, s.values));
    return out;
  }
  // node-postgres writes each statement as it is queued (its own cork/uncork): the outer cork
  // makes them one write (one syscall, one wake-up of the server) instead of one each.
  const stream = c.connection.stream;
  stream.cork();
  let pending: Promise<QueryResult>[];
  try {
    pending = statements.map((s, i) => {
      // Per-statement client timeout: honoured by node-postgres, not in its type declarations.
      const config = { text: s.text, values: s.values, query_timeout: timeoutMs && timeoutMs * (i + 1) };
      return c.query(config as QueryConfig);
    });
  } finally {
    stream.uncork();
  }
  const settled = await Promise.allSettled(pending);
  const out: QueryResult[] = [];
  for (const r of settled) {
    if (r.status === 'rejected') throw r.reason;
    out.push(r.value);
  }
  return out;
}

/**
 * Copies a driver error keeping only its message and SQLSTATE: node-postgres errors carry
 * `detail`, `where` and `internalQuery`, which may quote stored values.
 */
export function sanitizeError(err: unknown): Error {
  if (!(err instanceof Error)) return new Error('non-Error rejection from the postgres client');
  const safe = new Error(err.message);
  safe.name = err.name;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') Object.assign(safe, { code });
  if (isServerReply(err)) Object.assign(safe, { serverReply: true });
  return safe;
}

/**
 * A reply error from the server (it answered: a `DatabaseError` with a SQLSTATE), as opposed to
 * a lost connection. Not judged by the code's shape: `EPIPE` or `EBADF` look like a SQLSTATE, and
 * a COMMIT lost that way would be taken for a refusal (nothing stored) instead of an unknown outcome.
 */
export function isServerReply(err: unknown): boolean {
  return err instanceof DatabaseError || (err as { serverReply?: unknown } | null)?.serverReply === true;
}

/**
 * The WARNING a server sends when a commit's wait for its synchronous standby is cancelled (a
 * statement timeout, pg_cancel_backend, a terminated session): the transaction is committed on
 * the primary only, yet the statement answers success. `run` fails such a statement as a lost
 * connection (a COMMIT's outcome is then unknown): a write acknowledged here is replicated.
 */
const SYNC_REP_CANCELLED = /synchronous replication/i;
/** Its SQLSTATE: the generic WARNING code (the message may be in another language). */
const GENERIC_WARNING = '01000';

/** SQLSTATE 22021: a NUL (or invalid UTF-8) in a text parameter. */
const CHARACTER_NOT_IN_REPERTOIRE = '22021';

/** Thrown inside a transaction to roll it back and resolve `result` instead. */
export class Rollback<T> {
  constructor(readonly result: T) {}
}

/**
 * A self-healing pool. Every failure surfaces as `LW_ERR_STORAGE_UNAVAILABLE`. With several hosts
 * (hosts.ts) it keeps one pool per host and uses the one it last found writable: a host that
 * refuses a connection, or whose new session is read-only, moves it on to the next.
 */
export class PgPool {
  private readonly pools: Pool[];
  private readonly targets: PgTargets;
  /** The host in use (an index into `pools`). */
  private current = 0;
  /** Sessions already found writable (checked once, when new). */
  private readonly writable = new WeakSet<PoolClient>();
  private closed = false;
  private lastError: Error | undefined;

  /** Each statement's client timeout (PgPoolOptions.statementTimeoutMs). */
  readonly statementTimeoutMs: number;

  constructor(opts: PgPoolOptions) {
    this.statementTimeoutMs = opts.statementTimeoutMs;
    this.targets = parseTargets(opts.url);
    this.pools = this.targets.urls.map((url) => this.open(url, opts));
  }

  private open(url: string, opts: PgPoolOptions): Pool {
    const config: PoolConfig = {
      connectionString: url,
      application_name: opts.applicationName,
      max: opts.max,
      idleTimeoutMillis: opts.idleTimeoutMs,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      // Client side: the caller hears within this. Server side, a little later: the statement
      // stops even if its connection is half-open.
      query_timeout: opts.statementTimeoutMs,
      statement_timeout: opts.statementTimeoutMs + SERVER_TIMEOUT_SLACK_MS,
      // The lock must never wait behind a long row lock: a blocked renew is a failed renew.
      lock_timeout: opts.statementTimeoutMs,
      idle_in_transaction_session_timeout: opts.statementTimeoutMs * 2 + SERVER_TIMEOUT_SLACK_MS,
      keepAlive: true,
      pipeline: opts.pipeline ?? false,
    };
    const pool = new Pool(config);
    // An idle connection that breaks (server restarted, terminated) is dropped by the pool;
    // without this listener the error would crash the process.
    pool.on('error', (err) => {
      this.lastError = sanitizeError(err);
    });
    return pool;
  }

  /**
   * A connection to the host in use; with several hosts, one whose session accepts writes,
   * trying each host at most once. Rejects `LW_ERR_STORAGE_UNAVAILABLE`.
   */
  private async connect(): Promise<PoolClient> {
    for (let tried = 0; tried < this.pools.length; tried++) {
      const at = this.current;
      let client: PoolClient | undefined;
      try {
        client = await (this.pools[at] as Pool).connect();
        if (!this.targets.writableOnly || this.writable.has(client)) return client;
        // Heard while checked out, as in run(): an unheard 'error' would crash the process.
        const ignore = (): void => {};
        client.on('error', ignore);
        const ok = await acceptsWrites(client).finally(() => client?.off('error', ignore));
        if (ok) {
          this.writable.add(client);
          return client;
        }
        this.lastError = new Error('the server is read-only (a standby)');
        client.release(true);
      } catch (err) {
        this.lastError = sanitizeError(err);
        client?.release(true);
      }
      if (this.current === at) this.current = (at + 1) % this.pools.length;
    }
    throw storageUnavailableError(this.lastError);
  }

  /**
   * Resolves once a connection answers, or rejects with `LW_ERR_STORAGE_UNAVAILABLE` after
   * `timeoutMs`. Callers work either way: every call connects as needed.
   */
  async start(timeoutMs: number = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        await this.run((c) => c.query('SELECT 1'));
        return;
      } catch (err) {
        if (this.closed || performance.now() + START_RETRY_MS > deadline)
          throw storageUnavailableError(this.lastError ?? (err as LwError).cause);
      }
      await new Promise((r) => setTimeout(r, START_RETRY_MS));
    }
  }

  /**
   * Runs `fn` on one pooled connection. A connection that failed in any way other than a server
   * reply is destroyed, not reused: it may be mid-statement, and the server rolls back whatever
   * transaction it had open when the socket closes.
   */
  async run<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw storageUnavailableError();
    const client = await this.connect();
    let broken = false;
    // A checked-out client whose connection dies emits 'error' besides failing its query; the
    // pool listens only while the client is idle, and an unheard 'error' would crash the process.
    const onError = (err: unknown): void => {
      broken = true;
      this.lastError = sanitizeError(err);
    };
    client.on('error', onError);
    let unreplicated = false;
    const onNotice = (n: { message?: string; code?: string }): void => {
      // The text is translated under another lc_messages and the SQLSTATE is the generic 01000:
      // any such warning counts (it can only turn a success into "outcome unknown").
      if (n.code === GENERIC_WARNING || SYNC_REP_CANCELLED.test(n.message ?? '')) unreplicated = true;
    };
    client.on('notice', onNotice);
    try {
      const result = await fn(client);
      if (unreplicated) throw new Error('a commit was not replicated to the synchronous standby');
      return result;
    } catch (err) {
      broken ||= !isServerReply(err) && !isLwError(err);
      if (isLwError(err)) throw err;
      // A text parameter PostgreSQL cannot hold (a NUL in a path): the request's fault, not an
      // outage. Redis stores such a path; PostgreSQL's text type cannot.
      if ((err as { code?: unknown }).code === CHARACTER_NOT_IN_REPERTOIRE) {
        throw new LwError('LW_ERR_BAD_REQUEST', 'a storage path may not contain a NUL character');
      }
      this.lastError = sanitizeError(err);
      throw storageUnavailableError(this.lastError);
    } finally {
      client.off('error', onError);
      client.off('notice', onNotice);
      client.release(broken || this.closed);
    }
  }

  /**
   * Runs `fn` inside BEGIN ... COMMIT on one connection. `fn` may throw a {@link Rollback} to
   * roll back and resolve its result (a refused write). Once COMMIT succeeded the write is
   * noted applied (write-scope.ts); a COMMIT sent but not answered rejects with
   * `LW_ERR_OUTCOME_UNKNOWN`, because the server may have committed it. A failure before COMMIT
   * was sent stored nothing: the transaction is rolled back, or dies with its connection. Lock
   * transactions (`data: false`) note nothing and reject `LW_ERR_STORAGE_UNAVAILABLE` either way,
   * as the HABackend contract says (a lock taken unknowingly runs out with its lease).
   *
   * `o.first` is sent together with BEGIN ({@link sendTogether}: one write on a pipelining pool)
   * and its result handed to `fn`. It runs even if BEGIN fails, then outside any transaction, so
   * it must be harmless alone: a read (a failed BEGIN still rejects, before `fn` runs).
   */
  async transaction<T>(
    fn: (c: PoolClient, first: QueryResult | undefined) => Promise<T>,
    o: { data: boolean; first?: Statement } = { data: true },
  ): Promise<T> {
    let committing = false;
    try {
      const result = await this.run(async (c) => {
        let result: T;
        try {
          // In the try: a `first` that failed left the transaction open (aborted) to roll back.
          const [, first] = await sendTogether(
            c,
            o.first ? [{ text: 'BEGIN' }, o.first] : [{ text: 'BEGIN' }],
            this.statementTimeoutMs,
          );
          result = await fn(c, first);
        } catch (err) {
          if (err instanceof Rollback) {
            await c.query('ROLLBACK');
            return err.result as T;
          }
          // A refusal (fenced) or a server reply: the connection is kept, so end the
          // transaction before it goes back to the pool. (A lost connection is destroyed.)
          if (isLwError(err) || isServerReply(err)) await c.query('ROLLBACK');
          throw err;
        }
        committing = true;
        await c.query('COMMIT');
        return result;
      });
      // Committed (and, with a synchronous standby, replicated: run() checked). Lock statements
      // are no request's data write (`data: false`).
      if (committing && o.data) noteApplied();
      return result;
    } catch (err) {
      if (committing && o.data && isLwError(err, 'LW_ERR_STORAGE_UNAVAILABLE') && !isServerReply(err.cause)) {
        throw new LwError(
          'LW_ERR_OUTCOME_UNKNOWN',
          'storage did not confirm the write; its outcome is unknown: check before retrying',
          { cause: err, retryAfter: 1 },
        );
      }
      throw err;
    }
  }

  /** Closes every connection; in-flight statements reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.pools.map((p) => p.end().catch(() => undefined)));
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
