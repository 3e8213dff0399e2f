/**
 * Fencing evidence from outside the product: Redis' own MONITOR stream. It lists every command
 * in the order Redis executed it, with Redis' timestamp, including the commands a Lua script
 * runs (`[0 lua]`). From it this module rebuilds, independently of leaderway's code, who held
 * `core/lock` at each instant (acquire = SET NX PX followed by INCR of the epoch; a takeover from
 * a crashed holder = SET PX without NX, then INCR; renew = PEXPIRE; release = DEL; expiry = last
 * SET/PEXPIRE time + TTL) and checks every data write the
 * store executed: it must come from a fenced batch whose fence value was the live holder at that
 * instant. It follows the epoch too (the INCR, or the floor the acquire script may set). So "no
 * write was stored by a node after its lock epoch ended" is verified on what Redis did, not on
 * what the nodes believe.
 *
 * What it cannot see: commands executed while the MONITOR connection is down (Redis restarts);
 * those windows are reported as gaps, and the lock state is re-read atomically when it returns.
 */
import { type MonitorEvent, MonitorStream } from './monitor-stream';

/** Slack for the expiry comparison: MONITOR stamps a command a few µs after the script started. */
const EXPIRY_SLACK_MS = 2;

/** What the monitor concluded. */
export interface FencingReport {
  violations: string[];
  /** Successful acquisitions seen: epoch, lock value, Redis time. */
  acquisitions: Array<{ epoch: number; value: string; at: number }>;
  /** How each observed term ended in Redis (taken over: its holder's connection was gone). */
  ends: { released: number; expired: number; takenOver: number };
  /** Data writes (SET/DEL of a data key) checked against the lock. */
  writesChecked: number;
  /** Writes seen while the lock state was unknown (just after a reconnect, before the re-read). */
  writesUnchecked: number;
  /** Windows with no MONITOR connection (ms since epoch). */
  gaps: Array<{ from: number; to: number }>;
  /** The smallest margin (ms) by which a checked write preceded its lock's expiry. */
  minExpiryMarginMs: number;
}

/** A report with nothing observed yet. */
export function emptyReport(): FencingReport {
  return {
    violations: [],
    acquisitions: [],
    ends: { released: 0, expired: 0, takenOver: 0 },
    writesChecked: 0,
    writesUnchecked: 0,
    gaps: [],
    minExpiryMarginMs: Number.POSITIVE_INFINITY,
  };
}

interface Holder {
  value: string;
  expiresAt: number;
  epoch: number;
}

/** Watches one Redis for the cluster with key prefix `prefix`. Call `stop()` to get the report. */
export class LockMonitor {
  private readonly lockKey: string;
  /** The holder's connection record: bookkeeping for liveness, not lock state. */
  private readonly connKey: string;
  private readonly epochKey: string;
  private readonly indexKey: string;
  private readonly dataPrefix: string;
  private readonly stream: MonitorStream;
  private holder: Holder | null = null;
  /** False until the state was (re)seeded after a (re)connect. */
  private known = false;
  private epoch = 0;
  private script: string[] | null = null;
  /** MONITOR time of the current script (Redis freezes time at script start for expiry). */
  private scriptAt = 0;
  private pendingAcquire: { value: string; ttl: number; at: number; takeover: boolean } | null = null;
  private downSince: number | undefined = Date.now();
  private readonly r: FencingReport = emptyReport();

  /**
   * `replicationSources`: the other data servers of a replicated Redis. Their lines (a replica
   * applying its primary's script effects) are not modelled: they only make the state unknown,
   * and it is read again when a node's script runs here (the replica was promoted).
   */
  constructor(port: number, prefix = 'leaderway', replicationSources: ReadonlySet<string> = new Set()) {
    const tag = `{${prefix}}`;
    this.lockKey = `${tag}/core/lock`;
    this.connKey = `${tag}/core/lock-conn`;
    this.epochKey = `${tag}/core/lock-epoch`;
    this.indexKey = `${tag}/index`;
    this.dataPrefix = `${tag}/d/`;
    this.stream = new MonitorStream(
      port,
      { lock: this.lockKey, epoch: this.epochKey },
      (e) => this.on(e),
      replicationSources,
    );
  }

  /** Connects (and keeps reconnecting across Redis restarts until stopped). */
  start(): Promise<void> {
    return this.stream.start();
  }

  stop(): FencingReport {
    this.stream.stop();
    return this.r;
  }

  private on(e: MonitorEvent): void {
    switch (e.kind) {
      case 'up':
        if (this.downSince !== undefined) this.r.gaps.push({ from: this.downSince, to: e.at });
        this.downSince = undefined;
        return;
      case 'down':
        this.known = false;
        this.downSince = e.at;
        return;
      case 'seed':
        this.epoch = e.epoch;
        this.holder =
          e.value !== null && e.pttlMs > 0
            ? { value: e.value, expiresAt: e.at + e.pttlMs, epoch: e.epoch }
            : null;
        this.known = true;
        this.script = null;
        return;
      case 'replicated':
        this.known = false;
        this.script = null;
        this.pendingAcquire = null;
        return;
      case 'cmd':
        this.onCommand(e.at, e.lua, e.args);
    }
  }

  private onCommand(at: number, lua: boolean, args: string[]): void {
    const cmd = (args[0] ?? '').toUpperCase();
    if (!lua) {
      this.pendingAcquire = null;
      if (cmd === 'EVAL' || cmd === 'EVALSHA') {
        this.script = args;
        this.scriptAt = at;
        if (!this.known) this.stream.reseed();
      } else {
        this.script = null;
        if (writesKey(cmd) && args.slice(1).some((k) => this.isOurs(k))) {
          this.r.violations.push(`write outside the scripts: ${cmd} ${args[1]} at ${iso(at)}`);
        }
      }
      return;
    }
    this.onScriptCommand(cmd, args, at);
  }

  private onScriptCommand(cmd: string, args: string[], lineAt: number): void {
    const key = args[1] ?? '';
    const at = this.scriptAt || lineAt;
    if (key === this.connKey) return;
    if (cmd === 'SET' && key === this.lockKey) {
      const takeover = !args.some((a) => a.toUpperCase() === 'NX');
      this.pendingAcquire = { value: args[2] ?? '', ttl: pxOf(args), at, takeover };
      return;
    }
    if (cmd === 'INCR' && key === this.epochKey && this.pendingAcquire) {
      const p = this.pendingAcquire;
      this.pendingAcquire = null;
      this.expire(p.at);
      if (this.known && this.holder) {
        // A takeover replaces a live holder by design (its connection was gone; the script
        // compared its value); every later write of the old holder must then be fenced, which
        // checkWrite verifies. A plain acquisition must find the lock free.
        if (p.takeover) this.r.ends.takenOver += 1;
        else
          this.r.violations.push(
            `lock acquired by ${p.value} while held by ${this.holder.value} at ${iso(p.at)}`,
          );
      }
      this.epoch += 1;
      this.holder = { value: p.value, expiresAt: p.at + p.ttl, epoch: this.epoch };
      if (this.known) this.r.acquisitions.push({ epoch: this.epoch, value: p.value, at: p.at });
      return;
    }
    if (cmd === 'SET' && key === this.epochKey) {
      // The acquire script may lift the epoch to a floor (e.g. the server clock): follow it.
      this.epoch = Number(args[2]);
      const last = this.r.acquisitions.at(-1);
      if (this.holder && last && last.value === this.holder.value && last.at === this.scriptAt)
        last.epoch = this.epoch;
      if (this.holder && this.holder.value === this.argv(1)) this.holder.epoch = this.epoch;
      return;
    }
    this.pendingAcquire = null;
    const value = this.argv(1);
    if (cmd === 'PEXPIRE' && key === this.lockKey) {
      this.expire(at);
      if (!this.holder || this.holder.value !== value) {
        if (this.known) this.r.violations.push(`renew of a lock ${value} did not hold at ${iso(at)}`);
        return;
      }
      this.holder.expiresAt = at + Number(args[2]);
      return;
    }
    if (cmd === 'DEL' && key === this.lockKey) {
      this.expire(at);
      if (this.known && (!this.holder || this.holder.value !== value)) {
        this.r.violations.push(`release of a lock ${value} did not hold at ${iso(at)}`);
      }
      if (this.holder) this.r.ends.released += 1;
      this.holder = null;
      return;
    }
    if ((cmd === 'SET' || cmd === 'DEL') && key.startsWith(this.dataPrefix)) this.checkWrite(key, at);
  }

  /** A data key written inside a script: it must be a fenced batch by the live holder. */
  private checkWrite(key: string, at: number): void {
    const s = this.script;
    if (!s || s[3] !== this.indexKey) {
      this.r.violations.push(`data written by an unknown script: ${key} at ${iso(at)}`);
      return;
    }
    const numKeys = Number(s[2]);
    const fenced = s[3 + numKeys] === '1';
    const fence = s[4 + numKeys] ?? '';
    const path = key.slice(this.dataPrefix.length);
    if (!fenced) {
      // Only initialisation (the seal keys and root token, guarded by ifAbsent) writes unfenced.
      if (!path.startsWith('core/seal/') && path !== 'core/keyring' && !path.startsWith('auth/token/id/')) {
        this.r.violations.push(`unfenced write of ${path} at ${iso(at)}`);
      }
      return;
    }
    if (!this.known) {
      this.r.writesUnchecked += 1;
      return;
    }
    this.r.writesChecked += 1;
    const h = this.holder;
    if (!h || h.value !== fence) {
      this.r.violations.push(
        `write of ${path} fenced by ${fence} stored while ${h ? `${h.value} (epoch ${h.epoch})` : 'nobody'} held the lock, at ${iso(at)}`,
      );
      return;
    }
    const margin = h.expiresAt - at;
    this.r.minExpiryMarginMs = Math.min(this.r.minExpiryMarginMs, margin);
    if (margin < -EXPIRY_SLACK_MS) {
      this.r.violations.push(
        `write of ${path} by epoch ${h.epoch} stored ${(-margin).toFixed(1)} ms after its lock expired, at ${iso(at)}`,
      );
    }
  }

  /** ARGV[i] of the current script (after EVALSHA, the sha, the key count and the keys). */
  private argv(i: number): string {
    const s = this.script;
    if (!s) return '';
    return s[2 + Number(s[2]) + i] ?? '';
  }

  /** Ends the current term if its TTL ran out before `at`. */
  private expire(at: number): void {
    if (this.holder && this.holder.expiresAt <= at) {
      this.r.ends.expired += 1;
      this.holder = null;
    }
  }

  private isOurs(key: string): boolean {
    return (
      key === this.lockKey || key === this.epochKey || key === this.connKey || key.startsWith(this.dataPrefix)
    );
  }
}

function writesKey(cmd: string): boolean {
  return [
    'SET',
    'DEL',
    'UNLINK',
    'PEXPIRE',
    'EXPIRE',
    'INCR',
    'GETSET',
    'SETEX',
    'PSETEX',
    'RENAME',
  ].includes(cmd);
}

function pxOf(args: string[]): number {
  const i = args.findIndex((a) => a.toUpperCase() === 'PX');
  return i === -1 ? 0 : Number(args[i + 1]);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
