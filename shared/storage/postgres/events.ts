/**
 * HA events over LISTEN/NOTIFY, with a poll fallback. The listening connection is its own
 * `pg.Client` (a pooled one could be handed to a statement, and LISTEN belongs to one session).
 * NOTIFY keeps no history for a session that was not listening, so:
 * - after the listener reconnects, this process's listeners get RECONNECT_HINTS (events mean
 *   "re-read", epoch 0: unknown; ha-events.ts), as the Redis backend does after a resubscribe;
 * - while it cannot listen, the holder is polled every EVENT_POLL_MS and a change is delivered as
 *   the same hints, so a gateway or standby hears of a new leader no later than a poll.
 */
import { Client } from 'pg';
import type { HAEvent, LockHolder } from '../backend';
import { EventFanout, encodeEvent, type HAEventStats } from '../ha-events';
import type { PgPool } from './connection';
import { acceptsWrites, type PgTargets, parseTargets } from './hosts';

/** Delay before reconnecting the listening connection. */
const RECONNECT_DELAY_MS = 250;
/** Holder poll period while the listening connection is down (the fallback). */
export const EVENT_POLL_MS = 1000;
/** A connect that takes longer is abandoned. */
const CONNECT_TIMEOUT_MS = 2000;

export interface PgEventsOptions {
  url: string;
  /** A validated identifier (schema.ts), so it is never quoted. */
  channel: string;
  statementTimeoutMs: number;
  /** Reads the holder, for the poll fallback. */
  holder(): Promise<LockHolder | null>;
  /** The session's application_name (connection.ts sessionName). */
  applicationName: string;
}

export class PgEvents {
  private readonly fanout = new EventFanout();
  readonly stats: HAEventStats = this.fanout.stats;
  private client: Client | null = null;
  private listening = false;
  private listenedBefore = false;
  private closed = false;
  private started = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private lastPolled: string | undefined;
  private readonly targets: PgTargets;
  /** The host the next connection tries; moves on after a failure (hosts.ts). */
  private host = 0;

  constructor(private readonly o: PgEventsOptions) {
    this.targets = parseTargets(o.url);
  }

  /** NOTIFY through `pool` (the lock connection). Best effort. */
  async publish(pool: PgPool, event: HAEvent): Promise<void> {
    if (this.closed || pool.isClosed) return;
    const payload = encodeEvent(event);
    try {
      await pool.run((c) => c.query('SELECT pg_notify($1, $2)', [this.o.channel, payload]));
    } catch {
      this.stats.publishFailures += 1;
    }
  }

  subscribe(listener: (event: HAEvent) => void): () => void {
    if (this.closed) return () => {};
    const remove = this.fanout.add(listener);
    if (!this.started) {
      this.started = true;
      this.connect();
      this.pollTimer = setInterval(() => void this.poll(), EVENT_POLL_MS);
      this.pollTimer.unref();
    }
    return remove;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fanout.clear();
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pollTimer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  private newClient(at: number): Client {
    return new Client({
      connectionString: this.targets.urls[at],
      application_name: this.o.applicationName,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: this.o.statementTimeoutMs,
      keepAlive: true,
    });
  }

  private connect(): void {
    if (this.closed) return;
    const at = this.host;
    let client: Client;
    try {
      client = this.newClient(at);
    } catch {
      // Refused by the driver (hosts.ts validates URLs first): retry later, never crash.
      this.reconnectTimer = setTimeout(() => this.connect(), RECONNECT_DELAY_MS);
      this.reconnectTimer.unref();
      return;
    }
    this.client = client;
    let failed = false;
    const fail = (): void => {
      if (failed) return;
      failed = true;
      this.listening = false;
      // NOTIFY is sent on the primary and a standby cannot LISTEN: try the next host.
      if (this.host === at) this.host = (at + 1) % this.targets.urls.length;
      client.end().catch(() => undefined);
      if (this.client === client) this.client = null;
      if (this.closed) return;
      this.reconnectTimer = setTimeout(() => this.connect(), RECONNECT_DELAY_MS);
      this.reconnectTimer.unref();
    };
    client.on('error', fail);
    client.on('end', fail);
    client.on('notification', (msg) => {
      if (msg.channel !== this.o.channel) return;
      this.fanout.deliverMessage(msg.payload);
    });
    client
      .connect()
      .then(async () => {
        if (this.targets.writableOnly && !(await acceptsWrites(client))) throw new Error('read-only');
        await client.query(`LISTEN ${this.o.channel}`);
      })
      .then(() => {
        if (this.closed || failed) return;
        this.listening = true;
        this.lastPolled = undefined;
        if (this.listenedBefore) this.fanout.hint();
        this.listenedBefore = true;
      })
      .catch(fail);
  }

  /** The fallback: only while not listening, a changed holder is delivered as hints. */
  private async poll(): Promise<void> {
    if (this.closed || this.listening || this.fanout.size === 0) return;
    let now: string;
    try {
      const h = await this.o.holder();
      now = h ? `${h.value}/${h.epoch}` : '';
    } catch {
      return;
    }
    const changed = this.lastPolled !== undefined && this.lastPolled !== now;
    this.lastPolled = now;
    if (changed && !this.listening) this.fanout.hint();
  }
}
