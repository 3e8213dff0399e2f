/**
 * Knows who the leader is, for standbys and gateways alike, and fails closed.
 *
 * The lock value decides: the watcher reads the lock holder (value + epoch) from the HA storage
 * and only then the advertisement at `core/leader-signed/<value>`. An advertisement is accepted
 * only if it authenticates under the advertisement key, is signed by a node's signing key,
 * names the same uuid and epoch as the lock, and its epoch is not older than one already
 * accepted. Anything else — no holder, a missing,
 * undecryptable, forged or stale advertisement, a store we cannot read for too long — means "no
 * leader": callers answer 503 instead of guessing. A stale `core/leader/*` restored from a backup
 * is never trusted on its own (vault#3226).
 *
 * Refreshes on HA notifications (pub/sub) and at least every `pollMs`.
 */
import { EventEmitter } from 'node:events';
import {
  type Advertisement,
  advertisementPath,
  decodeAdvertisement,
  decodeLegacyAdvertisement,
  legacyAdvertisementPath,
  type RejectReason,
} from '../advertisement';
import type { VerifyKey } from '../crypto/signing';
import { rejectReasons } from '../signed-record';
import type { Backend, HABackend } from '../storage/backend';
import { CoalescedRead } from './coalesced';
import { type ClientIdentity, derToPem, LeaderClient } from './leader-client';

/** Polling fallback when notifications are lost; the issue caps it at one second. */
const DEFAULT_POLL_MS = 1_000;
/** Without a successful read for this many poll periods, the known leader is dropped. */
const STALE_AFTER_POLLS = 3;

/** The accepted leader and a connection pool to it. */
export interface Leader {
  ad: Advertisement;
  client: LeaderClient | null;
}

/** Why an advertisement was not used (a metric label; never contains the data). */
export type AdvertisementRejection =
  | RejectReason
  | 'epoch-mismatch'
  | 'stale-epoch'
  | 'bad-cert'
  | 'no-identity';

/** Every reason, for nodes and gateways to export each at 0 before any refusal. */
export const ADVERTISEMENT_REJECTIONS = rejectReasons<Exclude<AdvertisementRejection, RejectReason>>({
  'epoch-mismatch': true,
  'stale-epoch': true,
  'bad-cert': true,
  'no-identity': true,
});

/** Hooks for metrics and logs. None receives secret material. */
export interface WatcherHooks {
  onChange?(leader: Leader | null, previous: Leader | null): void;
  onReject?(reason: AdvertisementRejection, uuid: string): void;
  onReadError?(err: unknown): void;
}

export interface LeaderWatcherOptions {
  data: Backend;
  ha: HABackend;
  /** Advertisement (encryption) keys. */
  keys: readonly Buffer[];
  /** The nodes' signing keys' public halves. */
  verifyKeys: readonly VerifyKey[];
  /**
   * What to present to a leader (when `connect`): a gateway's own certificate, or — on a node —
   * the leader's certificate with its key read through the barrier. Null: cannot connect (yet).
   */
  identity?: (ad: Advertisement) => Promise<ClientIdentity | null>;
  /**
   * Nodes in legacy mode also accept the previous, unsigned format (rolling upgrade from it);
   * its key is in the advertisement itself.
   */
  legacy?: boolean;
  pollMs?: number;
  /** Build a pool for each leader (false for a node that never forwards). */
  connect: boolean;
  /** Connections per leader pool. */
  connections?: number;
  /** The lock value of this process's own active term, if any: it is not "a leader to reach". */
  selfValue?: () => string | null;
  hooks?: WatcherHooks;
}

/** Follows the leader. `start()` / `close()` are idempotent. */
export class LeaderWatcher extends EventEmitter {
  private leader: Leader | null = null;
  private maxEpoch = 0;
  private lastGoodRead = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly reads = new CoalescedRead(() => this.read());
  private closed = false;
  private readonly pollMs: number;

  constructor(private readonly opts: LeaderWatcherOptions) {
    super();
    this.pollMs = Math.min(opts.pollMs ?? DEFAULT_POLL_MS, DEFAULT_POLL_MS);
  }

  async start(): Promise<void> {
    if (this.timer || this.closed) return;
    this.unsubscribe = this.opts.ha.subscribe(() => void this.refresh());
    this.timer = setInterval(() => void this.refresh(), this.pollMs);
    this.timer.unref();
    await this.refresh();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.reads.running();
    this.set(null);
  }

  /** The leader, if one is known and was confirmed recently. */
  current(): Leader | null {
    if (this.leader && performance.now() - this.lastGoodRead > this.pollMs * STALE_AFTER_POLLS) {
      // We cannot confirm the leader any more (store unreachable): stop routing to it.
      this.set(null);
    }
    return this.leader;
  }

  /** True when `current()` would return a leader. */
  fresh(): boolean {
    return this.current() !== null;
  }

  /**
   * Resolves the first leader other than `notUuid` (any leader when omitted), or null once
   * `timeoutMs` has passed or `signal` aborts.
   */
  waitFor(timeoutMs: number, notUuid?: string, signal?: AbortSignal): Promise<Leader | null> {
    const ok = (l: Leader | null): l is Leader => l !== null && l.ad.uuid !== notUuid;
    const now = this.current();
    if (ok(now)) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = (l: Leader | null) => {
        clearTimeout(timer);
        this.off('change', onChange);
        signal?.removeEventListener('abort', onAbort);
        resolve(l);
      };
      const onChange = (l: Leader | null) => {
        if (ok(l)) done(l);
      };
      const onAbort = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      this.on('change', onChange);
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.refresh();
    });
  }

  /** Re-reads the lock and advertisement now (coalesced with a read already running). */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.reads.run();
  }

  private async read(): Promise<void> {
    const { ha, hooks } = this.opts;
    let holder: Awaited<ReturnType<HABackend['holder']>>;
    try {
      holder = await ha.holder();
    } catch (err) {
      hooks?.onReadError?.(err);
      return;
    }
    if (!holder) {
      this.lastGoodRead = performance.now();
      this.set(null);
      return;
    }
    if (this.leader?.ad.uuid === holder.value && this.leader.ad.epoch === holder.epoch) {
      this.lastGoodRead = performance.now();
      return;
    }
    let found: Awaited<ReturnType<LeaderWatcher['fetch']>>;
    try {
      found = await this.fetch(holder.value);
    } catch (err) {
      hooks?.onReadError?.(err);
      return;
    }
    this.lastGoodRead = performance.now();
    // The new holder has not written its advertisement yet: no leader for the moment.
    if (found === null) {
      this.set(null);
      return;
    }
    if (!found.ok) {
      hooks?.onReject?.(found.reason, holder.value);
      this.set(null);
      return;
    }
    const ad = found.ad;
    if (ad.epoch !== holder.epoch) {
      hooks?.onReject?.('epoch-mismatch', holder.value);
      this.set(null);
      return;
    }
    if (ad.epoch < this.maxEpoch) {
      hooks?.onReject?.('stale-epoch', holder.value);
      this.set(null);
      return;
    }
    let client: LeaderClient | null = null;
    const isSelf = this.opts.selfValue?.() === ad.uuid;
    if (this.opts.connect && ad.cluster_addr !== '' && !isSelf) {
      let identity: ClientIdentity | null | undefined;
      try {
        identity = found.legacyKey
          ? { certPem: derToPem(ad.cert, 'CERTIFICATE'), keyPem: derToPem(found.legacyKey, 'PRIVATE KEY') }
          : await this.opts.identity?.(ad);
      } catch (err) {
        // Reading it failed (a node reads the key through the barrier): like a failed read.
        hooks?.onReadError?.(err);
        return;
      }
      if (!identity) {
        hooks?.onReject?.('no-identity', holder.value);
        this.set(null);
        return;
      }
      try {
        client = new LeaderClient(ad, identity, { connections: this.opts.connections });
      } catch {
        hooks?.onReject?.('bad-cert', holder.value);
        this.set(null);
        return;
      }
    }
    this.maxEpoch = ad.epoch;
    this.set({ ad, client });
  }

  /**
   * The advertisement for lock value `uuid`: null when none is stored, else the decoded result
   * (with the private key when it came in the previous format, legacy mode only).
   */
  private async fetch(
    uuid: string,
  ): Promise<
    null | { ok: false; reason: RejectReason } | { ok: true; ad: Advertisement; legacyKey?: string }
  > {
    const { data, keys, verifyKeys } = this.opts;
    const path = advertisementPath(uuid);
    const raw = await data.get(path);
    if (raw) return decodeAdvertisement(raw, path, keys, verifyKeys);
    if (!this.opts.legacy) return null;
    const legacyPath = legacyAdvertisementPath(uuid);
    const old = await data.get(legacyPath);
    if (!old) return null;
    const d = decodeLegacyAdvertisement(old, legacyPath, keys);
    if (!d.ok) return d;
    const { key, ...ad } = d.ad;
    return { ok: true, ad, legacyKey: key };
  }

  /**
   * Builds a new pool to the current leader (the identity presented changed, e.g. a renewed
   * gateway certificate); the old pool finishes its requests and closes.
   */
  async reconnect(): Promise<void> {
    const l = this.leader;
    if (!l?.client || !this.opts.identity) return;
    let identity: ClientIdentity | null;
    try {
      identity = await this.opts.identity(l.ad);
    } catch (err) {
      this.opts.hooks?.onReadError?.(err);
      return;
    }
    if (!identity || this.leader !== l) return;
    this.set({ ad: l.ad, client: new LeaderClient(l.ad, identity, { connections: this.opts.connections }) });
  }

  private set(next: Leader | null): void {
    const prev = this.leader;
    if (prev === next || (prev === null && next === null)) return;
    this.leader = next;
    this.opts.hooks?.onChange?.(next, prev);
    this.emit('change', next);
    // Nothing more is sent to the old leader; its in-flight requests may finish (bounded).
    prev?.client?.retire();
  }
}
