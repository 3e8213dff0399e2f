/**
 * Follows `+switch-master` for the connections of one process behind Sentinel, in place of
 * ioredis' `failoverDetector`, which disconnects every connection on every `+switch-master` it
 * hears. Sentinels announce one failover more than once: the others as soon as they learn the new
 * configuration, the one that ran it when it ends (measured on loopback with down-after 1 s:
 * about 1 s later). The second announcement dropped connections that were already on the new
 * primary, and the writes in flight on them were answered "outcome unknown" (2–4 writes in
 * every failover of the issue 25 reproduction). Here a connection is moved only when the
 * primary announced is not the server it is connected to — and then at once, whichever Sentinel
 * spoke first; a later announcement still moves a connection that reached the old primary in
 * between (a returning old primary a lagging Sentinel still named).
 *
 * It also stops the old primary from acknowledging anything once the Sentinels start replacing
 * it. Sentinel promotes a replica (REPLICAOF NO ONE) about a second before it announces the new
 * primary, and the old primary, when it is alive (`SENTINEL FAILOVER`, a primary back on its own
 * data before the announcement), keeps taking writes that its other replica confirms (`WAIT 1`),
 * until that replica and the old primary resynchronise from the promoted one and drop them.
 * Measured (issue 25): every `SENTINEL FAILOVER` under load lost the ~1.1 s of acknowledged
 * writes between the promotion and `+switch-master` (about 590 writes per failover, their
 * versions handed out again). So from `+selected-slave` (sent by the Sentinel that runs the
 * failover one timer tick before REPLICAOF NO ONE) until the failover ends, the old primary is
 * "deposed": connections to it are dropped (a write in flight is answered "outcome unknown") and
 * one that reaches it again is dropped at once, so requests are held until the new primary is
 * announced. An aborted failover lifts it, and so does asking the Sentinels
 * (DEPOSED_RECHECK_MS) when neither end was heard.
 *
 * One watch per Sentinel set and master name, shared by every connection of the process (data,
 * lock, events): one subscriber connection per Sentinel, not one per Sentinel per connection.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import Redis, { type RedisOptions } from 'ioredis';

/** The Sentinel channel a completed failover is announced on. */
const SWITCH_CHANNEL = '+switch-master';
/**
 * Channels on which the Sentinel running a failover says it is promoting a replica of a primary
 * (the first one before REPLICAOF NO ONE; the later ones in case the first was missed).
 */
const PROMOTING_CHANNELS = [
  '+selected-slave',
  '+failover-state-send-slaveof-noone',
  '+promoted-slave',
  '+failover-state-reconf-slaves',
];
/** Channels on which a failover ends without a new primary (the old one stays). */
const ABORT_CHANNEL_PATTERN = '-failover-abort-*';
/**
 * A deposition with neither end heard for this long is checked with the Sentinels (SENTINEL
 * MASTER): lifted unless one still reports a failover in progress. A promotion takes about a
 * second (Sentinel's INFO period) before the announcement; a missed announcement must not keep a
 * primary refused for longer than a couple of seconds.
 */
const DEPOSED_RECHECK_MS = 2000;
/** A Sentinel that does not answer the recheck in this long is skipped. */
const RECHECK_TIMEOUT_MS = 500;
/**
 * Reconnect delay of a subscriber to a Sentinel that went away: grows by this per attempt...
 */
const RECONNECT_STEP_MS = 50;
/**
 * ...up to this cap, so a restarted Sentinel is heard again within a quarter second (ioredis'
 * own detector waits a minute, missing every failover announced by that Sentinel meanwhile).
 */
const RECONNECT_MAX_DELAY_MS = 250;
/** A Sentinel that does not accept the TCP connection in this long is retried. */
const CONNECT_TIMEOUT_MS = 2000;

/** Where the Sentinels say the primary is. */
export interface PrimaryAddress {
  host: string;
  port: number;
}

/** What the watch needs of a data connection: where it is connected, and how to move it. */
export interface FollowingClient {
  /** The connected socket (ioredis' `stream`), if any. */
  readonly stream?: { remoteAddress?: string; remotePort?: number } | undefined;
  readonly status: string;
  /** Drops the connection and reconnects (ioredis asks the Sentinels again). */
  disconnect(reconnect?: boolean): void;
}

/**
 * Parses a `+switch-master` message: `<name> <old ip> <old port> <new ip> <new port>`. Null for
 * anything else.
 */
export function parseSwitchMessage(
  message: string,
): { name: string; from: PrimaryAddress; to: PrimaryAddress } | null {
  const parts = message.trim().split(' ');
  if (parts.length !== 5) return null;
  const [name, fromHost, fromPort, host, portText] = parts as [string, string, string, string, string];
  const port = Number(portText);
  const oldPort = Number(fromPort);
  const valid = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;
  if (!name || !host || !fromHost || !valid(port) || !valid(oldPort)) return null;
  return { name, from: { host: fromHost, port: oldPort }, to: { host, port } };
}

/**
 * The primary a Sentinel event is about: `... @ <name> <ip> <port>` for an event on a replica,
 * `master <name> <ip> <port> ...` for one on the primary. Null for anything else.
 */
export function parseEventPrimary(message: string): { name: string; primary: PrimaryAddress } | null {
  const parts = message.trim().split(' ');
  const at = parts.indexOf('@');
  const [name, host, portText] = at >= 0 ? parts.slice(at + 1) : parts[0] === 'master' ? parts.slice(1) : [];
  const port = Number(portText);
  if (!name || !host || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { name, primary: { host, port } };
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is `10.0.0.1`. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** `<address>:<port>` of the server a connection is on; null while it has no socket. */
export function clientKey(client: FollowingClient): string | null {
  const address = client.stream?.remoteAddress;
  const port = client.stream?.remotePort;
  if (address === undefined || port === undefined) return null;
  return `${plainAddress(address)}:${port}`;
}

/**
 * The `<address>:<port>` keys of an announced primary: itself when the Sentinels announce
 * addresses, the addresses its name resolves to when they announce host names
 * (`announce-hostnames yes`, as k8s/components/redis-sentinel does); none if it does not resolve.
 */
function keysOf(a: PrimaryAddress): string[] | Promise<string[]> {
  if (isIP(a.host) !== 0) return [`${plainAddress(a.host)}:${a.port}`];
  return lookup(a.host, { all: true }).then(
    (found) => found.map((f) => `${plainAddress(f.address)}:${a.port}`),
    () => [],
  );
}

/** Calls `fn` with the keys of `a`: at once for an address, after the lookup for a host name. */
function withKeys(a: PrimaryAddress, fn: (keys: string[]) => void): void {
  const keys = keysOf(a);
  if (Array.isArray(keys)) fn(keys);
  else void keys.then(fn);
}

/** Follows one master name on one Sentinel set. */
export class SentinelWatch {
  private readonly subscribers: Redis[] = [];
  private readonly clients = new Set<FollowingClient>();
  /** Primaries being replaced (address key → the timer that rechecks with the Sentinels). */
  private readonly deposed = new Map<string, NodeJS.Timeout>();
  private closed = false;
  /** Switches heard, connections moved or kept, depositions, for tests and diagnostics. */
  readonly stats = { switches: 0, moved: 0, kept: 0, deposed: 0, lifted: 0 };

  constructor(
    private readonly name: string,
    private readonly sentinels: ReadonlyArray<Partial<PrimaryAddress>>,
    private readonly sentinelOptions: RedisOptions,
  ) {
    for (const s of sentinels) {
      const sub = new Redis({
        ...sentinelOptions,
        host: s.host ?? '127.0.0.1',
        port: s.port ?? 26379,
        lazyConnect: true,
        connectTimeout: CONNECT_TIMEOUT_MS,
        retryStrategy: (times) => Math.min(times * RECONNECT_STEP_MS, RECONNECT_MAX_DELAY_MS),
        // A Sentinel answers no INFO a ready check could use, and SUBSCRIBE is all we send.
        enableReadyCheck: false,
        autoResubscribe: true,
        maxRetriesPerRequest: null,
      });
      // A Sentinel that is down is retried by itself; its errors are expected.
      sub.on('error', () => {});
      sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
      sub.on('pmessage', (_pattern: string, channel: string, message: string) =>
        this.onMessage(channel, message),
      );
      sub.subscribe(SWITCH_CHANNEL, ...PROMOTING_CHANNELS).catch(() => {});
      sub.psubscribe(ABORT_CHANNEL_PATTERN).catch(() => {});
      this.subscribers.push(sub);
    }
  }

  /** Follows `client` until the returned function is called. */
  follow(client: FollowingClient): () => void {
    this.clients.add(client);
    return () => {
      this.clients.delete(client);
    };
  }

  /** True while at least one client is followed. */
  get inUse(): boolean {
    return this.clients.size > 0;
  }

  /** Stops listening. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subscribers) sub.disconnect();
    for (const timer of this.deposed.values()) clearTimeout(timer);
    this.deposed.clear();
    this.clients.clear();
  }

  /**
   * What a Sentinel published on a channel the watch follows. Public so the rules can be tested
   * without Sentinels (test/unit/sentinel-watch.test.ts).
   */
  onMessage(channel: string, message: string): void {
    if (this.closed) return;
    if (channel === SWITCH_CHANNEL) this.onSwitch(message);
    else if (channel.startsWith('-failover-abort')) this.onAbort(message);
    else if (PROMOTING_CHANNELS.includes(channel)) this.onPromoting(message);
  }

  /** True when `client` is connected to a primary the Sentinels are replacing. */
  isDeposed(client: FollowingClient): boolean {
    if (this.deposed.size === 0) return false;
    const key = clientKey(client);
    return key !== null && this.deposed.has(key);
  }

  /** The Sentinels are promoting a replica of `primary`: drop every connection to it. */
  private onPromoting(message: string): void {
    const parsed = parseEventPrimary(message);
    if (!parsed || parsed.name !== this.name) return;
    withKeys(parsed.primary, (keys) => {
      for (const key of keys) this.depose(key);
    });
  }

  /** Refuses the primary at `key`; with `drop`, moves the connections to it now. */
  private depose(key: string, drop = true): void {
    if (this.deposed.has(key)) return;
    this.stats.deposed++;
    this.deposed.set(key, this.recheckLater(key));
    if (drop) for (const client of this.clients) if (this.isDeposed(client)) client.disconnect(true);
  }

  private onAbort(message: string): void {
    const parsed = parseEventPrimary(message);
    if (parsed?.name !== this.name) return;
    withKeys(parsed.primary, (keys) => {
      for (const key of keys) this.lift(key);
    });
  }

  private lift(key: string): void {
    const timer = this.deposed.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.deposed.delete(key);
    this.stats.lifted++;
  }

  private recheckLater(key: string): NodeJS.Timeout {
    const timer = setTimeout(() => void this.recheck(key), DEPOSED_RECHECK_MS);
    timer.unref();
    return timer;
  }

  /**
   * Neither end of the failover was heard: lift unless a Sentinel still reports one running (with
   * no Sentinel answering, lift: refusing the primary for good would be an outage of our making).
   */
  private async recheck(key: string): Promise<void> {
    if (this.closed || !this.deposed.has(key)) return;
    const answers = await Promise.all(this.sentinels.map((s) => this.failoverInProgress(s)));
    if (this.closed || !this.deposed.has(key)) return;
    if (answers.includes(true)) this.deposed.set(key, this.recheckLater(key));
    else this.lift(key);
  }

  /** Whether this Sentinel reports a failover of our master in progress (null: no answer). */
  private async failoverInProgress(s: Partial<PrimaryAddress>): Promise<boolean | null> {
    const c = new Redis({
      ...this.sentinelOptions,
      host: s.host ?? '127.0.0.1',
      port: s.port ?? 26379,
      lazyConnect: true,
      connectTimeout: RECHECK_TIMEOUT_MS,
      commandTimeout: RECHECK_TIMEOUT_MS,
      retryStrategy: () => null,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
    });
    c.on('error', () => {});
    try {
      await c.connect();
      const reply = (await c.call('SENTINEL', 'MASTER', this.name)) as unknown;
      // A flat field/value list (RESP2, or RESP3 with ioredis' legacy reply mapping), or a map.
      let flags: unknown;
      if (Array.isArray(reply)) flags = reply[reply.indexOf('flags') + 1];
      else if (reply && typeof reply === 'object') flags = (reply as Record<string, unknown>)['flags'];
      if (typeof flags !== 'string') return null;
      return flags.split(',').includes('failover_in_progress');
    } catch {
      return null;
    } finally {
      c.disconnect();
    }
  }

  private onSwitch(message: string): void {
    const parsed = parseSwitchMessage(message);
    if (!parsed || parsed.name !== this.name) return;
    this.stats.switches++;
    withKeys(parsed.from, (from) =>
      withKeys(parsed.to, (to) => {
        if (this.closed) return;
        // The new primary is never refused. The old one stays refused until the Sentinel running
        // the failover is done with it (the recheck): Sentinels announce the switch while the
        // other replica may still be attached to the old primary, confirming what it is sent.
        for (const key of to) this.lift(key);
        for (const key of from) this.depose(key, false);
        for (const client of this.clients) {
          // Connected elsewhere (the old primary, frozen or back on its own data): move it now.
          // On the new primary already (an earlier announcement of the same failover moved it):
          // keep it, with the commands in flight on it. (A name that did not resolve: move.)
          const key = clientKey(client);
          if (client.status === 'ready' && key !== null && to.includes(key)) {
            this.stats.kept++;
            continue;
          }
          this.stats.moved++;
          client.disconnect(true);
        }
      }),
    );
  }
}

/** The watches of this process, by Sentinel set and master name, counted by their users. */
const watches = new Map<string, { watch: SentinelWatch; users: number }>();

/**
 * The process's watch for the Sentinel set and master name in `options` (ioredis Sentinel
 * options, as `parseRedisUrl` makes them), created on first use; `release` closes it after its
 * last user.
 */
export function sentinelWatchFor(options: RedisOptions): { watch: SentinelWatch; release: () => void } {
  const sentinels = options.sentinels ?? [];
  const name = options.name ?? '';
  const key = JSON.stringify([
    name,
    sentinels.map((s) => [s.host, s.port]),
    options.sentinelUsername ?? null,
    options.sentinelPassword ?? null,
    Boolean(options.sentinelTLS),
  ]);
  let entry = watches.get(key);
  if (!entry) {
    const sentinelOptions: RedisOptions = {
      username: options.sentinelUsername ?? undefined,
      password: options.sentinelPassword ?? undefined,
      // No CLIENT SETINFO: a Sentinel user need not allow it (as for ioredis' own detector).
      disableClientInfo: true,
    };
    // As ioredis connects to the Sentinels: over TLS when the URL says so (rediss+sentinel://).
    if (options.sentinelTLS) sentinelOptions.tls = options.sentinelTLS;
    entry = { watch: new SentinelWatch(name, sentinels, sentinelOptions), users: 0 };
    watches.set(key, entry);
  }
  entry.users++;
  const held = entry;
  let released = false;
  return {
    watch: held.watch,
    release: () => {
      if (released) return;
      released = true;
      held.users--;
      if (held.users === 0) {
        held.watch.close();
        if (watches.get(key) === held) watches.delete(key);
      }
    },
  };
}
