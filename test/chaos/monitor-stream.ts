/**
 * Redis' MONITOR feed as an ordered stream of events, across Redis restarts: every executed
 * command (with Redis' timestamp and whether a Lua script ran it), `down` when the connection
 * drops, and after every (re)connect a `seed` with the lock's state read atomically by a marked
 * script — delivered at the script's place in the command order, so the consumer can resume its
 * model exactly there.
 */
import * as net from 'node:net';
import Redis from 'ioredis';

/** Reconnect attempts while Redis is away. */
const RECONNECT_MS = 100;
/** Arguments parsed per command: enough for every key and flag the fencing model reads. */
const MAX_ARGS = 24;

export type MonitorEvent =
  | { kind: 'cmd'; at: number; lua: boolean; args: string[] }
  /** A command a replica applied from its primary's replication stream (script effects). */
  | { kind: 'replicated'; at: number }
  | { kind: 'seed'; at: number; value: string | null; pttlMs: number; epoch: number }
  | { kind: 'down'; at: number }
  | { kind: 'up'; at: number };

export class MonitorStream {
  private stopped = false;
  private socket: net.Socket | undefined;
  private marker = '';
  private seedResult: { value: string | null; pttlMs: number; epoch: number } | undefined;
  /** Time of the seed script's line when its reply had not arrived; lines wait meanwhile. */
  private seedLineAt: number | undefined;
  private held: string[] | null = null;

  constructor(
    private readonly port: number,
    private readonly keys: { lock: string; epoch: string },
    private readonly emit: (e: MonitorEvent) => void,
    /** Addresses (`127.0.0.1:<port>`) of the other data servers: their lines are replication. */
    private readonly replicationSources: ReadonlySet<string> = new Set(),
  ) {}

  /** Connects, and keeps reconnecting across Redis restarts until `stop()`. */
  async start(): Promise<void> {
    while (!this.stopped) {
      if (await this.open()) {
        await this.seed();
        return;
      }
      await new Promise((r) => setTimeout(r, RECONNECT_MS));
    }
  }

  stop(): void {
    this.stopped = true;
    this.socket?.destroy();
  }

  /** Reads the lock state again (e.g. a replica was promoted); no-op while a seed is pending. */
  reseed(): void {
    if (this.socket && !this.marker) void this.seed();
  }

  private open(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect(this.port, '127.0.0.1');
      let buf = '';
      let confirmed = false;
      s.setEncoding('latin1');
      s.once('connect', () => s.write('MONITOR\r\n'));
      s.on('data', (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf('\r\n'); i !== -1; i = buf.indexOf('\r\n')) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (confirmed) {
            if (line.startsWith('+')) this.onLine(line.slice(1));
          } else if (line === '+OK') {
            confirmed = true;
            this.socket = s;
            this.emit({ kind: 'up', at: Date.now() });
            resolve(true);
          }
        }
      });
      s.once('error', () => undefined);
      s.once('close', () => {
        if (!confirmed) {
          resolve(false);
          return;
        }
        this.socket = undefined;
        this.held = null;
        this.seedLineAt = undefined;
        this.seedResult = undefined;
        this.emit({ kind: 'down', at: Date.now() });
        if (!this.stopped) void this.start();
      });
    });
  }

  /** Reads the lock's value, TTL and the epoch in one script, marked so its MONITOR line is found. */
  private async seed(): Promise<void> {
    this.marker = `lw-chaos-seed-${Date.now()}-${Math.random()}`;
    const c = new Redis(this.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const [value, pttl, epoch] = (await c.eval(
        `-- ${this.marker}\nreturn {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2])}`,
        2,
        this.keys.lock,
        this.keys.epoch,
      )) as [string | null, number, string | null];
      this.seedResult = { value, pttlMs: pttl, epoch: Number(epoch ?? 0) };
      if (this.seedLineAt !== undefined) this.release(this.seedLineAt);
    } catch {
      // Redis went away again: the next connection seeds. Held lines go on, unseeded.
      this.seedResult = undefined;
      this.release(undefined);
    } finally {
      c.disconnect();
    }
  }

  private onLine(line: string): void {
    if (this.held) {
      this.held.push(line);
      return;
    }
    const tsEnd = line.indexOf(' ');
    const at = Number(line.slice(0, tsEnd)) * 1000;
    const srcEnd = line.indexOf('] ');
    const source = line.slice(tsEnd + 1, srcEnd);
    if (this.replicationSources.has(source.slice(source.indexOf(' ') + 1))) {
      this.emit({ kind: 'replicated', at });
      return;
    }
    const lua = source.endsWith(' lua');
    const args = parseArgs(line.slice(srcEnd + 2), MAX_ARGS);
    if (!lua && args[0]?.toUpperCase() === 'EVAL' && this.marker && (args[1] ?? '').includes(this.marker)) {
      if (this.seedResult) this.release(at);
      else {
        this.seedLineAt = at;
        this.held = [];
      }
      return;
    }
    this.emit({ kind: 'cmd', at, lua, args });
  }

  /** Emits the seed (if its reply came) at `at`, then the lines held back while waiting for it. */
  private release(at: number | undefined): void {
    const s = this.seedResult;
    if (s && at !== undefined) this.emit({ kind: 'seed', at, ...s });
    this.seedResult = undefined;
    this.seedLineAt = undefined;
    this.marker = '';
    const held = this.held ?? [];
    this.held = null;
    for (const line of held) this.onLine(line);
  }
}

/** Parses up to `max` quoted MONITOR arguments (`"a" "b\"c" "\x00"`). */
export function parseArgs(s: string, max: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length && out.length < max) {
    if (s[i] !== '"') {
      i++;
      continue;
    }
    i++;
    let cur = '';
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\') {
        const n = s[i + 1];
        if (n === 'x') {
          cur += String.fromCharCode(Number.parseInt(s.slice(i + 2, i + 4), 16));
          i += 4;
          continue;
        }
        cur += n === 'n' ? '\n' : n === 'r' ? '\r' : n === 't' ? '\t' : (n ?? '');
        i += 2;
        continue;
      }
      cur += s[i];
      i++;
    }
    out.push(cur);
    i++;
  }
  return out;
}
